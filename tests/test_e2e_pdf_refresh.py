"""PDFs follow the notes: `vaultd run` re-exports a study note's PDF after the user edits
the note, once the note has been left alone for ``pdf.refresh_after_seconds``; a save
that changes nothing renders nothing; edits made while the daemon was stopped and a new
theme reach the PDFs after the next start. Real daemon subprocess, real PDF pool, pypdf."""

from __future__ import annotations

import io
import signal
from pathlib import Path

from pypdf import PdfReader

from tests.helpers import (
    TOPICS,
    append_in_place,
    lecture_srt,
    start_daemon,
    status_json,
    tracebacks,
    vaultd,
    vaultd_env,
    wait_for,
)
from vault_tools.inbox import parse_inbox


def pdf_text(path: Path) -> str:
    try:
        reader = PdfReader(io.BytesIO(path.read_bytes()))
        return "\n".join(page.extract_text() or "" for page in reader.pages)
    except (OSError, ValueError):  # not there yet, or caught mid-replace (never partial)
        return ""


def one_lecture_vault(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    vault = tmp_path / "vault"
    (vault / "Lectures").mkdir(parents=True)
    (vault / ".vaultd").mkdir()
    (vault / ".vaultd" / "config.toml").write_text(
        "[pdf]\nrefresh_after_seconds = 0.5\n[daemon]\ndebounce_seconds = 0.1\n")
    (vault / "Lectures" / "memory.srt").write_text(lecture_srt(TOPICS[1], 50))
    (vault / "inbox.md").write_text("# Inbox\n\n")
    return vault, vaultd_env(tmp_path / "state")


def process_the_lecture(vault: Path, env: dict[str, str]) -> tuple[Path, Path, Path, Path]:
    """Paste the lecture into a running daemon's inbox; wait for the note, the assessment
    and both PDFs. Returns (note, assessment, note PDF, assessment PDF)."""
    wait_for(lambda: status_json(vault, env)["daemon"], what="daemon start")
    append_in_place(vault / "inbox.md", "- [[Lectures/memory.srt]]\n")
    pdfs = vault / "PDF" / "Study Notes"

    def exported() -> bool:
        lines = parse_inbox((vault / "inbox.md").read_text())
        return "✅" in lines[0].annotation and len(list(pdfs.glob("*.pdf"))) == 2

    wait_for(exported, timeout=120, what="the note, its assessment and their PDFs")
    note, = (p for p in (vault / "Study Notes").glob("*.md")
             if not p.stem.endswith("(Assessment)"))
    assessment, = (vault / "Study Notes").glob("*(Assessment).md")
    return note, assessment, pdfs / f"{note.stem}.pdf", pdfs / f"{assessment.stem}.pdf"


def test_an_edited_note_gets_a_fresh_pdf_and_an_unchanged_one_keeps_its_own(
        tmp_path: Path) -> None:
    vault, env = one_lecture_vault(tmp_path)
    log = tmp_path / "daemon.log"
    proc = start_daemon(vault, env, log=log)
    try:
        note, assessment, note_pdf, assessment_pdf = process_the_lecture(vault, env)
        assert "Zebra mnemonic" not in pdf_text(note_pdf)
        unchanged = assessment_pdf.read_bytes()

        # A save that changes nothing (the editor wrote the same bytes back) ...
        assessment.write_bytes(assessment.read_bytes())
        # ... and a real edit, in two saves as Obsidian makes them while you type.
        append_in_place(note, "\n## My own notes\n\nZebra mnemonic: ")
        append_in_place(note, "stripes mark the phases.\n")
        wait_for(lambda: "Zebra mnemonic: stripes mark the phases" in pdf_text(note_pdf),
                 timeout=60, what="the edited note's PDF to show the edit")
        assert assessment_pdf.read_bytes() == unchanged  # same text: not rendered again
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    text = log.read_text()
    # Both saves of the edit gave one export; the no-op save gave none.
    assert text.count("re-exporting 1 changed note(s) to PDF") == 1, text[-3000:]
    assert "re-exporting 2" not in text
    assert tracebacks(text) == []


def test_edits_while_stopped_and_a_new_theme_reach_the_pdfs(tmp_path: Path) -> None:
    vault, env = one_lecture_vault(tmp_path)
    log = tmp_path / "daemon.log"
    proc = start_daemon(vault, env, log=log)
    try:
        note, assessment, note_pdf, assessment_pdf = process_the_lecture(vault, env)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    before = assessment_pdf.read_bytes()
    append_in_place(note, "\n## Added while vaultd was off\n\nQuokka fact.\n")
    proc = start_daemon(vault, env, log=log)
    try:
        wait_for(lambda: "Quokka fact." in pdf_text(note_pdf), timeout=60,
                 what="the note edited while stopped to reach its PDF at the next start")
        assert assessment_pdf.read_bytes() == before  # unchanged note, same theme

        # The user switches to the print theme and reloads the running daemon.
        config = vault / ".vaultd" / "config.toml"
        config.write_text(config.read_text().replace("[pdf]\n", '[pdf]\ntheme = "print"\n'))
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: assessment_pdf.read_bytes() != before, timeout=60,
                 what="the assessment's PDF redone in the print theme after SIGHUP")
        assert "Quokka fact." in pdf_text(note_pdf)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    text = log.read_text()
    assert "config reloaded" in text and tracebacks(text) == []


def test_run_once_leaves_every_pdf_matching_its_note(tmp_path: Path) -> None:
    """Two lectures on one topic: the second note lists the first, the writer links the
    first back, and `run --once` does not exit before the first's PDF shows that link."""
    vault = tmp_path / "vault"
    (vault / "Lectures").mkdir(parents=True)
    for part in (1, 2):
        (vault / "Lectures" / f"Photosynthesis part {part}.srt").write_text(
            lecture_srt(TOPICS[0], 50, seed=part))
    (vault / "inbox.md").write_text("- [[Lectures/Photosynthesis part 1.srt]]\n"
                                    "- [[Lectures/Photosynthesis part 2.srt]]\n")
    env = vaultd_env(tmp_path / "state")
    proc = vaultd("run", "--vault", str(vault), "--once", "--workers", "1", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    first = vault / "Study Notes" / "Photosynthesis part 1.md"
    assert "[[Photosynthesis part 2]]" in first.read_text()  # the back-link is there
    for note in (vault / "Study Notes").glob("*.md"):
        pdf = vault / "PDF" / "Study Notes" / f"{note.stem}.pdf"
        for line in note.read_text().splitlines():
            if line.startswith("- [[") and "vaultd:" not in line:  # Related entries
                shown = line[4:].split("|")[-1].rstrip("]")
                assert shown in pdf_text(pdf), (note.name, shown)
    assert tracebacks(proc.stderr) == []
