"""The state folder's disk fills: a pause, not a death.

Two levels. With a real SQLite database hitting its ``max_page_count`` (the same
``SQLITE_FULL`` a full disk gives), a finished generation whose commit fails is kept,
nothing new is claimed, ``waiting: disk full`` is said, and when room returns the result
goes in without being generated again. With a real small tmpfs as the state folder (root
only), a running daemon says ``waiting: disk full (N MB free)`` on the inbox line and in
``status``, and finishes by itself once space is freed.
"""

from __future__ import annotations

import errno
import sqlite3
from functools import partial
from pathlib import Path

import pytest

from daemon.config import load_config
from daemon.jobs.dispatcher import Dispatcher
from daemon.jobs.ledger import Ledger
from daemon.jobs.state_watch import StateWatch, classify
from daemon.paths import VaultPaths
from tests.faults.common import (
    USER_TEXT,
    check_all_done,
    daemon_ready,
    generations_in_log,
    inbox_lines,
    kill9,
    make_lectures,
    read_jobs,
    tail,
    terminate,
    wait_all_done,
    write_config,
)
from tests.faults.test_disk import fill, kept_full, small_fs  # noqa: F401 - fixture
from tests.faults.test_state_faults import FAST, _expected
from tests.helpers import start_daemon, status_json, vaultd, vaultd_env, wait_for


def test_full_ledger_keeps_the_finished_generation(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULTD_STATE_DIR", str(tmp_path / "state"))
    vault = tmp_path / "vault"
    line = make_lectures(vault, 1, sentences=120)[0]
    key = "file:" + line.split("[[", 1)[1].split("]]", 1)[0]
    write_config(vault, {"daemon": dict(FAST), "pdf": {"enabled": False}})
    config = load_config(vault)
    paths = VaultPaths.from_config(vault, config)
    ledger = Ledger(paths.ledger)
    ledger.add(key, "file", None)
    recovered: list[bool] = []
    watch = StateWatch(paths.state, vault, ledger, relock=lambda: None,
                       on_recovered=lambda: recovered.append(True))
    generated: list[str] = []
    disp = Dispatcher(paths, ledger, config, backend="offline", on_generated=generated.append,
                      on_changed=lambda: None, workers=1, sequential=True)
    disp.watch = watch
    db = ledger._db()  # this thread's connection: the one the sequential dispatcher uses
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count={pages + 1}")

    disp._fill()  # claims, generates, and cannot commit the result

    job = ledger.get(key)
    assert job is not None and job.state == "running" and job.content is None
    assert disp.unsaved() == [key]
    assert watch.paused is not None and watch.paused.startswith("waiting: disk full"), \
        watch.paused
    disp._fill()  # paused: claims nothing, pays nothing
    assert disp.unsaved() == [key] and generated == []

    db.execute("PRAGMA max_page_count=1073741823")  # room again
    watch._next_probe = 0.0
    watch.check()
    assert watch.paused is None and recovered == [True]
    assert disp._save_unsaved()
    job = ledger.get(key)
    assert job is not None and job.state == "generated" and job.content
    assert generated == [key]  # handed to the writer once, generated once
    disp._fill()
    assert ledger.get(key).state == "generated"  # type: ignore[union-attr]
    ledger.close()


def test_enospc_and_sqlite_full_are_both_disk_full(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "x.sqlite3")
    db.execute("CREATE TABLE t (v BLOB)")
    db.execute("PRAGMA max_page_count=3")
    with pytest.raises(sqlite3.OperationalError) as full:
        db.execute("INSERT INTO t VALUES (?)", (b"x" * 100_000,))
    db.close()
    assert classify(full.value) == "full"
    assert classify(OSError(errno.ENOSPC, "No space left on device")) == "full"
    assert classify(OSError(errno.EROFS, "Read-only file system")) == "readonly"
    assert classify(sqlite3.DatabaseError("database disk image is malformed")) == "damaged"
    assert classify(sqlite3.OperationalError("database is locked")) is None


def _line_says(vault: Path, text: str) -> bool:
    return any(text in ln.annotation for ln in inbox_lines(vault))


def test_state_disk_full_pauses_then_resumes(small_fs: Path, tmp_path: Path) -> None:  # noqa: F811
    vault = tmp_path / "vault"
    lines = make_lectures(vault, 3, sentences=40)
    write_config(vault, {"daemon": dict(FAST), "pdf": {"enabled": False}})
    (vault / "inbox.md").write_text(USER_TEXT + "\n".join(lines[:2]) + "\n", encoding="utf-8")
    state = small_fs / "state"
    env = vaultd_env(state)
    log = tmp_path / "daemon.log"
    proc = start_daemon(vault, env, log=log)
    filler = small_fs / "filler.bin"
    try:
        wait_for(partial(daemon_ready, proc, state), timeout=120, what="start-up")
        wait_for(lambda: sum(j["state"] == "done" for j in read_jobs(state).values()) == 2,
                 timeout=120, interval=0.3, what="first two done")
        with kept_full(filler):
            with open(vault / "inbox.md", "a", encoding="utf-8") as fh:
                fh.write(lines[2] + "\n")
            wait_for(partial(_line_says, vault, "waiting: disk full"), timeout=120,
                     interval=0.3, what="the inbox line saying disk full")
            paused = wait_for(lambda: (status_json(vault, env).get("paused") or ""),
                              timeout=60, interval=0.5, what="status paused")
            assert "disk full" in paused and "MB free" in paused, paused
            assert proc.poll() is None, "the daemon died on a full disk"
        filler.unlink()
        wait_all_done(state, 3, what="every source done once space is back")
        assert terminate(proc) == 0, tail(log)
    finally:
        filler.unlink(missing_ok=True)
        kill9(proc)
    text = tail(log, 10**9)
    assert "Traceback" not in text, text[-3000:]
    assert max(generations_in_log(text).values()) == 1
    assert text.count("disk full") < 10, "the fault is logged on every pass"
    check_all_done(vault, _expected(lines), pdf=False)


def test_run_once_with_a_full_state_disk_ends_non_zero(small_fs: Path,  # noqa: F811
                                                       tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    lines = make_lectures(vault, 2, sentences=40)
    write_config(vault, {"daemon": dict(FAST), "pdf": {"enabled": False}})
    (vault / "inbox.md").write_text(USER_TEXT + lines[0] + "\n", encoding="utf-8")
    env = vaultd_env(small_fs / "state")
    first = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    filler = small_fs / "filler.bin"
    try:
        fill(filler)
        with open(vault / "inbox.md", "a", encoding="utf-8") as fh:
            fh.write(lines[1] + "\n")
        second = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=180)
        assert second.returncode != 0, second.stderr[-3000:]
        assert "disk full" in second.stderr and "MB free" in second.stderr, \
            second.stderr[-3000:]
        assert "Traceback" not in second.stderr, second.stderr[-3000:]
    finally:
        filler.unlink(missing_ok=True)
    third = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=300)
    assert third.returncode == 0, third.stderr[-3000:]
    check_all_done(vault, _expected(lines), pdf=False)


def test_read_only_state_folder_is_one_line_not_a_traceback_storm(
        small_fs: Path, tmp_path: Path) -> None:  # noqa: F811
    import subprocess

    vault = tmp_path / "vault"
    lines = make_lectures(vault, 2, sentences=40)
    write_config(vault, {"daemon": dict(FAST), "pdf": {"enabled": False}})
    (vault / "inbox.md").write_text(USER_TEXT + lines[0] + "\n", encoding="utf-8")
    state = small_fs / "state"
    env = vaultd_env(state)
    log = tmp_path / "daemon.log"
    proc = start_daemon(vault, env, log=log)
    try:
        wait_for(partial(daemon_ready, proc, state), timeout=120, what="start-up")
        wait_for(lambda: any(j["state"] == "done" for j in read_jobs(state).values()),
                 timeout=120, interval=0.3, what="first done")
        ro = subprocess.run(["mount", "-o", "remount,ro", str(small_fs)],
                            capture_output=True, text=True)
        if ro.returncode != 0:
            assert terminate(proc) == 0, tail(log)  # a clean stop: no orphaned pool
            pytest.skip(f"cannot remount the state folder read-only: {ro.stderr.strip()}")
        with open(vault / "inbox.md", "a", encoding="utf-8") as fh:
            fh.write(lines[1] + "\n")
        wait_for(partial(_line_says, vault, "read-only"), timeout=120, interval=0.3,
                 what="the inbox line saying read-only")
        paused = wait_for(lambda: status_json(vault, env).get("paused") or "", timeout=60,
                          interval=0.5, what="status paused")
        assert "read-only" in paused, paused
        subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
        wait_all_done(state, 2, what="every source done once writable")
        assert terminate(proc) == 0, tail(log)
    finally:
        kill9(proc)
    text = tail(log, 10**9)
    assert "Traceback" not in text, text[-3000:]
    assert text.count("read-only") <= 3, text[-3000:]
    check_all_done(vault, _expected(lines), pdf=False)


@pytest.mark.slow  # waits out the 30 s stall limit of run --once
def test_run_once_stops_with_the_reason_when_the_disk_fills_mid_run(
        small_fs: Path, tmp_path: Path) -> None:  # noqa: F811
    vault = tmp_path / "vault"
    lines = make_lectures(vault, 6, sentences=60)
    write_config(vault, {"daemon": dict(FAST), "pdf": {"enabled": False}})
    (vault / "inbox.md").write_text(USER_TEXT + "\n".join(lines) + "\n", encoding="utf-8")
    state = small_fs / "state"
    env = vaultd_env(state, TMPDIR=str(tmp_path))  # the spool's fallback folder
    log = tmp_path / "daemon.log"
    proc = start_daemon(vault, env, "--once", log=log)
    filler = small_fs / "filler.bin"
    try:
        wait_for(lambda: any(j["state"] == "done" for j in read_jobs(state).values()),
                 timeout=120, interval=0.05, what="first source done")
        fill(filler)
        code = proc.wait(150)  # never hung: the stall limit is 30 s
        text = tail(log, 10**9)
        assert code != 0, text[-3000:]
        assert "cannot finish: disk full" in text, text[-3000:]
        assert "Traceback" not in text, text[-3000:]
    finally:
        filler.unlink(missing_ok=True)
        kill9(proc)
    again = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=300)
    assert again.returncode == 0, again.stderr[:3000]
    check_all_done(vault, _expected(lines), pdf=False)
    both = text + again.stderr
    if "spooled to" in text:  # a result was finished but not committed at the stop
        assert "from the spool (not generated again)" in again.stderr, again.stderr[:3000]
    assert not list(tmp_path.glob("vaultd-spool-*/*.json")), "spool not emptied"
    assert max(generations_in_log(both).values()) == 1, generations_in_log(both)


@pytest.mark.slow  # waits out the 30 s stall limit of run --once
def test_run_once_with_the_vault_disk_full_ends_non_zero(small_fs: Path,  # noqa: F811
                                                         tmp_path: Path) -> None:
    from tests.faults.test_disk import prepared_vault

    vault, env, lines = prepared_vault(small_fs, tmp_path)
    state = Path(env["VAULTD_STATE_DIR"])
    with open(vault / "inbox.md", "a", encoding="utf-8") as fh:
        fh.write(lines[2] + "\n")
    filler = small_fs / "filler.bin"
    try:
        fill(filler)
        done = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=180)
        assert done.returncode != 0, done.stderr[-3000:]
        assert "cannot finish: disk full" in done.stderr, done.stderr[-3000:]
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        waiting = [j for j in read_jobs(state).values() if j["state"] == "generated"]
        assert len(waiting) == 1 and "disk full" in waiting[0]["last_error"], waiting
    finally:
        filler.unlink(missing_ok=True)
    again = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert not generations_in_log(again.stderr), "generated again after the disk came back"
    check_all_done(vault, lines, pdf=False)


def test_the_service_started_on_a_full_state_disk_waits_then_works(
        small_fs: Path, tmp_path: Path) -> None:  # noqa: F811
    # A full disk at start is a pause for the service, not an exit that systemd turns
    # into a restart loop: the daemon stays up, says why, and goes on once there is room.
    vault = tmp_path / "vault"
    lines = make_lectures(vault, 2, sentences=40)
    write_config(vault, {"daemon": dict(FAST), "pdf": {"enabled": False}})
    (vault / "inbox.md").write_text(USER_TEXT + "\n".join(lines) + "\n", encoding="utf-8")
    state = small_fs / "state"
    env = vaultd_env(state)
    filler = small_fs / "filler.bin"
    log = tmp_path / "daemon.log"
    fill(filler)
    proc = start_daemon(vault, env, log=log)
    try:
        wait_for(lambda: "waiting: vaultd goes on by itself" in tail(log), timeout=60,
                 interval=0.3, what="the daemon saying it waits for room")
        assert proc.poll() is None, tail(log)
        filler.unlink()
        wait_all_done(state, 2, timeout=180, what="every source done once space is back")
        assert terminate(proc) == 0, tail(log)
    finally:
        filler.unlink(missing_ok=True)
        kill9(proc)
    text = tail(log, 10**9)
    assert "Traceback" not in text, text[-3000:]
    assert text.count("cannot open the ledger") == 1, "said once, not on every try"
    check_all_done(vault, _expected(lines), pdf=False)
