"""``vaultd service install|uninstall|status``: run vaultd as a per-user login service.

This package owns the service files and their life cycle: it renders a systemd user unit
(Linux) or a launchd agent plist (macOS) for *this* machine -- absolute interpreter and
vault paths, never a PATH lookup -- writes it into the user's service folder, and drives
``systemctl --user`` / ``launchctl`` when they exist. Every command is reported exactly as
run (or, with ``dry_run``, as it would be run), so the person can repeat or undo by hand.

One service per vault: the name is derived from the resolved vault path
(``vaultd-<folder slug>-<8 hex of sha256>``), so it is stable across runs, safe in unit
names and labels, and two vaults never collide. The reference copies in ``systemd/`` are
renderings for an example vault (``write_examples``, or ``python -m
daemon.service.install systemd/``); the tests keep them in sync.

Import from here (``daemon.service.install``); the parts are ``units`` (pure rendering
of the unit and the plist, names, quoting), ``lifecycle`` (``install``, ``uninstall``
and ``service_status``: the file and command side effects) and ``reports`` (the
results the CLI prints: ``InstallReport.format()``, ``ServiceStatus.summary()``).
"""

from daemon.service.install.lifecycle import install, service_status, uninstall
from daemon.service.install.reports import CommandResult, InstallReport, ServiceStatus
from daemon.service.install.units import (
    STOP_TIMEOUT_SEC,
    WATCHDOG_SEC,
    ServiceInstallError,
    default_exe,
    launchd_label,
    render_launchd_plist,
    render_systemd_unit,
    unit_instance,
    unit_name,
    write_examples,
)

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
