"""``vaultd run --batch`` end to end: Message Batches on the loopback fake API.

Queued videos go out as one batch; a stop while the batch is processing loses nothing
and a second ``--batch`` collects the same batch (never submits, never pays, twice);
the results are written like any other job and cost half.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fake_anthropic import FakeAnthropic  # noqa: E402
from fake_youtube import FakeYouTube  # noqa: E402

from tests.helpers import status_json, vaultd, vaultd_env, wait_for  # noqa: E402
from tests.test_e2e_stand_ins import KEY, make_vault, study_model  # noqa: E402
from vault_tools import frontmatter  # noqa: E402
from vault_tools.inbox import parse_inbox  # noqa: E402


def test_batch_survives_a_stop_and_writes_notes(tmp_path: Path) -> None:
    lines = ["- https://youtu.be/ohmsLawDemo", "- https://youtu.be/glacierVal1"]
    vault, state = make_vault(tmp_path, lines)
    cfg = vault / ".vaultd" / "config.toml"
    cfg.write_text(cfg.read_text().replace("[generate]\n",
                                           "[generate]\nbatch_poll_seconds = 0.2\n"))
    with FakeYouTube() as yt, FakeAnthropic(study_model, batch_polls=10_000) as fake:
        env = vaultd_env(state, ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=fake.base_url,
                         VAULTD_YOUTUBE_ORIGIN=yt.origin)
        proc = subprocess.Popen([sys.executable, "-m", "daemon.cli", "run", "--vault",
                                 str(vault), "--batch"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        wait_for(lambda: fake.batches, what="batch submitted", timeout=90)
        wait_for(lambda: next(iter(fake.batches.values()))["polls"] >= 2, what="polling")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
        assert "run --batch again" in out
        st = status_json(vault, env)
        assert st["counts"]["running"] == 2  # held for the batch, not back in the queue
        assert st["usage_today"]["tokens"] == 0  # nothing paid yet

        fake.batch_polls = 0  # the batch has ended
        second = vaultd("run", "--vault", str(vault), "--batch", env=env, timeout=120)
        assert second.returncode == 0, second.stderr[-2000:]
        assert len(fake.batches) == 1  # resumed, not submitted again
        assert not fake.message_requests()  # everything went through the batch
        st = status_json(vault, env)

    assert st["counts"]["done"] == 2 and st["counts"]["failed"] == 0
    for line in parse_inbox((vault / "inbox.md").read_text()):
        assert "✅" in line.annotation, line
    notes = [p for p in (vault / "Study Notes").glob("*.md") if "Assessment" not in p.name]
    assert len(notes) == 2
    for note in notes:
        data, _ = frontmatter.split(note.read_text())
        assert data["type"] == "study-note" and data["tokens"]["out"] > 0
    assert st["usage_total"]["cost_usd"] > 0
