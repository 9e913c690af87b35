"""A linked subtitle file that is not there yet (issue 17, item 6): the line says so, and
the job starts by itself when the file appears: at once through the watcher, and through
the inbox rescan when no event arrives."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from daemon.intake import InboxSync
from daemon.ledger import Ledger
from tests.helpers import lecture_srt, start_daemon, vaultd_env, wait_for
from vault_tools.inbox import edit_inbox, parse_inbox


def _annotation(vault: Path, inbox: str = "Inbox/inbox.md") -> str:
    lines = parse_inbox((vault / inbox).read_text(encoding="utf-8"))
    return lines[0].annotation if lines else ""


def test_job_starts_when_its_subtitle_file_appears(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    (vault / ".vaultd").mkdir(parents=True)
    (vault / "Lectures").mkdir()  # (a new folder in the vault root looks like an inbox move)
    # No rescan during the test: only the file's arrival can start the job.
    (vault / ".vaultd" / "config.toml").write_text(
        "[vault]\ninbox = \"Inbox/inbox.md\"\ngraph_note = \"Graph/Knowledge Graph.md\"\n"
        "[daemon]\nrescan_seconds = 3600\ndebounce_seconds = 0.2\n[pdf]\nenabled = false\n")
    # Inbox and graph note in folders made beforehand: a change of a folder above the
    # inbox counts as an inbox event (a move), so nothing may change the vault root.
    (vault / "Inbox").mkdir()
    (vault / "Graph").mkdir()
    (vault / "Inbox" / "inbox.md").write_text("# Inbox\n\n- [[Lectures/week 3.srt]]\n")
    proc = start_daemon(vault, vaultd_env(tmp_path / "state"), log=tmp_path / "daemon.log")
    try:
        wait_for(lambda: "subtitle file not found" in _annotation(vault), timeout=60,
                 what="the line saying the file is missing")
        # Quiet period, not a hope: the daemon's own inbox write causes one more pass
        # (debounce 0.2 s); after it, nothing but the file's arrival can start the job.
        time.sleep(2.0)
        assert "❌" in _annotation(vault)
        tmp = vault / "Lectures" / ".week 3.srt.part"  # a sync tool: temp file, rename
        tmp.write_text(lecture_srt("glaciers", 60))
        os.replace(tmp, vault / "Lectures" / "week 3.srt")
        wait_for(lambda: "✅" in _annotation(vault), timeout=60,
                 what="the note made once the file appeared")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert (vault / "Study Notes").is_dir() and any((vault / "Study Notes").glob("*.md"))


def test_rescan_picks_up_a_file_that_appeared_unseen(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    inbox = vault / "inbox.md"
    inbox.write_text("- [[notes/late.vtt]]\n- [[elsewhere/../../outside.srt]]\n")
    ledger = Ledger(tmp_path / "state" / "ledger.sqlite3")
    sync = InboxSync(vault, inbox, ledger)
    edit_inbox(inbox, sync.transform)
    assert ledger.get("file:notes/late.vtt").state == "failed"
    (vault / "notes").mkdir()
    (vault / "notes" / "late.vtt").write_text("WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n"
                                              "Hello there.\n")
    sync.forget_file_names()
    edit_inbox(inbox, sync.transform)  # the periodic rescan's pass
    assert ledger.get("file:notes/late.vtt").state == "ready"
    assert "⏳ queued" in inbox.read_text().splitlines()[0]
    assert ledger.get("file:elsewhere/../../outside.srt").state == "failed"  # stays refused
