"""A foreign file at every output path: vaultd never replaces a file it did not create.
Its own output goes beside the user's file under a clear name, and it says so (log and
``status``). Issue 11, item 3: a user's own ``Knowledge Graph.canvas`` was replaced when
there was no ``Knowledge Graph.md``.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.helpers import start_daemon, status_json, wait_for
from tests.security.test_paths_inbox import annotations, make_vault, run_once
from tests.test_writer import Harness, make_content, regenerate_with

USER_CANVAS = json.dumps({"nodes": [{"id": "mine", "type": "text", "text": "my own board",
                                     "x": 0, "y": 0, "width": 200, "height": 80}],
                          "edges": []})
USER_NOTE = "# My knowledge graph\n\nHand-written, not vaultd's.\n"


def test_users_canvas_without_a_graph_note_is_kept(tmp_path: Path) -> None:
    vault, _outside, env = make_vault(tmp_path, ["- [[gravity.srt]]"])
    (vault / "Knowledge Graph.canvas").write_text(USER_CANVAS, encoding="utf-8")
    proc = run_once(vault, env)
    assert proc.returncode == 0, proc.stderr
    assert (vault / "Knowledge Graph.canvas").read_text(encoding="utf-8") == USER_CANVAS
    ours = vault / "Knowledge Graph (vaultd).canvas"
    assert ours.is_file() and "Maintained by vaultd" in ours.read_text(encoding="utf-8")
    assert (vault / "Knowledge Graph (vaultd).md").is_file()
    assert not (vault / "Knowledge Graph.md").exists()
    assert "Knowledge Graph.canvas is not vaultd's" in proc.stderr


def test_users_graph_note_is_kept_and_ours_goes_beside(tmp_path: Path) -> None:
    vault, _outside, env = make_vault(tmp_path, ["- [[gravity.srt]]"])
    (vault / "Knowledge Graph.md").write_text(USER_NOTE, encoding="utf-8")
    proc = run_once(vault, env)
    assert proc.returncode == 0, proc.stderr
    assert (vault / "Knowledge Graph.md").read_text(encoding="utf-8") == USER_NOTE
    assert not (vault / "Knowledge Graph.canvas").exists()
    beside = (vault / "Knowledge Graph (vaultd).md").read_text(encoding="utf-8")
    assert "type: knowledge-graph" in beside and "Gravity" in beside


def test_users_note_and_assessment_names_are_never_taken(tmp_path: Path) -> None:
    vault, _outside, env = make_vault(tmp_path, ["- [[gravity.srt]]"])
    notes = vault / "Study Notes"
    notes.mkdir()
    (notes / "Gravity.md").write_text("mine\n", encoding="utf-8")
    (notes / "Gravity (Assessment).md").write_text("also mine\n", encoding="utf-8")
    assert run_once(vault, env).returncode == 0
    assert (notes / "Gravity.md").read_text(encoding="utf-8") == "mine\n"
    assert (notes / "Gravity (Assessment).md").read_text(encoding="utf-8") == "also mine\n"
    [(_, status)] = annotations(vault)
    assert "[[Study Notes/Gravity (2)]]" in status


def pdf_text(path: Path) -> str:
    return "".join(page.extract_text() or "" for page in PdfReader(path).pages)


def test_users_pdf_at_the_target_path_is_kept(tmp_path: Path) -> None:
    """A user's own PDF where vaultd would file the note's PDF: kept byte for byte, ours
    is written beside it, the daemon says so in ``status``; our own PDF there later is
    ours and is replaced in place."""
    vault, _outside, env = make_vault(tmp_path, ["- [[gravity.srt]]"], pdf=True)
    folder = vault / "PDF" / "Study Notes"
    folder.mkdir(parents=True)
    mine = b"%PDF-1.4\n% the user's own scan of their lecture notes\n%%EOF\n"
    (folder / "Gravity.pdf").write_bytes(mine)
    daemon = start_daemon(vault, env, log=tmp_path / "daemon.log")
    try:
        beside = folder / "Gravity (vaultd).pdf"
        wait_for(beside.is_file, timeout=120, what="our PDF beside the user's")
        notices = wait_for(lambda: status_json(vault, env)["notices"], timeout=30,
                           what="a notice in status")
        assert any("PDF/Study Notes/Gravity.pdf is not vaultd's" in n for n in notices)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=90)
    assert (folder / "Gravity.pdf").read_bytes() == mine
    assert "gravity" in pdf_text(beside).lower()


# -- conflict copies (the writer in-process, as tests/test_writer.py drives it) ---------
@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    vault = tmp_path / "vault"
    (vault / ".vaultd").mkdir(parents=True)
    (vault / ".vaultd" / "config.toml").write_text("[pdf]\nenabled = false\n")
    harness = Harness(vault, tmp_path / "state").start()
    yield harness
    harness.stop()


def test_a_users_file_at_the_conflict_copy_name_is_never_replaced(h: Harness) -> None:
    from tests.helpers import lecture_srt

    vault = h.paths.vault
    key = h.generate(make_content("Stomata", video_id="CCCCCCCCCCC"))
    note = vault / h.done(key)
    note.write_text(note.read_text().replace("> [!summary]", "> [!summary]\n> MINE", 1))
    edited = note.read_text()
    created = datetime.now().astimezone()
    planted = []
    for minutes in (0, 1):  # the copy's name holds the minute it is written
        t = created + timedelta(minutes=minutes)
        name = f"Stomata (regenerated {created:%Y-%m-%d} {t:%H%M}).md"
        (note.parent / name).write_text(f"my file {minutes}\n")
        planted.append(note.parent / name)
    h.ledger.set_note_text(key, "---\ntitle: x\n---\nsomething else entirely\n")
    other = make_content("Stomata", video_id="CCCCCCCCCCC",
                         text=lecture_srt("stomata and water", 80, seed=3))
    regenerate_with(h, key, other)
    h.done(key)
    assert "> MINE" in note.read_text() and edited  # the user's edit survives the merge
    for n, path in enumerate(planted):
        assert path.read_text() == f"my file {n}\n"
    copies = [p for p in note.parent.glob("Stomata (regenerated *).md") if p not in planted]
    assert len(copies) == 1 and "stomata" in copies[0].read_text().lower()
