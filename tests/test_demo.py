"""``vaultd demo``: the first thing a new user runs must work offline, end to end."""

from __future__ import annotations

from pathlib import Path

from daemon.cli.demo import YOUR_NOTES
from tests.helpers import vaultd, vaultd_env
from vault_tools import frontmatter, related
from vault_tools.inbox import parse_inbox


def test_demo_builds_and_processes_a_sample_vault(tmp_path: Path) -> None:
    env = vaultd_env(tmp_path / "state", ANTHROPIC_API_KEY="sk-ant-not-used-0000")
    demo = tmp_path / "demo"
    proc = vaultd("demo", str(demo), env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "4 source(s) done, 1 failed." in proc.stdout
    notes = sorted(p.name for p in (demo / "Study Notes").glob("*.md"))
    # An acronym in the file name stays one (it was titled "Tcp congestion control").
    assert "TCP congestion control.md" in notes, notes
    assert len(notes) == 8 and sum("(Assessment)" in n for n in notes) == 4
    for note in (demo / "Study Notes").glob("*.md"):
        data, body = frontmatter.split(note.read_text())
        assert data["type"] in ("study-note", "assessment") and body.strip()
        if data["type"] == "study-note":
            assert data["model"] == "offline-extractive"  # offline even with a key set
    lines = parse_inbox((demo / "inbox.md").read_text())
    assert sum("✅ [[Study Notes/" in line.annotation for line in lines) == 4
    assert sum("❌ failed: subtitle file not found" in line.annotation for line in lines) == 1
    assert len(list((demo / "PDF").rglob("*.pdf"))) == 8
    assert (demo / "Knowledge Graph.md").exists()
    for rel, text in YOUR_NOTES.items():  # the person's own notes: linked, never changed
        assert (demo / rel).read_text(encoding="utf-8") == text
    photo = (demo / "Study Notes" / "Photosynthesis.md").read_text(encoding="utf-8")
    assert "[[Chlorophyll|chlorophyll]]" in photo or "[[Chlorophyll]]" in photo
    assert "ATP" in related.links_in_region(photo)
    # A topic note for the two biology lectures, this week's review linking it, and the
    # graph note linking the review; the demo's output names both.
    topics = list((demo / "Topics").glob("*.md"))
    assert len(topics) == 1, topics
    topic = topics[0].read_text(encoding="utf-8")
    assert "[[Study Notes/Photosynthesis|" in topic
    assert "[[Study Notes/Cellular respiration|" in topic
    reviews = list((demo / "Review").glob("*-W*.md"))
    assert len(reviews) == 1
    review_link = f"[[Review/{reviews[0].stem}]]"
    assert review_link in (demo / "Knowledge Graph.md").read_text(encoding="utf-8")
    assert f"[[Topics/{topics[0].stem}|" in reviews[0].read_text(encoding="utf-8")
    assert f"topic:      {topics[0]}" in proc.stdout and f"review:     {reviews[0]}" in proc.stdout
    assert (demo / "Study Notes.base").is_file()
    again = vaultd("demo", str(demo), env=env, timeout=300)  # safe to run twice
    assert again.returncode == 0
    assert sorted(p.name for p in (demo / "Study Notes").glob("*.md")) == notes
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.md").write_text("my stuff")
    refused = vaultd("demo", str(tmp_path / "busy"), env=env)
    assert refused.returncode == 2 and "not a vaultd demo vault" in refused.stderr
