"""The daemon process's memory: give the C allocator's free pages back to the system.

Why this exists (measured with ``benchmarks/bench_soak.py`` and ``benchmarks/soak_trace.py``,
see benchmarks/README.md, "Soak"): per processed note the daemon's Python heap grows by
what the vault index and graph honestly keep (20-30 KB), but its RSS grew by about
160 KB. Besides SQLite's page caches (see ``Ledger``), about 70 KB of it was memory that
glibc's ``malloc`` had been given back (``free``) and kept: note texts, inbox texts,
rendered PDFs (about 100 KB each, unpickled on a pool's result thread, freed on the
writer's), graph renders. Those blocks are above CPython's
small-object limit, so they come from glibc's arenas, one per thread that allocates
(writer, graph keeper, topic keeper, pool result threads ...). glibc returns a free page
to the system only at the top of the main arena; freed pages inside an arena, and the
other threads' arenas, stay resident until ``malloc_trim`` is asked to release them.

Two settings, both applied by :class:`daemon.service.daemon.Daemon`:

* :func:`configure`, at start before the threads: at most :data:`ARENA_MAX` arenas
  (glibc's default is 8 per core). Fewer arenas share their free space between the
  threads instead of each keeping its own; in an 8-minute soak the free space glibc kept
  fell from 12 MB to 6 MB at 3 minutes. A ``MALLOC_ARENA_MAX`` or ``GLIBC_TUNABLES``
  given by the user wins (the setting is then left alone).
* :func:`trim`, on the daemon's ticker every :data:`TRIM_EVERY` seconds:
  ``malloc_trim(0)`` releases every whole free page of every arena with
  ``MADV_DONTNEED`` (nothing in use moves). A few milliseconds for a heap of tens of MB.

Both do nothing on a C library without them (macOS, musl).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
from typing import Any

log = logging.getLogger("vaultd")

TRIM_EVERY = 60.0  # seconds between trims (a ticker job of the daemon)
ARENA_MAX = 2  # malloc arenas for the whole daemon (threads share them)
_M_ARENA_MAX = -8  # mallopt parameter number, <malloc.h>

_lock = threading.Lock()
_libc: ctypes.CDLL | None = None
_looked = False


def _libc_fn(name: str) -> Any:
    """A function of the C library (glibc's ``malloc_trim``, ``mallopt``), or None."""
    global _libc, _looked
    with _lock:
        if not _looked:
            _looked = True
            try:
                _libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
            except OSError:
                _libc = None
        return getattr(_libc, name, None) if _libc is not None else None


def _malloc_trim() -> Any:
    fn = _libc_fn("malloc_trim")
    if fn is not None:
        fn.argtypes = [ctypes.c_size_t]
        fn.restype = ctypes.c_int
    return fn


def configure() -> bool:
    """Cap the number of malloc arenas (call before starting threads); True when set.

    Left alone when the user tuned the allocator through the environment."""
    if "MALLOC_ARENA_MAX" in os.environ or "arena_max" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    fn = _libc_fn("mallopt")
    if fn is None:
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_int
    return bool(fn(_M_ARENA_MAX, ARENA_MAX))


def available() -> bool:
    """Can this process give free heap pages back (glibc)?"""
    return _malloc_trim() is not None


def trim() -> bool:
    """Release the allocator's whole free pages to the system; True when some were.

    Safe from any thread at any time: glibc takes each arena's lock in turn, so other
    threads' allocations wait at most for the walk of one arena."""
    fn = _malloc_trim()
    if fn is None:
        return False
    try:
        return bool(fn(0))
    except Exception as exc:  # noqa: BLE001 - an allocator hint must never stop the daemon
        log.debug("malloc_trim failed: %s", exc)
        return False
