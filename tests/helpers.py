"""Shared test helpers: synthetic lectures, polling with a deadline, running the CLI."""

from __future__ import annotations

import json
import os
import random
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

TOPICS = ["photosynthesis", "memory", "gravity", "markets", "volcanoes", "enzymes",
          "harmony", "recursion", "glaciers", "democracy", "entropy", "vaccines",
          "tectonics", "algorithms", "rhetoric", "orbits", "ecosystems", "inflation"]
VERBS = ["explains", "changes", "drives", "limits", "shapes", "stores", "releases",
         "connects", "predicts", "measures"]
NOUNS = ["energy", "feedback loop", "the system", "a signal", "pressure", "the model",
         "structure", "time", "information", "balance", "the process", "variation"]


def lecture_srt(topic: str, sentences: int = 40, seed: int = 0) -> str:
    """A plausible lecture transcript in SRT form, deterministic for a seed."""
    rng = random.Random(f"{topic}-{seed}")
    cues = []
    t = 0.0
    for i in range(sentences):
        text = (f"In this part about {topic}, {rng.choice(NOUNS)} {rng.choice(VERBS)} "
                f"{rng.choice(NOUNS)} because {rng.choice(NOUNS)} {rng.choice(VERBS)} "
                f"{rng.choice(NOUNS)}.")
        start, end = t, t + 4.5
        cues.append(f"{i + 1}\n{_ts(start)} --> {_ts(end)}\n{text}\n")
        t = end + 0.5
    return "\n".join(cues)


def _ts(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def wait_for(check: Callable[[], T], *, timeout: float = 60.0, interval: float = 0.1,
             what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy or the deadline passes."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


def vaultd_env(state: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("ANTHROPIC_API_KEY", "STATE_DIRECTORY", "NOTIFY_SOCKET")}
    env["VAULTD_STATE_DIR"] = str(state)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def vaultd(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def start_daemon(vault: Path, env: dict[str, str], *extra: str,
                 log: Path | None = None) -> subprocess.Popen:  # type: ignore[type-arg]
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen([sys.executable, "-m", "daemon.cli", "run", "--vault", str(vault),
                             *extra], env=env, stdout=out, stderr=out)


def status_json(vault: Path, env: dict[str, str]) -> dict[str, Any]:
    proc = vaultd("status", "--vault", str(vault), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def append_in_place(path: Path, text: str) -> None:
    """What most editors do: rewrite the same file."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def append_by_rename(path: Path, text: str) -> None:
    """What some editors and sync tools do: write a temp file, rename over."""
    tmp = path.with_name(f".{path.name}.edit~")
    tmp.write_bytes(path.read_bytes() + text.encode("utf-8"))
    os.replace(tmp, path)


_TRACEBACK = re.compile(r"^Traceback \(most recent call last\):\n(?:[ \t].*\n|\n)*.*$",
                        re.MULTILINE)
_FRAME = re.compile(r'^\s*File "([^"]+)"', re.MULTILINE)


def tracebacks(log: str, *, after_kill: bool = False) -> list[str]:
    """Every traceback in a daemon log, as text blocks.

    With ``after_kill``, one kind is left out: a pool worker that the killed daemon was
    still spawning finds its parent's pipe closed and dies in ``multiprocessing.spawn``
    (under ``multiprocessing.forkserver`` when the pool forks from the fork server) with
    ``EOFError`` before any of our code runs. That is what ``kill -9`` does to a
    parent mid-spawn, not a fault of vaultd; any frame of ours in the block keeps it.
    """
    found = []
    for match in _TRACEBACK.finditer(log):
        block = match.group(0)
        files = _FRAME.findall(block)
        orphan = (block.rstrip().endswith("EOFError: Ran out of input") and
                  all(f == "<string>" or f.endswith(("multiprocessing/spawn.py",
                                                      "multiprocessing/forkserver.py"))
                      for f in files))
        if not (after_kill and orphan):
            found.append(block)
    return found


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): connecting is refused.

    Safer than a fixed port such as 9, which a CI box may well have a service on.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeClock:
    """An injectable wall clock whose ``sleep`` only moves the time (pacing tests)."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
