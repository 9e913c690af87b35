"""Doctor checks of what vaultd runs with here: the daemon and its service, the backend,
the API key and the PDF fonts.

The api-key check is the one that reads secrets: it looks at ``ANTHROPIC_API_KEY``,
``generate.api_key_file`` and the service environment file (``~/.config/vaultd/env``),
reports presence and file mode, never the value, and adds every key it reads to
``Context.secrets`` so the runner can scrub them. It runs before the backend check,
which turns a key that exists but cannot be used (``Context.key_problem``) into a warning.

The daemon check reads only the heartbeat file (whose pid must still be alive) and the
service check only asks the service manager (``service_status``); neither starts or
stops anything.
"""

from __future__ import annotations

import os
import shlex
import stat
import time
from pathlib import Path

from daemon.cli.doctor.model import Check, Context
from daemon.config import Config
from daemon.errors import ConfigError
from daemon.service.daemon import read_status_file, resolve_backend

HEARTBEAT_STALE_SECONDS = 30.0
CJK_LANGS = ("zh", "ja", "ko")


def check_daemon(c: Context) -> Check:
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


def check_backend(c: Context) -> Check:
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


def check_api_key(c: Context) -> Check:
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
    backend = c.config.get("generate", "backend")
    if backend == "offline":
        return Check("api-key", "ok", "none, and none needed (generate.backend = offline)")
    if backend == "openai":  # its own key (optional) is the openai check's business
        return Check("api-key", "ok", "no Anthropic key, and none needed (generate.backend "
                     "= openai; see the openai check)")
    return Check("api-key", "warn", "no API key: notes come from the offline generator",
                 "export ANTHROPIC_API_KEY=... (for the service: in ~/.config/vaultd/env, "
                 "mode 0600), or set generate.api_key_file")


def check_fonts(c: Context) -> Check:
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


def check_service(c: Context) -> Check:
    from daemon.service.install import ServiceInstallError, service_status

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


def _keys_in(text: str, *, env: bool) -> list[str]:
    if not env:
        return [text.strip()] if text.strip() else []
    keys: list[str] = []
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name.strip().removeprefix("export ").strip() == "ANTHROPIC_API_KEY":
            if value.strip().strip("'\""):
                keys.append(value.strip().strip("'\""))
    return keys


def _config_home() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    return Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
