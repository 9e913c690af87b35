"""The process table as tests see it (Linux ``/proc``): who is alive, whose child, and
which processes this test session started (they carry :data:`SESSION_VAR` in their
environment, inherited from ``tests/conftest.py`` by every subprocess and pool worker)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

SESSION_VAR = "VAULTD_TEST_SESSION"
HAS_PROC = sys.platform.startswith("linux") and Path("/proc/self/stat").exists()


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    state: str  # "R", "S", "Z" ...
    cmdline: str

    @property
    def gone(self) -> bool:
        return self.state in ("Z", "X")


def read(pid: int) -> Proc | None:
    """One process, or None when it does not exist (any more)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    fields = stat.rsplit(b")", 1)[1].split()
    return Proc(pid, int(fields[1]), fields[0].decode(),
                cmd.replace(b"\0", b" ").decode("utf-8", "replace").strip())


def table() -> dict[int, Proc]:
    procs = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (p := read(int(entry))) is not None:
            procs[p.pid] = p
    return procs


def alive(pid: int) -> bool:
    p = read(pid)
    return p is not None and not p.gone


def descendants(pid: int) -> list[Proc]:
    """Every living process below ``pid`` (children, grandchildren, ...)."""
    procs = table()
    found: list[Proc] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for p in procs.values():
            if p.ppid == parent and not p.gone:
                found.append(p)
                todo.append(p.pid)
    return found


def session_token(pid: int) -> str | None:
    """The test-session token in a process's environment (same user only)."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    prefix = SESSION_VAR.encode() + b"="
    for item in env.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix):].decode("utf-8", "replace")
    return None


OURS = ("daemon.cli", "vaultd", "multiprocessing")


def left_behind(token: str) -> list[Proc]:
    """Processes this session started that lost their parent: they carry ``token``,
    run our code or multiprocessing's, and their parent is not one of the session's
    processes (re-parented to PID 1 or a subreaper after their parent died). This
    process and its ancestors count as the session's: ``/proc/<pid>/environ`` shows the
    environment a process started with, without the token conftest added later."""
    procs = table()
    mine = {pid for pid in procs if session_token(pid) == token}
    ancestors = set()
    pid = os.getpid()
    while pid > 1 and pid in procs:
        ancestors.add(pid)
        pid = procs[pid].ppid
    return [p for pid, p in procs.items()
            if pid in mine and pid not in ancestors and not p.gone
            and p.ppid not in mine | ancestors and any(word in p.cmdline for word in OURS)]
