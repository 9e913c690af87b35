"""Pool workers die with the daemon: no process outlives a ``kill -9`` of ``vaultd run``.

A process-pool worker blocks on its call queue; when the daemon is killed (SIGKILL, OOM
killer, a crash) nothing tells the worker, so it used to live on under PID 1 -- and with
it the multiprocessing resource tracker, which exits only when every holder of its pipe
(the daemon *and* its workers) is gone. This module owns the one mechanism that ends
them: every pool is created with :func:`initializer`, which runs in each worker before
the pool's own initializer and

- starts a watcher thread that polls, twice a second, whether the worker's parent
  changed (it is re-parented when its parent dies) or the daemon (whose pid the pool
  passes in) is gone, and then ends the worker with ``os._exit``. This is the portable
  part (macOS has no ``prctl``) and covers every start method: with ``spawn`` the parent
  *is* the daemon; with ``forkserver`` the parent is the fork server, which itself exits
  when the daemon's end of its "alive" pipe closes.
- on Linux, when the parent is such a single-threaded intermediate (the fork server),
  also sets ``PR_SET_PDEATHSIG`` to SIGKILL through ``prctl``, so the kernel ends the
  worker even if it is stuck in C code holding the GIL. It is deliberately *not* set when
  the parent is the daemon itself (``spawn``): the "parent" of PDEATHSIG is the *thread*
  that started the worker, and a pool starts workers from whichever daemon thread
  submits first -- that thread ending (a drain, a finished helper thread) would kill a
  healthy worker mid-job.

When the workers are gone the resource tracker sees EOF on its pipe and exits too, so
it needs no hook of its own.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

POLL_SECONDS = 0.5
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def initializer(init: Callable[..., Any] | None = None, *args: Any
                ) -> tuple[Callable[..., None], tuple[Any, ...]]:
    """``(initializer, initargs)`` for a pool created in the daemon process.

    The worker first arranges to die with this process, then runs ``init(*args)`` (the
    pool's own set-up, e.g. logging). Call it in the process that creates the pool: it
    records that process's pid.
    """
    return _init_worker, (os.getpid(), init, args)


def _init_worker(daemon_pid: int, init: Callable[..., Any] | None,
                 args: tuple[Any, ...]) -> None:
    die_with(daemon_pid)
    if init is not None:
        init(*args)


def die_with(daemon_pid: int) -> None:
    """End this process when ``daemon_pid`` or this process's current parent dies."""
    parent = os.getppid()
    if parent != daemon_pid:
        _set_pdeathsig()
    if os.getppid() != parent or not _alive(daemon_pid):
        os._exit(1)  # the parent died before we could watch it
    threading.Thread(target=_watch, args=(daemon_pid, parent), name="vaultd-orphan-watch",
                     daemon=True).start()


def _watch(daemon_pid: int, parent: int) -> None:
    while os.getppid() == parent and _alive(daemon_pid):
        time.sleep(POLL_SECONDS)
    os._exit(1)


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a killed daemon whose own parent
    has not reaped it yet still answers ``kill(pid, 0)``)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if sys.platform.startswith("linux"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                return fh.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
        except (OSError, IndexError):
            return False
    return True


def _set_pdeathsig() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the watcher thread still ends the worker
