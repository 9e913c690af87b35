"""A model stand-in that holds its answers until the test lets them go.

For tests that must act while a job is certainly in the middle of its work (kill a
worker, make the vault vanish, kill the daemon): an offline job of a long lecture is
done in a second on a fast machine, so "wait until status says working, then act" raced
with the job finishing. Here the job's model call reaches the stand-in and waits there
until ``release`` is set; then every call is answered at once by the study-note model
of ``tests/test_e2e_stand_ins.py`` (valid notes and assessments citing real moments).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from fake_anthropic import FakeAnthropic, Reply  # noqa: E402

from tests.test_e2e_stand_ins import study_model  # noqa: E402

KEY = "sk-ant-test-HELD-0123456789abcdef"
HOLD_SECONDS = 120.0  # a held call gives up after this, so a failed test cannot hang


@contextmanager
def held_model() -> Iterator[tuple[FakeAnthropic, threading.Event, dict[str, str]]]:
    """``(stand-in, release, env)``: add ``env`` to the daemon's environment (key and
    base URL, so the Claude backend is chosen); set ``release`` to let calls through.
    ``release`` is set on exit, so that no server thread is left waiting."""
    release = threading.Event()

    def held(body: dict[str, Any]) -> Reply:
        release.wait(HOLD_SECONDS)
        return study_model(body)

    with FakeAnthropic(held) as fake:
        try:
            yield fake, release, {"ANTHROPIC_API_KEY": KEY,
                                  "ANTHROPIC_BASE_URL": fake.base_url}
        finally:
            release.set()
