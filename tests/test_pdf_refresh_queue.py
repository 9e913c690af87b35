"""PdfRefresh: a changed note is due once quiet, once per pause, a few at a time."""

from __future__ import annotations

from daemon.writer.pdf.filing import PdfRefresh


def test_a_note_is_due_only_after_it_stays_quiet_and_only_once() -> None:
    r = PdfRefresh(quiet=10)
    r.mark("A.md", 0)
    r.mark("A.md", 8)  # saved again while typing: the pause starts over
    assert r.due(15) == []
    assert r.due(18) == ["A.md"]
    assert r.due(100) == [] and len(r) == 0


def test_many_due_notes_come_out_a_few_at_a_time_oldest_change_first() -> None:
    r = PdfRefresh(quiet=1)
    for i in range(20):
        r.mark(f"N{i:02}.md", i * 0.01)
    r.mark("N00.md", 0.5)  # changed again: now the newest
    first = r.due(5, limit=8)
    assert first == [f"N{i:02}.md" for i in range(1, 9)]
    rest = r.due(5, limit=100)
    assert rest[-1] == "N00.md" and len(first) + len(rest) == 20 and len(r) == 0


def test_a_deleted_note_is_forgotten() -> None:
    r = PdfRefresh(quiet=0)
    r.mark("Gone.md", 0)
    r.forget("Gone.md")
    assert r.due(1) == []
