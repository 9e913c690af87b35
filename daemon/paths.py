"""Where a vault's files and its daemon state live.

State (ledger, caches, logs) goes to ``$VAULTD_STATE_DIR``, else ``$STATE_DIRECTORY``
(set by systemd's ``StateDirectory=``), else the platform state dir (XDG on Linux),
with one folder per vault named after the vault and a hash of its absolute path. It is
never inside the vault: a SQLite file in a synced folder is a corruption waiting to happen.

The service and the terminal agree on that folder: the systemd unit sets
``StateDirectory=vaultd``, so its ``$STATE_DIRECTORY`` is ``%S/vaultd`` -- the same base
as the platform default (``$XDG_STATE_HOME/vaultd``, ``~/.local/state/vaultd``) -- and the
per-vault folder is nested the same way in both. Units rendered before this set
``StateDirectory=vaultd/<instance>``; the rule recognises that value (its last part is
this vault's unit instance) and uses its parent, and :func:`adopt_legacy_state` moves the
ledger such a unit kept in ``…/vaultd/<instance>/<name>-<hash>/`` to where every command
looks.
Every file in the vault is reached through :attr:`VaultPaths.gate` (the path gate,
:mod:`vault_tools.pathgate`) at the moment it is read or written; the configured
locations are checked with it at start and on SIGHUP (:func:`check_vault_paths`).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import platformdirs

from daemon.config import Config
from daemon.errors import ConfigError
from daemon.service_install.units import unit_instance
from vault_tools.pathgate import PathGate, PathRefused


def _base_state_dir(vault: Path) -> tuple[Path, str]:
    for var in ("VAULTD_STATE_DIR", "STATE_DIRECTORY"):
        value = os.environ.get(var, "")
        if value:
            # systemd may pass several colon-separated dirs; the first is ours.
            base = Path(value.split(":")[0]).expanduser()
            if var == "STATE_DIRECTORY" and _is_legacy_unit_dir(base, vault):
                return base.parent, var
            return base, var
    return Path(platformdirs.user_state_dir("vaultd", appauthor=False)), "platform default"


def _is_legacy_unit_dir(base: Path, vault: Path) -> bool:
    """``…/vaultd/<instance>``: what an older unit's ``StateDirectory=`` gave."""
    return base.parent.name == "vaultd" and base.name == unit_instance(vault)


def state_dir_for(vault: Path) -> Path:
    """The per-vault state folder (not created)."""
    vault = vault.resolve()
    base, origin = _base_state_dir(vault)
    base = base.resolve()
    if base == vault or vault in base.parents:
        raise ConfigError(origin, f"state dir {base} is inside the vault {vault}; "
                          "choose a folder outside the synced vault")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", vault.name).strip("-.") or "vault"
    digest = hashlib.sha256(str(vault).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return base / f"{slug[:40]}-{digest}"


def adopt_legacy_state(vault: Path, state: Path) -> str | None:
    """Move the state an older unit kept in ``<base>/<instance>/<name>-<hash>/`` into
    ``state``; returns what was done (for the log), None when there was nothing.

    Called only by the process that holds the vault's lock (no daemon uses either folder
    meanwhile). When ``state`` already has a ledger, nothing is moved and the message
    names both folders: two ledgers are never merged (nor a WAL file mixed into the
    other's database) silently.
    """
    legacy = state.parent / unit_instance(vault.resolve()) / state.name
    if not legacy.is_dir() or legacy == state:
        return None
    if (state / "ledger.sqlite3").exists():
        return (f"an older service kept its state in {legacy}; {state} has a ledger too and "
                "is the one used: remove the older folder once you no longer need it")
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    for entry in sorted(legacy.iterdir()):
        if entry.name == "daemon.lock":
            entry.unlink(missing_ok=True)
        elif not (state / entry.name).exists():
            os.replace(entry, state / entry.name)
    for folder in (legacy, legacy.parent):  # the old unit's folders, when empty
        try:
            folder.rmdir()
        except OSError:
            break
    return f"moved the state an older service kept in {legacy} to {state}"


@dataclass(frozen=True)
class VaultPaths:
    """Resolved locations for one vault, from its config."""

    vault: Path
    state: Path
    inbox: Path
    notes: Path
    pdf: Path
    graph_note: Path
    allow_symlinks_out: bool = False

    @cached_property
    def gate(self) -> PathGate:
        """The one path gate of this vault: every vault read and write goes through it."""
        return PathGate(self.vault, allow_symlinks_out=self.allow_symlinks_out)

    @property
    def ledger(self) -> Path:
        return self.state / "ledger.sqlite3"

    @property
    def prompts(self) -> Path:
        return self.vault / ".vaultd" / "prompts"

    def rel(self, path: Path) -> str:
        """Vault-relative POSIX path of the real location of ``path`` (by the path gate:
        raises ``PathRefused`` for a path that leaves the vault, never ``ValueError``)."""
        return self.gate.rel(path)

    def rel_any(self, path: Path) -> str | None:
        """Vault-relative POSIX path, or None when ``path`` is outside the vault."""
        try:
            return Path(os.path.abspath(path)).relative_to(self.vault).as_posix()
        except ValueError:
            return None

    @classmethod
    def from_config(cls, vault: Path, config: Config) -> VaultPaths:
        vault = vault.resolve()
        v = config.section("vault")
        return cls(
            vault=vault,
            state=state_dir_for(vault),
            inbox=vault / v["inbox"],
            notes=vault / v["notes_folder"],
            pdf=vault / v["pdf_folder"],
            graph_note=vault / v["graph_note"],
            allow_symlinks_out=bool(v.get("allow_symlinks_out", False)),
        )


_CHECKED = (("inbox", "inbox"), ("notes_folder", "notes"), ("pdf_folder", "pdf"),
            ("graph_note", "graph_note"))


def check_vault_paths(paths: VaultPaths) -> None:
    """Refuse configured locations that leave the vault (a symlinked folder on the way,
    or the file itself a symlink out), as a :class:`ConfigError` naming the setting.
    Run at start and on SIGHUP; every use is checked again by the gate anyway."""
    for key, attr in _CHECKED:
        target: Path = getattr(paths, attr)
        try:
            paths.gate.check_folder(target)
            if key in ("inbox", "graph_note"):
                for path in (target, target.with_suffix(".canvas")) if key == "graph_note" \
                        else (target,):
                    if paths.gate.exists(path):
                        paths.gate.resolve(path)
        except PathRefused as exc:
            raise ConfigError(f"vault.{key}", exc.reason) from None
