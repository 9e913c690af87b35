"""Workers die with the daemon: after ``kill -9`` of ``vaultd run`` no pool worker, fork
server or resource tracker of it stays alive (issue 17, item 5).

Real processes throughout: the daemon as a subprocess, real ``ProcessPoolExecutor``
pools with the start methods vaultd uses (``spawn``) or may use (``forkserver``), and
the process table read from ``/proc``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest

from daemon.jobs import orphans
from tests import procs
from tests.faults.common import kill9
from tests.held_model import FakeAnthropic, held_model
from tests.helpers import TOPICS, append_in_place, lecture_srt, start_daemon, wait_for
from tests.test_e2e_run import done_lines, make_vault

pytestmark = pytest.mark.skipif(not procs.HAS_PROC, reason="reads the process table from /proc")

DEADLINE = 10.0  # seconds a worker may take to notice its daemon died


def all_gone(pids: list[int]) -> list[int]:
    """The pids still alive (an empty list is truthy-false: poll for ``not alive``)."""
    return [pid for pid in pids if procs.alive(pid)]


def wait_all_gone(children: list[procs.Proc]) -> None:
    pids = [p.pid for p in children]
    deadline = time.monotonic() + DEADLINE
    while (left := all_gone(pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    still = [procs.read(pid) for pid in left]
    assert not left, f"alive {DEADLINE:.0f} s after the daemon was killed: {still}"


def test_kill9_mid_work_leaves_no_process_behind(tmp_path: Path) -> None:
    vault, env, _ = make_vault(tmp_path, 0)
    (vault / "Lectures" / "long.srt").write_text(lecture_srt(TOPICS[0], 200, seed=9))
    (vault / "Lectures" / "short.srt").write_text(lecture_srt(TOPICS[1], 40, seed=1))
    with held_model() as (fake, release, model_env):
        proc = start_daemon(vault, {**env, **model_env}, "--workers", "2",
                            log=tmp_path / "log")
        try:
            kill_mid_work(vault, proc, fake, release)
        finally:
            kill9(proc)


def kill_mid_work(vault: Path, proc: subprocess.Popen[bytes], fake: FakeAnthropic,
                  release: threading.Event) -> None:
    """The short lecture done (its PDF handed to the PDF pool), the long one's model call
    held at the stand-in (a worker certainly mid-job): kill -9, then no process left."""
    wait_for(lambda: (vault / "inbox.md").exists(), what="start")
    release.set()
    append_in_place(vault / "inbox.md", "- [[Lectures/short.srt]]\n")
    wait_for(lambda: done_lines(vault) == 1, timeout=120, what="short lecture done")
    release.clear()
    seen = len(fake.message_requests())
    append_in_place(vault / "inbox.md", "- [[Lectures/long.srt]]\n")
    wait_for(lambda: any(r.body["messages"][0]["content"].startswith("Write the study note")
                         for r in fake.message_requests()[seen:]),
             what="the long lecture's model call in flight")
    children = procs.descendants(proc.pid)
    # Spawned workers, or (Linux) the fork server and the workers forked from it.
    workers = [p for p in children if "spawn_main" in p.cmdline
               or "multiprocessing.forkserver" in p.cmdline]
    assert len(workers) >= 2, children  # generation pool + PDF pool
    assert any("resource_tracker" in p.cmdline for p in children), children
    kill9(proc)
    wait_all_gone(children)


# A stand-in daemon: creates a pool the way vaultd does (``orphans.initializer`` run in
# the pool's creator), puts every worker to work, says so, and waits to be killed.
POOL_OWNER = textwrap.dedent("""
    import sys, time
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context
    from daemon.jobs import orphans

    if __name__ == "__main__":
        init, initargs = orphans.initializer(None)
        pool = ProcessPoolExecutor(2, mp_context=get_context(sys.argv[1]),
                                   initializer=init, initargs=initargs)
        futures = [pool.submit(time.sleep, 600) for _ in range(3)]
        print("working", flush=True)
        time.sleep(600)
""")


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_pool_workers_die_with_their_daemon(tmp_path: Path, method: str) -> None:
    script = tmp_path / "owner.py"
    script.write_text(POOL_OWNER)
    root = Path(__file__).resolve().parents[1]
    owner = subprocess.Popen([sys.executable, str(script), method], cwd=root,
                             env={**os.environ, "PYTHONPATH": str(root)},
                             stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "working"

        def busy() -> list[procs.Proc]:
            children = procs.descendants(owner.pid)
            parents = {p.ppid for p in children}  # the fork server is one
            workers = [p for p in children if "resource_tracker import" not in p.cmdline
                       and p.pid not in parents]
            return children if len(workers) >= 2 else []

        children = wait_for(busy, timeout=60, what="two busy pool workers")
        kill9(owner)
        wait_all_gone(children)
    finally:
        kill9(owner)


def _pid() -> int:
    return os.getpid()


def test_a_worker_outlives_the_thread_that_started_it() -> None:
    """Why ``spawn`` workers get no PDEATHSIG: its "parent" is the thread that started
    the worker, and a worker started by a thread that then ends must keep working."""
    init, initargs = orphans.initializer(None)
    with ProcessPoolExecutor(1, mp_context=get_context("spawn"), initializer=init,
                             initargs=initargs) as pool:
        first: list[int] = []
        starter = threading.Thread(target=lambda: first.append(pool.submit(_pid).result(60)))
        starter.start()
        starter.join(90)
        assert first, "the first job never ran"
        time.sleep(0)  # the starting thread has ended: the worker must still serve
        assert pool.submit(_pid).result(60) == first[0]
        assert procs.alive(first[0])
