"""A read-only state folder (``chmod 0500`` of the per-vault folder) or ledger file
(``chmod 0400``) under a running ``vaultd run``: the daemon says why in plain words
(``status`` and the log), loses no inbox line, and goes on by itself once write
permission is back.

Root ignores file modes, so as root the daemon runs without the capabilities that
override them (``setpriv`` drops them from its bounding set); as any other user the
modes work as they are.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

from tests.faults.common import (
    check_all_done,
    daemon_ready,
    kill9,
    ledger_file,
    read_jobs,
    tail,
    terminate,
    wait_all_done,
)
from tests.faults.test_state_faults import _expected, _vault
from tests.helpers import status_json, wait_for

_DROP = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


def _start(vault: Path, env: dict[str, str], log: Path) -> subprocess.Popen:  # type: ignore[type-arg]
    """``vaultd run`` that file modes apply to, even when the tests run as root."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and setpriv (util-linux) is missing: file modes "
                        "cannot be made to apply to the daemon")
        prefix = _DROP
    out = open(log, "ab")  # noqa: SIM115 - the daemon's stdout and stderr, for the test
    return subprocess.Popen([*prefix, sys.executable, "-m", "daemon.cli", "run", "--vault",
                             str(vault)], env=env, stdout=out, stderr=out)


def _ro(path: Path) -> None:
    path.chmod(0o500 if path.is_dir() else 0o400)


def _rw(path: Path) -> None:
    path.chmod(0o700 if path.is_dir() else 0o600)


@pytest.mark.parametrize("what,when", [("folder", "running"), ("ledger", "at start")])
def test_read_only_state_pauses_says_why_and_recovers(tmp_path: Path, what: str,
                                                      when: str) -> None:
    """While running, or from the start: ``status`` and the log say what is read-only,
    the lines the user adds meanwhile are kept, and every source is done once write
    permission is back. Before the fix a read-only ledger file at start was a
    ``PermissionError`` traceback and an exit, and ``vaultd status`` made a read-only
    state folder writable again behind the user's back (so the pause was rarely seen)."""
    vault, env, lines = _vault(tmp_path, 3, 1)
    state = tmp_path / "state"
    log = tmp_path / "daemon.log"
    target = None
    proc = _start(vault, env, log)
    try:
        wait_for(partial(daemon_ready, proc, state), timeout=120, what="start-up")
        wait_for(lambda: any(j["state"] == "done" for j in read_jobs(state).values()),
                 timeout=120, interval=0.3, what="first done")
        ledger = ledger_file(state)
        assert ledger is not None
        target = ledger.parent if what == "folder" else ledger
        if when == "at start":
            assert terminate(proc) == 0, tail(log)
            _ro(target)
            proc = _start(vault, env, log)
        else:
            _ro(target)

        with open(vault / "inbox.md", "a", encoding="utf-8") as fh:  # the user goes on
            fh.write(lines[1] + "\n")
        paused = wait_for(lambda: status_json(vault, env).get("paused") or "", timeout=60,
                          interval=0.5, what="status saying the daemon is paused")
        assert "read-only" in paused and str(target) in paused, paused
        wait_for(lambda: f"{target} is read-only" in tail(log), timeout=30,
                 what="the log saying why")
        assert proc.poll() is None, tail(log)  # waiting, not dead
        with open(vault / "inbox.md", "a", encoding="utf-8") as fh:  # and goes on
            fh.write(lines[2] + "\n")

        _rw(target)
        wait_all_done(state, 3, what="every source done once writable")
        wait_for(lambda: not status_json(vault, env).get("paused"), timeout=30,
                 what="status no longer paused")
        assert terminate(proc) == 0, tail(log)
    finally:
        if target is not None:
            _rw(target)
        kill9(proc)
    text = tail(log, 10**9)
    assert "Traceback" not in text, text[-3000:]
    check_all_done(vault, _expected(lines), pdf=False)


def test_an_inbox_without_permission_is_said_in_status_and_picked_up_when_fixed(
        tmp_path: Path) -> None:
    """An inbox the daemon may not read (saved once with sudo, copied with odd modes):
    it was only logged. ``status`` now says why, the file is untouched, and the lines in
    it are done once the permission is back."""
    vault, env, lines = _vault(tmp_path, 2, 2)
    inbox = vault / "inbox.md"
    before = inbox.read_bytes()
    inbox.chmod(0o000)
    log = tmp_path / "daemon.log"
    proc = _start(vault, env, log)
    try:
        wait_for(partial(daemon_ready, proc, tmp_path / "state"), timeout=120,
                 what="start-up")
        said = wait_for(lambda: [n for n in status_json(vault, env).get("notices", [])
                                 if "permission denied" in str(n)], timeout=60,
                        interval=0.5, what="status saying the inbox cannot be read")
        assert "inbox.md" in str(said[0]), said
        assert proc.poll() is None, tail(log)
        assert inbox.stat().st_mode & 0o777 == 0  # nothing replaced it meanwhile
        inbox.chmod(0o644)
        assert inbox.read_bytes() == before
        wait_all_done(tmp_path / "state", 2, what="both sources done once readable")
        assert terminate(proc) == 0, tail(log)
    finally:
        inbox.chmod(0o644)
        kill9(proc)
    assert "Traceback" not in tail(log, 10**9)
    check_all_done(vault, _expected(lines), pdf=False)
