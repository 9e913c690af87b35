"""SIGKILL at random points: start ``vaultd run``, kill -9 after a random delay, restart.

N local subtitle jobs (offline backend) arrive over R rounds, added to the inbox in place
and by rename, before or while the daemon runs. Each round ends with ``kill -9``: the
first just as the first generation commits (so at least one kill surely lands mid-work),
the others at a random moment: during start-up, mid-generation, mid-write, mid-PDF,
mid-inbox edit.
After every kill the ledger (read-only) must not have re-generated anything it had
already committed; at the end one ``vaultd run --once`` finishes the work and the vault
must hold exactly one note and one assessment per source, every line linking its note,
no partial, empty or temp file, and each job generated (paid) exactly once.

Replay a run with the seed it prints: ``VAULTD_FAULTS_SEED=<n>``.
"""

from __future__ import annotations

import subprocess
import time
from functools import partial
from pathlib import Path

import pytest

from tests.faults.common import (
    USER_TEXT,
    check_all_done,
    daemon_ready,
    file_problems,
    generations_in_log,
    kill9,
    make_lectures,
    read_jobs,
    scales,
    seeded_rng,
    tail,
    write_config,
)
from tests.helpers import (
    append_by_rename,
    append_in_place,
    start_daemon,
    tracebacks,
    vaultd,
    vaultd_env,
    wait_for,
)


def first_generation(proc: subprocess.Popen, state: Path) -> bool:  # type: ignore[type-arg]
    return daemon_ready(proc, state) and \
        any(j["generated_at"] for j in read_jobs(state).values())


SIZES = {"reduced": (12, 3), "full": (50, 20)}  # jobs, kill rounds
ACTIVE = ("running", "generated", "written")


@pytest.mark.parametrize("scale", scales())
def test_sigkill_at_random_points(tmp_path: Path, scale: str) -> None:
    n, rounds = SIZES[scale]
    rng, _seed = seeded_rng("sigkill")
    vault, state = tmp_path / "vault", tmp_path / "state"
    lines = make_lectures(vault, n, sentences=24)
    pdf = True
    write_config(vault, {"daemon": {"workers": 2, "debounce_seconds": 0.1,
                                    "rescan_seconds": 2.0},
                         "pdf": {"enabled": pdf}})
    inbox = vault / "inbox.md"
    inbox.write_text(USER_TEXT, encoding="utf-8")
    env = vaultd_env(state)
    log = tmp_path / "daemon.log"

    # Front-load the work: half the lines in the first round, the rest spread out.
    first = max(n // 2, 1)
    rest = lines[first:]
    step = -(-len(rest) // max(rounds - 1, 1))
    chunks = [lines[:first]] + [rest[i:i + step] for i in range(0, len(rest), step)]
    chunks += [[]] * (rounds - len(chunks))
    assert sum(chunks, []) == lines
    started = time.monotonic()
    first_generated: dict[str, float] = {}
    mid_work_kills = 0
    for r in range(rounds):
        before = read_jobs(state) if r else {}
        chunk = chunks[r]
        running_add = bool(chunk) and r % 2 == 1
        if chunk and not running_add:
            append_in_place(inbox, "\n".join(chunk) + "\n")
        proc = start_daemon(vault, env, log=log)
        try:
            if r == 0:
                # One kill is sure to land mid-work: as the first generation commits,
                # with most of the first half of the lines still queued.
                wait_for(partial(first_generation, proc, state), timeout=120,
                         interval=0.02, what="the first generation")
            else:
                # A quarter of the other kills land during start-up, the rest while it works.
                if rng.random() < 0.25:
                    delay = rng.uniform(0.1, 2.0)
                else:
                    wait_for(partial(daemon_ready, proc, state), timeout=120, interval=0.05,
                             what="daemon start-up")
                    delay = rng.uniform(0.0, 3.0)
                if running_add:  # the user pastes while the daemon works
                    add_at = rng.uniform(0.0, delay)
                    with pytest.raises(subprocess.TimeoutExpired):
                        proc.wait(timeout=add_at)
                    append_by_rename(inbox, "\n".join(chunk) + "\n")
                    delay -= add_at
                with pytest.raises(subprocess.TimeoutExpired):  # the daemon must not exit
                    proc.wait(timeout=delay)
        finally:
            kill9(proc)
        jobs = read_jobs(state)
        for key, job in jobs.items():
            if job["generated_at"] is None:
                continue
            seen = first_generated.setdefault(key, job["generated_at"])
            assert job["generated_at"] == seen, f"round {r}: {key} was generated again"
        progressed = any(jobs[k]["state"] != before.get(k, {}).get("state") for k in jobs)
        if progressed and any(j["state"] in ("ready", *ACTIVE) for j in jobs.values()):
            mid_work_kills += 1

    print(f"{rounds} kill rounds took {time.monotonic() - started:.1f} s")
    started = time.monotonic()
    proc_once = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=600)
    print(f"the final --once took {time.monotonic() - started:.1f} s")
    (tmp_path / "once.log").write_text(proc_once.stderr, encoding="utf-8")
    log_text = tail(log, 10**9) + proc_once.stdout + proc_once.stderr
    assert proc_once.returncode == 0, proc_once.stderr[-4000:]
    assert tracebacks(log_text, after_kill=True) == []

    jobs = read_jobs(state)
    assert len(jobs) == n and all(j["state"] == "done" for j in jobs.values()), \
        {k: j["state"] for k, j in jobs.items() if j["state"] != "done"}
    for key, at in first_generated.items():
        assert jobs[key]["generated_at"] == at, f"{key} was generated again at the end"
    assert all(j["generated_at"] and j["content_len"] for j in jobs.values())
    # The log line follows the commit, so a kill may swallow one, never add one.
    paid = generations_in_log(log_text)
    assert set(paid) <= set(jobs) and len(paid) >= n - rounds, sorted(set(jobs) - set(paid))
    assert max(paid.values()) == 1, [k for k, c in paid.items() if c > 1]
    # The test only means something if kills landed while work was under way.
    assert mid_work_kills >= 1, "no kill landed mid-work; widen the delays"
    assert (vault / "inbox.md").read_text(encoding="utf-8").startswith(USER_TEXT)
    assert file_problems(vault) == []
    check_all_done(vault, lines, pdf=pdf)
