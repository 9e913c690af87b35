"""Clock steps: the wall clock set back or forward (suspend, NTP, a manual change)
neither freezes work nor fires it all at once.

The daemon's periodic work (heartbeat, watchdog ping, vault check, rescans) runs on
:class:`daemon.service.ticker.Ticker`, driven here by an injected clock; retry waits in the
ledger are wall-clock times, checked here with the real ledger and a clock set back a
day and forward a day.
"""

from __future__ import annotations

import time
from pathlib import Path

from daemon.jobs.ledger import Ledger
from daemon.service.ticker import Ticker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ticker_runs_on_its_clock_and_coalesces_a_jump() -> None:
    clock = FakeClock()
    ticker = Ticker(clock=clock)
    runs: dict[str, int] = {"heartbeat": 0, "rescan": 0}
    ticker.add_job(lambda: runs.__setitem__("heartbeat", runs["heartbeat"] + 1), 2,
                   id="heartbeat")
    ticker.add_job(lambda: runs.__setitem__("rescan", runs["rescan"] + 1), 30, id="rescan")
    for _ in range(30):  # a minute of 2-second steps: 30 heartbeats, 2 rescans
        clock.now += 2
        ticker.run_due()
    assert runs == {"heartbeat": 30, "rescan": 2}
    clock.now += 86400  # a day in one step (suspend): each job once, not 43,200 times
    ticker.run_due()
    assert runs == {"heartbeat": 31, "rescan": 3}
    clock.now += 2
    ticker.run_due()
    assert runs["heartbeat"] == 32  # and the heartbeat goes on at its pace


def test_ticker_survives_a_failing_job() -> None:
    clock = FakeClock()
    ticker = Ticker(clock=clock)
    runs: list[int] = []
    ticker.add_job(lambda: 1 / 0, 1, id="bad")
    ticker.add_job(lambda: runs.append(1), 1, id="good")
    clock.now += 1
    ticker.run_due()
    clock.now += 1
    ticker.run_due()
    assert runs == [1, 1]


def test_retry_wait_survives_the_clock_set_back_a_day(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    ledger.add("youtube:aaaaaaaaaaa", "youtube", None)
    now = 2_000_000_000.0
    job = ledger.claim_next("me", now=now)
    assert job is not None
    ledger.fail(job.key, "server busy", transient=True, max_attempts=5, backoff_base=10,
                backoff_max=60)
    due = ledger.get(job.key).next_attempt_at  # type: ignore[union-attr]
    # The clock is set back a day: the wait must not become a day longer.
    back = due - 86400
    assert ledger.claim_next("me", now=back, horizon=3600) is not None
    ledger.close()


def test_retry_wait_with_the_clock_forward_keeps_order(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    ledger.add_many([(f"youtube:{c * 11}", "youtube", None, None) for c in "abc"])
    now = time.time()
    assert ledger.claim_next("me", now=now + 86400) is not None  # forward: just due
    assert ledger.claim_next("me", now=now) is not None  # and back: nothing frozen
    ledger.close()
