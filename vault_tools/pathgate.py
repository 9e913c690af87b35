"""The path gate: every file vaultd reads or writes in the vault passes here, at the moment
of use.

Given the vault root and a vault-relative path (or a path a user typed in the inbox: with
``..``, absolute, ``~``, URL-encoded, a Windows drive letter, backslashes, NUL), the gate
either works on a file inside the vault's *real* root or raises :class:`PathRefused` with a
plain reason. The rule:

* A path is walked one folder at a time from an open descriptor of the vault root, each
  step opened with ``O_NOFOLLOW`` (``openat``). A symlink met on the way is read and
  expanded by the gate itself: one that stays inside the vault is followed; one that
  leaves it is refused unless the vault allows it (``vault.allow_symlinks_out``, for users
  who link folders in on purpose). So a folder swapped for a symlink between a check and
  a write cannot make a write escape: there is no separate check to race.
* Reads (:meth:`PathGate.read_bytes`) open with ``O_NOFOLLOW | O_NONBLOCK`` (a FIFO never
  blocks the open), refuse anything ``fstat`` does not call a regular file (FIFO, device,
  socket, folder) and read at most ``limit`` bytes whatever ``st_size`` says (a device
  reports 0).
* Writes go to a temp file in the opened folder and are linked (create-only: never over
  an existing name) or renamed (replace) into place relative to that folder's descriptor
  (``linkat`` / ``renameat``), so the final name never follows a symlink either.

Pure: no threads, no ``daemon`` import. POSIX (Linux, macOS): it needs ``dir_fd`` support.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

from vault_tools.atomic import write_temp

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_MAX_HOPS = 40  # symlinks expanded in one walk (Linux's own limit)
_DRIVE = re.compile(r"^[A-Za-z]:([\\/]|$)")


class PathRefused(Exception):  # noqa: N818 - the documented name of the gate's one error
    """A vault path the gate will not read or write. ``reason`` is one plain sentence
    for the inbox line and ``status``. ``daemon.errors.PathRefusedError`` is the same
    failure as a permanent job error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.reason,))


def clean_typed(typed: str, base: str = "") -> str:
    """A path as a user typed it (inbox link, config value) as a vault-relative POSIX path.

    URL-escapes are decoded and backslashes become slashes first, so ``%2e%2e/`` and
    ``..\\`` are seen for what they are. Refused: NUL, ``~`` (a home folder), Windows
    drive letters and UNC paths, and ``..`` that climbs above the vault. An absolute path
    is returned as it is (the caller decides with :meth:`PathGate.relative`). ``base``:
    the vault-relative folder a relative path is taken from (the inbox's folder)."""
    text = unquote(typed.strip().strip("<>")).replace("\\", "/")
    if "\x00" in text:
        raise PathRefused("a path with a NUL character is refused")
    if text.startswith("file:"):
        text = re.sub(r"^file:(//[^/]*)?", "", text)
    if text.startswith("~"):
        raise PathRefused(f"{typed} is in a home folder, outside the vault")
    if _DRIVE.match(text) or text.startswith("//"):
        raise PathRefused(f"{typed} is a Windows or network path, outside the vault")
    if text.startswith("/"):
        return posixpath.normpath(text)
    norm = posixpath.normpath(posixpath.join(base, text)) if text else ""
    if norm == ".." or norm.startswith("../"):
        raise PathRefused(f"{typed} is outside the vault")
    return "" if norm == "." else norm


class PathGate:
    """Reads and writes inside one vault; see the module docstring for the rule."""

    def __init__(self, root: Path | str, *, allow_symlinks_out: bool = False) -> None:
        self.given = Path(os.path.abspath(root))
        self.root = Path(os.path.realpath(root))
        self.allow_symlinks_out = allow_symlinks_out

    # -- names ---------------------------------------------------------------------------
    def relative(self, path: Path | str) -> str:
        """Vault-relative POSIX form of a vault-relative or absolute path, lexically (no
        file system access). Refuses a path that is not under the vault."""
        text = os.fspath(path)
        if "\x00" in text:
            raise PathRefused("a path with a NUL character is refused")
        if not os.path.isabs(text):
            norm = posixpath.normpath(text.replace(os.sep, "/")) if text else "."
            if norm == ".." or norm.startswith("../"):
                raise PathRefused(f"{text} is outside the vault")
            return "" if norm == "." else norm
        norm = os.path.normpath(text)
        for base in (str(self.root), str(self.given)):
            if norm == base:
                return ""
            if norm.startswith(base.rstrip(os.sep) + os.sep):
                return Path(norm[len(base.rstrip(os.sep)) + 1:]).as_posix()
        raise PathRefused(f"{text} is outside the vault")

    def resolve(self, path: Path | str) -> Path:
        """The real location of ``path`` (symlinks expanded by the gate's rule): inside
        the vault's real root, or outside only through a symlink the vault allows. The
        file itself need not exist; its folder must."""
        for _ in range(_MAX_HOPS):
            with self._parent(path, create=False) as (fd, name, where):
                real = self._final(fd, name, where) if name else None
                if real is None:
                    return Path(where, name) if name else Path(where)
            path = real
        raise PathRefused(f"{self._shown(path)}: too many symlinks")

    def rel(self, path: Path | str) -> str:
        """Vault-relative POSIX path of the real location of ``path`` (a path that
        reaches outside through an allowed symlink keeps its lexical name)."""
        real = self.resolve(path)
        try:
            return real.relative_to(self.root).as_posix()
        except ValueError:
            return self.relative(path)

    def check_folder(self, path: Path | str) -> None:
        """Refuse a configured folder (or a file's folder) that leaves the vault; a folder
        that does not exist yet is fine (it is made inside the vault when needed)."""
        rel = self.relative(path)
        parts = rel.split("/") if rel else []
        for n in range(1, len(parts) + 1):
            try:
                self.resolve("/".join(parts[:n]))
            except FileNotFoundError:
                return
            except NotADirectoryError:
                return

    # -- reading -------------------------------------------------------------------------
    def read_bytes(self, path: Path | str, limit: int) -> bytes:
        """The bytes of a regular file inside the vault, at most ``limit`` of them.

        Raises :class:`PathRefused` for anything that is not a regular file or is larger
        than ``limit`` (counted while reading, not taken from ``st_size``), and the usual
        ``OSError`` (``FileNotFoundError``...) when it cannot be opened."""
        fd = self.open_read(path)
        try:
            data = read_limited(fd, limit)
            if data is None:
                raise PathRefused(f"{self._shown(path)} is larger than {_size(limit)}; "
                                  "it is not read")
            return data
        finally:
            os.close(fd)

    def read_text(self, path: Path | str, limit: int = 64 << 20, *,
                  errors: str = "replace") -> str:
        return self.read_bytes(path, limit).decode("utf-8", errors=errors)

    def open_read(self, path: Path | str) -> int:
        """A read-only descriptor of the regular file at ``path`` (non-blocking open, never
        through a symlink the rule refuses; a FIFO, device, socket or folder is refused).
        The caller must close it."""
        for _ in range(_MAX_HOPS):
            with self._parent(path, create=False) as (dfd, name, where):
                if not name:
                    raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
                try:
                    fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _NONBLOCK
                                 | getattr(os, "O_CLOEXEC", 0), dir_fd=dfd)
                except OSError as exc:
                    if exc.errno != errno.ELOOP and not _is_link(dfd, name):
                        raise
                    real = self._final(dfd, name, where)
                    if real is None:
                        raise
                    path = real
                    continue
                try:
                    st = os.fstat(fd)
                    if not stat.S_ISREG(st.st_mode):
                        raise PathRefused(f"{self._shown(where, name)} is "
                                          f"{file_kind(st.st_mode)}, not a file")
                    if _NONBLOCK:
                        os.set_blocking(fd, True)
                except BaseException:
                    os.close(fd)
                    raise
                return fd
        raise PathRefused(f"{self._shown(path)}: too many symlinks")

    def is_file(self, path: Path | str) -> bool:
        """A regular file the gate would read (False for anything refused or missing)."""
        try:
            return stat.S_ISREG(self.stat(path).st_mode)
        except (OSError, PathRefused):
            return False

    def exists(self, path: Path | str) -> bool:
        """Anything (even a dangling or refused symlink) at that name in an allowed
        folder: a name that is taken."""
        try:
            with self._parent(path, create=False) as (dfd, name, _where):
                if not name:
                    return True
                os.stat(name, dir_fd=dfd, follow_symlinks=False)
                return True
        except (OSError, PathRefused):
            return False

    def stat(self, path: Path | str) -> os.stat_result:
        real = self.resolve(path)
        with self._parent(real, create=False) as (dfd, name, _where):
            return os.stat(name or ".", dir_fd=dfd, follow_symlinks=False)

    # -- writing -------------------------------------------------------------------------
    def make_folder(self, path: Path | str) -> Path:
        """Create ``path`` and its parents inside the vault; the real folder."""
        rel = self.relative(path)
        with self._walk(rel.split("/") if rel else [], create=True) as (_fd, where):
            return Path(where)

    def write(self, path: Path | str, data: bytes | str, *, create_only: bool = False,
              make_parents: bool = True) -> Path:
        """Write ``data`` atomically at ``path`` and return its real location.

        ``create_only``: raise ``FileExistsError`` if anything is at that name (a file
        vaultd did not make is never replaced); otherwise replace what is there (the
        caller has checked it is ours). The temp file, the link and the rename all use
        the folder's descriptor, so neither follows a symlink."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        for _ in range(_MAX_HOPS):
            with self._parent(path, create=make_parents) as (dfd, name, where):
                if not name:
                    raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
                if not create_only and _is_link(dfd, name):
                    real = self._final(dfd, name, where)
                    if real is not None:  # a symlink inside the vault: write its target
                        path = real
                        continue
                mode = None if create_only else _mode_of(dfd, name)
                tmp = str(write_temp(Path(name), data, mode=mode, dir_fd=dfd))
                try:
                    if create_only:
                        try:
                            os.link(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd,
                                    follow_symlinks=False)
                        except FileExistsError:
                            raise FileExistsError(errno.EEXIST, "a file is already there",
                                                  str(path)) from None
                    else:
                        os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
                finally:
                    try:
                        os.unlink(tmp, dir_fd=dfd)
                    except FileNotFoundError:
                        pass
                os.fsync(dfd)
                return Path(where, name)
        raise PathRefused(f"{self._shown(path)}: too many symlinks")

    @contextmanager
    def folder(self, path: Path | str) -> Iterator[tuple[int, str, str]]:
        """(open descriptor of the folder holding the file at ``path``, the file's name in
        it, the folder's real path), for a caller that reads, writes and renames there
        itself (the inbox's compare-and-swap, :func:`vault_tools.inbox.edit_inbox`).

        The folder is walked by the rule and a final symlink is expanded by it, so work
        done relative to the descriptor stays in the folder checked here even if a
        folder on the way is swapped for a symlink meanwhile. The name itself is not
        opened: the caller opens it with ``O_NOFOLLOW`` relative to the descriptor."""
        for _ in range(_MAX_HOPS):
            with self._parent(path, create=False) as (dfd, name, where):
                if not name:
                    raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
                real = self._final(dfd, name, where) if _is_link(dfd, name) else None
                if real is None:
                    yield dfd, name, where
                    return
            path = real
        raise PathRefused(f"{self._shown(path)}: too many symlinks")

    def shown(self, where: str, name: str = "") -> str:
        """A path as the user sees it: vault-relative when inside the vault."""
        return self._shown(where, name)

    def rename(self, src: Path | str, dst: Path | str) -> None:
        """Move a file inside the vault to a name that must be free (never replaces)."""
        with self._parent(src, create=False) as (sfd, sname, _sw):
            with self._parent(dst, create=True) as (dfd, dname, _dw):
                if not sname or not dname:
                    raise IsADirectoryError(errno.EISDIR, "is a folder", str(src))
                os.link(sname, dname, src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)
                os.unlink(sname, dir_fd=sfd)

    # -- the walk ------------------------------------------------------------------------
    @contextmanager
    def _parent(self, path: Path | str, *, create: bool
                ) -> Iterator[tuple[int, str, str]]:
        """(descriptor of the folder holding ``path``, its last name, the folder's real
        path). The folder is walked by the rule; the last name is not looked at."""
        start = str(self.root)
        try:
            rel = self.relative(path)
        except PathRefused:
            # Only a real path the gate itself returned through an allowed symlink.
            if not (self.allow_symlinks_out and os.path.isabs(os.fspath(path))):
                raise
            start, rel = "/", os.path.normpath(os.fspath(path)).lstrip("/")
        parts = rel.split("/") if rel else []
        name = parts.pop() if parts else ""
        with self._walk(parts, create=create, start=start) as (fd, where):
            yield fd, name, where

    @contextmanager
    def _walk(self, parts: list[str], *, create: bool, start: str | None = None
              ) -> Iterator[tuple[int, str]]:
        where = start or str(self.root)
        fd = os.open(where, _DIR_FLAGS)
        todo = list(parts)
        hops = 0
        try:
            while todo:
                name = todo.pop(0)
                if name in ("", "."):
                    continue
                try:
                    nfd = os.open(name, _DIR_FLAGS | _NOFOLLOW, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(name, dir_fd=fd)
                    except FileExistsError:
                        pass
                    todo.insert(0, name)
                    continue
                except OSError as exc:
                    if not _is_link(fd, name):
                        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                            raise  # permission denied and the like: as it is
                        raise NotADirectoryError(
                            exc.errno, exc.strerror, posixpath.join(where, name)) from None
                    hops += 1
                    if hops > _MAX_HOPS:
                        raise PathRefused(f"{self._shown(where, name)}: too many symlinks"
                                          ) from None
                    target = os.readlink(name, dir_fd=fd)
                    new = posixpath.normpath(posixpath.join(where, target))
                    inside = self._inside(new)
                    if inside is None and not self.allow_symlinks_out:
                        raise PathRefused(self._out_reason(where, name, new)) from None
                    os.close(fd)
                    fd = -1
                    if inside is not None:
                        fd, where = os.open(self.root, _DIR_FLAGS), str(self.root)
                        todo = [p for p in inside.split("/") if p] + todo
                    else:
                        fd, where = os.open("/", _DIR_FLAGS), "/"
                        todo = [p for p in new.split("/") if p] + todo
                    continue
                os.close(fd)
                fd = nfd
                where = posixpath.join(where, name)
            yield fd, where
        finally:
            if fd >= 0:
                os.close(fd)

    def _final(self, dfd: int, name: str, where: str) -> Path | None:
        """If ``name`` in folder ``dfd`` is a symlink: where it points, by the rule
        (refused when it leaves the vault). None: not a symlink."""
        try:
            target = os.readlink(name, dir_fd=dfd)
        except OSError:
            return None
        new = posixpath.normpath(posixpath.join(where, target))
        if self._inside(new) is None and not self.allow_symlinks_out:
            raise PathRefused(self._out_reason(where, name, new))
        return Path(new)

    def _inside(self, real: str) -> str | None:
        root = str(self.root)
        if real == root:
            return ""
        if real.startswith(root.rstrip("/") + "/"):
            return real[len(root.rstrip("/")) + 1:]
        return None

    def _out_reason(self, where: str, name: str, target: str) -> str:
        return (f"{self._shown(where, name)} is a symlink to {target}, outside the vault; "
                "vaultd does not follow it (set vault.allow_symlinks_out = true to allow)")

    def _shown(self, path: Path | str, name: str = "") -> str:
        full = posixpath.join(os.fspath(path), name) if name else os.fspath(path)
        inside = self._inside(full) if os.path.isabs(full) else full
        return inside if inside else full


def read_limited(fd: int, limit: int) -> bytes | None:
    """The rest of the file ``fd``, or None when it holds more than ``limit`` bytes:
    counted while reading, whatever ``st_size`` says (a device says 0, a file may grow),
    but a larger ``st_size`` is refused before anything is read. Sized by ``st_size``, the
    usual case is one read into one buffer (no list of chunks joined into a copy)."""
    size = os.fstat(fd).st_size
    if size > limit:
        return None
    parts = [os.read(fd, size + 1)]
    got = len(parts[0])
    while got <= limit:
        chunk = os.read(fd, min(1 << 20, limit + 1 - got))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    if got > limit:
        return None
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _is_link(dfd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _mode_of(dfd: int, name: str) -> int | None:
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return st.st_mode & 0o7777 if stat.S_ISREG(st.st_mode) else None


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words ("a named pipe (FIFO)", "a device"...)."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a special file"


def _size(n: int) -> str:
    return f"{n // 1_000_000} MB" if n >= 1_000_000 else f"{n} bytes"
