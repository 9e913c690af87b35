"""Installing, removing and querying the service of one vault: the side-effect half.

``install``, ``uninstall`` and ``service_status`` pick the service manager for the
platform (systemd on Linux, launchd on macOS, :class:`ServiceInstallError` elsewhere),
write or remove the rendered file and drive ``systemctl --user`` / ``launchctl``.
Each returns a report (see ``reports``) rather than printing.

The contract the CLI relies on:

* The vault path is resolved (symlinks too) first, so two spellings of one vault are
  one service. ``install`` is idempotent: re-running rewrites the file and restarts.
* ``dry_run`` changes nothing and runs nothing, but reports every file and command.
* Files are written atomically with their final mode (unit/plist 0644; the service
  environment file ``~/.config/vaultd/env`` 0600, created once from a commented
  template and never overwritten -- it is where the API key goes).
* Commands run in order and stop at the first failure (the rest are reported as not
  run); a missing tool or an unreachable user bus is reported, not raised, and
  ``service_status`` never raises for them (the state is then "unknown").
* ``uninstall`` leaves the vault, the state dir and the environment file alone.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from daemon.errors import VaultMissingError
from daemon.service.install.reports import CommandResult, InstallReport, ServiceStatus
from daemon.service.install.units import (
    ServiceInstallError,
    default_exe,
    launchd_label,
    render_launchd_plist,
    render_systemd_unit,
    unit_instance,
    unit_name,
    user_home,
)


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
        path = user_home() / "Library" / "LaunchAgents" / f"{label}.plist"
        data = render_launchd_plist(vault, exe=exe, label=label)
        report = InstallReport("install", manager, label, path, data.decode(), dry_run)
        domain = f"gui/{os.getuid()}"
        _run_all(report, [["launchctl", "bootout", f"{domain}/{label}"]], may_fail=True)
        if not dry_run:
            (user_home() / "Library" / "Logs" / "vaultd").mkdir(parents=True, exist_ok=True)
        _write(report, path, data, 0o644)
        _run_all(report, [["launchctl", "enable", f"{domain}/{label}"],
                          ["launchctl", "bootstrap", domain, str(path)]])
        report.notes.append(f"logs: {user_home() / 'Library' / 'Logs' / 'vaultd'}")
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
        path = user_home() / "Library" / "LaunchAgents" / f"{name}.plist"
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
        path = user_home() / "Library" / "LaunchAgents" / f"{name}.plist"
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


def _resolve(path: Path) -> Path:
    """Absolute with symlinks resolved, so two spellings of one vault are one service."""
    return path.expanduser().resolve()


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
    return Path(xdg) if xdg and Path(xdg).is_absolute() else user_home() / ".config"


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
