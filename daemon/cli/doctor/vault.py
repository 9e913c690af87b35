"""Doctor checks of the vault's own files: the folder, config, inbox, state dir, ledger,
and symlinks that lead out of the vault (the path gate refuses them unless allowed).

They run first because everything else depends on them: a usable vault folder sets
``Context.vault_ok``, the config check loads ``Context.config`` and the state check
sets ``Context.paths``; later checks "skip" rather than guess when these are missing.

Read-only by contract: the config is loaded with ``create=False`` (no commented defaults
written), the state dir is never created (only its nearest existing parent is tested
for write access), the ledger is opened only when the file exists, and a writability
probe creates and deletes one hidden temp file.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path

from daemon.cli.doctor.model import Check, Context
from daemon.config import CONFIG_RELPATH, Config, load_config
from daemon.errors import ConfigError
from daemon.jobs import ledger_repair
from daemon.jobs.ledger import STATES, Ledger
from daemon.paths import VaultPaths, check_vault_paths, state_dir_for
from vault_tools.inbox import MAX_INBOX_BYTES, InboxTooLarge
from vault_tools.pathgate import PathGate, PathRefused, file_kind
from vault_tools.unhandled import unhandled_links

INBOX_WARN_BYTES = 5 * 1024 * 1024
SYMLINK_SCAN_LIMIT = 200_000  # entries looked at; a huge vault is sampled, not hung on
SYMLINKS_LISTED = 5


def check_vault(c: Context) -> Check:
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


def check_config(c: Context) -> Check:
    path = c.vault / CONFIG_RELPATH
    if not c.vault_ok:
        return Check("config", "skip", "vault folder unusable (see vault)")
    try:
        c.config = load_config(c.vault, create=False)
    except ConfigError as exc:
        # A file-wide problem (bad TOML) names the file itself as the setting.
        what = "the error above" if exc.setting == str(path) else exc.setting
        return Check("config", "fail", str(exc),
                     f"edit {path} and fix {what}, or move the file aside to get "
                     "commented defaults back on the next run")
    if not path.exists():
        return Check("config", "ok", f"no {CONFIG_RELPATH} yet: defaults apply "
                     "(a commented file is written on the first run)")
    return Check("config", "ok", f"{path} is valid")


def check_inbox(c: Context) -> Check:
    if not c.vault_ok:
        return Check("inbox", "skip", "vault folder unusable (see vault)")
    inbox = c.vault / (c.config or Config.defaults()).get("vault", "inbox")
    if not inbox.exists():
        v = shlex.quote(str(c.vault))
        return Check("inbox", "warn", f"{inbox} does not exist yet; it is created on the "
                     "first run", f"paste a URL: vaultd add --vault {v} URL")
    if not inbox.is_file():
        what = file_kind(inbox.stat().st_mode)
        return Check("inbox", "fail", f"{inbox} is {what}, not a file",
                     "move it aside, or set vault.inbox to a .md file")
    size = inbox.stat().st_size
    try:  # through the path gate: never a symlink out, never blocks on a FIFO
        allow = bool((c.config or Config.defaults()).get("vault", "allow_symlinks_out"))
        fd = PathGate(c.vault, allow_symlinks_out=allow).open_read(inbox)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(INBOX_WARN_BYTES + 1)
    except PathRefused as exc:
        return Check("inbox", "fail", exc.reason,
                     "make vault.inbox a note inside the vault, or set "
                     "vault.allow_symlinks_out = true if you linked it in on purpose")
    except OSError as exc:
        return Check("inbox", "fail", f"cannot read {inbox}: {exc.strerror}",
                     f"chmod u+rw {shlex.quote(str(inbox))}")
    if size > MAX_INBOX_BYTES:  # the daemon does not read it at all
        too_large = InboxTooLarge(inbox.name, size, MAX_INBOX_BYTES)
        return Check("inbox", "fail", too_large.strerror, "move finished lines into another note")
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
    found = unhandled_links(text)
    if found:
        listed = "; ".join(f"line {u.line + 1}: {u.link}: {u.reason}" for u in found[:10])
        more = f" (and {len(found) - 10} more)" if len(found) > 10 else ""
        return Check("inbox", "warn", f"{inbox}: {len(found)} link(s) make no note: "
                     f"{listed}{more}", "follow channels as the reason says; paste the "
                     "YouTube video URL or a subtitle file instead of other links")
    return Check("inbox", "ok", f"{inbox} is readable text ({len(text.splitlines())} lines)")


def check_state(c: Context) -> Check:
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


def check_ledger(c: Context) -> Check:
    if c.paths is None:
        return Check("ledger", "skip", "no state folder (see state)")
    path = c.paths.ledger
    if not path.exists():
        return Check("ledger", "ok", f"no ledger yet at {path} (created on the first run)")
    problem = ledger_repair.damage(path)
    if problem is not None:
        return Check("ledger", "fail", f"{path} is damaged: {problem}",
                     "vaultd moves it aside and rebuilds it from the inbox and the vault at"
                     " its next start (a running daemon does it within seconds)")
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


def outside_symlinks(vault: Path, limit: int = SYMLINK_SCAN_LIMIT) -> list[tuple[str, str]]:
    """(vault path, target) of every symlink in the vault whose target is outside the
    vault's real root (hidden folders included: ``.vaultd`` holds prompts vaultd reads)."""
    root = os.path.realpath(vault)
    found: list[tuple[str, str]] = []
    seen = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in (".git", ".trash")]
        for name in dirs + files:
            seen += 1
            full = os.path.join(folder, name)
            if not os.path.islink(full):
                continue
            real = os.path.realpath(full)
            if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
                found.append((os.path.relpath(full, root), real))
        if seen > limit:
            break
    return found


def check_symlinks(c: Context) -> Check:
    if not c.vault_ok:
        return Check("symlinks", "skip", "vault folder unusable (see vault)")
    cfg = c.config or Config.defaults()
    allowed = bool(cfg.get("vault", "allow_symlinks_out"))
    paths = VaultPaths.from_config(c.vault, cfg)
    try:
        check_vault_paths(paths)
    except ConfigError as exc:
        return Check("symlinks", "fail", str(exc).removeprefix("config: "),
                     "move that folder into the vault, or set vault.allow_symlinks_out = "
                     "true if you linked it in on purpose")
    links = outside_symlinks(c.vault)
    if not links:
        return Check("symlinks", "ok", "no symlink leads out of the vault")
    shown = "; ".join(f"{rel} -> {target}" for rel, target in links[:SYMLINKS_LISTED])
    more = f" and {len(links) - SYMLINKS_LISTED} more" if len(links) > SYMLINKS_LISTED else ""
    if allowed:
        return Check("symlinks", "ok", f"{len(links)} symlink(s) lead out of the vault and "
                     f"are followed (vault.allow_symlinks_out = true): {shown}{more}")
    return Check("symlinks", "warn", f"{len(links)} symlink(s) lead out of the vault; "
                 f"vaultd does not follow them: {shown}{more}",
                 "move what they point to into the vault, or set vault.allow_symlinks_out = "
                 "true if you linked it in on purpose")


def _probe_write(folder: Path) -> str:
    """'' when a file can be created in ``folder``, else the reason. (Not through the
    path gate: a fresh ``mkstemp`` name in the folder itself, deleted at once.)"""
    try:
        fd, name = tempfile.mkstemp(prefix=".vaultd-doctor-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""
