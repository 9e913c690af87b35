"""Faults of the state folder (ledger, heartbeat, lock): a pause or a repair, never a death.

Any thread that meets an error writing or reading the ledger hands it to
:meth:`StateWatch.report` instead of dying. :func:`classify` sorts it:

* ``full`` (``database or disk is full``, ENOSPC, EDQUOT) and ``readonly`` (a read-only
  folder or file system): the daemon pauses — the dispatcher claims nothing, finished
  results wait in memory — and says ``waiting: disk full (N MB free)`` in ``status`` and
  on the inbox lines. :meth:`StateWatch.check` probes with a real small write, with
  backoff, and resumes by itself when it succeeds.
* ``damaged`` (``database disk image is malformed``, ``file is not a database``): a
  ``quick_check``; on damage the ledger is moved aside and rebuilt
  (:mod:`daemon.jobs.ledger_repair`).
* ``gone``: the state folder vanished (a cleaner, a sync client, ``rm -rf``). It is
  recreated, the single-daemon lock re-acquired and the ledger rebuilt; when it cannot
  be recreated, :attr:`StateWatch.fatal` says why and the daemon stops non-zero.

:meth:`check` runs on the runner's thread every couple of seconds (monotonic clock), so
repairs never race a thread mid-transaction of its own: the other threads reconnect
lazily (:meth:`daemon.jobs.ledger.Ledger.reopen`).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from daemon.jobs import ledger_repair
from daemon.jobs.ledger import Ledger

log = logging.getLogger("vaultd")

_FULL = (errno.ENOSPC, errno.EDQUOT)
_READONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


def classify(exc: BaseException) -> str | None:
    """``full`` | ``readonly`` | ``damaged`` | ``gone`` | None (not a state-folder fault)."""
    if isinstance(exc, sqlite3.DatabaseError):
        text = str(exc).lower()
        if "full" in text:
            return "full"
        if "readonly" in text or "read-only" in text:
            return "readonly"
        if "unable to open" in text or "disk i/o" in text or "no such table" in text:
            return "gone"
        if "locked" in text or "busy" in text:
            return None
        if not isinstance(exc, sqlite3.OperationalError) or "malformed" in text:
            return "damaged"
        return None
    if isinstance(exc, OSError):
        if exc.errno in _FULL:
            return "full"
        if exc.errno in _READONLY:
            return "readonly"
        if exc.errno == errno.ENOENT:
            return "gone"
    return None


def free_mb(path: Path) -> int | None:
    """Free space on the file system holding ``path`` (its nearest existing parent)."""
    for p in (path, *path.parents):
        try:
            return shutil.disk_usage(p).free // 1_000_000
        except OSError:
            continue
    return None


def full_reason(path: Path) -> str:
    free = free_mb(path)
    return "disk full" + (f" ({free} MB free)" if free is not None else "")


def readonly_reason(ledger: Path) -> str:
    """Plain words for a ledger that cannot be written: the file itself is read-only, or
    the folder it lives in (SQLite makes its ``-wal`` and ``-shm`` files there)."""
    try:
        if ledger.exists() and not os.access(ledger, os.W_OK):
            return f"the ledger {ledger} is read-only"
    except OSError:
        pass
    return f"the state folder {ledger.parent} is read-only"


class StateWatch:
    """See the module docstring. ``relock`` re-acquires the single-daemon lock;
    ``on_recovered`` wakes the threads (rescan the inbox, resume writes, claim again)."""

    def __init__(self, state: Path, vault: Path, ledger: Ledger, *,
                 relock: Callable[[], None], on_recovered: Callable[[], None],
                 clock: Callable[[], float] = time.monotonic,
                 hold: sqlite3.Connection | None = None) -> None:
        self.state = state
        self.vault = vault
        self.ledger = ledger
        self.relock = relock
        self.on_recovered = on_recovered
        self.clock = clock
        self.paused: str | None = None  # "waiting: disk full (N MB free)"
        self.fatal: str | None = None  # the daemon must stop: why
        self.note: str | None = None  # last repair, for status
        self._lock = threading.Lock()
        self._damaged = False
        self._kind: str | None = None
        self._probes = 0
        self._next_probe = 0.0
        self._logged = -1e9
        # A connection opened at start: if the folder is deleted, the rows stay
        # readable through it (the file lives on while open) and are salvaged.
        self._hold = hold
        self._ident = self._ledger_ident() if hold is not None else None

    def _ledger_ident(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.ledger.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def _ledger_replaced(self) -> bool:
        """The ledger file is not the one held open: the folder was deleted and something
        (a thread's new connection, a cache write) made it again before we looked."""
        if self._ident is None:
            return False
        return self._ledger_ident() != self._ident

    def report(self, exc: BaseException) -> bool:
        """Any thread: is ``exc`` a state-folder fault? Then it is handled (True)."""
        kind = classify(exc)
        if kind is None:
            return False
        with self._lock:
            if kind == "damaged":
                self._damaged = True
            elif kind in ("full", "readonly"):
                self._pause(kind, exc)
            # "gone" needs nothing more: check() looks at the folder itself.
        return True

    def _pause(self, kind: str, exc: BaseException) -> None:
        reason = (f"waiting: {full_reason(self.state)}" if kind == "full"
                  else f"waiting: the state folder {self.state} is read-only")
        if self.paused is None:
            self._probes = 0
            self._next_probe = self.clock() + 1.0
        self.paused, self._kind = reason, kind
        if self.clock() - self._logged >= 60:  # once a minute while it lasts
            self._logged = self.clock()
            log.error("%s: %s; finished work is kept and written when it can be",
                      reason.removeprefix("waiting: "), exc)

    # -- the runner's thread -----------------------------------------------------------
    def check(self) -> None:
        """Recreate a vanished folder, repair a damaged ledger, probe a full disk."""
        if not self.state.is_dir() or self._ledger_replaced():
            self._recreate()
            return
        with self._lock:
            damaged, self._damaged = self._damaged, False
        if damaged:
            problem = ledger_repair.damage(self.ledger.path)
            if problem is not None:
                ledger_repair.repair(self.ledger.path, self.vault, problem, self.ledger)
                self.note = f"ledger repaired at {time.strftime('%H:%M:%S')}: {problem}"
                self.hold_open()
                self.on_recovered()
        if self.paused is not None and self.clock() >= self._next_probe:
            self._probe()

    def _recreate(self) -> None:
        why = f"the state folder {self.state} vanished"
        log.warning("%s; recreating it", why)
        try:
            self.state.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.relock()
        except Exception as exc:  # noqa: BLE001 - any reason: stop with it
            self.fatal = f"{why} and cannot be recreated: {exc}"
            log.error("%s", self.fatal)
            return
        old = self._hold
        ledger_repair.rebuild_lost(self.ledger, old, self.vault, why)
        self.note = f"{why} at {time.strftime('%H:%M:%S')}; recreated and rebuilt"
        self.hold_open()
        self.on_recovered()

    def hold_open(self) -> None:
        """Keep a connection to the ledger open (see ``_hold`` in ``__init__``)."""
        if self._hold is not None:
            try:
                self._hold.close()
            except sqlite3.Error:
                pass
        try:
            self._hold = sqlite3.connect(self.ledger.path, timeout=5,
                                         check_same_thread=False)
            self._hold.execute("SELECT COUNT(*) FROM jobs").fetchall()  # no open read
            self._ident = self._ledger_ident()
        except sqlite3.Error:
            self._hold = None
            self._ident = None

    def _probe(self) -> None:
        try:
            self.ledger.probe_write()
            probe = self.state / ".space-probe"
            with open(probe, "wb") as f:  # room for a WAL page or two, not just a byte
                f.write(b"\0" * 65536)
                f.flush()
                os.fsync(f.fileno())
            probe.unlink()
        except (sqlite3.Error, OSError) as exc:
            kind = classify(exc) or self._kind or "full"
            with self._lock:
                if kind in ("full", "readonly"):
                    self._pause(kind, exc)
                self._probes += 1
                self._next_probe = self.clock() + min(30.0, 2.0 * 2 ** min(self._probes, 4))
            return
        log.warning("the state folder is writable again; resuming")
        with self._lock:
            self.paused = None
        self.on_recovered()

    def close(self) -> None:
        if self._hold is not None:
            try:
                self._hold.close()
            except sqlite3.Error:
                pass
            self._hold = None
