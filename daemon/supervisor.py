"""Supervision of the daemon's core threads: a thread that dies stops the daemon, loudly.

vaultd runs for months under a service manager. A core thread (writer, dispatcher,
watcher, graph keeper, scheduler) that died silently used to leave a process that
looked alive -- heartbeat written, watchdog pinged -- but never annotated another inbox
line, and ``run --once`` never ended. The rule now: errors in one piece of work are
handled where they happen (the writer fails that job and takes the next command), and a
thread that dies *anyway* is final. The :class:`Supervisor` then

* logs the death once, with the traceback when there is one;
* records the reason (``failure``), which the daemon puts into ``daemon.json`` (so
  ``vaultd status`` says so) and into ``last-failure.json`` in the state dir (kept after
  the process is gone, shown by ``status`` until a clean stop);
* sets ``failed``, on which the run loop ends; the daemon stops sending the systemd
  watchdog ping, shuts down what still runs and exits non-zero, so systemd (or launchd)
  restarts it. Nothing accepted is lost: the ledger holds every job.

Two ways of noticing: :meth:`adopt` wraps a ``threading.Thread``'s ``run`` so an
exception escaping it is reported at once; :meth:`watch` registers a liveness check
(for threads the daemon does not own, such as watchdog's observer or APScheduler's
loop) that :meth:`check` polls from the run loop. For those, a ``threading.excepthook``
keeps the exception that ended the thread, so the reason names it. Deliberate stops are not deaths:
:meth:`stopping` is called before the daemon stops its threads.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import traceback
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemon.secrets import scrub

log = logging.getLogger("vaultd.supervisor")

LAST_FAILURE = "last-failure.json"
_uncaught: weakref.WeakKeyDictionary[threading.Thread, BaseException] = \
    weakref.WeakKeyDictionary()
_previous_hook = threading.excepthook


def _excepthook(args: threading.ExceptHookArgs) -> None:
    """Remember what ended a thread; a supervised one is logged by the supervisor."""
    if args.thread is not None and args.exc_value is not None:
        _uncaught[args.thread] = args.exc_value
        if getattr(args.thread, "_vaultd_supervised", False):
            return
    _previous_hook(args)


threading.excepthook = _excepthook


class Supervisor:
    """Watches core threads; the first death ends the daemon (see the module doc)."""

    def __init__(self, state_dir: Path,
                 on_failure: Callable[[str], None] | None = None) -> None:
        self.state_dir = state_dir
        self.on_failure = on_failure
        self.failure: str | None = None
        self.failed = threading.Event()
        self._checks: dict[str, Callable[[], bool]] = {}
        self._threads: dict[str, Callable[[], list[threading.Thread]]] = {}
        self._stopping = False
        self._lock = threading.Lock()

    # -- registration ------------------------------------------------------------------
    def adopt(self, thread: threading.Thread, name: str | None = None) -> None:
        """Before ``thread.start()``: an exception escaping its ``run`` is a death, and
        so is the thread ending on its own while the daemon is not stopping."""
        label = name or thread.name
        body = thread.run

        def supervised_run() -> None:
            try:
                body()
            except BaseException as exc:  # noqa: BLE001 - the point: nothing dies silently
                self.died(label, exc)
                return
            if not self._stopping:
                self.died(label, None)

        thread.run = supervised_run  # type: ignore[method-assign]

    def watch(self, name: str, alive: Callable[[], bool],
              threads: Callable[[], list[threading.Thread]] = list) -> None:
        """Register a liveness check polled by :meth:`check`; ``threads`` lists the
        threads behind it (their uncaught exception becomes the reason)."""
        self._checks[name] = alive
        self._threads[name] = threads
        self._mark(threads)

    # -- events ------------------------------------------------------------------------
    def stopping(self) -> None:
        """The daemon is stopping its threads on purpose: ends are not deaths now."""
        self._stopping = True

    def check(self) -> str | None:
        """Poll the liveness checks; returns the failure (old or new) or None."""
        if not self._stopping and not self.failed.is_set():
            for name, alive in list(self._checks.items()):
                try:
                    ok = alive()
                except Exception as exc:  # noqa: BLE001 - a broken check is a dead thread
                    self.died(name, exc)
                    break
                if not ok:
                    self.died(name, self._exception_of(name))
                    break
                self._mark(self._threads[name])
        # A death counts once it is reported (daemon.json, sd_notify): ``failed`` is set
        # after that, so a run loop that ends on it never beats the report.
        return self.failure if self.failed.is_set() else None

    @staticmethod
    def _mark(threads: Callable[[], list[threading.Thread]]) -> None:
        for thread in threads():
            thread._vaultd_supervised = True  # type: ignore[attr-defined]

    def _exception_of(self, name: str) -> BaseException | None:
        return next((_uncaught[t] for t in self._threads[name]() if t in _uncaught), None)

    def died(self, name: str, exc: BaseException | None) -> None:
        """Record the death of ``name`` (the first one wins; later ones are logged)."""
        what = f": {type(exc).__name__}: {exc}" if exc is not None else \
            " (it stopped without an error)"
        reason = scrub(f"the {name} thread died{what}")
        with self._lock:
            first = self.failure is None
            if first:
                self.failure = reason
        if exc is not None:
            log.critical("%s; vaultd stops so the service manager restarts it", reason,
                         exc_info=(type(exc), exc, exc.__traceback__))
        else:
            log.critical("%s; vaultd stops so the service manager restarts it", reason)
        if not first:
            return
        self._record(reason, exc)
        if self.on_failure is not None:  # reported before the run loop may see it and end
            try:
                self.on_failure(reason)
            except Exception:  # noqa: BLE001 - reporting must not hide the death
                log.exception("could not report the failure")
        self.failed.set()

    # -- the record kept after exit ------------------------------------------------------
    def _record(self, reason: str, exc: BaseException | None) -> None:
        data: dict[str, Any] = {"reason": reason, "at": time.time(), "pid": os.getpid()}
        if exc is not None:
            data["traceback"] = scrub("".join(traceback.format_exception(exc))[-4000:])
        try:
            path = self.state_dir / LAST_FAILURE
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as err:
            log.error("could not record the failure in %s: %s", self.state_dir, err)

    def clear_record(self) -> None:
        """A clean stop: the last failure is history."""
        (self.state_dir / LAST_FAILURE).unlink(missing_ok=True)


def read_last_failure(state_dir: Path) -> dict[str, Any] | None:
    """The failure that ended the last run (``reason``, ``at``), or None."""
    try:
        data = json.loads((state_dir / LAST_FAILURE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "reason" not in data:
        return None
    return {"reason": scrub(str(data["reason"])), "at": data.get("at")}
