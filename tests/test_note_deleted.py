"""A study note the user deletes is followed at once (issue 17, item 6).

``vaultd run`` as a subprocess on a temp vault; the user deletes a study note the way
Obsidian does (moved into the vault's ``.trash``) and the test reads the vault as a
person would: the graph note, the canvas, the PDF folder and the inbox line.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

from tests.helpers import lecture_srt, start_daemon, vaultd, vaultd_env, wait_for
from vault_tools.inbox import parse_inbox


def _annotations(vault: Path) -> dict[str, str]:
    text = (vault / "inbox.md").read_text(encoding="utf-8")
    return {line.body: line.annotation for line in parse_inbox(text)}


def _canvas_files(vault: Path) -> set[str]:
    canvas = vault / "Knowledge Graph.canvas"
    if not canvas.exists():
        return set()
    data = json.loads(canvas.read_text(encoding="utf-8"))
    return {n["file"] for n in data.get("nodes", []) if n.get("type") == "file"}


def _stop(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


def test_deleted_study_note_leaves_graph_canvas_pdf_and_inbox_says_so(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    (vault / "Lectures").mkdir(parents=True)
    for topic in ("photosynthesis", "glaciers"):
        (vault / "Lectures" / f"{topic}.srt").write_text(lecture_srt(topic, 60))
    lines = ["- [[Lectures/photosynthesis.srt]]", "- [[Lectures/glaciers.srt]]"]
    (vault / "inbox.md").write_text("# Inbox\n\n" + "\n".join(lines) + "\n")
    env = vaultd_env(tmp_path / "state")
    proc = start_daemon(vault, env, log=tmp_path / "daemon.log")
    try:
        wait_for(lambda: all("✅" in a for a in _annotations(vault).values())
                 and len(_annotations(vault)) == 2, timeout=120, what="both notes done")
        link = re.search(r"\[\[([^|\]]+)", _annotations(vault)[lines[0]])
        assert link
        note_rel = link.group(1) + ".md"
        pdf = vault / "PDF" / (link.group(1) + ".pdf")
        wait_for(lambda: pdf.exists() and f"{link.group(1)}.md" in _canvas_files(vault),
                 timeout=60, what="the PDF and the canvas node of the note")
        listed = re.compile(re.escape(f"[[{link.group(1)}") + r"[|\]]")
        wait_for(lambda: listed.search((vault / "Knowledge Graph.md").read_text()),
                 timeout=60, what="the graph note listing the note")

        (vault / ".trash").mkdir(exist_ok=True)  # Obsidian's "move to .trash" deletion
        (vault / note_rel).rename(vault / ".trash" / Path(note_rel).name)

        wait_for(lambda: not pdf.exists(), timeout=30, what="the deleted note's PDF removed")
        wait_for(lambda: note_rel not in _canvas_files(vault), timeout=60,
                 what="the canvas without the deleted note")
        graph_note = (vault / "Knowledge Graph.md").read_text(encoding="utf-8")
        assert not listed.search(graph_note), graph_note
        line = wait_for(lambda: (a := _annotations(vault)[lines[0]]) and "🗑" in a and a,
                        timeout=30, what="the inbox line saying the note was deleted")
        assert "note deleted" in line and "vaultd regenerate file:Lectures/photosynthesis.srt" \
            in line, line
        assert "✅" in _annotations(vault)[lines[1]]  # the other note is untouched
        other = re.search(r"\[\[([^|\]]+)", _annotations(vault)[lines[1]])
        assert other and (vault / "PDF" / (other.group(1) + ".pdf")).exists()
    finally:
        _stop(proc)

    # What the line says works: the note comes back, with its PDF and graph node.
    out = vaultd("regenerate", "--vault", str(vault), "file:Lectures/photosynthesis.srt",
                 env=env)
    assert out.returncode == 0, out.stderr
    assert "⏳ queued" in _annotations(vault)[lines[0]]  # at once, before any daemon runs
    done = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "✅" in _annotations(vault)[lines[0]]
    assert (vault / note_rel).exists() and pdf.exists()


def test_note_deleted_while_stopped_leaves_the_saved_graph_at_start(tmp_path: Path) -> None:
    import threading

    from daemon.graphkeeper import GraphKeeper

    vault, state = tmp_path / "vault", tmp_path / "state"
    vault.mkdir()
    (vault / "Gravity.md").write_text("# Gravity\n\nSee [[Orbits]] and #physics.\n")
    (vault / "Orbits.md").write_text("# Orbits\n\nSee [[Gravity]] and #physics.\n")
    env = vaultd_env(state)
    assert vaultd("graph", "--vault", str(vault), env=env).returncode == 0
    saved = next(state.rglob("graph.json"))
    assert "Orbits.md" in saved.read_text()
    (vault / "Orbits.md").unlink()  # deleted while no daemon ran

    rendered: list[str] = []
    done = threading.Event()

    def on_render(note: str, canvas: str) -> None:
        rendered.append(note + canvas)
        done.set()

    keeper = GraphKeeper(vault, saved.parent, [], on_render, debounce=0.1)
    keeper.start()
    try:
        assert done.wait(30), "the keeper did not render after dropping the deleted note"
    finally:
        keeper.stop()
        keeper.join(10)
    assert "Gravity.md" in rendered[-1] and "Orbits.md" not in rendered[-1]
