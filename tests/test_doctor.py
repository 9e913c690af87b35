"""``vaultd doctor`` checks against a temp vault and loopback stand-ins (no real network)."""

from __future__ import annotations

import json
import os
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from daemon.cli.doctor import Check, exit_code, format_report, run_checks
from daemon.jobs.ledger import Ledger
from daemon.paths import state_dir_for
from tests.helpers import closed_port

SECRET = "sk-ant-test-SECRET123"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean environment: temp state and config homes, no key, no proxies."""
    monkeypatch.setenv("VAULTD_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    for var in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "STATE_DIRECTORY", "HTTPS_PROXY",
                "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
                "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture
def vault(env: Path) -> Path:
    v = env / "vault"
    v.mkdir()
    (v / "inbox.md").write_text("# Inbox\n\nhttps://youtu.be/dQw4w9WgXcQ\n", encoding="utf-8")
    return v


def write_config(vault: Path, text: str) -> None:
    (vault / ".vaultd").mkdir(exist_ok=True)
    (vault / ".vaultd" / "config.toml").write_text(text, encoding="utf-8")


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


class _Server(ThreadingHTTPServer):
    status = 404
    seen: list[tuple[str, str]]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _answer(self) -> None:
        self.server.seen.append((self.command, self.path))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.seen = []
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def url_of(server: _Server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


class _FakeTor(socketserver.ThreadingTCPServer):
    daemon_threads = True
    commands: list[str]


class _TorHandler(socketserver.StreamRequestHandler):
    server: _FakeTor

    def handle(self) -> None:
        for raw in self.rfile:
            line = raw.decode().rstrip("\r\n")
            self.server.commands.append(line)
            if line == "GETINFO version":
                self.wfile.write(b"250-version=0.4.8.9\r\n250 OK\r\n")
            else:
                self.wfile.write(b"250 OK\r\n")
            self.wfile.flush()
            if line == "QUIT":
                return


@pytest.fixture
def fake_tor() -> Iterator[_FakeTor]:
    server = _FakeTor(("127.0.0.1", 0), _TorHandler)
    server.commands = []
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


# --------------------------------------------------------------------------- tests


def test_healthy_vault_reaches_loopback_stand_ins_and_hides_the_key(
        vault: Path, http_server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", url_of(http_server))
    checks = run_checks(vault, youtube_url=url_of(http_server) + "/yt", timeout=3)
    c = by_name(checks)
    assert [x.verdict for x in (c["vault"], c["config"], c["inbox"], c["state"],
                                c["ledger"], c["api-key"], c["proxy"])] == ["ok"] * 7
    assert c["backend"].verdict == "ok" and c["backend"].detail.startswith("claude")
    assert c["anthropic"].verdict == "ok" and "HTTP 404" in c["anthropic"].detail
    assert c["youtube"].verdict == "ok" and "HTTP 404" in c["youtube"].detail
    assert ("GET", "/") in http_server.seen and ("HEAD", "/yt") in http_server.seen
    assert c["tor"].verdict == "skip"
    assert c["daemon"].verdict == "warn" and "vaultd run" in c["daemon"].fix
    report = format_report(checks)
    assert report.splitlines()[0] == f"ok    vault        {vault} is a writable folder"
    assert "SECRET123" not in report
    as_json = json.dumps([asdict(x) for x in checks])
    assert "SECRET123" not in as_json
    assert exit_code(checks) == 0
    assert not (vault / ".vaultd").exists(), "doctor must not write the config"
    assert not state_dir_for(vault).exists(), "doctor must not create the state dir"


def test_missing_vault_fails(env: Path) -> None:
    checks = run_checks(env / "nowhere", network=False)
    c = by_name(checks)
    assert c["vault"].verdict == "fail" and "does not exist" in c["vault"].detail
    assert "mkdir -p" in c["vault"].fix
    assert c["config"].verdict == "skip" and c["inbox"].verdict == "skip"
    assert exit_code(checks) == 1
    assert "fix: pass the right --vault" in format_report(checks)


def test_an_inbox_that_is_a_pipe_is_named_as_one(vault: Path) -> None:
    """The inbox check said "is not a file; fix: rename that folder" for a FIFO."""
    (vault / "inbox.md").unlink(missing_ok=True)
    os.mkfifo(vault / "inbox.md")
    c = by_name(run_checks(vault, network=False))
    assert c["inbox"].verdict == "fail"
    assert "named pipe" in c["inbox"].detail and "folder" not in c["inbox"].fix


def test_garbage_config_names_the_setting(vault: Path) -> None:
    write_config(vault, '[daemon]\nworkers = "many"\n')
    c = by_name(run_checks(vault, network=False))
    assert c["config"].verdict == "fail"
    assert "daemon.workers" in c["config"].detail and "daemon.workers" in c["config"].fix
    assert c["backend"].verdict == "skip" and c["proxy"].verdict == "skip"

    write_config(vault, "this is = = not toml\n")
    c = by_name(run_checks(vault, network=False))
    assert c["config"].verdict == "fail" and "config.toml" in c["config"].detail


def test_key_file_readable_by_others_fails_with_chmod_fix(vault: Path, env: Path) -> None:
    key = env / "anthropic.key"
    key.write_text(SECRET + "\n", encoding="utf-8")
    key.chmod(0o644)
    write_config(vault, f'[generate]\napi_key_file = "{key}"\n')
    checks = run_checks(vault, network=False)
    c = by_name(checks)
    assert c["api-key"].verdict == "fail" and "0644" in c["api-key"].detail
    assert c["api-key"].fix == f"chmod 600 {key}"
    # the daemon would refuse to start with this key file, so the backend fails too
    assert c["backend"].verdict == "fail" and "generate.api_key_file" in c["backend"].detail
    assert "SECRET123" not in format_report(checks)
    assert exit_code(checks) == 1

    key.chmod(0o600)
    c = by_name(run_checks(vault, network=False))
    assert c["api-key"].verdict == "ok" and c["backend"].verdict == "ok"
    assert "SECRET123" not in c["api-key"].detail


def test_service_env_file_with_a_key_must_be_private(vault: Path, env: Path) -> None:
    env_file = env / "xdg" / "vaultd" / "env"
    env_file.parent.mkdir(parents=True)
    env_file.write_text(f"#HTTPS_PROXY=x\nANTHROPIC_API_KEY={SECRET}\n", encoding="utf-8")
    env_file.chmod(0o640)
    checks = run_checks(vault, network=False)
    c = by_name(checks)
    assert c["api-key"].verdict == "fail" and c["api-key"].fix == f"chmod 600 {env_file}"
    assert "SECRET123" not in format_report(checks)


def test_refused_port_fails_with_a_plain_reason(
        vault: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{port}")
    checks = run_checks(vault, youtube_url=f"http://127.0.0.1:{port}", timeout=3)
    c = by_name(checks)
    for name in ("anthropic", "youtube"):
        assert c[name].verdict == "fail", c[name]
        assert "connection refused" in c[name].detail
    assert exit_code(checks) == 1
    assert "SECRET123" not in format_report(checks)


def test_unreachable_api_is_only_a_warning_for_the_offline_backend(vault: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    c = by_name(run_checks(vault, youtube_url=f"http://127.0.0.1:{closed_port()}", timeout=3))
    assert c["anthropic"].verdict == "warn" and "offline" in c["anthropic"].detail


def test_youtube_rate_limit_is_a_warning(vault: Path, http_server: _Server) -> None:
    http_server.status = 429
    c = by_name(run_checks(vault, youtube_url=url_of(http_server), timeout=3))
    assert c["youtube"].verdict == "warn" and "rate-limiting" in c["youtube"].detail


def test_no_network_skips_network_checks(vault: Path, http_server: _Server,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", url_of(http_server))
    c = by_name(run_checks(vault, network=False, youtube_url=url_of(http_server)))
    assert c["youtube"].verdict == c["anthropic"].verdict == "skip"
    assert http_server.seen == []


def test_tor_control_port_answers(vault: Path, fake_tor: _FakeTor) -> None:
    port = fake_tor.server_address[1]
    write_config(vault, f'[youtube]\nproxy = "socks5h://127.0.0.1:9050"\n'
                 f'tor_control_port = {port}\ntor_control_password = "hunter2-pass"\n')
    checks = run_checks(vault, network=False)
    c = by_name(checks)
    assert c["tor"].verdict == "ok" and "0.4.8.9" in c["tor"].detail
    assert fake_tor.commands[:2] == ['AUTHENTICATE "hunter2-pass"', "GETINFO version"]
    assert "hunter2-pass" not in format_report(checks)


def test_tor_without_socks_proxy_warns_and_closed_port_fails(
        vault: Path, fake_tor: _FakeTor) -> None:
    write_config(vault, f"[youtube]\ntor_control_port = {fake_tor.server_address[1]}\n")
    c = by_name(run_checks(vault, network=False))
    assert c["tor"].verdict == "warn" and "not a SOCKS proxy" in c["tor"].detail

    port = closed_port()
    write_config(vault, f"[youtube]\ntor_control_port = {port}\n")
    c = by_name(run_checks(vault, network=False, timeout=2))
    assert c["tor"].verdict == "fail" and "cannot reach" in c["tor"].detail
    assert f"ControlPort {port}" in c["tor"].fix


def test_proxy_is_named_with_its_password_redacted(vault: Path) -> None:
    write_config(vault, '[youtube]\nproxy = "http://me:pw-XYZ789@127.0.0.1:3128"\n')
    checks = run_checks(vault, network=False)
    c = by_name(checks)
    assert c["proxy"].verdict == "ok"
    assert c["proxy"].detail == "http proxy http://me:***@127.0.0.1:3128"
    assert "pw-XYZ789" not in format_report(checks)


def test_ledger_counts_jobs_and_warns_about_failures(vault: Path) -> None:
    ledger = Ledger(state_dir_for(vault) / "ledger.sqlite3")
    ledger.add("youtube:aaaaaaaaaaa", "youtube", "https://youtu.be/aaaaaaaaaaa")
    ledger.add("youtube:bbbbbbbbbbb", "youtube", None, error="malformed video id")
    ledger.close()
    c = by_name(run_checks(vault, network=False))
    assert c["ledger"].verdict == "warn"
    assert c["ledger"].detail == "2 job(s): 1 ready, 1 failed; 1 failed"
    assert "vaultd retry" in c["ledger"].fix


def test_broken_ledger_fails(vault: Path) -> None:
    state = state_dir_for(vault)
    state.mkdir(parents=True)
    (state / "ledger.sqlite3").write_bytes(b"not a database at all" * 100)
    c = by_name(run_checks(vault, network=False))
    assert c["ledger"].verdict == "fail" and "move" in c["ledger"].fix


def test_running_daemon_is_read_from_its_heartbeat(vault: Path) -> None:
    state = state_dir_for(vault)
    state.mkdir(parents=True)
    status = {"pid": os.getpid(), "started_at": time.time() - 600, "heartbeat": time.time(),
              "backend": "offline", "workers": 2, "working_on": [], "paused": None}
    (state / "daemon.json").write_text(json.dumps(status), encoding="utf-8")
    c = by_name(run_checks(vault, network=False))
    assert c["daemon"].verdict == "ok"
    assert c["daemon"].detail.startswith(f"running: pid {os.getpid()}, offline backend")

    status["heartbeat"] = time.time() - 300
    (state / "daemon.json").write_text(json.dumps(status), encoding="utf-8")
    c = by_name(run_checks(vault, network=False))
    assert c["daemon"].verdict == "warn" and "stuck" in c["daemon"].detail


def test_an_unexpected_error_becomes_a_fail_not_a_crash(vault: Path) -> None:
    state = state_dir_for(vault)
    state.mkdir(parents=True)
    status = {"pid": os.getpid(), "heartbeat": "not a number"}
    (state / "daemon.json").write_text(json.dumps(status), encoding="utf-8")
    checks = run_checks(vault, network=False)
    c = by_name(checks)
    assert c["daemon"].verdict == "fail" and "ValueError" in c["daemon"].detail
    assert len(checks) == 16 and c["service"].verdict != "fail"


def test_inbox_problems(vault: Path) -> None:
    (vault / "inbox.md").write_bytes(b"\x00\x01\x02binary")
    c = by_name(run_checks(vault, network=False))
    assert c["inbox"].verdict == "fail" and "binary" in c["inbox"].detail

    with open(vault / "inbox.md", "wb") as fh:  # sparse, over what the daemon reads
        fh.write(b"# Inbox\n")
        fh.truncate(212_000_000)
    c = by_name(run_checks(vault, network=False))
    assert c["inbox"].verdict == "fail", c["inbox"]
    assert c["inbox"].detail == ("inbox.md is 212 MB; vaultd reads inboxes up to 20 MB: "
                                 "move old lines to another note")

    (vault / "inbox.md").unlink()
    c = by_name(run_checks(vault, network=False))
    assert c["inbox"].verdict == "warn" and "created on the first run" in c["inbox"].detail


def test_state_dir_inside_the_vault_fails(vault: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULTD_STATE_DIR", str(vault / ".state"))
    c = by_name(run_checks(vault, network=False))
    assert c["state"].verdict == "fail" and "inside the vault" in c["state"].detail
    assert "VAULTD_STATE_DIR" in c["state"].fix
    assert c["ledger"].verdict == "skip" and c["daemon"].verdict == "skip"


def test_fonts_missing_warns(vault: Path, env: Path) -> None:
    empty = env / "no-fonts"
    empty.mkdir()
    c = by_name(run_checks(vault, network=False, font_dirs=[empty]))
    assert c["fonts"].verdict == "warn" and "DejaVu" in c["fonts"].detail
    assert "fonts-dejavu" in c["fonts"].fix

    write_config(vault, "[pdf]\nenabled = false\n")
    c = by_name(run_checks(vault, network=False, font_dirs=[empty]))
    assert c["fonts"].verdict == "skip"


def test_service_not_installed_says_how(vault: Path) -> None:
    c = by_name(run_checks(vault, network=False))
    assert c["service"].verdict == "warn"
    assert c["service"].fix.endswith(f"vaultd service install --vault {vault}")
