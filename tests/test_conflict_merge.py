"""Regeneration against a user's edit (issue 17, item 6): every change that does not
collide is applied, only the collided blocks go to a conflict copy, and the copy is no
note of the knowledge base (graph, canvas, index, linker, suggested links).

Runs the real writer, keeper and watcher on a temp vault (the harness of
``test_writer``) and reads the files as a person would.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import lecture_srt, wait_for
from tests.test_writer import Harness, h, make_content, regenerate_with, vault  # noqa: F401
from vault_tools import frontmatter
from vault_tools.conflicts import is_conflict_copy
from vault_tools.graph import KnowledgeGraph
from vault_tools.merge import merge3_blocks


def test_merge3_blocks_applies_the_rest_and_reports_only_the_collision() -> None:
    base = ["# T", "", "summary old", "", "point a", "point b", "", "end"]
    ours = ["# T", "", "summary NEW", "", "point a", "point b NEW", "", "end", "added"]
    theirs = ["# T", "", "summary MINE", "", "point a", "point b", "", "end"]
    merged, collisions = merge3_blocks(base, ours, theirs)
    assert merged == ["# T", "", "summary MINE", "", "point a", "point b NEW", "", "end",
                      "added"]
    assert len(collisions) == 1
    c = collisions[0]
    assert (c.base, c.ours, c.theirs, c.before) == (["summary old"], ["summary NEW"],
                                                    ["summary MINE"], "# T")


def _body_lines(text: str) -> list[str]:
    return frontmatter.split(text)[1].split("\n")


def test_regeneration_applies_what_did_not_collide_and_copies_only_the_rest(
        h: Harness, vault: Path) -> None:  # noqa: F811
    key = h.generate(make_content("Stomata", video_id="CCCCCCCCCCC"))
    note = vault / h.done(key)
    first = h.ledger.get(key).note_text
    lines = note.read_text().splitlines()
    tldr = next(i for i, line in enumerate(lines) if line.startswith("> [!summary]"))
    lines[tldr + 1] = "> MY OWN SUMMARY, rewritten by hand."
    note.write_text("\n".join(lines) + "\n\n## My notes\n\nAsk about guard cells.\n")

    regenerate_with(h, key, make_content("Stomata", video_id="CCCCCCCCCCC",
                                         text=lecture_srt("stomata and water", 80, seed=3)))
    h.done(key)
    new = h.ledger.get(key).note_text
    merged = note.read_text()
    assert "> MY OWN SUMMARY, rewritten by hand." in merged  # the user's edit wins
    assert "Ask about guard cells." in merged
    copies = list(note.parent.glob("Stomata (regenerated *).md"))
    assert len(copies) == 1, copies
    copy = copies[0].read_text()
    assert is_conflict_copy(f"Study Notes/{copies[0].name}", copy)
    # Every new line is in the note or (collided) in the copy; the new lines that did not
    # collide are in the note: the regeneration was applied, not parked.
    fresh = [ln for ln in _body_lines(new) if ln.strip() and ln not in _body_lines(first)]
    applied = [ln for ln in fresh if ln in merged.split("\n")]
    assert applied and len(applied) >= len(fresh) // 2, (len(applied), len(fresh))
    assert all(ln in merged.split("\n") or ln in copy for ln in fresh)
    # The copy holds only the collided blocks, not the whole new version.
    assert len(copy.splitlines()) < len(new.splitlines()) // 2, copy
    assert "MY OWN SUMMARY" in copy and "Ask about guard cells." not in copy

    # Not a note of the knowledge base: graph note, canvas, index, linker, rebuild.
    copy_rel = f"Study Notes/{copies[0].name}"
    graph_note = vault / "Knowledge Graph.md"
    h.writer.wait_idle(10)  # the copy's file event handled too
    renders = h.keeper.renders
    h.keeper.render_now()
    wait_for(lambda: h.keeper.renders > renders, what="a render after the copy", timeout=30)
    h.writer.wait_idle(10)
    text = graph_note.read_text()
    assert "Stomata" in text
    assert "regenerated" not in text, text
    canvas = json.loads((vault / "Knowledge Graph.canvas").read_text())
    assert copy_rel not in {n.get("file") for n in canvas["nodes"]}
    assert h.writer.knowledge is not None
    assert copy_rel not in {e.path for e in h.writer.knowledge.index.entries()}
    assert "regenerated" not in h.writer.knowledge.link("Stomata open and close.",
                                                        self_title="Other")
    assert not KnowledgeGraph.rebuild(vault).has_note(copy_rel)


def test_a_user_note_with_the_copy_name_but_no_marker_still_counts(tmp_path: Path) -> None:
    (tmp_path / "Plants (regenerated 2026-01-02 1030).md").write_text(
        "My own page about [[Stomata]].\n")
    (tmp_path / "Marker only.md").write_text("---\nvaultd_conflict: true\n---\nmine\n")
    graph = KnowledgeGraph.rebuild(tmp_path)
    assert graph.has_note("Plants (regenerated 2026-01-02 1030).md")
    assert graph.has_note("Marker only.md")
