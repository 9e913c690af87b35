"""End to end: ``vaultd run`` as a subprocess on a temp vault, edited like a person would.

Appends lines in place and by atomic rename, waits (with a deadline) for the notes,
SIGKILLs the daemon mid-run, restarts it and checks every source is done exactly once:
one note and one assessment each, every inbox line linking its note, no temp or empty
files, and the user's own lines untouched.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

from tests.helpers import (
    TOPICS,
    append_by_rename,
    append_in_place,
    lecture_srt,
    start_daemon,
    status_json,
    tracebacks,
    vaultd,
    vaultd_env,
    wait_for,
)
from vault_tools import frontmatter
from vault_tools.inbox import parse_inbox

USER_TEXT = "# Inbox\n\nMy reading list for the exam — do not lose this line!\n\n"


def make_vault(tmp_path: Path, n: int) -> tuple[Path, dict[str, str], list[str]]:
    vault = tmp_path / "vault"
    (vault / "Lectures").mkdir(parents=True)
    lines = []
    for i, topic in enumerate(TOPICS[:n]):
        name = f"{topic}-lecture.srt"
        (vault / "Lectures" / name).write_text(lecture_srt(topic, 60, seed=i))
        lines.append(f"- [ ] [[Lectures/{name}]]")
    (vault / "inbox.md").write_text(USER_TEXT)
    return vault, vaultd_env(tmp_path / "state"), lines


def notes_in(vault: Path) -> list[Path]:
    return sorted((vault / "Study Notes").glob("*.md")) if (vault / "Study Notes").exists() \
        else []


def done_lines(vault: Path) -> int:
    return sum(1 for line in parse_inbox((vault / "inbox.md").read_text())
               if "✅" in line.annotation)


def check_vault(vault: Path, n: int) -> None:
    inbox = (vault / "inbox.md").read_text()
    assert inbox.startswith(USER_TEXT)  # the user's text is byte-for-byte intact
    lines = parse_inbox(inbox)
    assert len(lines) == n
    files = notes_in(vault)
    study = [f for f in files if not f.stem.endswith("(Assessment)")]
    assessments = [f for f in files if f.stem.endswith("(Assessment)")]
    assert len(study) == n and len(assessments) == n, [f.name for f in files]
    assert not [f for f in files if re.search(r" \(\d+\)$", f.stem.replace(" (Assessment)", ""))]
    keys = set()
    for note in study:
        data, body = frontmatter.split(note.read_text())
        assert data["type"] == "study-note" and body.strip()
        keys.add(data["source_key"])
        assessment = vault / (data["assessment"][2:-2].split("|")[0] + ".md")
        assert assessment.exists()
    assert len(keys) == n
    for line in lines:
        link = re.search(r"✅ \[\[([^\]|]+)", line.annotation)
        assert link, line
        assert (vault / f"{link.group(1)}.md").exists()
    leftovers = [p for p in vault.rglob("*") if ".vaultd-tmp" in p.name or
                 (p.is_file() and p.stat().st_size == 0)]
    assert not leftovers


def test_run_kill_restart_every_source_done_exactly_once(tmp_path: Path) -> None:
    n = 12
    vault, env, lines = make_vault(tmp_path, n)
    log = tmp_path / "daemon.log"
    proc = start_daemon(vault, env, "--workers", "2", log=log)
    try:
        # Wait until the daemon has made its config (it is up), then type like a person.
        wait_for(lambda: (vault / ".vaultd" / "config.toml").exists(), what="daemon start")
        append_in_place(vault / "inbox.md", "\n".join(lines[:6]) + "\n")
        wait_for(lambda: "⏳" in (vault / "inbox.md").read_text() or done_lines(vault),
                 what="first lines queued")
        append_by_rename(vault / "inbox.md", "\n".join(lines[6:]) + "\n")
        wait_for(lambda: len(notes_in(vault)) >= 2, what="first note")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert done_lines(vault) < n, "the kill should land mid-run; make the batch bigger"

    proc = start_daemon(vault, env, "--workers", "2", log=log)
    try:
        wait_for(lambda: done_lines(vault) == n, timeout=120, what="all lines done",
                 interval=0.25)
        st = status_json(vault, env)
        assert st["counts"]["done"] == n and st["counts"]["failed"] == 0
        assert st["daemon"] and st["backend"] == "offline"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    check_vault(vault, n)
    # The first daemon was killed mid-run; only a worker it was still spawning may
    # have died noisily (see helpers.tracebacks). Nothing of ours may.
    assert tracebacks(log.read_text(), after_kill=True) == []


def test_run_once_drains_and_exits_zero(tmp_path: Path) -> None:
    vault, env, lines = make_vault(tmp_path, 3)
    bad = "- https://www.youtube.com/watch?v=tooshort"
    missing = "- [[Lectures/nope.srt]]"
    append_in_place(vault / "inbox.md", "\n".join([*lines, bad, missing, lines[0]]) + "\n")
    proc = vaultd("run", "--vault", str(vault), "--once", env=env)
    assert proc.returncode == 0, proc.stderr
    inbox = (vault / "inbox.md").read_text()
    assert "❌ failed: 'tooshort' is not a valid YouTube video id" in inbox
    assert "❌ failed: subtitle file not found in the vault: Lectures/nope.srt" in inbox
    parsed = parse_inbox(inbox)
    first, dup = parsed[0], parsed[-1]
    assert first.annotation == dup.annotation and "✅" in first.annotation  # same note linked
    assert len([f for f in notes_in(vault) if "(Assessment)" not in f.name]) == 3
    st = status_json(vault, env)
    assert st["counts"]["done"] == 3 and st["counts"]["failed"] == 2
    assert {f["key"] for f in st["failures"]} == {"invalid:tooshort", "file:Lectures/nope.srt"}
    # A second --once does nothing new: no duplicate notes, no new spend.
    assert vaultd("run", "--vault", str(vault), "--once", env=env).returncode == 0
    assert len(notes_in(vault)) == 6
