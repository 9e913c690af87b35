"""The daemon's periodic jobs on the monotonic clock (rescans, heartbeats, retries).

A scheduler that computes its next run from the wall clock freezes when the clock is
set back (the next run is a day away: heartbeat stuck, watchdog pings stop) and fires
everything at once when it jumps forward. Here every interval is measured on an
injectable monotonic clock, so suspend, NTP steps and manual changes of the date change
nothing. One thread; a job that raises is logged and runs again at its next turn; a
slow job delays the others but never makes them run twice in a row (missed turns
coalesce into one).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("vaultd")


@dataclass
class _Job:
    fn: Callable[[], object]
    every: float
    due: float


class Ticker(threading.Thread):
    """``add_job(fn, seconds, id, first_in=None)``; ``start()``; ``shutdown()``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(name="ticker", daemon=True)
        self.clock = clock
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._changed = threading.Event()

    def add_job(self, fn: Callable[[], object], seconds: float, id: str,  # noqa: A002
                first_in: float | None = None) -> None:
        """Run ``fn`` every ``seconds``; the first time after ``first_in`` (default: one
        interval). Replaces a job with the same id."""
        with self._lock:
            self._jobs[id] = _Job(fn, seconds, self.clock() + (seconds if first_in is None
                                                               else first_in))
        self._changed.set()

    def get_job(self, id: str) -> bool:  # noqa: A002
        with self._lock:
            return id in self._jobs

    def remove_job(self, id: str) -> None:  # noqa: A002
        with self._lock:
            self._jobs.pop(id, None)

    def run_due(self) -> float:
        """Run every job that is due; returns seconds until the next one (tests call
        this directly with a fake clock)."""
        now = self.clock()
        with self._lock:
            due = [(name, job) for name, job in self._jobs.items() if job.due <= now]
            for _name, job in due:
                # From now, not from the old due time: missed turns coalesce.
                job.due = now + job.every
        for name, job in due:
            try:
                job.fn()
            except Exception:  # noqa: BLE001 - a periodic job must not end the others
                log.exception("periodic job %s failed", name)
        with self._lock:
            nxt = min((j.due for j in self._jobs.values()), default=now + 1.0)
        return max(0.0, nxt - self.clock())

    def run(self) -> None:
        while not self._halt.is_set():
            delay = self.run_due()
            self._changed.clear()
            # Wake at least every second: a fake or stepped clock is noticed soon.
            self._changed.wait(min(delay, 1.0))

    def shutdown(self, wait: bool = False) -> None:
        self._halt.set()
        self._changed.set()
        if wait and self.is_alive():
            self.join(timeout=5)
