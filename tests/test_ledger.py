"""Ledger transitions, atomic claims under contention, and crash recovery."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from daemon.jobs.ledger import Ledger, StateConflict, backoff_delay
from vault_tools.models import Usage

RETRY = {"max_attempts": 3, "backoff_base": 10.0, "backoff_max": 100.0}


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger(tmp_path / "ledger.sqlite3")


def test_happy_path_transitions(ledger: Ledger) -> None:
    assert ledger.add("youtube:aaaaaaaaaaa", "youtube", "https://youtu.be/aaaaaaaaaaa")
    assert not ledger.add("youtube:aaaaaaaaaaa", "youtube", "other form")  # same key: one job
    job = ledger.claim_next("me")
    assert job and job.state == "running" and job.attempts == 1
    assert ledger.claim_next("me") is None
    ledger.mark_generated(job.key, '{"x": 1}', Usage(10, 20, 5, 0, 0.01), "Title")
    ledger.mark_written(job.key, "Study Notes/Title.md", "Study Notes/Title (Assessment).md")
    ledger.mark_done(job.key)
    done = ledger.get(job.key)
    assert done and done.state == "done" and done.content == '{"x": 1}'
    assert (done.input_tokens, done.output_tokens, done.cache_read_tokens) == (10, 20, 5)
    assert ledger.usage_on()["tokens"] == 35
    assert ledger.counts()["done"] == 1


def test_wrong_transition_is_refused(ledger: Ledger) -> None:
    ledger.add("k", "youtube", None)
    with pytest.raises(StateConflict):
        ledger.mark_written("k", "a", "b")


def test_transient_failures_wait_then_fail_after_max_attempts(ledger: Ledger) -> None:
    ledger.add("k", "youtube", None)
    for attempt in (1, 2):
        job = ledger.claim_next("me", now=time.time() + 10_000 * attempt)
        assert job and job.attempts == attempt
        assert ledger.fail("k", "blocked", transient=True, **RETRY) == "ready"
        waiting = ledger.get("k")
        assert waiting and waiting.waiting and waiting.next_attempt_at > time.time()
        assert ledger.claim_next("me") is None  # not due yet
    ledger.claim_next("me", now=time.time() + 100_000)
    assert ledger.fail("k", "blocked", transient=True, **RETRY) == "failed"
    job = ledger.get("k")
    assert job and job.state == "failed" and "gave up after 3 attempts" in (job.last_error or "")


def test_offline_waits_keep_attempts_and_back_off_to_the_cap(ledger: Ledger) -> None:
    """A day without network fails nothing: attempts stay, delays grow to the cap, and
    the first real failure after the network returns still has every attempt left."""
    ledger.add("k", "youtube", None)
    delays = []
    for i in range(12):
        job = ledger.claim_next("me", now=time.time() + 1_000_000 * (i + 1))
        assert job is not None
        before = time.time()
        assert ledger.fail("k", "no network", transient=True, offline=True, **RETRY) == "ready"
        waiting = ledger.get("k")
        assert waiting and waiting.waiting and waiting.attempts == 0
        delays.append(waiting.next_attempt_at - before)
    assert delays[0] <= RETRY["backoff_base"] + 1 and max(delays) <= RETRY["backoff_max"] + 1
    assert delays[-1] >= RETRY["backoff_max"] / 2  # grown to the cap (jitter: half to full)
    for attempt in (1, 2):  # back online: a normal transient error counts from the start
        job = ledger.claim_next("me", now=time.time() + 9_000_000 * attempt)
        assert job and job.attempts == attempt
        assert ledger.fail("k", "HTTP 503", transient=True, **RETRY) == "ready"
    assert ledger.get("k").offline_waits == 0


def test_retry_after_is_respected_but_capped(ledger: Ledger) -> None:
    ledger.add("k", "youtube", None)
    ledger.claim_next("me")
    before = time.time()
    ledger.fail("k", "429", transient=True, retry_after=50.0, **RETRY)
    job = ledger.get("k")
    assert job and job.next_attempt_at >= before + 50
    ledger.claim_next("me", now=time.time() + 1000)
    ledger.fail("k", "429", transient=True, retry_after=10_000.0, **RETRY)
    job = ledger.get("k")
    assert job and job.next_attempt_at <= time.time() + 100 + 1


def test_permanent_failure_and_retry(ledger: Ledger) -> None:
    ledger.add("k", "youtube", None)
    ledger.claim_next("me")
    assert ledger.fail("k", "subtitles are off", transient=False, **RETRY) == "failed"
    assert [j.key for j in ledger.recent_failures()] == ["k"]
    assert ledger.retry() == ["k"]
    job = ledger.claim_next("me")
    assert job and job.attempts == 1


def test_retry_of_a_generated_job_does_not_pay_again(ledger: Ledger) -> None:
    ledger.add("k", "youtube", None)
    ledger.claim_next("me")
    ledger.mark_generated("k", "{}", Usage(1, 1), "T")
    for _ in range(3):
        ledger.write_failed("k", "disk full", **RETRY)
    assert ledger.get("k").state == "failed"  # type: ignore[union-attr]
    assert ledger.retry(["k"]) == ["k"]
    assert ledger.get("k").state == "generated"  # type: ignore[union-attr]


def test_invalid_sources_start_failed_with_their_reason(ledger: Ledger) -> None:
    ledger.add("invalid:abc", "youtube", "https://youtu.be/abc", error="not a valid id")
    job = ledger.get("invalid:abc")
    assert job and job.state == "failed" and job.last_error == "not a valid id"
    assert ledger.claim_next("me") is None


def test_recover_returns_running_jobs_to_ready(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    first = Ledger(path)
    first.add("a", "youtube", None)
    first.add("b", "youtube", None)
    first.claim_next("me")
    first.close()
    second = Ledger(path)
    assert second.recover() == 1
    assert second.counts()["ready"] == 2
    job = second.claim_next("me")
    assert job and job.attempts == 1  # the interrupted attempt is not counted twice


def _claimer(path: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    ledger = Ledger(Path(path))
    got = []
    while (job := ledger.claim_next(str(os.getpid()))) is not None:
        got.append(job.key)
    out.put(got)


def test_claims_are_atomic_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    ledger = Ledger(path)
    ledger.add_many([(f"k{i}", "youtube", None, None) for i in range(300)])
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(str(path), out)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    claimed = [k for r in results for k in r]
    assert sorted(claimed) == sorted(f"k{i}" for i in range(300))  # each exactly once


def _generate_then_die(path: str) -> None:
    ledger = Ledger(Path(path))
    job = ledger.claim_next("victim")
    assert job is not None
    ledger.mark_generated(job.key, '{"paid": true}', Usage(1000, 500), "T")
    os.kill(os.getpid(), signal.SIGKILL)


def test_generated_content_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    Ledger(path).add("k", "youtube", None)
    proc = multiprocessing.get_context("spawn").Process(target=_generate_then_die,
                                                        args=(str(path),))
    proc.start()
    proc.join(30)
    assert proc.exitcode == -signal.SIGKILL
    ledger = Ledger(path)
    ledger.recover()
    job = ledger.get("k")
    assert job and job.state == "generated" and job.content == '{"paid": true}'
    assert [j.key for j in ledger.due_writes()] == ["k"]


def test_wal_and_full_sync(ledger: Ledger) -> None:
    db = sqlite3.connect(ledger.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert ledger._db().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_backoff_grows_and_is_capped() -> None:
    delays = [backoff_delay(a, 10, 100) for a in range(1, 8)]
    assert all(5 <= d <= 100 for d in delays)
    assert backoff_delay(1, 10, 100) <= 10 < backoff_delay(4, 10, 100)
