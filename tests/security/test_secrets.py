"""No secret leaves vaultd through an error text: one scrubber at every boundary.

The attack: the API, or a proxy in front of it, answers an error whose text repeats the
API key or a proxy password (some OpenAI-compatible servers and proxies do). Before the
scrubber the text was stored verbatim: in ``inbox.md``, the ledger, ``status``.

End to end: ``vaultd run --once`` (a subprocess, real ``anthropic`` SDK) against the
loopback Messages stand-in, four subtitle files in the vault. One is answered normally
(a note and its PDF), but its study note repeats the key; one with HTTP 400 whose message
repeats the key and an unknown key-shaped string; one with HTTP 407 whose text repeats
the proxy URL with its password and the Tor and Webshare passwords; one with HTTP 502
doing the same. Afterwards every secret is searched for in the vault's files (PDF text
extracted with pypdf), every file of the state dir (the SQLite ledger and the reply cache
included, as bytes), the daemon's log, ``status`` (text and ``--json``) and
``doctor --json``: none may be there. The failures are still explained.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fake_anthropic import FakeAnthropic, Reply, raw  # noqa: E402

from daemon import secrets  # noqa: E402
from tests.helpers import lecture_srt, vaultd, vaultd_env  # noqa: E402
from tests.test_e2e_stand_ins import study_model  # noqa: E402
from vault_tools.inbox import parse_inbox  # noqa: E402

KEY = "vaultd-test-key-Zq8Xw2Lm5Np7Rt4Y"  # not key-shaped: only knowing it masks it
SHAPED = "sk-ant-api03-AbCdEf0123456789GhIjKlMn"  # a key nobody configured, by shape
PROXY_PASSWORD = "PrOxY-pass-9431"
TOR_PASSWORD = "t0r-Secret-pw"
WEBSHARE_PASSWORD = "W3bshare-secret"
SECRETS = [KEY, SHAPED, PROXY_PASSWORD, TOR_PASSWORD, WEBSHARE_PASSWORD]
PROXY_URL = f"http://vaultuser:{PROXY_PASSWORD}@127.0.0.1:9"

CONFIG = f"""\
[daemon]
workers = 1
debounce_seconds = 0.1
max_attempts = 1

[generate]
backend = "claude"
model = "claude-sonnet-5-5"
retry_attempts = 1
retry_max_wait_seconds = 0.1

[youtube]
proxy = "{PROXY_URL}"
tor_control_password = "{TOR_PASSWORD}"
webshare_password = "{WEBSHARE_PASSWORD}"
"""


def error_body(status: int, message: str) -> Reply:
    return raw(json.dumps({"type": "error", "error": {
        "type": "invalid_request_error", "message": message}}).encode(), status=status)


def echoing_model(body: dict[str, Any]) -> Reply:
    title = re.search(r"^# Video: (.+)$", body["system"][-1]["text"], re.M)
    name = title.group(1) if title else ""
    proxy_text = (f"Proxy Authentication Required via {PROXY_URL} (tor {TOR_PASSWORD}, "
                  f"webshare {WEBSHARE_PASSWORD})")
    if "key" in name.lower():
        return error_body(400, f"invalid x-api-key: {KEY}; also tried {SHAPED}")
    if "proxy" in name.lower():
        return error_body(407, proxy_text)
    if "gateway" in name.lower():
        return error_body(502, f"Bad gateway: {proxy_text}")
    reply = study_model(body)  # a good reply, but one that repeats the key in the note
    assert reply.text is not None
    if "<note>" in reply.text:
        reply.text = reply.text.replace("\n## Definitions",
                                        f"\nThe server echoed {KEY}.\n\n## Definitions", 1)
    return reply


def found_in(where: str, text: str) -> list[str]:
    return [f"{secret!r} in {where}" for secret in SECRETS if secret in text]


def test_no_secret_in_vault_state_logs_status_doctor_or_pdfs(tmp_path: Path) -> None:
    vault, state = tmp_path / "vault", tmp_path / "state"
    (vault / ".vaultd").mkdir(parents=True)
    (vault / ".vaultd" / "config.toml").write_text(CONFIG)
    (vault / "Lectures").mkdir()
    for name, topic in (("Enzymes", "enzymes"), ("Leaky key", "memory"),
                        ("Leaky proxy", "gravity"), ("Bad gateway", "orbits")):
        (vault / "Lectures" / f"{name}.srt").write_text(lecture_srt(topic))
    (vault / "inbox.md").write_text(
        "- [[Lectures/Enzymes.srt]]\n- [[Lectures/Leaky key.srt]]\n"
        "- [[Lectures/Leaky proxy.srt]]\n- [[Lectures/Bad gateway.srt]]\n")
    with FakeAnthropic(echoing_model) as fake:
        env = vaultd_env(state, ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=fake.base_url)
        run = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=180)
        status_json = vaultd("status", "--vault", str(vault), "--json", env=env)
        status_text = vaultd("status", "--vault", str(vault), env=env)
        doctor = vaultd("doctor", "--vault", str(vault), "--json", env=env, timeout=120)
        assert any(r.path == "/v1/messages" for r in fake.requests)

    # The run did what it should: one note with its PDF, three plain failures.
    assert run.returncode == 0, run.stderr[-3000:]
    ok, key_line, proxy_line, gateway_line = (p.annotation for p in parse_inbox(
        (vault / "inbox.md").read_text()))
    assert "✅" in ok
    assert "❌ failed: Claude API refused the request (HTTP 400)" in key_line
    assert "❌ failed: Claude API refused the request (HTTP 407)" in proxy_line
    assert "❌ failed" in gateway_line and "502" in gateway_line
    pdfs = list(vault.rglob("*.pdf"))
    assert pdfs, "the good note was not exported to PDF"
    assert status_json.returncode == 0 and status_text.returncode == 0
    assert json.loads(doctor.stdout)  # a report was printed

    leaks: list[str] = []
    user_config = vault / ".vaultd" / "config.toml"  # where the user keeps them
    for path in vault.rglob("*"):
        if path.is_file() and path != user_config:
            leaks += found_in(str(path), path.read_bytes().decode("utf-8", "replace"))
    for pdf in pdfs:
        leaks += found_in(f"text of {pdf}", "".join(
            page.extract_text() or "" for page in PdfReader(pdf).pages))
    for path in state.rglob("*"):
        if path.is_file():
            leaks += found_in(str(path), path.read_bytes().decode("latin-1"))
    leaks += found_in("the daemon's log", run.stdout + run.stderr)
    leaks += found_in("status --json", status_json.stdout + status_json.stderr)
    leaks += found_in("status", status_text.stdout + status_text.stderr)
    leaks += found_in("doctor --json", doctor.stdout + doctor.stderr)
    assert not leaks, "\n".join(leaks)
    # Masked, not dropped: the user still sees that the server said something.
    assert "***" in key_line and "***" in proxy_line
    note = next(p for p in (vault / "Study Notes").glob("*.md") if "Assessment" not in p.name)
    assert "The server echoed ***." in note.read_text()


def test_the_scrubber_masks_configured_secrets_shapes_and_url_passwords(
        monkeypatch: Any, tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("file-key-0123456789abcdef\n")
    key_file.chmod(0o600)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "openai-env-key-42")
    monkeypatch.setenv("HTTPS_PROXY", "http://me:env%2Fproxy-pw@proxy:3128")
    secrets.register_config({"generate": {"api_key_file": str(key_file)},
                             "youtube": {"proxy": "socks5h://u:cfg-proxy-pw@h:1080",
                                         "tor_control_password": "tor-pw-1",
                                         "webshare_password": "ws-pw-22"}})
    text = ("file-key-0123456789abcdef openai-env-key-42 env/proxy-pw env%2Fproxy-pw "
            "cfg-proxy-pw tor-pw-1 ws-pw-22 sk-proj-Zz9Yy8Xx7Ww6Vv5Uu4 "
            "https://someone:hunter2@example.org/x sk-learn stays")
    out = secrets.scrub(text)
    for secret in ("file-key-0123456789abcdef", "openai-env-key-42", "proxy-pw", "cfg-proxy-pw",
                   "tor-pw-1", "ws-pw-22", "Zz9Yy8Xx7Ww6Vv5Uu4", "hunter2"):
        assert secret not in out, (secret, out)
    assert out.endswith("sk-learn stays") and "https://someone:***@example.org/x" in out
    assert secrets.scrub(out) == out
