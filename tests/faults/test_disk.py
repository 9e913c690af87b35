"""Disk full and read-only vault: clear failures, old files intact, recovery.

The vault lives on a small tmpfs of its own (root only; skipped otherwise). A first
``vaultd run --once`` leaves notes, a graph note, a canvas and an annotated inbox: the
old files. Then a new source is added and the disk is filled to the last byte (or the
file system remounted read-only) before the daemon runs: the generated job must wait
with a plain reason in ``vaultd status`` (``No space left on device`` / ``Read-only
file system``), every old file must stay byte-identical, no temp or partial file may
appear; when space returns (filler deleted, or remounted read-write) the job completes
without its generation being paid for again.
"""

from __future__ import annotations

import errno
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

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
    tail,
    terminate,
    write_config,
)
from tests.helpers import start_daemon, status_json, vaultd, vaultd_env, wait_for

SIZE = "3m"


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of a few MB mounted for this test only (unmounted in any case)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = _run("mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0755", "tmpfs", str(mnt))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        _run("mount", "-o", "remount,rw", str(mnt))
        if _run("umount", str(mnt)).returncode != 0:
            _run("umount", "-l", str(mnt))


def snapshot(vault: Path) -> dict[str, bytes]:
    return {p.relative_to(vault).as_posix(): p.read_bytes()
            for p in sorted(vault.rglob("*")) if p.is_file()}


def fill(path: Path) -> int:
    """Write ``path`` until the file system has no byte left; returns bytes written."""
    written = 0
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as fh:
        while True:
            try:
                written += fh.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                if len(chunk) == 1:
                    return written
                chunk = chunk[: len(chunk) // 2]


@contextmanager
def kept_full(path: Path) -> Iterator[None]:
    """The file system stays full while the block runs: ``path`` is filled, then topped
    up every 0.1 s, as a disk that another program keeps filling. A daemon that frees a
    few pages of its own (a temporary file removed, a journal reset) would otherwise
    find room a second later and rightly resume, before a test has seen it pause."""
    fill(path)
    stop = threading.Event()

    def top_up() -> None:
        while not stop.wait(0.1):
            with open(path, "ab", buffering=0) as fh:
                chunk = b"\0" * 65536
                while True:
                    try:
                        fh.write(chunk)
                    except OSError:
                        if len(chunk) == 1:
                            break
                        chunk = chunk[: len(chunk) // 2]

    thread = threading.Thread(target=top_up, name="keep-full", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def waiting_reason(vault: Path, env: dict[str, str], key: str) -> str:
    for w in status_json(vault, env)["waiting"]:
        if w["key"] == key:
            return str(w["reason"])
    return ""


def prepared_vault(root: Path, tmp_path: Path) -> tuple[Path, dict[str, str], list[str]]:
    vault = root / "vault"
    lines = make_lectures(vault, 3, sentences=40)
    write_config(vault, {"daemon": {"workers": 1, "debounce_seconds": 0.1,
                                    "backoff_base_seconds": 0.2, "backoff_max_seconds": 1.0,
                                    "max_attempts": 50},
                         "pdf": {"enabled": False}})
    (vault / "My own note.md").write_text("# Mine\n\nKeep this exactly.\n", encoding="utf-8")
    (vault / "inbox.md").write_text(USER_TEXT + "\n".join(lines[:2]) + "\n", encoding="utf-8")
    env = vaultd_env(tmp_path / "state")
    first = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    return vault, env, lines


def blocked_then_recovered(vault: Path, env: dict[str, str], tmp_path: Path, line: str,
                           reason: str, block: Any, unblock: Any) -> None:
    """Add ``line``, block the disk, run the daemon, check, unblock, check recovery."""
    state = Path(env["VAULTD_STATE_DIR"])
    with open(vault / "inbox.md", "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
    key = "file:" + line.split("[[", 1)[1].split("]]", 1)[0]
    old = snapshot(vault)
    block()
    log = tmp_path / "daemon.log"
    proc = start_daemon(vault, env, log=log)
    try:
        wait_for(partial(daemon_ready, proc, state), timeout=120, what="daemon start-up")
        said = wait_for(partial(waiting_reason, vault, env, key), timeout=120, interval=0.3,
                        what=f"{key} waiting on the blocked disk")
        assert reason in said, said
        jobs = read_jobs(state)
        assert jobs[key]["state"] == "generated" and jobs[key]["generated_at"], jobs[key]
        generated_at = jobs[key]["generated_at"]
        assert snapshot(vault) == old  # every old file byte-identical, nothing new
        unblock()
        wait_for(lambda: read_jobs(state)[key]["state"] == "done", timeout=120,
                 interval=0.3, what=f"{key} done once the disk is back")
        assert read_jobs(state)[key]["generated_at"] == generated_at  # not paid again
        assert terminate(proc) == 0, tail(log)
    finally:
        kill9(proc)
    text = tail(log, 10**9)
    assert generations_in_log(text)[key] == 1, "generated again after the disk came back"
    assert "Traceback" not in text
    for rel, data in old.items():  # user files and the old notes are untouched
        if rel.startswith(("Study Notes/", "My own", "Lectures/")):
            assert (vault / rel).read_bytes() == data, rel
    assert file_problems(vault) == []


def test_disk_full_then_space_returns(small_fs: Path, tmp_path: Path) -> None:
    vault, env, lines = prepared_vault(small_fs, tmp_path)
    filler = small_fs / "filler.bin"

    def block() -> None:
        assert fill(filler) > 0
        with pytest.raises(OSError) as exc:  # really full: not even one more byte
            (small_fs / "probe").write_bytes(b"x" * 4096)
        assert exc.value.errno == errno.ENOSPC
        (small_fs / "probe").unlink(missing_ok=True)

    def unblock() -> None:
        filler.unlink()

    blocked_then_recovered(vault, env, tmp_path, lines[2], "No space left on device",
                           block, unblock)
    check_all_done(vault, lines, pdf=False)


def test_read_only_vault_then_writable_again(small_fs: Path, tmp_path: Path) -> None:
    vault, env, lines = prepared_vault(small_fs, tmp_path)

    def remount(mode: str) -> None:
        done = _run("mount", "-o", f"remount,{mode}", str(small_fs))
        assert done.returncode == 0, done.stderr

    def block() -> None:
        remount("ro")
        with pytest.raises(OSError) as exc:
            (vault / "probe").write_text("x")
        assert exc.value.errno == errno.EROFS

    blocked_then_recovered(vault, env, tmp_path, lines[2], "Read-only file system",
                           block, partial(remount, "rw"))
    check_all_done(vault, lines, pdf=False)
