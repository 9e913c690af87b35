"""Faults of the state folder: a damaged or cut-off ledger, the folder deleted (idle and
mid-work), its disk full. What a user checks afterwards: every source ends done (or
failed with a reason), no note is duplicated, no generation is repeated, and the daemon
is still running or has stopped non-zero with a reason — never hung, never a crash loop.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from functools import partial
from pathlib import Path

import pytest

from tests.faults.common import (
    USER_TEXT,
    check_all_done,
    daemon_ready,
    generations_in_log,
    kill9,
    ledger_file,
    make_lectures,
    read_jobs,
    tail,
    terminate,
    wait_all_done,
    write_config,
)
from tests.helpers import start_daemon, vaultd, vaultd_env, wait_for

FAST = {"workers": 1, "debounce_seconds": 0.1, "backoff_base_seconds": 0.2,
        "backoff_max_seconds": 1.0, "max_attempts": 50}


def _vault(tmp_path: Path, n: int, first: int, *, sentences: int = 40
           ) -> tuple[Path, dict[str, str], list[str]]:
    vault = tmp_path / "vault"
    lines = make_lectures(vault, n, sentences=sentences)
    write_config(vault, {"daemon": dict(FAST), "pdf": {"enabled": False}})
    (vault / "inbox.md").write_text(USER_TEXT + "\n".join(lines[:first]) + "\n",
                                    encoding="utf-8")
    return vault, vaultd_env(tmp_path / "state"), lines


def _add(vault: Path, lines: list[str]) -> None:
    with open(vault / "inbox.md", "a", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in lines))


def _expected(lines: list[str]) -> list[str]:
    from vault_tools.inbox import parse_inbox
    return [ln.body for ln in parse_inbox(USER_TEXT + "\n".join(lines) + "\n")]


def _damage(path: Path, how: str) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    size = path.stat().st_size
    if how == "truncated":
        os.truncate(path, size // 2)
    else:  # 4 KiB of random bytes in the middle
        with open(path, "r+b") as fh:
            fh.seek((size // 2) // 4096 * 4096)
            fh.write(os.urandom(4096))


@pytest.mark.parametrize("how", ["random-page", "truncated"])
def test_damaged_ledger_is_moved_aside_and_rebuilt(tmp_path: Path, how: str) -> None:
    vault, env, lines = _vault(tmp_path, 3, 2)
    state = tmp_path / "state"
    first = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    path = ledger_file(state)
    assert path is not None
    # Enough rows that the damaged middle is real data, not free pages.
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE test_padding (v TEXT)")
    db.executemany("INSERT INTO test_padding VALUES (?)", [("x" * 300,)] * 600)
    db.commit()
    db.close()
    _damage(path, how)

    doctor = vaultd("doctor", "--vault", str(vault), "--no-network", env=env)
    assert not re.search(r"^ok\s+ledger", doctor.stdout, re.M), doctor.stdout
    assert re.search(r"^fail\s+ledger\s+\S+ is damaged: ", doctor.stdout, re.M), doctor.stdout
    status = vaultd("status", "--vault", str(vault), env=env)
    assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr
    assert re.search(r"^ledger:\s+damaged \(", status.stdout, re.M), status.stdout

    _add(vault, lines[2:])
    second = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Traceback" not in second.stderr, second.stderr[-3000:]
    assert "moved aside" in second.stderr
    assert list(path.parent.glob("ledger.corrupt-*.sqlite3")), "damaged copy not kept"
    check_all_done(vault, _expected(lines), pdf=False)
    regenerated = generations_in_log(second.stderr)
    old = {f"file:{ln.split('[[', 1)[1].split(']]', 1)[0]}" for ln in lines[:2]}
    assert not old & set(regenerated), f"paid twice: {regenerated}"
    assert len(regenerated) == 1, regenerated
    # And the next start finds a healthy ledger: no repair loop.
    third = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=300)
    assert third.returncode == 0 and "moved aside" not in third.stderr, third.stderr[-2000:]
    after = vaultd("status", "--vault", str(vault), env=env).stdout
    assert re.search(r"^ledger:\s+repaired .* moved aside to ledger\.corrupt-", after, re.M), \
        after


def _state_dir(state: Path) -> Path:
    found = [p for p in state.iterdir() if p.is_dir()]
    assert len(found) == 1, found
    return found[0]


def test_state_folder_deleted_while_idle(tmp_path: Path) -> None:
    vault, env, lines = _vault(tmp_path, 3, 2)
    state = tmp_path / "state"
    log = tmp_path / "daemon.log"
    proc = start_daemon(vault, env, log=log)
    try:
        wait_for(partial(daemon_ready, proc, state), timeout=120, what="start-up")
        wait_for(lambda: sum(j["state"] == "done" for j in read_jobs(state).values()) == 2,
                 timeout=120, interval=0.3, what="first two done")
        folder = _state_dir(state)
        shutil.rmtree(folder)
        wait_for(lambda: (folder / "ledger.sqlite3").exists()
                 and (folder / "daemon.json").exists(), timeout=60, interval=0.3,
                 what="state folder recreated")
        # The lock is back: a second daemon on the same vault refuses to start.
        other = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=120)
        assert other.returncode != 0 and "already running" in other.stderr, other.stderr
        _add(vault, lines[2:])
        wait_all_done(state, 3, what="every source done after the rebuild")
        assert terminate(proc) == 0, tail(log)
    finally:
        kill9(proc)
    text = tail(log, 10**9)
    assert "vanished" in text
    assert "Traceback" not in text, text[-3000:]
    assert max(generations_in_log(text).values()) == 1, generations_in_log(text)
    check_all_done(vault, _expected(lines), pdf=False)


def test_state_folder_deleted_mid_work(tmp_path: Path) -> None:
    vault, env, lines = _vault(tmp_path, 10, 10, sentences=200)
    state = tmp_path / "state"
    log = tmp_path / "daemon.log"
    proc = start_daemon(vault, env, "--workers", "2", log=log)
    try:
        wait_for(partial(daemon_ready, proc, state), timeout=120, what="start-up")
        wait_for(lambda: any(j["state"] in ("running", "generated", "written", "done")
                             for j in read_jobs(state).values()), timeout=120,
                 interval=0.05, what="work under way")
        shutil.rmtree(_state_dir(state))
        wait_all_done(state, 10, timeout=240, what="every source done after the rebuild")
        assert terminate(proc) == 0, tail(log)
    finally:
        kill9(proc)
    text = tail(log, 10**9)
    assert "Traceback" not in text, text[-3000:]
    assert max(generations_in_log(text).values()) == 1, generations_in_log(text)
    check_all_done(vault, _expected(lines), pdf=False)
    assert "⚙️" not in (vault / "inbox.md").read_text(encoding="utf-8")


def test_state_folder_cannot_be_recreated_stops_non_zero(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root can always recreate the folder (permissions do not stop it)")
    vault, env, _lines = _vault(tmp_path, 1, 1)
    state = tmp_path / "state"
    log = tmp_path / "daemon.log"
    proc = start_daemon(vault, env, log=log)
    try:
        wait_for(partial(daemon_ready, proc, state), timeout=120, what="start-up")
        shutil.rmtree(_state_dir(state))
        state.chmod(0o500)
        assert proc.wait(60) != 0
    finally:
        state.chmod(0o700)
        kill9(proc)
    assert "cannot be recreated" in tail(log)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test_two_sigterms_stop_cleanly(tmp_path: Path) -> None:
    vault, env, _lines = _vault(tmp_path, 4, 4, sentences=200)
    state = tmp_path / "state"
    log = tmp_path / "daemon.log"
    proc = start_daemon(vault, env, "--workers", "2", log=log)
    try:
        wait_for(partial(daemon_ready, proc, state), timeout=120, what="start-up")
        wait_for(lambda: any(j["state"] == "running" for j in read_jobs(state).values()),
                 timeout=60, interval=0.05, what="a job in flight")
        children = wait_for(lambda: subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True,
            text=True).stdout.split(), timeout=30, what="pool processes")
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.05)  # the point of the test: the second signal 50 ms later
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(120)
    finally:
        kill9(proc)
    assert code == 0, tail(log)
    assert "stopped" in tail(log)
    # No orphaned pool worker left running after the daemon.
    wait_for(lambda: not [p for p in children if _alive(int(p))], timeout=10,
             what=f"pool processes {children} gone")
    assert all(j["state"] != "running" for j in read_jobs(state).values())


def test_damage_met_at_run_time_is_repaired_in_place(tmp_path: Path) -> None:
    """A thread meets a real ``DatabaseError`` reading a damaged page: the watch runs
    ``quick_check``, moves the file aside and rebuilds, and the same Ledger object works
    again (the other threads reconnect), with the vault's note found as done."""
    from daemon.jobs.ledger import Ledger
    from daemon.jobs.state_watch import StateWatch

    state, vault = tmp_path / "state", tmp_path / "vault"
    (vault / "Study Notes").mkdir(parents=True)
    (vault / "Study Notes" / "Gravity.md").write_text(
        "---\ntype: study-note\ntitle: Gravity\nsource_key: file:Lectures/gravity.srt\n"
        "assessment: '[[Study Notes/Gravity (Assessment)]]'\n---\n# Gravity\n\nText.\n",
        encoding="utf-8")
    ledger = Ledger(state / "ledger.sqlite3")
    ledger.add_many([(f"youtube:{i:011d}", "youtube", None, None) for i in range(3000)])
    ledger.add("file:Lectures/gravity.srt", "file", None)
    ledger.close()
    _damage(ledger.path, "random-page")
    recovered: list[bool] = []
    watch = StateWatch(state, vault, ledger, relock=lambda: None,
                       on_recovered=lambda: recovered.append(True))
    met: sqlite3.DatabaseError | None = None
    reads = [ledger.all_jobs, ledger.counts,  # the table, then the state index
             lambda: ledger.get_many(f"youtube:{i:011d}" for i in range(3000))]
    for read in reads:  # what the threads do; one of them meets the damaged page
        try:
            read()
        except sqlite3.DatabaseError as exc:
            met = exc
            break
    assert met is not None, "the damaged page was never read"
    assert watch.report(met)
    watch.check()
    assert recovered == [True]
    assert list(state.glob("ledger.corrupt-*.sqlite3"))
    job = ledger.get("file:Lectures/gravity.srt")
    assert job is not None and job.state == "done" and job.note_path == "Study Notes/Gravity.md"
    assert len(ledger.all_jobs()) > 2000  # most rows salvaged from both ends
    assert watch.note and "repaired" in watch.note
    ledger.close()
