"""Crash-safe file writes (used for the state folder; vault files are written by the path
gate, :mod:`vault_tools.pathgate`, which builds on :func:`write_temp`).

Every write goes to a hidden temp file in the same folder (so the final rename never
crosses a filesystem), is fsynced, then renamed into place, then the folder is fsynced.
A failure at any point (disk full, permission, vanished folder) leaves the old file
exactly as it was and removes the temp file; the ``OSError`` propagates to the caller.

Temp names contain ``.vaultd-tmp`` so watchers and indexes can ignore them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import secrets
import sys
from pathlib import Path

TEMP_MARKER = ".vaultd-tmp"


def temp_path_for(path: Path) -> Path:
    return path.with_name(f".{path.name}{TEMP_MARKER}-{os.getpid()}-{secrets.token_hex(4)}")


def is_temp_file(name: str) -> bool:
    return TEMP_MARKER in name


def _fsync_dir(folder: Path) -> None:
    if sys.platform == "win32":  # pragma: no cover - no directory fds on Windows
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temp(path: Path, data: bytes, *, mode: int | None = None,
               dir_fd: int | None = None) -> Path:
    """Write ``data`` to a fsynced temp file beside ``path`` and return the temp path.
    With ``dir_fd`` (the path gate), ``path`` is a name in that open folder and so is the
    returned temp name."""
    tmp = temp_path_for(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0),
                 0o644 if mode is None else mode, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        raise
    return tmp


def _existing_mode(path: Path) -> int | None:
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return None


def write_atomic(path: Path, data: bytes | str) -> None:
    """Replace ``path`` with ``data`` atomically (creating it if needed)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = write_temp(path, data, mode=_existing_mode(path))
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def create_atomic(path: Path, data: bytes | str) -> None:
    """Create ``path`` with ``data``; raise FileExistsError if anything is there already.

    Uses a hard link from the complete temp file, so the new name never shows partial
    content and never replaces a file that appeared meanwhile (user text is sacred).
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = write_temp(path, data)
    try:
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


# -- atomic exchange (Linux renameat2) ---------------------------------------------------
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_renameat2 = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _renameat2 = _libc.renameat2
        _renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                               ctypes.c_uint]
        _renameat2.restype = ctypes.c_int
    except (OSError, AttributeError):
        _renameat2 = None


def exchange(a: Path | str, b: Path | str, *, dir_fd: int | None = None) -> bool:
    """Atomically swap two paths. Returns False where the OS cannot (caller falls back).
    With ``dir_fd`` (the path gate's open folder) both are names in that folder."""
    if _renameat2 is None:
        return False
    at = _AT_FDCWD if dir_fd is None else dir_fd
    res = _renameat2(at, os.fsencode(a), at, os.fsencode(b), _RENAME_EXCHANGE)
    if res == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temps(root: Path, skip_dirs: frozenset[str] = frozenset(
        {".git", ".obsidian", ".trash"})) -> list[Path]:
    """Delete temp files that a killed writer left behind (its pid is gone).

    A crash between writing a temp file and renaming it leaves a hidden
    ``.<name>.vaultd-tmp-<pid>-<hex>``; the real file was never touched. Temp files of
    live processes (another writer mid-write) are left alone.
    """
    removed: list[Path] = []
    # Not through the path gate on purpose: only unlinks our own temp names, found by a
    # walk that does not follow symlinks (os.walk's default), and never reads anything.
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip_dirs]
        for name in files:
            if TEMP_MARKER not in name:
                continue
            try:
                pid = int(name.rsplit(TEMP_MARKER + "-", 1)[1].split("-", 1)[0])
            except (IndexError, ValueError):
                continue
            if pid != os.getpid() and not _alive(pid):
                path = Path(folder) / name
                try:
                    path.unlink()
                    removed.append(path)
                except OSError:
                    pass
    return removed
