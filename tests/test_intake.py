"""Inbox ↔ ledger: registration, subtitle-link resolution and line statuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.intake import InboxSync
from daemon.ledger import Ledger
from vault_tools.models import Usage


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Ledger, InboxSync]:
    vault = tmp_path / "vault"
    (vault / "Lectures" / "week1").mkdir(parents=True)
    srt = "1\n00:00:00,000 --> 00:00:01,000\nhi\n"
    (vault / "Lectures" / "week1" / "intro.srt").write_text(srt)
    (vault / "a").mkdir()
    (vault / "b").mkdir()
    (vault / "a" / "same.vtt").write_text("WEBVTT\n")
    (vault / "b" / "same.vtt").write_text("WEBVTT\n")
    (vault / "Inbox").mkdir()
    (vault / "Inbox" / "local.txt").write_text("words")
    (tmp_path / "outside.srt").write_text("x")
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    return vault, ledger, InboxSync(vault, vault / "Inbox" / "inbox.md", ledger)


def keys(ledger: Ledger) -> dict[str, str | None]:
    return {j.key: j.last_error for j in ledger.all_jobs()}


def test_subtitle_links_resolve_like_obsidian(setup: tuple[Path, Ledger, InboxSync]) -> None:
    vault, ledger, sync = setup
    text = ("[[intro.srt]]\n"  # unique name anywhere in the vault
            "[x](Lectures/week1/intro.srt)\n"  # the same file by path: same job
            "![[local.txt]]\n"  # relative to the inbox's folder
            "[[same.vtt]]\n"  # ambiguous name
            "[[../outside.srt]]\n"  # leaves the vault
            "notes.txt is where I keep things\n"  # bare path to nothing: not a source
            "[[missing.srt]]\n")
    out = sync.transform(text)
    assert keys(ledger) == {
        "file:Lectures/week1/intro.srt": None,
        "file:Inbox/local.txt": None,
        "file:same.vtt": "2 files are named same.vtt; link one by its path",
        "file:../outside.srt": "../outside.srt is outside the vault",
        "file:missing.srt": "subtitle file not found in the vault: missing.srt",
    }
    lines = out.splitlines()
    assert lines[0].endswith("— ⏳ queued") and lines[1].endswith("— ⏳ queued")
    assert lines[5] == "notes.txt is where I keep things"
    assert "❌ failed: 2 files are named same.vtt" in lines[3]
    assert sync.transform(out) == out  # idempotent


def test_playlist_line_shows_progress_then_done(setup: tuple[Path, Ledger, InboxSync]) -> None:
    _vault, ledger, sync = setup
    text = "https://www.youtube.com/playlist?list=PLabcdefghij\n"
    out = sync.transform(text)
    assert out.endswith("— ⏳ queued\n")
    job = ledger.claim_next("t")
    assert job and job.key == "playlist:PLabcdefghij"
    kids = ["youtube:aaaaaaaaaaa", "youtube:bbbbbbbbbbb"]
    ledger.add_many([(k, "youtube", None, None) for k in kids])
    ledger.mark_expanded(job.key, kids)
    out = sync.transform(out)
    assert out.endswith("— ⚙️ working: 0 of 2 done\n")
    for k in kids:
        claimed = ledger.claim_next("t")
        assert claimed is not None
        ledger.mark_generated(claimed.key, "{}", Usage(), "T")
        ledger.mark_written(claimed.key, f"Study Notes/{k}.md", f"Study Notes/{k} (A).md")
        ledger.mark_done(claimed.key)
        out = sync.transform(out)
    assert out.endswith('— ✅ 2 of 2 done; for its new videos too, add "PLabcdefghij" to '
                        "subscriptions.playlists in .vaultd/config.toml\n")


def test_waiting_and_failed_statuses_carry_the_reason(setup: tuple[Path, Ledger, InboxSync]
                                                      ) -> None:
    _vault, ledger, sync = setup
    text = "https://youtu.be/aaaaaaaaaaa\nhttps://youtu.be/bbbbbbbbbbb\n"
    sync.transform(text)
    retry = {"max_attempts": 3, "backoff_base": 60.0, "backoff_max": 60.0}
    ledger.claim_next("t")
    ledger.fail("youtube:aaaaaaaaaaa", "YouTube is blocking this IP", transient=True, **retry)
    ledger.claim_next("t")
    ledger.fail("youtube:bbbbbbbbbbb", "subtitles are off", transient=False, **retry)
    out = sync.transform(text)
    assert out == ("https://youtu.be/aaaaaaaaaaa — 🔁 waiting: YouTube is blocking this IP\n"
                   "https://youtu.be/bbbbbbbbbbb — ❌ failed: subtitles are off\n")
