"""How worker processes start (one forkserver with the heavy modules imported once),
and how a pool of them is stopped (:func:`terminate_pool`).

Owns the multiprocessing context of the generation and PDF pools. Spawning a worker
means a fresh interpreter that imports the ``vaultd`` entry script (all of
``daemon.cli.commands``), the anthropic SDK and requests before it can take a job: measured on
a loaded 2-core machine, ``import anthropic`` alone takes 2–7 s, eight workers doing it
at once kept the first model call ~10 s away (see benchmarks/README.md, "Cold start").

With ``forkserver`` (Linux; macOS opts in, see :func:`method`) one server process
imports those modules once (:data:`GENERATION_PRELOAD`, chosen by backend) and every
worker is a copy-on-write fork of it: a few milliseconds, and the imported pages are
shared between workers. The server is started by :func:`start_early` as early as
possible (:mod:`daemon.cli.entry`, before the CLI is imported; else when the dispatcher is
built), so its imports overlap the daemon's own start-up. Elsewhere the pools use ``spawn``, as they
did before.

Process tree: daemon -> forkserver -> workers, so a worker's parent is the fork
server, not the daemon. The fork server exits only once the daemon *and every worker*
have closed its "alive" pipe (multiprocessing hands each worker a copy of the write
end), so a parent-death signal (``PR_SET_PDEATHSIG``) or an ``os.getppid()`` watch in a
worker would wait on the fork server, which waits on the worker. A worker that must
notice the daemon's death watches :func:`daemon_pid` instead (the pid of the process
that created its pool, handed over by :func:`pool_kwargs`).

A forkserver is started once per daemon process and keeps the environment it was
started with; :func:`pool_kwargs` therefore hands each pool's workers the daemon's
environment *at pool creation* (what spawn did implicitly), then runs the pool's own
initializer (logging, and whatever else a pool needs in its workers).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext
from typing import Any

log = logging.getLogger("vaultd.warmstart")

# Imported once in the forkserver; a generation worker needs these before its first job.
# ``__main__`` (the vaultd entry script, which imports daemon.cli.commands) first: every worker
# would otherwise import it again to unpickle its task.
GENERATION_PRELOAD = ["__main__", "daemon.logs", "daemon.generate.worker",
                      "daemon.sources.youtube"]
# The SDKs are named themselves: daemon.generate.claude_client / openai_backend import
# them only on first use (so that the daemon process, which builds a client for topic
# synthesis at start, never pays for them), and a worker must not pay either.
# daemon.generate.sdk_warmup then builds (and closes) one throwaway client, so that what
# the SDK imports and caches on its first client is in the pages workers are forked from.
BACKEND_PRELOAD = {
    "claude": ["daemon.generate.claude", "anthropic",  # the SDK: the heaviest import
               "daemon.generate.sdk_warmup"],
    "openai": ["daemon.generate.openai_backend", "openai", "daemon.generate.sdk_warmup"],
    "offline": ["daemon.generate.offline"],  # numpy, scipy, networkx (TextRank)
}
# Last of every preload: freezes the preloaded objects out of the collector's sight, so
# that a worker's garbage collections do not copy the shared pages.
FREEZE = "daemon.jobs.fork_freeze"
_lock = threading.Lock()
_started = False


def method() -> str:
    """``forkserver`` on Linux, ``spawn`` elsewhere.

    macOS has a fork server too, but a forked process there may crash in system
    frameworks (proxy lookup, Objective-C runtime) that the parent touched; CPython itself
    defaults to spawn on macOS, and so does vaultd until it is tested there.
    ``VAULTD_START_METHOD`` (``spawn`` / ``forkserver``) overrides, for comparisons and
    for a platform where one of them misbehaves.
    """
    wanted = os.environ.get("VAULTD_START_METHOD", "").strip()
    available = multiprocessing.get_all_start_methods()
    if wanted in ("spawn", "forkserver") and wanted in available:
        return wanted
    return "forkserver" if sys.platform.startswith("linux") and "forkserver" in available \
        else "spawn"


def context() -> BaseContext:
    return multiprocessing.get_context(method())


def start_early(backend: str) -> None:
    """Start the forkserver now, preloading what ``backend``'s workers import.

    Idempotent and cheap for the caller (the server does its imports in its own
    process). The preload list is fixed by the first call in a process; a later call
    for another backend changes nothing (its workers import the rest on first use).
    """
    global _started
    if method() != "forkserver":
        return
    with _lock:
        if _started:
            return
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(GENERATION_PRELOAD + BACKEND_PRELOAD.get(backend, [])
                                   + [FREEZE])
        try:
            from multiprocessing import forkserver

            forkserver.ensure_running()
        except OSError as exc:  # e.g. no room for the socket: workers start on demand
            log.warning("could not start the worker fork server early: %s", exc)
            return
        _started = True


_daemon_pid: int | None = None


def daemon_pid() -> int:
    """In a pool worker: the pid of the daemon that created the pool (not the fork
    server). Elsewhere: the parent's pid."""
    return _daemon_pid if _daemon_pid is not None else os.getppid()


def _start_worker(env: dict[str, str], pid: int, initializer: Callable[..., object] | None,
                  initargs: Sequence[Any]) -> None:
    """Runs first in every worker: the daemon's environment and pid, then the pool's
    own initializer."""
    global _daemon_pid
    _daemon_pid = pid
    if os.environ != env:
        os.environ.clear()
        os.environ.update(env)
    if initializer is not None:
        initializer(*initargs)


def pool_kwargs(initializer: Callable[..., object] | None = None,
                initargs: Sequence[Any] = ()) -> dict[str, Any]:
    """``mp_context`` / ``initializer`` / ``initargs`` for a ``ProcessPoolExecutor``."""
    return {"mp_context": context(), "initializer": _start_worker,
            "initargs": (dict(os.environ), os.getpid(), initializer, tuple(initargs))}


def warm(backend: str) -> int:
    """A pool task that returns at once: submitted first, it makes one worker exist
    (and import its backend's modules) before the first real job arrives."""
    import importlib

    for name in GENERATION_PRELOAD[1:] + BACKEND_PRELOAD.get(backend, []):
        importlib.import_module(name)
    return os.getpid()


def terminate_pool(pool: ProcessPoolExecutor, grace: float = 0.0) -> None:
    """Stop a process pool: queued work is cancelled, idle workers are given ``grace``
    seconds to take the pool's exit message and end normally, then every worker still
    running is terminated (what it was doing is given back to the queue by the caller,
    or resumes from its persisted chunks).

    An idle worker must end normally, not by SIGTERM: a terminated process runs no
    finalizers, so a semaphore it made (tqdm's lock in faster-whisper's worker) stays
    registered with the resource tracker, which then warns at exit about "leaked
    semaphore objects"."""
    procs = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + grace
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.terminate()
