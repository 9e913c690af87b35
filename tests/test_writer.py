"""The vault writer with real files, a real ledger, watchdog and the graph keeper.

Covers what a user checks in their vault: links to their notes, never a file outside
the vault or over their text, notes followed when renamed, regeneration that keeps
their edits (or writes a conflict copy), the graph note, and a full disk.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pypdf import PdfReader

from daemon.config import load_config
from daemon.generate.base import GenerationContext
from daemon.generate.offline import OfflineBackend
from daemon.jobs.ledger import Ledger
from daemon.paths import VaultPaths
from daemon.service.vault_watcher import VaultWatcher
from daemon.writer.graph_keeper import GraphKeeper
from daemon.writer.pdf.render_pool import PdfRenderPool
from daemon.writer.vault_writer import VaultWriter
from tests.helpers import lecture_srt, wait_for
from vault_tools import frontmatter, related
from vault_tools.graph import KnowledgeGraph
from vault_tools.models import SourceMeta, VideoContent
from vault_tools.subtitles import parse_subtitles

SAMPLES = Path(__file__).resolve().parents[1] / "daemon" / "samples"


def make_content(title: str, *, video_id: str | None = None, text: str | None = None
                 ) -> VideoContent:
    srt = text if text is not None else (SAMPLES / "photosynthesis.srt").read_text()
    transcript = parse_subtitles(srt, "x.srt")
    key = f"youtube:{video_id}" if video_id else f"file:{title}.srt"
    meta = SourceMeta(key=key, kind="youtube" if video_id else "file", title=title,
                      url=f"https://www.youtube.com/watch?v={video_id}" if video_id else None,
                      video_id=video_id, duration=transcript.end, channel="Bio Lab")
    ctx = GenerationContext(config={"generate": {"language": "en"}}, state_dir="/tmp")
    return OfflineBackend().generate(transcript, meta, ctx)


class Harness:
    def __init__(self, vault: Path, state: Path) -> None:
        os.environ["VAULTD_STATE_DIR"] = str(state)
        self.config = load_config(vault)
        self.paths = VaultPaths.from_config(vault, self.config)
        self.paths.state.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger(self.paths.ledger)
        self.writer = VaultWriter(self.paths, self.ledger, self.config)
        self.keeper = GraphKeeper(vault, self.paths.state, sorted(self.writer.exclude),
                                  self.writer.request_graph_note, debounce=0.1,
                                  max_interval=1.0)
        self.writer.keeper = self.keeper
        self.watcher = VaultWatcher(vault, self.paths.inbox, self.writer.request_inbox,
                                    debounce=0.05, on_note=self.writer.note_event)

    def start(self) -> Harness:
        self.keeper.start()
        self.writer.start()
        self.watcher.start()
        return self

    def stop(self) -> None:
        self.watcher.stop()
        self.writer.wait_idle(20)
        self.keeper.stop()
        self.keeper.join(20)
        self.writer.stop()
        self.writer.join(20)

    def generate(self, content: VideoContent, *, url: str | None = None) -> str:
        """Run a job through the ledger as the dispatcher would; returns its key."""
        key = content.meta.key
        self.ledger.add(key, content.meta.kind, url)
        job = self.ledger.claim_next("test")
        assert job is not None and job.key == key
        self.ledger.mark_generated(key, content.to_json(), content.usage, content.meta.title)
        self.writer.request_write(key)
        return key

    def done(self, key: str) -> str:
        job = wait_for(lambda: (j := self.ledger.get(key)) and j.state == "done" and j,
                       what=f"{key} done", timeout=30)
        return job.note_path


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    v = tmp_path / "vault"
    v.mkdir()
    (v / "Memory.md").write_text("---\naliases: [long-term memory]\n---\nMy notes on memory.\n")
    (v / "Topics").mkdir()
    (v / "Topics" / "Chlorophyll.md").write_text("Green pigment. #biology\n")
    (v / ".vaultd").mkdir()
    (v / ".vaultd" / "config.toml").write_text("[pdf]\nenabled = false\n")
    return v


@pytest.fixture
def h(vault: Path, tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(vault, tmp_path / "state").start()
    yield harness
    harness.stop()


def test_note_links_existing_notes_and_never_touches_them(h: Harness, vault: Path) -> None:
    before = {p: p.read_bytes() for p in vault.rglob("*.md")}
    note = h.done(h.generate(make_content("Photosynthesis basics",
                                          text=(SAMPLES / "photosynthesis.srt").read_text()
                                          + "\n\n999\n00:09:00,000 --> 00:09:05,000\n"
                                          "Chlorophyll helps memory of light.\n")))
    text = (vault / note).read_text()
    data, body = frontmatter.split(text)
    assert data["type"] == "study-note" and data["title"] == "Photosynthesis basics"
    assert "[[Chlorophyll|chlorophyll]]" in body or "[[Chlorophyll]]" in body
    assert "## Related" in body and "[[Chlorophyll]]" in body.split("## Related")[1]
    for path, data_before in before.items():
        assert path.read_bytes() == data_before  # user notes untouched
    assessment = vault / (data["assessment"][2:-2].split("|")[0] + ".md")
    assert frontmatter.split(assessment.read_text())[0]["type"] == "assessment"


def test_hostile_title_stays_inside_the_notes_folder(h: Harness, vault: Path) -> None:
    title = "../../../etc/passwd: a|b <script>alert(1)</script> " + "🎉" * 100
    note = h.done(h.generate(make_content(title)))
    path = (vault / note).resolve()
    assert path.parent == (vault / "Study Notes").resolve()
    assert "<script" not in path.read_text()
    assert len(path.name.encode()) <= 255
    assert not (vault.parent / "etc").exists()


def test_user_file_with_the_same_name_is_never_overwritten(h: Harness, vault: Path) -> None:
    (vault / "Study Notes").mkdir()
    mine = vault / "Study Notes" / "Photosynthesis.md"
    mine.write_text("my own page\n")
    note = h.done(h.generate(make_content("Photosynthesis")))
    assert note == "Study Notes/Photosynthesis (2).md"
    assert mine.read_text() == "my own page\n"


def test_renamed_note_is_followed_and_not_recreated(h: Harness, vault: Path) -> None:
    key = h.generate(make_content("Light reactions", video_id="AAAAAAAAAAA"),
                     url="https://youtu.be/AAAAAAAAAAA")
    note = h.done(key)
    (vault / "Archive").mkdir()
    os.replace(vault / note, vault / "Archive" / "My light notes.md")
    wait_for(lambda: h.ledger.get(key).note_path == "Archive/My light notes.md",
             what="ledger follows the rename")
    # The same video again (e.g. state lost, or pasted again): the moved note is linked.
    h.ledger.retry([key])  # no-op (done), so simulate a second job with the same video
    again = make_content("Light reactions", video_id="AAAAAAAAAAA")
    h.ledger.regenerate([key])
    h.ledger.claim_next("test")
    h.ledger.mark_generated(key, again.to_json(), again.usage, "Light reactions")
    with h.ledger._tx() as db:  # a plain (not forced) re-run must only link
        db.execute("UPDATE jobs SET force=0 WHERE key=?", (key,))
    h.writer.request_write(key)
    assert h.done(key) == "Archive/My light notes.md"
    assert not (vault / note).exists()


def regenerate_with(h: Harness, key: str, content: VideoContent) -> None:
    assert h.ledger.regenerate([key]) == [key]
    h.ledger.claim_next("test")
    h.ledger.mark_generated(key, content.to_json(), content.usage, content.meta.title)
    h.writer.request_write(key)


def test_regeneration_keeps_user_edits_keys_and_sr_comments(h: Harness, vault: Path) -> None:
    first = make_content("Cell energy", video_id="BBBBBBBBBBB")
    key = h.generate(first)
    note = vault / h.done(key)
    assessment = vault / h.ledger.get(key).assessment_path
    text = note.read_text().replace("type: study-note", "rating: 5\ntype: study-note")
    text += "\n## My notes\n\nAsk the teacher about RuBisCO.\n"
    note.write_text(text)
    a_text = assessment.read_text()
    card = next(line for line in a_text.splitlines() if "::" in line)
    assessment.write_text(a_text.replace(card, card + " <!--SR:!2026-12-01,3,250-->"))
    second = make_content("Cell energy", video_id="BBBBBBBBBBB",
                          text=(SAMPLES / "photosynthesis.srt").read_text() +
                          "\n\n998\n00:09:00,000 --> 00:09:05,000\n"
                          "Finally, remember that ATP is the cell's energy currency.\n")
    regenerate_with(h, key, second)
    h.done(key)
    merged = note.read_text()
    data, body = frontmatter.split(merged)
    assert data["rating"] == 5 and list(data)[0] == "rating"
    assert "Ask the teacher about RuBisCO." in body
    assert "<!--SR:!2026-12-01,3,250-->" in assessment.read_text()
    assert not list(vault.rglob("*regenerated*"))


def test_a_later_related_note_is_linked_back_in_the_marked_region(h: Harness,
                                                                  vault: Path) -> None:
    """Note A lists nothing; B (same topic) lists A; A then lists B, changed only between
    its markers. A user note B also relates to is never touched, a note whose region the
    user deleted is left alone, and regenerating A later merges without a conflict."""
    user_notes = {p: p.read_bytes() for p in vault.rglob("*.md")}
    key_a = h.generate(make_content("Cell energy", video_id="DDDDDDDDDDD"))
    note_a = vault / h.done(key_a)
    key_c = h.generate(make_content("Plant pigments", video_id="FFFFFFFFFFF"))
    note_c = vault / h.done(key_c)
    assert h.writer.wait_idle(10)  # C's own link back into A is in place
    before_a = note_a.read_text()
    no_region = "\n".join(line for line in note_c.read_text().split("\n")
                          if "vaultd:related" not in line)
    note_c.write_text(no_region)  # the user removed our markers from this one
    key_b = h.generate(make_content("Light reactions", video_id="EEEEEEEEEEE"))
    note_b = vault / h.done(key_b)
    assert "Cell energy" in related.links_in_region(note_b.read_text())
    after_a = wait_for(lambda: (t := note_a.read_text()) != before_a and t,
                       what="A linked back to B", timeout=20)
    assert "Light reactions" in related.links_in_region(after_a)
    assert after_a.replace("- [[Light reactions]]\n", "", 1) == before_a
    h.writer.wait_idle(10)
    assert note_c.read_text() == no_region
    for path, data in user_notes.items():
        assert path.read_bytes() == data
    # The user writes in A; regenerating A merges cleanly (the added link is no conflict).
    note_a.write_text(after_a + "\n## My notes\n\nCompare with C4 plants.\n")
    regenerate_with(h, key_a, make_content("Cell energy", video_id="DDDDDDDDDDD",
                                           text=(SAMPLES / "photosynthesis.srt").read_text()
                                           + "\n\n997\n00:09:00,000 --> 00:09:05,000\n"
                                           "Finally, ATP carries energy inside the cell.\n"))
    h.done(key_a)
    merged = note_a.read_text()
    assert "Compare with C4 plants." in merged
    # The new version landed (its Related list now names C too); B's link stayed.
    assert {"Light reactions", "Plant pigments"} <= set(related.links_in_region(merged))
    assert not list(vault.rglob("*regenerated*"))


@pytest.fixture
def hp(vault: Path, tmp_path: Path) -> Iterator[Harness]:
    """The harness with PDFs on (a real PDF pool) and a short refresh pause."""
    (vault / ".vaultd" / "config.toml").write_text("[pdf]\nrefresh_after_seconds = 0.2\n")
    harness = Harness(vault, tmp_path / "state")
    harness.writer.pdfs = PdfRenderPool(vault, "PDF", "default", harness.writer.request_pdf_done)
    harness.start()
    yield harness
    harness.stop()
    harness.writer.pdfs.shutdown()


def test_a_back_link_reaches_the_pdf_of_the_note_it_was_added_to(hp: Harness,
                                                                  vault: Path) -> None:
    """When C's Related list names A and the writer adds C to A's list, A's PDF is
    exported again and shows C, without a user step."""
    note_a = hp.done(hp.generate(make_content("Cell energy", video_id="DDDDDDDDDDD")))
    pdf_a = vault / "PDF" / Path(note_a).with_suffix(".pdf")
    assert pdf_a.exists() and "Plant pigments" not in pdf_text(pdf_a)
    hp.done(hp.generate(make_content("Plant pigments", video_id="FFFFFFFFFFF")))
    assert hp.writer.wait_idle(10)
    assert "Plant pigments" in related.links_in_region((vault / note_a).read_text())
    wait_for(lambda: "Plant pigments" in pdf_text(pdf_a), timeout=30, what="A's PDF to list C")


def test_a_moved_note_takes_its_pdf_along_and_later_edits_reach_it(hp: Harness,
                                                                   vault: Path) -> None:
    key = hp.generate(make_content("Cell energy", video_id="DDDDDDDDDDD"))
    note = vault / hp.done(key)
    old_pdf = vault / "PDF" / note.relative_to(vault).with_suffix(".pdf")
    assert old_pdf.exists()
    (vault / "Biology").mkdir()
    moved = vault / "Biology" / "Energy of the cell.md"
    os.rename(note, moved)
    new_pdf = vault / "PDF" / "Biology" / "Energy of the cell.pdf"
    wait_for(lambda: new_pdf.exists() and not old_pdf.exists(), what="the PDF to follow")
    assert wait_for(lambda: hp.ledger.get(key).note_path == "Biology/Energy of the cell.md",
                    what="the job to follow the note")
    with open(moved, "a", encoding="utf-8") as fh:
        fh.write("\n## Mine\n\nMitochondria mnemonic.\n")
    wait_for(lambda: "Mitochondria mnemonic." in pdf_text(new_pdf), timeout=30,
             what="the edit to reach the moved PDF")
    assert not old_pdf.exists()


def pdf_text(path: Path) -> str:
    reader = PdfReader(io.BytesIO(path.read_bytes()))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def test_unmergeable_edit_gives_a_conflict_copy(h: Harness, vault: Path) -> None:
    key = h.generate(make_content("Stomata", video_id="CCCCCCCCCCC"))
    note = vault / h.done(key)
    lines = note.read_text().splitlines()
    tldr = next(i for i, line in enumerate(lines) if line.startswith("> [!summary]"))
    lines[tldr + 1] = "> MY OWN SUMMARY, rewritten by hand."
    edited = "\n".join(lines) + "\n"
    note.write_text(edited)
    other = make_content("Stomata", video_id="CCCCCCCCCCC",
                         text=lecture_srt("stomata and water", 80, seed=3))
    regenerate_with(h, key, other)
    h.done(key)
    # The user's edited line stays; the new version's other changes are applied and the
    # collided block's new text is in the copy (tests/test_conflict_merge.py has more).
    assert "> MY OWN SUMMARY, rewritten by hand." in note.read_text()
    assert note.read_text() != edited
    copies = list(note.parent.glob("Stomata (regenerated *).md"))
    assert len(copies) == 1 and "stomata" in copies[0].read_text().lower()


def test_graph_note_and_rebuild_match_the_incremental_graph(h: Harness, vault: Path) -> None:
    for i, title in enumerate(["Energy flow", "Water cycle", "Leaf anatomy"]):
        h.done(h.generate(make_content(title, text=lecture_srt(title.lower(), 40, seed=i))))
    (vault / "Own idea.md").write_text("Links to [[Energy flow]] and [[Memory]].\n")
    graph_note = vault / "Knowledge Graph.md"
    wait_for(lambda: graph_note.exists() and "Own idea" in graph_note.read_text(),
             what="graph note with the user's new note", timeout=30)
    h.writer.wait_idle(10)
    h.stop()
    saved = KnowledgeGraph.from_json((h.paths.state / "graph.json").read_text())
    rebuilt = KnowledgeGraph.rebuild(vault, exclude=sorted(h.writer.exclude))
    assert saved == rebuilt
    canvas = json.loads((vault / "Knowledge Graph.canvas").read_text())
    files = {n["file"] for n in canvas["nodes"] if n["type"] == "file"}
    assert "Study Notes/Energy flow.md" in files
    env = {**os.environ, "VAULTD_STATE_DIR": os.environ["VAULTD_STATE_DIR"]}
    proc = subprocess.run([sys.executable, "-m", "daemon.cli", "graph", "--vault", str(vault),
                           "--rebuild"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert KnowledgeGraph.from_json((h.paths.state / "graph.json").read_text()) == rebuilt
    h.start = lambda: h  # type: ignore[method-assign]  # already stopped; fixture stops again
    h.stop = lambda: None  # type: ignore[method-assign]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_fails_clearly_keeps_old_files_and_recovers(small_disk: Path,
                                                              tmp_path: Path) -> None:
    vault = small_disk / "vault"
    (vault / ".vaultd").mkdir(parents=True)
    (vault / ".vaultd" / "config.toml").write_text(
        "[pdf]\nenabled = false\n[daemon]\nbackoff_base_seconds = 0.1\n"
        "backoff_max_seconds = 0.2\nmax_attempts = 50\n")
    (vault / "inbox.md").write_text("my inbox\n")
    h = Harness(vault, tmp_path / "state").start()
    try:
        filler = small_disk / "filler"
        try:
            with open(filler, "wb") as fh:
                while True:
                    fh.write(b"\0" * 4096)
                    fh.flush()
        except OSError:
            pass  # the disk is full: exactly what we want
        key = h.generate(make_content("Disk test"))
        job = wait_for(lambda: (j := h.ledger.get(key)) and j.last_error and j,
                       what="write failure recorded")
        assert job.state == "generated" and "No space left on device" in job.last_error
        assert (vault / "inbox.md").read_text() == "my inbox\n"
        assert not list(vault.rglob("*.vaultd-tmp*"))
        filler.unlink()

        def written() -> bool:  # the daemon's scheduler ticks every 10 s; here we do
            h.writer.request_tick()
            return h.ledger.get(key).state == "done"

        wait_for(written, what="write after space returned", interval=0.3)
        note = h.done(key)
        assert (vault / note).read_text().startswith("---\ntype: study-note")
        assert h.ledger.get(key).generated_at is not None
    finally:
        h.stop()


def test_an_inbox_that_is_a_pipe_is_said_once_per_change_plainly(
        vault: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A FIFO in the inbox's place: one plain warning ('is a named pipe (FIFO), not a
    file'), not '[Errno 22] not a regular file' once a minute; said again only after
    the inbox was a file in between. Rescans call refresh_inbox as the writer does."""
    import logging

    harness = Harness(vault, tmp_path / "state")  # not started: this thread is the writer
    try:
        os.mkfifo(vault / "inbox.md")
        with caplog.at_level(logging.WARNING, logger="vaultd"):
            for _ in range(3):
                harness.writer.refresh_inbox()
        said = [r.getMessage() for r in caplog.records if "inbox" in r.getMessage()]
        assert said == ["inbox not read: inbox.md is a named pipe (FIFO), not a file; "
                        "put a Markdown file there"], said
        assert said[0] in harness.writer.notices.recent()  # status lists it
        (vault / "inbox.md").unlink()
        (vault / "inbox.md").write_text("# Inbox\n")
        harness.writer.refresh_inbox()
        (vault / "inbox.md").unlink()
        os.mkfifo(vault / "inbox.md")
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="vaultd"):
            harness.writer.refresh_inbox()
        assert [r.getMessage() for r in caplog.records] == said
    finally:
        harness.ledger.close()
