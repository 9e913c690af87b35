"""The weekly review note: due and overdue cards from SR comments, on a frozen "today".

Assessments carry the Spaced Repetition plugin's scheduling comments at known dates, in
the forms the plugin writes: on the card's line, on the line after a multi-line card,
and one comment with a group per sibling for a cloze card. The review is planned and
written by the same code the daemon's weekly job and ``vaultd review`` use.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from daemon.config import Config
from daemon.paths import VaultPaths
from daemon.writer.maintained_notes import MaintainedNotes, TopicWrite
from daemon.writer.note_files import NoteFiles
from daemon.writer.weekly_review import plan_review
from tests.helpers import vaultd, vaultd_env
from vault_tools import frontmatter
from vault_tools.review_note import iso_week, sr_schedules

TODAY = date(2026, 12, 9)  # a Wednesday: week 2026-W50 runs 12-07 .. 12-13

CARDS = """\
## Flashcards

#flashcards/enzymes

What lowers activation energy?::An enzyme <!--SR:!2026-12-03,4,250-->

What binds at the active site?::The substrate
<!--SR:!2026-12-08,10,230-->

What does the lock and key model say?
?
The active site fits one substrate.
<!--SR:!2026-12-09,3,250-->

What is a catalyst?::Something recovered unchanged <!--SR:!2026-12-13,6,250-->

What is denaturation?::Loss of shape <!--SR:!2026-12-14,8,270-->

An enzyme is a ==protein== that speeds up a ==reaction==.
<!--SR:!2026-12-01,1,210!2026-12-20,30,270-->

A card never reviewed::no comment yet
"""


def write(vault: Path, rel: str, data: dict[str, object], body: str) -> None:
    path = vault / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(frontmatter.compose(data, body), encoding="utf-8")


@pytest.fixture
def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VAULTD_STATE_DIR", str(tmp_path / "state"))
    v = tmp_path / "vault"
    write(v, "Study Notes/Enzymes.md", {"type": "study-note", "title": "Enzymes",
                                        "created": "2026-12-08T09:00:00+01:00"}, "# Enzymes\n")
    write(v, "Study Notes/Enzymes (Assessment).md",
          {"type": "assessment", "title": "Enzymes — Assessment",
           "notes": "[[Study Notes/Enzymes]]"}, CARDS)
    write(v, "Study Notes/Markets.md", {"type": "study-note", "title": "Markets",
                                        "created": "2026-11-30T09:00:00+01:00"}, "# Markets\n")
    write(v, "Study Notes/Markets (Assessment).md",
          {"type": "assessment", "title": "Markets — Assessment",
           "notes": "[[Study Notes/Markets]]"},
          "Q::A <!--SR:!2027-01-20,40,290-->\n")
    return v


def registry_for(vault: Path) -> MaintainedNotes:
    paths = VaultPaths.from_config(vault, Config.defaults())
    return MaintainedNotes(paths, NoteFiles(paths, lambda: None), "Topics")


def test_sr_comments_in_every_form_are_read() -> None:
    got = [(s.due.isoformat(), s.interval, s.ease) for s in sr_schedules(CARDS)]
    assert got == [("2026-12-03", 4, 250), ("2026-12-08", 10, 230), ("2026-12-09", 3, 250),
                   ("2026-12-13", 6, 250), ("2026-12-14", 8, 270), ("2026-12-01", 1, 210),
                   ("2026-12-20", 30, 270)]
    assert sr_schedules("<!--SR:!2026-13-40,1,250-->") == []  # no date: skipped


def test_iso_week_names_follow_the_iso_year() -> None:
    assert iso_week(TODAY) == "2026-W50"
    assert iso_week(date(2027, 1, 1)) == "2026-W53"  # a Friday of 2026's last week
    assert iso_week(date(2027, 1, 4)) == "2027-W01"


def test_review_counts_due_and_overdue_cards(vault: Path) -> None:
    registry = registry_for(vault)
    registry.apply_topics([TopicWrite("t1", "Enzymes", ("Study Notes/Enzymes.md",),
                                      "---\ntype: topic-note\n---\n# Enzymes\n")])
    rel, text = plan_review(vault, registry, "Review", TODAY)
    assert rel == "Review/2026-W50.md"
    data, body = frontmatter.split(text)
    assert data["type"] == "weekly-review" and data["week"] == "2026-W50"
    # overdue: 12-03, 12-08 and the cloze sibling of 12-01; due: 12-09 (today), 12-13
    assert (data["overdue"], data["due"]) == (3, 2)
    assert "| [[Study Notes/Enzymes (Assessment)|Enzymes — Assessment]] | 3 | 2 |" in body
    assert "Markets — Assessment" not in body.split("## Weakest topics")[0]  # nothing due
    weakest = body.split("## Weakest topics", 1)[1].split("##", 1)[0]
    assert "[[Topics/Enzymes|Enzymes]]" in weakest
    added = body.split("## Added this week", 1)[1].split("##", 1)[0]
    assert "[[Study Notes/Enzymes|Enzymes]]" in added and "Markets" not in added
    revise = body.split("## Topic notes to revise", 1)[1]
    assert "[[Topics/Enzymes|Enzymes]]" in revise
    # Written once, then refreshed: your line stays.
    assert registry.write(rel, text) == "created"
    note = vault / rel
    note.write_text(note.read_text(encoding="utf-8") + "\nAsk about cloze cards.\n",
                    encoding="utf-8")
    (vault / "Study Notes/Markets (Assessment).md").write_text(
        "---\ntype: assessment\nnotes: \"[[Study Notes/Markets]]\"\n---\n"
        "Q::A <!--SR:!2026-12-10,2,230-->\n", encoding="utf-8")
    _, text2 = plan_review(vault, registry, "Review", TODAY)
    assert registry.write(rel, text2) == "updated"
    after = note.read_text(encoding="utf-8")
    assert "Ask about cloze cards." in after and "due: 3" in after


def test_review_command_writes_this_weeks_note(vault: Path, tmp_path: Path) -> None:
    env = vaultd_env(tmp_path / "state")
    proc = vaultd("review", "--vault", str(vault), env=env)
    assert proc.returncode == 0, proc.stderr
    note = vault / "Review" / f"{iso_week(date.today())}.md"
    data, _ = frontmatter.split(note.read_text(encoding="utf-8"))
    assert data["type"] == "weekly-review"
    note.unlink()
    note.write_text("my own weekly note", encoding="utf-8")  # now a file vaultd did not write
    proc = vaultd("review", "--vault", str(vault), env=env)
    assert proc.returncode == 1 and "not a note vaultd wrote" in proc.stderr
    assert note.read_text(encoding="utf-8") == "my own weekly note"
