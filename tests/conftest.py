"""Test-wide settings: the Hypothesis profiles.

``ci`` (the default) makes every property test repeatable: the same examples on every
run (``derandomize``), no per-example deadline and no too-slow health check, because a
loaded 2-core CI box makes timings meaningless and a red build must mean a real bug
that the next run will show again. ``explore`` draws fresh random examples each run to
look for new bugs: ``HYPOTHESIS_PROFILE=explore .venv/bin/pytest``. The full fault
suite (``VAULTD_FAULTS_FULL=1``) always explores.

Nothing left behind: every process the session starts inherits a session token in its
environment (``tests/procs.py``); when the session ends, any such process that runs our
code or multiprocessing's and has lost its parent (a pool worker or resource tracker of
a killed daemon, re-parented to PID 1) fails the run, after a grace period in which a
worker of a daemon killed by the last test still has time to notice. Unrelated processes
on the machine never carry the token, so they are never flagged. Linux only (``/proc``).
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
from hypothesis import HealthCheck, settings

from tests import procs

_RELAXED = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", derandomize=True, database=None, **_RELAXED)
settings.register_profile("explore", **_RELAXED)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

os.environ[procs.SESSION_VAR] = uuid.uuid4().hex
LEFTOVER_GRACE_SECONDS = 15.0
_LEFT_BEHIND: list[str] = []


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a process the session started outlived its parent."""
    if not procs.HAS_PROC:
        return
    token = os.environ[procs.SESSION_VAR]
    deadline = time.monotonic() + LEFTOVER_GRACE_SECONDS
    while (left := procs.left_behind(token)) and time.monotonic() < deadline:
        time.sleep(0.5)
    if not left:
        return
    lines = [f"  pid {p.pid} (parent {p.ppid}): {p.cmdline[:160]}" for p in left]
    _LEFT_BEHIND.append("the test session left processes behind (their parent died; they "
                        "should have exited with it):\n" + "\n".join(lines))
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for text in _LEFT_BEHIND:  # at the end of the report, where it is seen
        terminalreporter.write_line(text, red=True)
