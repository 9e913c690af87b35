"""No network for a while: a running daemon waits, fails nothing, and resumes by itself.

``vaultd run`` (a subprocess) is pointed at a YouTube address where nothing listens
(connection refused, as when the laptop is offline), with ``max_attempts = 1`` so that
a single counted attempt would fail the job. The line must say the job is waiting for
the network, the ledger must keep its attempts while the waits grow, and when the
stand-in comes up at that address the note arrives without anyone touching anything.
``run --once`` instead counts those attempts, so a one-shot run ends.
"""

from __future__ import annotations

import random
import signal
import socket
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fake_anthropic import FakeAnthropic  # noqa: E402
from fake_youtube import FakeYouTube  # noqa: E402

from tests.helpers import start_daemon, vaultd, vaultd_env, wait_for  # noqa: E402
from tests.test_e2e_stand_ins import (  # noqa: E402
    KEY,
    linked_note,
    make_vault,
    study_model,
)
from vault_tools.inbox import parse_inbox  # noqa: E402

URL = "https://www.youtube.com/watch?v=glacierVal1"


def free_port() -> int:
    """A port nothing listens on, below the ephemeral range (32768+ on Linux), so no
    outgoing connection of the test can take it before the stand-in binds it."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 30000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-30000")


def one_attempt_vault(tmp_path: Path) -> tuple[Path, Path]:
    vault, state = make_vault(tmp_path, [f"- {URL}"], backoff=0.2)
    config = vault / ".vaultd" / "config.toml"
    config.write_text(config.read_text().replace("[daemon]\n", "[daemon]\nmax_attempts = 1\n"))
    return vault, state


def job_row(state: Path) -> dict[str, object] | None:
    ledgers = list(state.rglob("ledger*.sqlite3"))
    if not ledgers:
        return None
    try:
        with sqlite3.connect(f"file:{ledgers[0]}?mode=ro", uri=True, timeout=5) as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT state, attempts, offline_waits, last_error FROM jobs"
                             " WHERE key='youtube:glacierVal1'").fetchone()
    except sqlite3.OperationalError:  # the daemon is still creating its ledger
        return None
    return dict(row) if row else None


def annotation(vault: Path) -> str:
    found = parse_inbox((vault / "inbox.md").read_text(encoding="utf-8"))
    return found[0].annotation if found else ""


def test_daemon_waits_out_a_network_outage_and_resumes(tmp_path: Path) -> None:
    vault, state = one_attempt_vault(tmp_path)
    port = free_port()
    log = tmp_path / "daemon.log"
    with FakeAnthropic(study_model) as fake:
        env = vaultd_env(state, ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=fake.base_url,
                         VAULTD_YOUTUBE_ORIGIN=f"http://127.0.0.1:{port}")
        proc = start_daemon(vault, env, log=log)
        try:
            # Waiting between tries (a try itself is "running" with the attempt counted).
            row = wait_for(lambda: (r := job_row(state)) and r["offline_waits"] >= 3
                           and r["state"] == "ready" and r, timeout=60, interval=0.02,
                           what="three waits for the network")
            assert row["attempts"] == 0, row  # none used up: max_attempts is 1
            # Between tries the line says why it waits (during a try it says working).
            wait_for(lambda: annotation(vault).startswith(
                " — 🔁 waiting: Could not reach YouTube (no network?)"), timeout=30,
                interval=0.02, what="the line to say it waits for the network")
            with FakeYouTube(port=port):  # the network is back
                final = wait_for(lambda: "✅" in (a := annotation(vault)) and a, timeout=60,
                                 what="the note once YouTube is reachable")
            note = linked_note(vault, final)
            assert "glacierVal1" in note.read_text(encoding="utf-8")
            assert job_row(state)["offline_waits"] == 0
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert len(fake.message_requests()) == 2  # waiting cost no model calls


def test_run_once_gives_up_on_a_network_that_does_not_come_back(tmp_path: Path) -> None:
    vault, state = one_attempt_vault(tmp_path)
    dead = f"http://127.0.0.1:{free_port()}"  # no YouTube, no model API
    env = vaultd_env(state, ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=dead,
                     VAULTD_YOUTUBE_ORIGIN=dead)
    proc = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert annotation(vault).startswith(" — ❌ failed: Could not reach YouTube (no network?)")
    assert "gave up after 1 attempt (vaultd retry tries again)" in str(job_row(state)["last_error"])
