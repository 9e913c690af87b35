"""``vaultd doctor``: read-only health checks of one vault's setup, each with a verdict.

This module owns the checks and their wording: vault folder, config, inbox, state dir,
ledger, running daemon, backend, API key (presence and file permissions, never its
value), proxy and Tor control port, network reach of YouTube and the Anthropic API,
fonts for PDFs and the service install. Every check returns a :class:`Check` with a
plain verdict ("ok", "warn", "fail", "skip"), what was found and a concrete fix. A
check never raises: an unexpected exception becomes a "fail" naming it.

Doctor changes nothing: the config file is not written on first use, the ledger is
only opened when it exists, and the YouTube probe bypasses the pacing gate (one HEAD
request, no pacing files written) but uses the configured proxy. Any secret seen while
checking (API key, proxy password) is scrubbed from the report as a last line of defence.
"""

from __future__ import annotations

import os
import shlex
import stat
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import requests

from daemon.config import CONFIG_RELPATH, Config, load_config
from daemon.errors import ConfigError
from daemon.ledger import STATES, Ledger
from daemon.paths import VaultPaths, state_dir_for
from daemon.runner import read_status_file, resolve_backend

Verdict = Literal["ok", "warn", "fail", "skip"]
YOUTUBE_URL = "https://www.youtube.com"
ANTHROPIC_URL = "https://api.anthropic.com"
INBOX_WARN_BYTES = 5 * 1024 * 1024
HEARTBEAT_STALE_SECONDS = 30.0
CJK_LANGS = ("zh", "ja", "ko")


@dataclass
class Check:
    """One verdict; ``dataclasses.asdict`` gives its JSON form."""

    name: str
    verdict: Verdict
    detail: str
    fix: str = ""


@dataclass
class _Ctx:
    vault: Path
    network: bool
    timeout: float
    youtube_url: str
    anthropic_url: str
    font_dirs: Sequence[Path] | None
    vault_ok: bool = False
    config: Config | None = None
    paths: VaultPaths | None = None
    key_problem: str = ""
    secrets: set[str] = field(default_factory=set)


# --------------------------------------------------------------------------- checks


def _check_vault(c: _Ctx) -> Check:
    v = c.vault
    if not v.exists():
        return Check("vault", "fail", f"{v} does not exist",
                     f"pass the right --vault, or create it: mkdir -p {shlex.quote(str(v))}")
    if not v.is_dir():
        return Check("vault", "fail", f"{v} is not a folder", "pass the vault folder to --vault")
    problem = _probe_write(v)
    if problem:
        return Check("vault", "fail", f"{v} is not writable: {problem}",
                     f"give your user write access: chmod u+rwx {shlex.quote(str(v))}")
    c.vault_ok = True
    return Check("vault", "ok", f"{v} is a writable folder")


def _check_config(c: _Ctx) -> Check:
    path = c.vault / CONFIG_RELPATH
    if not c.vault_ok:
        return Check("config", "skip", "vault folder unusable (see vault)")
    try:
        c.config = load_config(c.vault, create=False)
    except ConfigError as exc:
        return Check("config", "fail", str(exc),
                     f"edit {path} and fix {exc.setting}, or move the file aside to get "
                     "commented defaults back on the next run")
    if not path.exists():
        return Check("config", "ok", f"no {CONFIG_RELPATH} yet: defaults apply "
                     "(a commented file is written on the first run)")
    return Check("config", "ok", f"{path} is valid")


def _check_inbox(c: _Ctx) -> Check:
    if not c.vault_ok:
        return Check("inbox", "skip", "vault folder unusable (see vault)")
    inbox = c.vault / (c.config or Config.defaults()).get("vault", "inbox")
    if not inbox.exists():
        v = shlex.quote(str(c.vault))
        return Check("inbox", "warn", f"{inbox} does not exist yet; it is created on the "
                     "first run", f"paste a URL: vaultd add --vault {v} URL")
    if not inbox.is_file():
        return Check("inbox", "fail", f"{inbox} is not a file",
                     "rename that folder, or set vault.inbox to a .md file")
    size = inbox.stat().st_size
    try:
        with inbox.open("rb") as fh:
            data = fh.read(INBOX_WARN_BYTES + 1)
    except OSError as exc:
        return Check("inbox", "fail", f"cannot read {inbox}: {exc.strerror}",
                     f"chmod u+rw {shlex.quote(str(inbox))}")
    if b"\0" in data[:65536]:
        return Check("inbox", "fail", f"{inbox} looks binary (contains NUL bytes)",
                     "set vault.inbox to a Markdown note, or restore the file from a backup")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if len(data) <= INBOX_WARN_BYTES or exc.start < len(data) - 4:
            return Check("inbox", "fail", f"{inbox} is not UTF-8 text (byte {exc.start})",
                         "re-save the note as UTF-8")
        text = data[: exc.start].decode("utf-8")
    if size > INBOX_WARN_BYTES:
        return Check("inbox", "warn", f"{inbox} is {size / 1e6:.1f} MB; every change "
                     "re-reads all of it", "move finished lines into another note")
    return Check("inbox", "ok", f"{inbox} is readable text ({len(text.splitlines())} lines)")


def _check_state(c: _Ctx) -> Check:
    origin = next((var for var in ("VAULTD_STATE_DIR", "STATE_DIRECTORY")
                   if os.environ.get(var)), "platform default")
    try:
        state = state_dir_for(c.vault)
    except ConfigError as exc:
        return Check("state", "fail", str(exc).removeprefix("config: "),
                     "export VAULTD_STATE_DIR=/a/folder/outside/the/vault")
    cfg = c.config or Config.defaults()
    c.paths = VaultPaths.from_config(c.vault, cfg)
    if state.exists():
        problem = _probe_write(state) if state.is_dir() else "not a folder"
        if problem:
            return Check("state", "fail", f"{state} ({origin}) is not writable: {problem}",
                         f"chmod u+rwx {shlex.quote(str(state))}, or set VAULTD_STATE_DIR")
        return Check("state", "ok", f"{state} ({origin}), outside the vault, writable")
    parent = next(p for p in state.parents if p.exists())
    if not os.access(parent, os.W_OK | os.X_OK):
        return Check("state", "fail", f"{state} ({origin}) cannot be created: {parent} is "
                     "not writable", "export VAULTD_STATE_DIR=/a/writable/folder")
    return Check("state", "ok", f"{state} ({origin}), outside the vault; created on first run")


def _check_ledger(c: _Ctx) -> Check:
    if c.paths is None:
        return Check("ledger", "skip", "no state folder (see state)")
    path = c.paths.ledger
    if not path.exists():
        return Check("ledger", "ok", f"no ledger yet at {path} (created on the first run)")
    try:
        ledger = Ledger(path)
        try:
            counts = ledger.counts()
        finally:
            ledger.close()
    except Exception as exc:  # noqa: BLE001 - sqlite3 errors of any kind mean "broken"
        return Check("ledger", "fail", f"{path} cannot be opened: {exc}",
                     f"stop vaultd and move {shlex.quote(str(path))} aside (keep it for a "
                     "bug report); the next run starts a new ledger from the inbox")
    total = sum(counts[s] for s in STATES)
    parts = ", ".join(f"{counts[s]} {s}" for s in STATES if counts[s])
    detail = f"{total} job(s)" + (f": {parts}" if parts else "")
    if counts["waiting"]:
        detail += f" ({counts['waiting']} waiting to retry)"
    if counts["failed"]:
        v = shlex.quote(str(c.vault))
        return Check("ledger", "warn", f"{detail}; {counts['failed']} failed",
                     f"reasons: vaultd status --vault {v}; re-queue: vaultd retry --vault {v}")
    return Check("ledger", "ok", detail)


def _check_daemon(c: _Ctx) -> Check:
    if c.paths is None:
        return Check("daemon", "skip", "no state folder (see state)")
    v = shlex.quote(str(c.vault))
    start = f"vaultd run --vault {v}, or as a service: vaultd service install --vault {v}"
    data = read_status_file(c.paths)
    if data is None:
        return Check("daemon", "warn", "not running for this vault", f"start it: {start}")
    age = time.time() - float(data.get("heartbeat", 0))
    up = time.time() - float(data.get("started_at", time.time()))
    detail = (f"running: pid {data.get('pid')}, {data.get('backend')} backend, "
              f"{data.get('workers')} worker(s), up {_duration(up)}, "
              f"{len(data.get('working_on') or [])} job(s) in progress")
    if age > HEARTBEAT_STALE_SECONDS:
        return Check("daemon", "warn", f"{detail}, but its last heartbeat is {_duration(age)} "
                     "old: it may be stuck", f"look at its log, then restart it ({start})")
    if data.get("paused"):
        return Check("daemon", "warn", f"{detail}; paused: {data['paused']}",
                     "it resumes by itself once the cause is gone")
    return Check("daemon", "ok", detail)


def _check_backend(c: _Ctx) -> Check:
    if c.config is None:
        return Check("backend", "skip", "config did not load (see config)")
    try:
        name, why = resolve_backend(c.config)
    except ConfigError as exc:
        if exc.setting == "generate.api_key_file":  # the daemon refuses to start
            return Check("backend", "fail", str(exc), "fix the api-key problem below")
        return Check("backend", "fail", str(exc), "export ANTHROPIC_API_KEY=... or set "
                     'generate.api_key_file, or set generate.backend = "auto"')
    if name == "claude" and c.key_problem:
        return Check("backend", "warn", f"claude ({why}), but the key cannot be used: see "
                     "api-key", "fix the api-key problem below")
    return Check("backend", "ok", f"{name} ({why})")


def _check_api_key(c: _Ctx) -> Check:
    if c.config is None:
        return Check("api-key", "skip", "config did not load (see config)")
    found: list[str] = []
    if os.environ.get("ANTHROPIC_API_KEY", "").strip():
        found.append("ANTHROPIC_API_KEY is set")
    key_file = str(c.config.get("generate", "api_key_file") or "").strip()
    env_file = _config_home() / "vaultd" / "env"
    files = [(Path(key_file).expanduser(), "generate.api_key_file")] if key_file else []
    if env_file.is_file():
        files.append((env_file, "the service environment file"))
    for path, label in files:
        try:
            st = path.stat()
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            c.key_problem = f"{label} {path}: {exc.strerror}"
            q = shlex.quote(str(path))
            fix = (f"chown $USER {q} && chmod 600 {q}" if path == env_file else
                   f"put the key alone in {q}, then chmod 600 {q}; or clear {label}")
            return Check("api-key", "fail", f"cannot read {label} {path}: {exc.strerror}", fix)
        keys = _keys_in(text, env=path == env_file)
        c.secrets.update(keys)
        if path == env_file and not keys:
            continue  # the commented template: nothing secret in it
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            c.key_problem = f"{path} is readable by others"
            return Check("api-key", "fail", f"{label} {path} has mode "
                         f"{stat.S_IMODE(st.st_mode):04o}: others can read the key",
                         f"chmod 600 {shlex.quote(str(path))}")
        if not keys:
            c.key_problem = f"{path} is empty"
            return Check("api-key", "fail", f"{label} {path} is empty",
                         "put the key (one line) in it, or clear the setting")
        found.append(f"{label} {path} holds a key (mode {stat.S_IMODE(st.st_mode):04o})")
    if found:
        return Check("api-key", "ok", "; ".join(found) + " (value not shown)")
    if c.config.get("generate", "backend") == "offline":
        return Check("api-key", "ok", "none, and none needed (generate.backend = offline)")
    return Check("api-key", "warn", "no API key: notes come from the offline generator",
                 "export ANTHROPIC_API_KEY=... (for the service: in ~/.config/vaultd/env, "
                 "mode 0600), or set generate.api_key_file")


def _check_proxy(c: _Ctx) -> Check:
    from daemon.sources.http import proxy_config_from, redact

    if c.config is None:
        return Check("proxy", "skip", "config did not load (see config)")
    yt = c.config.section("youtube")
    for secret in (yt["webshare_password"], yt["tor_control_password"],
                   urlsplit(yt["proxy"]).password or ""):
        if secret:
            c.secrets.add(secret)
    try:
        proxy = proxy_config_from(c.config.to_dict())
    except ConfigError as exc:
        fix = ("pip install 'vaultd[socks]', or use an http:// proxy" if "PySocks" in str(exc)
               else f"fix {exc.setting} in {c.vault / CONFIG_RELPATH}")
        return Check("proxy", "fail", str(exc), fix)
    if proxy is None:
        env = next((os.environ[k] for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY",
                                            "all_proxy") if os.environ.get(k)), "")
        if env:
            return Check("proxy", "ok", f"none configured; YouTube requests use the "
                         f"environment proxy {redact(env)}")
        return Check("proxy", "ok", "none: YouTube is reached directly")
    if yt["webshare_username"]:
        return Check("proxy", "ok", f"Webshare rotating proxies (user {yt['webshare_username']})")
    return Check("proxy", "ok", f"{urlsplit(yt['proxy']).scheme} proxy {redact(yt['proxy'])}")


def _check_tor(c: _Ctx) -> Check:
    from daemon.sources.http import TorControlError, tor_version

    if c.config is None:
        return Check("tor", "skip", "config did not load (see config)")
    yt = c.config.section("youtube")
    port = yt["tor_control_port"]
    if not port:
        return Check("tor", "skip", "off (youtube.tor_control_port = 0)")
    try:
        version = tor_version(port, yt["tor_control_password"], timeout=c.timeout)
    except TorControlError as exc:
        if " 515 " in f" {exc} " or "Authentication" in str(exc):
            fix = "set youtube.tor_control_password to Tor's control password"
        else:
            fix = (f"start Tor with 'ControlPort {port}' in torrc, or set "
                   "youtube.tor_control_port = 0")
        return Check("tor", "fail", str(exc), fix)
    detail = f"Tor {version} answers on control port 127.0.0.1:{port}"
    if not urlsplit(yt["proxy"]).scheme.startswith("socks"):
        return Check("tor", "warn", f"{detail}, but youtube.proxy is not a SOCKS proxy, so "
                     "new circuits change nothing", 'set youtube.proxy = "socks5h://127.0.0.1:9050"')
    return Check("tor", "ok", detail)


def _check_youtube(c: _Ctx) -> Check:
    from daemon.sources.http import build_session

    if not c.network:
        return Check("youtube", "skip", "network checks off (--no-network)")
    if c.config is None or c.paths is None:
        return Check("youtube", "skip", "config or state folder unusable (see above)")
    try:
        session = build_session(c.config.to_dict(), c.paths.state)
    except ConfigError:
        return Check("youtube", "skip", "the proxy setting is invalid (see proxy)")
    session.gate = None  # one probe: no pacing files, no budget spent
    via = "via proxy" if session.proxies else "direct or via the environment proxy"
    url = c.youtube_url
    try:
        started = time.monotonic()
        resp = session.head(url, timeout=c.timeout, allow_redirects=False)
        took = time.monotonic() - started
    except requests.RequestException as exc:
        return Check("youtube", "fail", f"{url} unreachable ({via}): {_net_reason(exc, c)}",
                     "check the connection and youtube.proxy / HTTPS_PROXY")
    finally:
        session.close()
    location = resp.headers.get("Location", "")
    if resp.status_code == 429 or "/sorry/" in location:
        return Check("youtube", "warn", f"{url} answered {resp.status_code} ({via}): YouTube is "
                     "rate-limiting this IP", "wait an hour, or set youtube.proxy "
                     "(or Webshare) and keep youtube.request_budget_per_hour low")
    return Check("youtube", "ok", f"{url} answered HTTP {resp.status_code} in {took:.1f} s "
                 f"({via})")


def _check_anthropic(c: _Ctx) -> Check:
    if not c.network:
        return Check("anthropic", "skip", "network checks off (--no-network)")
    url = c.anthropic_url
    try:
        with requests.Session() as session:  # trust_env: HTTPS_PROXY applies, as in the SDK
            started = time.monotonic()
            resp = session.get(url, timeout=c.timeout, allow_redirects=False)
            took = time.monotonic() - started
    except requests.RequestException as exc:
        needed = c.config is not None and _backend_name(c.config) == "claude"
        return Check("anthropic", "fail" if needed else "warn",
                     f"{url} unreachable: {_net_reason(exc, c)}"
                     + ("" if needed else " (not needed by the offline backend)"),
                     "check the connection, HTTPS_PROXY and ANTHROPIC_BASE_URL")
    return Check("anthropic", "ok", f"{url} answered HTTP {resp.status_code} in {took:.1f} s")


def _check_fonts(c: _Ctx) -> Check:
    from vault_tools.pdf.fonts import load_fonts

    cfg = c.config or Config.defaults()
    if not cfg.get("pdf", "enabled"):
        return Check("fonts", "skip", "PDF export is off (pdf.enabled = false)")
    fonts = load_fonts(c.font_dirs)
    if not fonts.truetype:
        return Check("fonts", "warn", "DejaVu fonts not found: PDFs use built-in fonts that "
                     "only cover Western European text", "install fonts-dejavu-core (apt), "
                     "dejavu-fonts (dnf/brew), or pip install matplotlib")
    langs = [cfg.get("generate", "language"), *cfg.get("youtube", "languages")]
    wants_cjk = any(str(lang).lower().startswith(CJK_LANGS) for lang in langs)
    if fonts.cjk is None:
        detail = "DejaVu found; no CJK font (Chinese/Japanese/Korean text shows as gaps)"
        fix = "install fonts-wqy-microhei or fonts-droid-fallback (apt)"
        return Check("fonts", "warn" if wants_cjk else "ok", detail, fix)
    return Check("fonts", "ok", f"DejaVu found; CJK font {fonts.cjk.removeprefix('vd-cjk-')}")


def _check_service(c: _Ctx) -> Check:
    from daemon.service_install import ServiceInstallError, service_status

    try:
        st = service_status(c.vault)
    except ServiceInstallError as exc:
        return Check("service", "skip", str(exc))
    v = shlex.quote(str(c.vault))
    if not st.installed:
        return Check("service", "warn", st.summary(),
                     f"to start with your session: vaultd service install --vault {v}")
    if st.manager == "systemd":
        logs, restart = (f"journalctl --user -u {st.name} -n 50",
                         f"systemctl --user restart {st.name}")
    else:
        logs, restart = ("~/Library/Logs/vaultd/", f"launchctl kickstart -k gui/"
                         f"{os.getuid()}/{st.name}")
    if st.state == "running":
        return Check("service", "ok", st.summary())
    if st.state == "failed":
        return Check("service", "fail", st.summary(), f"read {logs}, then: {restart}")
    return Check("service", "warn", st.summary(), f"start it: {restart} (logs: {logs})")


# --------------------------------------------------------------------------- helpers


def _probe_write(folder: Path) -> str:
    """'' when a file can be created in ``folder``, else the reason."""
    try:
        fd, name = tempfile.mkstemp(prefix=".vaultd-doctor-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""


def _keys_in(text: str, *, env: bool) -> list[str]:
    if not env:
        return [text.strip()] if text.strip() else []
    keys = []
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name.strip().removeprefix("export ").strip() == "ANTHROPIC_API_KEY":
            if value.strip().strip("'\""):
                keys.append(value.strip().strip("'\""))
    return keys


def _config_home() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    return Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"


def _backend_name(config: Config) -> str:
    try:
        return resolve_backend(config)[0]
    except ConfigError:
        return "claude"


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _net_reason(exc: BaseException, c: _Ctx) -> str:
    """A plain reason for a failed request: refused, DNS, timeout, TLS, proxy."""
    if isinstance(exc, requests.exceptions.ProxyError):
        return f"the proxy failed ({_root(exc)})"
    if isinstance(exc, requests.exceptions.SSLError):
        return "the TLS certificate check failed (REQUESTS_CA_BUNDLE for a custom CA)"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"no answer within {c.timeout:g} s"
    return _root(exc)


def _root(exc: BaseException) -> str:
    import socket

    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ConnectionRefusedError):
            return "connection refused (nothing listens there)"
        if isinstance(e, socket.gaierror):
            return "the host name does not resolve (DNS)"
        if isinstance(e, TimeoutError):
            return "timed out"
        stack += [x for x in (e.__cause__, e.__context__, getattr(e, "reason", None),
                              *e.args) if isinstance(x, BaseException)]
    return f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- API

_CHECKS: list[tuple[str, Callable[[_Ctx], Check]]] = [
    ("vault", _check_vault), ("config", _check_config), ("state", _check_state),
    ("inbox", _check_inbox), ("ledger", _check_ledger), ("daemon", _check_daemon),
    ("api-key", _check_api_key), ("backend", _check_backend), ("proxy", _check_proxy),
    ("tor", _check_tor), ("youtube", _check_youtube), ("anthropic", _check_anthropic),
    ("fonts", _check_fonts), ("service", _check_service),
]
_ORDER = ["vault", "config", "inbox", "state", "ledger", "daemon", "backend", "api-key",
          "proxy", "tor", "youtube", "anthropic", "fonts", "service"]


def run_checks(
    vault: Path,
    *,
    network: bool = True,
    timeout: float = 5.0,
    youtube_url: str = YOUTUBE_URL,
    anthropic_url: str | None = None,
    font_dirs: Sequence[Path] | None = None,
) -> list[Check]:
    """Every check for ``vault``, in report order. Never raises.

    ``anthropic_url`` defaults to ``$ANTHROPIC_BASE_URL``, else the public API;
    ``youtube_url`` and ``font_dirs`` exist so tests can point at stand-ins.
    """
    ctx = _Ctx(
        vault=Path(os.path.abspath(Path(vault).expanduser())), network=network,
        timeout=timeout, youtube_url=youtube_url, font_dirs=font_dirs,
        anthropic_url=anthropic_url or os.environ.get("ANTHROPIC_BASE_URL") or ANTHROPIC_URL)
    if os.environ.get("ANTHROPIC_API_KEY", "").strip():
        ctx.secrets.add(os.environ["ANTHROPIC_API_KEY"].strip())
    results: dict[str, Check] = {}
    for name, check in _CHECKS:  # run order: later checks use what earlier ones found
        try:
            results[name] = check(ctx)
        except Exception as exc:  # noqa: BLE001 - a doctor must report, not crash
            results[name] = Check(name, "fail", f"the check itself failed: "
                                  f"{type(exc).__name__}: {exc}",
                                  "report this as a vaultd bug, with this line")
    secrets = sorted((s for s in ctx.secrets if len(s) >= 4), key=len, reverse=True)
    return [_scrub(results[name], secrets) for name in _ORDER]


def _scrub(check: Check, secrets: list[str]) -> Check:
    detail, fix = check.detail, check.fix
    for secret in secrets:
        detail, fix = detail.replace(secret, "***"), fix.replace(secret, "***")
    return replace(check, detail=detail, fix=fix)


def format_report(checks: Sequence[Check]) -> str:
    """One line per check (verdict, name, detail), a ``fix:`` line under warn/fail."""
    lines = []
    for check in checks:
        lines.append(f"{check.verdict:<6}{check.name:<13}{check.detail}")
        if check.verdict in ("warn", "fail") and check.fix:
            lines.append(f"{'':<19}fix: {check.fix}")
    return "\n".join(lines) + "\n"


def exit_code(checks: Sequence[Check]) -> int:
    """0 when nothing failed, else 1."""
    return 1 if any(c.verdict == "fail" for c in checks) else 0
