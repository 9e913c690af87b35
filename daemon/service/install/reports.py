"""What a service command reports back: one external command, an install/uninstall, a status.

These are plain records plus their wording. The CLI prints ``InstallReport.format()``,
``ServiceStatus.summary()`` or ``ServiceStatus.to_dict()`` (``--json``) and nothing else,
so the text here is the user-facing contract of ``vaultd service``: every command is
shown exactly as run, or as it would be run with ``--dry-run``, with why it did not run
or how it failed, so the person can repeat or undo it by hand.

``ok`` decides the exit code: a command that ran and failed makes the report not ok,
unless it was marked ``may_fail`` (e.g. booting out a launchd agent that is not loaded).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path


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
