"""``vaultd service install|uninstall|status``: run vaultd as a per-user login service.

This module owns the service files and their life cycle: it renders a systemd user unit
(Linux) or a launchd agent plist (macOS) for *this* machine -- absolute interpreter and
vault paths, never a PATH lookup -- writes it into the user's service folder, and drives
``systemctl --user`` / ``launchctl`` when they exist. Every command is reported exactly as
run (or, with ``dry_run``, as it would be run), so the person can repeat or undo by hand.

One service per vault: the name is derived from the resolved vault path
(``vaultd-<folder slug>-<8 hex of sha256>``), so it is stable across runs, safe in unit
names and labels, and two vaults never collide. The reference copies in ``systemd/`` are
renderings for an example vault (``write_examples``); the tests keep them in sync.

Rendering is pure (``render_systemd_unit``, ``render_launchd_plist``); ``install``,
``uninstall`` and ``service_status`` do the file and command side effects and return
reports the CLI prints (``InstallReport.format()``, ``ServiceStatus.summary()``).
"""

from __future__ import annotations

import hashlib
import os
import plistlib
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from daemon.errors import VaultdError, VaultMissingError

__all__ = [
    "ServiceInstallError",
    "WATCHDOG_SEC",
    "STOP_TIMEOUT_SEC",
    "default_exe",
    "unit_instance",
    "unit_name",
    "launchd_label",
    "render_systemd_unit",
    "render_launchd_plist",
    "write_examples",
    "CommandResult",
    "InstallReport",
    "ServiceStatus",
    "install",
    "uninstall",
    "service_status",
]

WATCHDOG_SEC = 120  # the main loop must ping at least every WATCHDOG_SEC / 2
STOP_TIMEOUT_SEC = 180  # drain deadline must be shorter (SIGKILL follows at this point)
START_TIMEOUT_SEC = 300  # ledger recovery on a large ledger; READY=1 ends it
RESTART_SEC = 10
START_LIMIT_INTERVAL_SEC = 600
START_LIMIT_BURST = 5
THROTTLE_INTERVAL = 30  # launchd: least seconds between restarts
LABEL_PREFIX = "com.vaultd.agent."

EXAMPLE_VAULT = Path("/home/you/Obsidian/Notes")
EXAMPLE_EXE = ["/home/you/.local/bin/vaultd"]
EXAMPLE_HOME = Path("/Users/you")


class ServiceInstallError(VaultdError):
    """The service cannot be rendered or installed here (platform, odd vault path)."""


def default_exe() -> list[str]:
    """The command that starts vaultd here: this interpreter, absolute, not resolved.

    Not resolved because a virtualenv's ``python`` is a symlink whose target would lose
    the venv. ``-P`` keeps the working directory off ``sys.path``, so a ``daemon/``
    folder in the home or vault can never shadow the package.
    """
    return [str(Path(sys.executable).absolute()), "-P", "-m", "daemon.cli"]


def unit_instance(vault: Path) -> str:
    """Stable, safe per-vault name: ``<slug of folder name>-<8 hex of the path hash>``.

    Pure: pass the resolved absolute vault path (``install`` and friends do).
    """
    path = _absolute(vault)
    slug = re.sub(r"[^a-z0-9]+", "-", path.name.lower()).strip("-")[:32].strip("-")
    digest = hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:8]
    return f"{slug or 'vault'}-{digest}"


def unit_name(vault: Path) -> str:
    return f"vaultd-{unit_instance(vault)}.service"


def launchd_label(vault: Path) -> str:
    return LABEL_PREFIX + unit_instance(vault)


def render_systemd_unit(
    vault: Path,
    *,
    exe: list[str],
    instance: str,
    sandbox: bool = True,
    credential_file: Path | None = None,
) -> str:
    """The user unit for one vault.

    ``credential_file``: pass the API key with ``LoadCredential=`` instead of the
    environment; the daemon then reads ``$CREDENTIALS_DIRECTORY/anthropic-api-key``.
    ``sandbox=False`` drops the namespace-based hardening for systems where unprivileged
    user namespaces are disabled (the unit then fails to start with status 218/226).
    """
    vault = _absolute(vault)
    _check_instance(instance)
    if not exe or not all(Path(w).is_absolute() for w in exe[:1]):
        raise ServiceInstallError("the service command must start with an absolute path")
    argv = [*exe, "run", "--vault", str(vault)]
    exec_start = " ".join(_exec_word(w) for w in argv)
    lines = [
        f"# vaultd for the vault {_spec(_check_path(vault))}",
        "# Rendered by `vaultd service install`; run it again after moving the vault or",
        "# reinstalling vaultd. The API key goes in ~/.config/vaultd/env (chmod 600):",
        "#   ANTHROPIC_API_KEY=sk-ant-...",
        "",
        "[Unit]",
        f"Description=vaultd study notes for {_spec(str(vault))}",
        f"StartLimitIntervalSec={START_LIMIT_INTERVAL_SEC}",
        f"StartLimitBurst={START_LIMIT_BURST}",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={exec_start}",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        f"RestartSec={RESTART_SEC}",
        f"WatchdogSec={WATCHDOG_SEC}",
        f"TimeoutStartSec={START_TIMEOUT_SEC}",
        "# SIGTERM to the main process only; the pool workers finish while it drains.",
        "KillMode=mixed",
        f"TimeoutStopSec={STOP_TIMEOUT_SEC}",
        "Environment=PYTHONUNBUFFERED=1",
        f"Environment=XDG_CACHE_HOME=%C/vaultd/{instance}",
        "EnvironmentFile=-%E/vaultd/env",
        f"EnvironmentFile=-%E/vaultd/{instance}.env",
    ]
    if credential_file is not None:
        lines.append(f"LoadCredential=anthropic-api-key:{_path_word(_absolute(credential_file))}")
    lines += [
        f"StateDirectory=vaultd/{instance}",
        f"CacheDirectory=vaultd/{instance}",
        "NoNewPrivileges=yes",
        "RestrictSUIDSGID=yes",
        "RestrictRealtime=yes",
        "LockPersonality=yes",
        "SystemCallArchitectures=native",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "SystemCallFilter=@system-service",
        "SystemCallErrorNumber=EPERM",
    ]
    if sandbox:
        lines += [
            "# File system: read-only except the vault, $STATE_DIRECTORY and the cache.",
            "ProtectSystem=strict",
            "ProtectHome=read-only",
            f"ReadWritePaths=-{_path_word(vault)}",
            "PrivateTmp=yes",
            "ProtectKernelTunables=yes",
            "ProtectKernelModules=yes",
            "ProtectControlGroups=yes",
            "ProtectKernelLogs=yes",
            "ProtectHostname=yes",
            "RestrictNamespaces=yes",
        ]
    lines += ["", "[Install]", "WantedBy=default.target", ""]
    return "\n".join(lines)


def render_launchd_plist(
    vault: Path, *, exe: list[str], label: str, log_dir: Path | None = None
) -> bytes:
    """The launchd agent for one vault (XML plist bytes).

    launchd has no EnvironmentFile: the API key comes from ``generate.api_key_file`` in
    the vault's config (a 0600 file), never from the plist.
    """
    vault = _absolute(vault)
    _check_instance(label.removeprefix(LABEL_PREFIX))
    if not exe or not Path(exe[0]).is_absolute():
        raise ServiceInstallError("the service command must start with an absolute path")
    logs = log_dir if log_dir is not None else _home() / "Library" / "Logs" / "vaultd"
    log_file = str(logs / f"{label.removeprefix(LABEL_PREFIX)}.log")
    plist = {
        "Label": label,
        "ProgramArguments": [*exe, "run", "--vault", str(vault)],
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": THROTTLE_INTERVAL,
        "ExitTimeOut": STOP_TIMEOUT_SEC,
        "ProcessType": "Background",
        "StandardOutPath": log_file,
        "StandardErrorPath": log_file,
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1"},
    }
    return plistlib.dumps(plist, fmt=plistlib.FMT_XML)


def write_examples(dest: Path) -> list[Path]:
    """Regenerate the reference copies in ``systemd/`` from the renderers."""
    unit = dest / "vaultd.service"
    unit.write_text(render_systemd_unit(EXAMPLE_VAULT, exe=EXAMPLE_EXE,
                                        instance=unit_instance(EXAMPLE_VAULT)),
                    encoding="utf-8")
    plist = dest / "com.vaultd.agent.plist"
    plist.write_bytes(render_launchd_plist(
        Path("/Users/you/Obsidian/Notes"), exe=["/Users/you/.local/bin/vaultd"],
        label=launchd_label(Path("/Users/you/Obsidian/Notes")),
        log_dir=EXAMPLE_HOME / "Library" / "Logs" / "vaultd"))
    return [unit, plist]


# -- quoting for unit files ----------------------------------------------------------

_PLAIN_WORD = re.compile(r"[A-Za-z0-9_@+=:,./-]+")
_UNSAFE = re.compile(r'["\\\x00-\x1f\x7f]')


def _check_path(path: Path) -> str:
    text = str(path)
    if _UNSAFE.search(text):
        raise ServiceInstallError(
            f"the path {text!r} holds a quote, backslash or control character, which a "
            "unit file cannot carry safely; move or rename the folder")
    return text


def _spec(text: str) -> str:
    """Escape systemd specifiers (``%``)."""
    return text.replace("%", "%%")


def _exec_word(word: str) -> str:
    _check_path(Path(word))
    text = _spec(word).replace("$", "$$")
    return text if _PLAIN_WORD.fullmatch(word) else f'"{text}"'


def _path_word(path: Path) -> str:
    text = _spec(_check_path(path))
    return text if _PLAIN_WORD.fullmatch(str(path)) else f'"{text}"'


def _check_instance(instance: str) -> None:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,63}", instance):
        raise ServiceInstallError(f"bad service instance name {instance!r}")


def _home() -> Path:
    home = os.environ.get("HOME")
    return Path(home) if home else Path.home()


def _absolute(path: Path) -> Path:
    if not path.is_absolute():
        raise ServiceInstallError(f"{path} is not an absolute path")
    return path


def _resolve(path: Path) -> Path:
    """Absolute with symlinks resolved, so two spellings of one vault are one service."""
    return path.expanduser().resolve()




# -- install / uninstall / status ----------------------------------------------------


@dataclass
class CommandResult:
    """One external command: run (with its exit code and output) or not, and why not."""

    argv: list[str]
    ran: bool = False
    returncode: int | None = None
    output: str = ""
    skipped: str = ""  # why it did not run ("dry run", "systemctl not found", ...)
    may_fail: bool = False  # e.g. bootout of an agent that is not loaded

    @property
    def ok(self) -> bool:
        return not self.ran or self.returncode == 0 or self.may_fail

    def describe(self) -> str:
        line = "$ " + shlex.join(self.argv)
        if not self.ran:
            return f"{line}    # not run: {self.skipped}"
        if self.returncode == 0:
            return line
        first = self.output.strip().splitlines()[:1]
        return f"{line}    # exit {self.returncode}" + (f": {first[0]}" if first else "")


@dataclass
class InstallReport:
    """What ``install``/``uninstall`` did, or with ``dry_run`` would do."""

    action: str  # "install" | "uninstall"
    manager: str  # "systemd" | "launchd"
    name: str  # unit name or launchd label
    path: Path  # the unit or plist file
    content: str  # the rendered file (install) or the file removed (uninstall)
    dry_run: bool
    changed: bool = False
    commands: list[CommandResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """False when a command that ran failed (the file step itself raises)."""
        return all(c.ok for c in self.commands)

    def format(self) -> str:
        out: list[str] = []
        if self.action == "install":
            verb = "Would write" if self.dry_run else "Wrote"
            out += [f"{verb} {self.path}:", "", self.content.rstrip("\n"), ""]
        elif self.changed or self.dry_run:
            out.append(f"{'Would remove' if self.dry_run else 'Removed'} {self.path}")
        if self.commands:
            out.append("Would run:" if self.dry_run else "Commands:")
            out += ["  " + c.describe() for c in self.commands]
        out += self.notes
        return "\n".join(out)


@dataclass
class ServiceStatus:
    """The service of one vault as the service manager sees it."""

    manager: str
    name: str
    path: Path
    installed: bool
    state: str = "unknown"  # "running", "stopped", "failed", "not loaded", "unknown"
    pid: int | None = None
    status_text: str = ""  # the daemon's last sd_notify STATUS= line (systemd)
    detail: dict[str, str] = field(default_factory=dict)
    command: CommandResult | None = None

    def summary(self) -> str:
        if not self.installed:
            return f"service not installed ({self.path} absent)"
        text = f"{self.name}: {self.state}"
        if self.pid:
            text += f" (pid {self.pid})"
        if self.status_text:
            text += f" - {self.status_text}"
        if self.state == "unknown" and self.command is not None:
            text += f"; {self.command.describe()}"
        return text

    def to_dict(self) -> dict[str, object]:
        return {"manager": self.manager, "name": self.name, "path": str(self.path),
                "installed": self.installed, "state": self.state, "pid": self.pid,
                "status_text": self.status_text, "detail": dict(self.detail)}


def install(
    vault: Path,
    *,
    dry_run: bool,
    platform: str | None = None,
    exe: list[str] | None = None,
    sandbox: bool = True,
) -> InstallReport:
    """Render, write and start the service of ``vault``. Idempotent: re-running updates
    the file and restarts the service (after an upgrade or a move of the interpreter)."""
    vault = _resolve(vault)
    if not vault.is_dir():
        raise VaultMissingError(f"vault folder {vault} does not exist")
    manager = _manager(platform)
    exe = exe or default_exe()
    if manager == "systemd":
        name, path = unit_name(vault), _systemd_dir() / unit_name(vault)
        content = render_systemd_unit(vault, exe=exe, instance=unit_instance(vault),
                                      sandbox=sandbox)
        report = InstallReport("install", manager, name, path, content, dry_run)
        env_file = _config_home() / "vaultd" / "env"
        _write(report, path, content.encode("utf-8"), 0o644)
        if not env_file.exists():
            _write(report, env_file, _ENV_TEMPLATE.encode("utf-8"), 0o600)
        elif env_file.stat().st_mode & 0o077:
            report.notes.append(f"warning: {env_file} is readable by others; "
                                f"run: chmod 600 {shlex.quote(str(env_file))}")
        _run_all(report, [_systemctl("daemon-reload"), _systemctl("enable", name),
                          _systemctl("restart", name)])
        if any("connect to bus" in c.output for c in report.commands):
            report.notes.append(
                "no user service manager is reachable from this shell; log in to a "
                "desktop session, or run `loginctl enable-linger` once and retry")
    else:
        label = launchd_label(vault)
        path = _home() / "Library" / "LaunchAgents" / f"{label}.plist"
        data = render_launchd_plist(vault, exe=exe, label=label)
        report = InstallReport("install", manager, label, path, data.decode(), dry_run)
        domain = f"gui/{os.getuid()}"
        _run_all(report, [["launchctl", "bootout", f"{domain}/{label}"]], may_fail=True)
        if not dry_run:
            (_home() / "Library" / "Logs" / "vaultd").mkdir(parents=True, exist_ok=True)
        _write(report, path, data, 0o644)
        _run_all(report, [["launchctl", "enable", f"{domain}/{label}"],
                          ["launchctl", "bootstrap", domain, str(path)]])
        report.notes.append(f"logs: {_home() / 'Library' / 'Logs' / 'vaultd'}")
    return report


def uninstall(vault: Path, *, dry_run: bool, platform: str | None = None) -> InstallReport:
    """Stop and disable the service of ``vault`` and remove its file (the vault, the
    state dir and ~/.config/vaultd/env are left alone)."""
    vault = _resolve(vault)
    manager = _manager(platform)
    if manager == "systemd":
        name, path = unit_name(vault), _systemd_dir() / unit_name(vault)
        before = [_systemctl("disable", "--now", name)]
        after = [_systemctl("daemon-reload")]
    else:
        name = launchd_label(vault)
        path = _home() / "Library" / "LaunchAgents" / f"{name}.plist"
        before = [["launchctl", "bootout", f"gui/{os.getuid()}/{name}"]]
        after = []
    content = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    report = InstallReport("uninstall", manager, name, path, content, dry_run)
    if not path.exists():
        report.notes.append(f"not installed: {path} does not exist")
        return report
    _run_all(report, before, may_fail=manager == "launchd")
    if not dry_run:
        path.unlink()
        report.changed = True
    _run_all(report, after)
    return report


def service_status(vault: Path, *, platform: str | None = None) -> ServiceStatus:
    """Ask the service manager about the vault's service; never raises for a missing
    tool or bus (``state`` is then "unknown" and ``command`` says why)."""
    vault = _resolve(vault)
    manager = _manager(platform)
    if manager == "systemd":
        name, path = unit_name(vault), _systemd_dir() / unit_name(vault)
        argv = _systemctl("show", name, "--property=LoadState,ActiveState,SubState,"
                          "UnitFileState,MainPID,StatusText,NRestarts,Result")
    else:
        name = launchd_label(vault)
        path = _home() / "Library" / "LaunchAgents" / f"{name}.plist"
        argv = ["launchctl", "print", f"gui/{os.getuid()}/{name}"]
    status = ServiceStatus(manager, name, path, installed=path.exists())
    if not status.installed:
        status.state = "not installed"
        return status
    result = _run(argv, dry_run=False)
    status.command = result
    if not result.ran or (result.returncode != 0 and manager == "systemd"):
        return status
    if manager == "systemd":
        info = dict(line.split("=", 1) for line in result.output.splitlines() if "=" in line)
        status.detail = info
        status.pid = int(info.get("MainPID", "0") or 0) or None
        status.status_text = info.get("StatusText", "")
        active = info.get("ActiveState", "")
        status.state = {"active": "running", "activating": "starting",
                        "deactivating": "stopping", "inactive": "stopped",
                        "failed": "failed"}.get(active, active or "unknown")
    elif result.returncode != 0:
        status.state = "not loaded"
    else:
        info = dict(m.groups() for m in re.finditer(r"^\s*([a-z][a-z ]*?) = (.*)$",
                                                    result.output, re.MULTILINE))
        status.detail = info
        status.pid = int(info["pid"]) if info.get("pid", "").isdigit() else None
        status.state = "running" if info.get("state") == "running" else "stopped"
    return status


_ENV_TEMPLATE = """\
# Environment for vaultd user services (systemd EnvironmentFile). Keep this file mode 0600.
# Uncomment and set your key to use Claude; without it vaultd uses its offline generator.
#ANTHROPIC_API_KEY=sk-ant-...
#HTTPS_PROXY=http://proxy.example:3128
"""


def _manager(platform: str | None) -> str:
    plat = platform or sys.platform
    if plat.startswith("linux") or plat == "systemd":
        return "systemd"
    if plat == "darwin" or plat == "launchd":
        return "launchd"
    raise ServiceInstallError(f"no service support on {plat!r} (systemd or launchd only); "
                              "run `vaultd run --vault PATH` from your own supervisor")


def _config_home() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    return Path(xdg) if xdg and Path(xdg).is_absolute() else _home() / ".config"


def _systemd_dir() -> Path:
    return _config_home() / "systemd" / "user"


def _systemctl(*args: str) -> list[str]:
    return ["systemctl", "--user", *args]


def _write(report: InstallReport, path: Path, data: bytes, mode: int) -> None:
    if report.dry_run:
        if path != report.path:
            report.notes.append(f"would create {path} (mode {mode:o})")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    if path == report.path:
        report.changed = True
    else:
        report.notes.append(f"created {path} (mode {mode:o})")


def _run_all(report: InstallReport, commands: list[list[str]], *,
             may_fail: bool = False) -> None:
    for argv in commands:
        blocked = next((c for c in report.commands if not c.ok), None)
        if blocked is not None:
            result = CommandResult(argv, skipped="an earlier command failed")
        else:
            result = _run(argv, dry_run=report.dry_run)
        result.may_fail = may_fail
        report.commands.append(result)


def _run(argv: list[str], *, dry_run: bool) -> CommandResult:
    if dry_run:
        return CommandResult(argv, skipped="dry run")
    tool = shutil.which(argv[0])
    if tool is None:
        return CommandResult(argv, skipped=f"{argv[0]} not found on PATH")
    try:
        proc = subprocess.run([tool, *argv[1:]], capture_output=True, text=True,
                              timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return CommandResult(argv, ran=True, returncode=-1, output=str(exc))
    return CommandResult(argv, ran=True, returncode=proc.returncode,
                         output=(proc.stdout + proc.stderr).strip())


if __name__ == "__main__":  # python -m daemon.service_install systemd/
    for written in write_examples(Path(sys.argv[1] if len(sys.argv) > 1 else "systemd")):
        print(written)
