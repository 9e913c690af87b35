"""The ledger remembers how many model replies were salvaged or continued: two columns
added to an existing ledger by ``migrate``, counted from the generated content."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from daemon.jobs import SCHEMA
from daemon.ledger import Ledger
from vault_tools.models import SourceMeta, Usage, VideoContent


def old_ledger(path: Path) -> None:
    """A ledger written by a vaultd that had no such columns."""
    old = SCHEMA.replace("    salvaged_replies  INTEGER NOT NULL DEFAULT 0,\n", "") \
                .replace("    continued_replies INTEGER NOT NULL DEFAULT 0,\n", "")
    assert "salvaged_replies" not in old
    with sqlite3.connect(path) as db:
        db.executescript(old)


def content(salvaged: int, continued: int) -> str:
    meta = SourceMeta(key="file:a.srt", kind="file", title="A", file_path="a.srt")
    return VideoContent(meta=meta, note_markdown="n", assessment_markdown="a", model="m",
                        salvaged=salvaged, continued=continued).to_json()


def test_counts_survive_an_upgrade_and_add_up(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    old_ledger(path)
    ledger = Ledger(path)
    assert ledger.repaired_replies() == {"salvaged": 0, "continued": 0}
    for key, repairs in (("file:a.srt", (1, 0)), ("file:b.srt", (0, 2))):
        ledger.add(key, "file", None)
        job = ledger.claim_next("test")
        assert job is not None and job.key == key
        ledger.mark_generated(key, content(*repairs), Usage(input_tokens=5), "T")
    assert ledger.repaired_replies() == {"salvaged": 1, "continued": 2}
    assert ledger.get("file:b.srt").continued_replies == 2
    ledger.close()
    again = Ledger(path)  # migrate is idempotent
    assert again.repaired_replies() == {"salvaged": 1, "continued": 2}
    again.close()


def test_content_from_before_the_counts_counts_nothing(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    ledger.add("file:a.srt", "file", None)
    ledger.claim_next("test")
    legacy = content(0, 0).replace(', "salvaged": 0, "continued": 0', "")
    assert "salvaged" not in legacy
    ledger.mark_generated("file:a.srt", legacy, Usage(), "T")
    assert ledger.repaired_replies() == {"salvaged": 0, "continued": 0}
    assert VideoContent.from_json(legacy).salvaged == 0
    ledger.close()
