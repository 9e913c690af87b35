"""The daemon as a service: READY only when armed, SIGTERM mid-batch, a vanishing vault,
a dying worker process. Each runs ``vaultd run`` as a subprocess on a temp vault."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

from daemon.paths import state_dir_for
from tests.held_model import held_model
from tests.helpers import (
    TOPICS,
    append_in_place,
    lecture_srt,
    start_daemon,
    status_json,
    wait_for,
)
from tests.test_e2e_run import check_vault, done_lines, make_vault, notes_in
from vault_tools.inbox import parse_inbox


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(x) for x in out.split()]


def pool_workers(pid: int) -> list[int]:
    """Process-pool workers of the daemon: spawned children, or (Linux) forks of its
    fork server (daemon.jobs.warm_start); not the resource tracker or the fork server."""
    found = []
    for child in _children(pid):
        try:
            cmd = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmd and b"resource_tracker" not in cmd:
            found.append(child)
        elif b"multiprocessing.forkserver" in cmd:
            found += _children(child)
    return found


def test_ready_is_sent_only_when_the_watcher_is_armed(tmp_path: Path) -> None:
    vault, env, lines = make_vault(tmp_path, 1)
    (vault / ".vaultd").mkdir()
    # No rescans during the test: only the watcher can notice the new line.
    (vault / ".vaultd" / "config.toml").write_text("[daemon]\nrescan_seconds = 3600\n"
                                                   "[pdf]\nenabled = false\n")
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(60)
    proc = start_daemon(vault, {**env, "NOTIFY_SOCKET": str(sock_path)}, log=tmp_path / "log")
    try:
        messages: list[str] = []
        while not any("READY=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        # Armed: a line typed right after READY is picked up by the watcher alone.
        append_in_place(vault / "inbox.md", lines[0] + "\n")
        wait_for(lambda: done_lines(vault) == 1, what="line processed via the watcher")
        proc.send_signal(signal.SIGTERM)  # once: a second signal means "exit at once"
        while "STOPPING=1" not in messages[-1]:
            messages.append(sock.recv(4096).decode())
        assert proc.wait(60) == 0
        assert any("STATUS=" in m for m in messages)
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()


def test_sigterm_mid_batch_loses_and_doubles_nothing(tmp_path: Path) -> None:
    n = 10
    vault, env, lines = make_vault(tmp_path, n)
    append_in_place(vault / "inbox.md", "\n".join(lines) + "\n")
    log = tmp_path / "log"
    proc = start_daemon(vault, env, "--workers", "2", log=log)
    wait_for(lambda: len(notes_in(vault)) >= 2, what="work under way")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(120) == 0
    st = status_json(vault, env)
    c = st["counts"]
    assert c["running"] == 0 and c["generated"] == 0 and c["failed"] == 0
    assert c["done"] + c["ready"] == n and c["done"] < n  # nothing lost mid-flight
    proc = start_daemon(vault, env, "--workers", "2", log=log)
    try:
        wait_for(lambda: done_lines(vault) == n, timeout=120, what="all done after restart")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    check_vault(vault, n)


def test_vault_folder_vanishing_pauses_and_returning_resumes(tmp_path: Path) -> None:
    vault, env, lines = make_vault(tmp_path, 3)
    away = tmp_path / "away"
    os.environ["VAULTD_STATE_DIR"] = env["VAULTD_STATE_DIR"]
    try:
        heartbeat = state_dir_for(vault) / "daemon.json"
    finally:
        del os.environ["VAULTD_STATE_DIR"]
    proc = start_daemon(vault, env, log=tmp_path / "log")
    try:
        append_in_place(vault / "inbox.md", lines[0] + "\n")
        wait_for(lambda: done_lines(vault) == 1, what="first line done")
        os.rename(vault, away)  # the drive is unmounted
        wait_for(lambda: heartbeat.exists() and
                 json.loads(heartbeat.read_text())["paused"] == "vault folder missing",
                 what="daemon reports the vault missing")
        # status answers for the running daemon (it said "vault folder not found", exit 2)
        assert status_json(vault, env)["paused"] == "vault folder missing"
        append_in_place(away / "inbox.md", "\n".join(lines[1:]) + "\n")
        os.rename(away, vault)  # ... and comes back with new lines
        wait_for(lambda: done_lines(vault) == 3, timeout=90, what="work resumed")
        assert proc.poll() is None  # it kept running throughout
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    assert "Traceback" not in (tmp_path / "log").read_text()


def test_a_killed_worker_process_is_replaced_and_its_job_retried(tmp_path: Path) -> None:
    """The worker is killed while its model call is held at the stand-in, so it dies
    mid-job for certain; the job is retried in a new worker and both sources end done."""
    vault, env, _ = make_vault(tmp_path, 0)
    (vault / "Lectures" / "long.srt").write_text(lecture_srt(TOPICS[0], 200, seed=9))
    (vault / "Lectures" / "short.srt").write_text(lecture_srt(TOPICS[1], 40, seed=1))
    (vault / ".vaultd").mkdir()
    (vault / ".vaultd" / "config.toml").write_text("[daemon]\nbackoff_base_seconds = 1\n")
    with held_model() as (fake, release, model_env):
        env = {**env, **model_env}
        proc = start_daemon(vault, env, "--workers", "1", log=tmp_path / "log")
        try:
            wait_for(lambda: (vault / "inbox.md").exists(), what="start")
            append_in_place(vault / "inbox.md", "- [[Lectures/long.srt]]\n")
            wait_for(lambda: fake.message_requests(), what="the model call in flight")
            workers = pool_workers(proc.pid)
            assert workers, "no pool worker found"
            for pid in workers:
                os.kill(pid, signal.SIGKILL)  # the OOM killer strikes
            release.set()
            append_in_place(vault / "inbox.md", "- [[Lectures/short.srt]]\n")
            wait_for(lambda: done_lines(vault) == 2, timeout=180, what="both done")
            st = status_json(vault, env)
            assert st["counts"]["failed"] == 0
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    assert len(parse_inbox((vault / "inbox.md").read_text())) == 2


def test_run_once_ends_when_the_vault_vanishes(tmp_path: Path) -> None:
    """``run --once`` must end: a running daemon waits for a vanished vault (a drive
    unmounted), but ``--once`` waited forever too. It now stops with exit 1 and says why;
    the unfinished job stays in the ledger for the next run.

    The model stand-in holds its answer until the vault has gone and the daemon is
    stopping, so the job is certainly unfinished when the vault vanishes (a fast machine
    once finished a long offline job before the rename). The paid reply that then arrives
    is kept as a generated job, not thrown away and not written anywhere."""
    vault, env, _ = make_vault(tmp_path, 0)
    (vault / "Lectures" / "long.srt").write_text(lecture_srt(TOPICS[0], 200, seed=9))
    (vault / "inbox.md").write_text("- [[Lectures/long.srt]]\n")
    away = tmp_path / "away"
    log = tmp_path / "log"
    with held_model() as (fake, release, model_env):
        env = {**env, **model_env}
        proc = start_daemon(vault, env, "--once", "--workers", "1", log=log)
        try:
            wait_for(lambda: fake.message_requests(), what="the model call in flight")
            os.rename(vault, away)
            wait_for(lambda: "finishing in-flight work" in log.read_text(),
                     what="the daemon stopping")
            release.set()
            assert proc.wait(90) == 1
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = log.read_text()
    assert "disappeared" in text and "--once" in text and "Traceback" not in text
    os.rename(away, vault)
    counts = status_json(vault, env)["counts"]
    assert counts.get("failed", 0) == 0 and counts.get("done", 0) == 0, counts
    assert counts.get("generated", 0) == 1  # paid for once, written by the next run
    assert not (away / "Study Notes").exists() and not (vault / "Study Notes").exists()
