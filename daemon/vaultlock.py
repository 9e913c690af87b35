"""One daemon per vault, however it was started: the vault lock.

``vaultd run`` (and ``run --batch``) hold two exclusive ``flock`` locks for as long as
they run:

1. ``<vault>/.vaultd/daemon.lock`` -- the **vault's** lock. It is what makes "one daemon
   per vault" hold whatever the environment: the systemd service, a launchd agent and a
   terminal may resolve different state folders (another ``$XDG_STATE_HOME``, a
   ``$VAULTD_STATE_DIR`` set in one shell only), but they all open the same file in the
   vault they were given -- and the service's sandbox can write the vault anyway. The
   file gets one fixed line saying what it is when it is created, and is never
   rewritten or deleted, so a sync client (Dropbox, iCloud, Syncthing; Obsidian Sync
   skips dot folders) copies it once and then has nothing to sync and no conflict
   copies to make; a lock is kernel state of this machine, never content, so a copy on
   another device locks nothing there.
   The file is opened without following a symlink (it is vault content). Where the
   vault's file system cannot lock (some network and FUSE mounts answer ``ENOLCK`` /
   ``EOPNOTSUPP``) or the file cannot be created, the daemon says so in the log and
   relies on the second lock alone.
2. ``<state dir>/daemon.lock`` -- the **ledger's** lock, on the local disk: it still
   keeps a second daemon off the same ledger when the vault's lock is unavailable, or
   when a sync client deleted or replaced the vault's lock file under a running daemon.

Between the two, the holder of the vault's lock moves a state folder an older service
unit kept elsewhere to where every command looks (:func:`daemon.paths.adopt_legacy_state`).
A second daemon gets :class:`AlreadyRunning` naming the vault and, on Linux, the pid that
holds the lock; the CLI prints it and exits 2. The locks are ``flock`` locks on
non-inheritable descriptors: a pool worker never holds them, and the kernel drops them
when the daemon dies, however it dies.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import sys
from pathlib import Path

from daemon.errors import VaultdError
from daemon.paths import VaultPaths, adopt_legacy_state

log = logging.getLogger("vaultd")

LOCK_NAME = "daemon.lock"
LOCK_TEXT = (b"vaultd holds a lock on this file while it runs on this vault, so that only "
             b"one vaultd works on it. Leave it here; it never changes.\n")
_UNLOCKABLE = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENOSYS}


class AlreadyRunning(VaultdError):
    """Another vaultd process holds this vault (or its ledger)."""


class VaultLock:
    """The two locks of one running daemon (see the module docstring)."""

    def __init__(self, paths: VaultPaths) -> None:
        self.paths = paths
        self.fds: list[int] = []

    @property
    def vault_lock_file(self) -> Path:
        return self.paths.vault / ".vaultd" / LOCK_NAME

    def acquire(self) -> None:
        try:
            fd = self._vault_fd()
            if fd is not None and self._lock(fd, self.vault_lock_file):
                _explain(fd)
            path = self.paths.state / LOCK_NAME
            try:
                moved = adopt_legacy_state(self.paths.vault, self.paths.state)
                self.paths.state.mkdir(parents=True, exist_ok=True, mode=0o700)
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                # A unit from an older vaultd may only write its own vaultd/<instance>.
                raise VaultdError(
                    f"cannot write the state folder {self.paths.state} ({exc.strerror}); "
                    "if this is the service, its unit may be from an older vaultd: run "
                    f"`vaultd service install --vault {self.paths.vault}` again") from exc
            if moved:
                log.warning("%s", moved)
            self._lock(fd, path)
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        while self.fds:
            os.close(self.fds.pop())

    def _vault_fd(self) -> int | None:
        path = self.vault_lock_file
        try:
            path.parent.mkdir(exist_ok=True)
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                           0o600)
        except OSError as exc:
            log.warning("cannot open the vault's lock file %s (%s); one daemon per vault "
                        "is then guaranteed only for the same state folder", path,
                        exc.strerror or exc)
            return None

    def _lock(self, fd: int, path: Path) -> bool:
        """Lock ``fd`` (kept open while held); False when the file system cannot lock."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise AlreadyRunning(
                f"another vaultd{who} is already running for {self.paths.vault}; stop it "
                f"first, or see what it does with `vaultd status --vault "
                f"{self.paths.vault}` (a service: `vaultd service status`)") from None
        except OSError as exc:
            if exc.errno not in _UNLOCKABLE:
                os.close(fd)
                raise
            log.warning("the file system of %s cannot lock files (%s); one daemon per "
                        "vault is then guaranteed only for the same state folder", path,
                        exc.strerror)
            os.close(fd)
            return False
        self.fds.append(fd)
        return True


def _explain(fd: int) -> None:
    """Give a new vault lock file its one line (only the lock holder writes it, once)."""
    try:
        if os.fstat(fd).st_size == 0:
            os.write(fd, LOCK_TEXT)
    except OSError:
        pass  # a full disk: the lock works all the same


def _holder(fd: int) -> int | None:
    """The pid holding an flock on ``fd``'s file, from ``/proc/locks`` (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    st = os.fstat(fd)
    want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == want:
                    return int(parts[4]) or None
    except (OSError, ValueError):
        return None
    return None
