"""Deletions that are not the user's, and deletions the daemon did not see.

``vaultd run`` as a subprocess on a temp vault; the test removes the whole vault
(``rm -rf``: the watcher sees every note go before the root does) and brings it back, or
deletes and moves notes while no daemon runs, and reads the vault as a person would: the
inbox lines, the notes, their PDFs, the graph note and canvas.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from daemon.writer.deletions import UNSEEN_SETTLE
from tests.helpers import append_in_place, start_daemon, wait_for
from tests.test_e2e_run import make_vault, notes_in
from tests.test_note_deleted import _annotations, _canvas_files


def _stop(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


def _note_of(annotation: str) -> str:
    link = re.search(r"✅ \[\[([^|\]]+)", annotation)
    assert link, annotation
    return link.group(1)


def _listed(vault: Path, stem_path: str) -> bool:
    """The graph note links the note and the canvas has its node."""
    graph = vault / "Knowledge Graph.md"
    return graph.exists() and re.search(re.escape(f"[[{stem_path}") + r"[|\]]",
                                        graph.read_text(encoding="utf-8")) is not None \
        and f"{stem_path}.md" in _canvas_files(vault)


def _heartbeat(state: Path) -> dict:  # type: ignore[type-arg]
    beats = list(state.rglob("daemon.json"))
    return json.loads(beats[0].read_text()) if beats else {}


def _settled(vault: Path, lines: list[str]) -> dict[str, str]:
    """Every line done, with its note's PDF and its place in the graph note and canvas."""
    notes = wait_for(lambda: (a := _annotations(vault)) and all(
        "✅" in a.get(line, "") for line in lines) and a, timeout=120, what="lines done")
    for line in lines:
        stem = _note_of(notes[line])
        wait_for(lambda s=stem: (vault / "PDF" / f"{s}.pdf").exists() and _listed(vault, s),
                 timeout=60, what=f"the PDF and graph node of {stem}")
    return notes


def _probe(vault: Path) -> None:
    """A line the user adds; once it has its status the daemon has read the inbox since."""
    probe = "- [[Lectures/not-there-yet.srt]]"
    append_in_place(vault / "inbox.md", probe + "\n")
    wait_for(lambda: _annotations(vault).get(probe), what="the inbox read again")


def _back_up_and_remove(vault: Path, state: Path) -> Path:
    """Copy the vault aside, ``rm -rf`` it (the files go one by one, then the folders)
    and wait for the daemon to say it is missing. Returns the copy."""
    backup = vault.parent / "backup"
    shutil.copytree(vault, backup)
    shutil.rmtree(vault)
    wait_for(lambda: _heartbeat(state).get("paused") == "vault folder missing",
             what="the daemon saying the vault is missing")
    return backup


def _done_then_stopped(tmp_path: Path, n: int
                       ) -> tuple[Path, dict[str, str], list[str], Path, dict[str, str]]:
    """A vault whose ``n`` lines a daemon has done (PDFs, graph) and that is stopped:
    (vault, env, lines, log, the inbox annotations)."""
    vault, env, lines = make_vault(tmp_path, n)
    append_in_place(vault / "inbox.md", "\n".join(lines) + "\n")
    log = tmp_path / "daemon.log"
    proc = start_daemon(vault, env, log=log)
    try:
        before = _settled(vault, lines)
    finally:
        _stop(proc)
    return vault, env, lines, log, before


def test_whole_vault_deleted_then_restored_records_no_deletion(tmp_path: Path) -> None:
    """``rm -rf`` of the vault while the daemon runs, then the vault restored from a
    backup: nothing may end as the user deleting notes. Before the fix, every note's
    deletion (seen before the root vanished) was recorded: the inbox lines said "note
    deleted" once the vault was back and the saved graph had lost the notes."""
    vault, env, lines = make_vault(tmp_path, 3)
    state = Path(env["VAULTD_STATE_DIR"])
    (vault / ".vaultd").mkdir()
    (vault / ".vaultd" / "config.toml").write_text("[topics]\ndebounce_seconds = 0.5\n")
    append_in_place(vault / "inbox.md", "\n".join(lines) + "\n")
    log = tmp_path / "daemon.log"
    proc = start_daemon(vault, env, log=log)
    try:
        before = _settled(vault, lines)
        wait_for(lambda: list(vault.glob("Topics/*.md")), what="a topic note")
        backup = _back_up_and_remove(vault, state)
        wait_for(lambda: "not counted as yours" in log.read_text()
                 or "was deleted; vaultd regenerate" in log.read_text(),
                 what="the daemon handling the deletions it saw")
        shutil.copytree(backup, vault)  # restored (a sync client, a backup, a remount)
        wait_for(lambda: not _heartbeat(state).get("paused"), what="the daemon resuming")
        _probe(vault)  # the user goes on
    finally:
        _stop(proc)
    after = _annotations(vault)
    for line in lines:
        assert after[line] == before[line], after  # no line changed by the episode
    kept = sorted(p.relative_to(backup) for p in backup.rglob("*") if p.is_file()
                  and p.suffix == ".md" and "Study Notes" in p.parts)
    assert len(kept) == 6 and sorted(p.relative_to(vault) for p in notes_in(vault)) == kept
    for rel in kept:  # nothing regenerated, rewritten or lost
        assert (vault / rel).read_bytes() == (backup / rel).read_bytes(), rel
    saved = next(state.rglob("graph.json")).read_text(encoding="utf-8")
    for line in lines:
        stem = _note_of(after[line])
        assert (vault / "PDF" / f"{stem}.pdf").exists()
        assert f"{stem}.md" in saved  # the graph still holds it
    maintained = json.loads(next(state.rglob("maintained.json")).read_text())
    assert not [rel for rel, rec in maintained["files"].items() if rec.get("deleted")]
    topics = list(backup.glob("Topics/*.md"))
    assert topics and all((vault / t.relative_to(backup)).exists() for t in topics)
    text = log.read_text()
    assert "was deleted" not in text and "Traceback" not in text


def test_note_deleted_while_stopped_ends_as_a_live_deletion(tmp_path: Path) -> None:
    """A study note deleted while no daemon runs ends as a deletion seen live does
    (tests/test_note_deleted.py): its PDF removed, out of the graph note and canvas,
    the inbox line saying so and how to make it again. A note moved meanwhile is
    followed, not deleted. Before the fix only the graph was cleaned."""
    vault, env, lines, log, before = _done_then_stopped(tmp_path, 3)
    gone, moved, kept = (_note_of(before[line]) for line in lines)
    (vault / f"{gone}.md").unlink()  # deleted from a file manager, no daemon running
    (vault / "Biology").mkdir()
    new = f"Biology/{Path(moved).name}"
    (vault / f"{moved}.md").rename(vault / f"{new}.md")  # moved

    proc = start_daemon(vault, env, log=log)
    try:
        line = wait_for(lambda: (a := _annotations(vault)[lines[0]]) and "🗑" in a and a,
                        timeout=60, what="the inbox line saying the note was deleted")
        assert "note deleted" in line and "vaultd regenerate file:Lectures/" in line, line
        wait_for(lambda: not (vault / "PDF" / f"{gone}.pdf").exists(), timeout=30,
                 what="the deleted note's PDF removed")
        wait_for(lambda: not _listed(vault, gone) and _listed(vault, new), timeout=60,
                 what="the graph note and canvas without the deleted note")
        assert (vault / f"{gone} (Assessment).md").exists()  # only what the user deleted
        wait_for(lambda: f"[[{new}" in _annotations(vault)[lines[1]], timeout=30,
                 what="the moved note's line linking its new place")
        assert "✅" in _annotations(vault)[lines[1]]
        assert _annotations(vault)[lines[2]] == before[lines[2]]
        assert (vault / "PDF" / f"{kept}.pdf").exists()
    finally:
        _stop(proc)
    assert "Traceback" not in log.read_text()


def test_every_study_note_missing_at_start_is_not_a_deletion(tmp_path: Path) -> None:
    """The study notes' folder not there at start (a drive not mounted, a sync client
    still downloading) while the inbox is: not the user deleting every note. The lines
    keep their links, and once the folder is back nothing was recorded."""
    vault, env, lines, log, before = _done_then_stopped(tmp_path, 2)
    away = tmp_path / "away"
    (vault / "Study Notes").rename(away)
    proc = start_daemon(vault, env, log=log)
    try:
        wait_for(lambda: "not counted as deleted" in log.read_text(), timeout=60,
                 what="the daemon saying the notes are missing, not deleted")
        away.rename(vault / "Study Notes")
        _probe(vault)
    finally:
        _stop(proc)
    after = _annotations(vault)
    assert [after[line] for line in lines] == [before[line] for line in lines], after
    for line in lines:
        assert (vault / "PDF" / f"{_note_of(after[line])}.pdf").exists()
    assert "was deleted" not in log.read_text()


def test_vault_copied_back_slowly_records_no_deletion(tmp_path: Path) -> None:
    """The vault comes back the way a sync client or a large copy brings it: the inbox
    and one note first, the other notes a second or so apart after the daemon resumed.
    Notes missing when it looked again are only pending while notes keep arriving, and
    deletions seen before the folder was gone are not counted in the new folder, so none
    is recorded as deleted (nor its PDF removed). Before the fix the two notes copied
    last were recorded deleted and their PDFs removed."""
    vault, env, lines = make_vault(tmp_path, 3)
    state = Path(env["VAULTD_STATE_DIR"])
    append_in_place(vault / "inbox.md", "\n".join(lines) + "\n")
    log = tmp_path / "daemon.log"
    proc = start_daemon(vault, env, log=log)
    try:
        before = _settled(vault, lines)
        stems = [_note_of(before[line]) for line in lines]
        backup = _back_up_and_remove(vault, state)
        late = {backup / f"{stem}.md" for stem in stems[1:]}
        shutil.copytree(backup, vault, ignore=lambda d, names: [
            n for n in names if Path(d) / n in late])  # all but two study notes
        wait_for(lambda: not _heartbeat(state).get("paused"), what="the daemon resuming")
        for note in sorted(late):  # the copy goes on: pacing the scenario, not a wait
            time.sleep(1.2)
            shutil.copy2(note, vault / note.relative_to(backup))
        _probe(vault)
        # An absence cannot be polled for: the settle for notes missing when the vault
        # came back has passed once this has; a wrong deletion would be done by then.
        time.sleep(UNSEEN_SETTLE + 1)
    finally:
        _stop(proc)
    after = _annotations(vault)
    assert [after[line] for line in lines] == [before[line] for line in lines], after
    for stem in stems:
        assert (vault / "PDF" / f"{stem}.pdf").exists(), stem
    assert "was deleted" not in log.read_text()
