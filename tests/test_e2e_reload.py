"""SIGHUP re-reads the whole config: a running daemon picks up [topics] and [review].

The user starts ``vaultd run`` with topic notes and the weekly review switched off,
pastes lectures, then switches both on (in new folders) and the watcher to polling, and
reloads: the topic notes and this week's review appear where the new config says and
status shows the polling watcher, without a restart. A setting that needs a restart
(``daemon.workers``) is named in the reload's log line.
"""

from __future__ import annotations

import signal
from datetime import date
from pathlib import Path

from tests.helpers import (
    append_in_place,
    start_daemon,
    status_json,
    tracebacks,
    vaultd_env,
    wait_for,
)
from tests.test_topic_notes import BANK, add_lecture, members
from vault_tools.review_note import iso_week

BEFORE = ('[generate]\nbackend = "offline"\n[pdf]\nenabled = false\n'
          '[topics]\nenabled = false\ndebounce_seconds = 0.5\n[review]\nenabled = false\n')
AFTER = ('[generate]\nbackend = "offline"\n[pdf]\nenabled = false\n'
         '[daemon]\nworkers = 3\npolling = true\n'
         '[topics]\nenabled = true\nfolder = "Subjects"\ndebounce_seconds = 0.5\n'
         '[review]\nenabled = true\nfolder = "Weekly"\n')


def test_sighup_applies_topics_and_review(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    (vault / ".vaultd").mkdir(parents=True)
    config = vault / ".vaultd" / "config.toml"
    config.write_text(BEFORE, encoding="utf-8")
    (vault / "inbox.md").write_text("# Inbox\n\n", encoding="utf-8")
    lines: list[str] = []
    for topic in BANK:
        for i in range(3):
            add_lecture(vault, topic, i, lines)
    log = tmp_path / "daemon.log"
    env = vaultd_env(tmp_path / "state")
    proc = start_daemon(vault, env, "--workers", "1", log=log)
    graph = vault / "Knowledge Graph.md"
    try:
        wait_for(lambda: (vault / "Study Notes.base").exists(), what="daemon start")
        append_in_place(vault / "inbox.md", "\n".join(lines) + "\n")
        wait_for(lambda: graph.exists() and all(
            f"Enzymes {i}" in graph.read_text(encoding="utf-8") for i in range(3)) and all(
            f"Markets {i}" in graph.read_text(encoding="utf-8") for i in range(3)),
            timeout=120, what="six study notes in the graph note")
        # Off as configured: no topic notes, no review note.
        assert not (vault / "Topics").exists() and not (vault / "Subjects").exists()
        assert not (vault / "Review").exists() and not (vault / "Weekly").exists()

        config.write_text(AFTER, encoding="utf-8")
        proc.send_signal(signal.SIGHUP)
        review = vault / "Weekly" / f"{iso_week(date.today())}.md"
        wait_for(review.exists, timeout=60, what="this week's review note in Weekly/")
        topics = wait_for(lambda: len(list((vault / "Subjects").glob("*.md"))) == 2
                          and list((vault / "Subjects").glob("*.md")), timeout=90,
                          what="two topic notes in Subjects/")
        listed = set().union(*(members(p.read_text(encoding="utf-8")) for p in topics))
        assert {f"Study Notes/Enzymes {i}" for i in range(3)} <= listed
        assert not (vault / "Topics").exists()
        wait_for(lambda: f"Weekly/{iso_week(date.today())}" in graph.read_text(
            encoding="utf-8"), timeout=60, what="the graph note linking the review")
        # [daemon] polling: the watcher was re-armed as a poller.
        wait_for(lambda: status_json(vault, env)["daemon"]["watcher"] == "polling",
                 timeout=30, what="vaultd status showing the polling watcher")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    text = log.read_text(encoding="utf-8")
    assert "config reloaded" in text
    assert "daemon.workers changed but take(s) effect only at the next start" in text
    assert tracebacks(text) == []
