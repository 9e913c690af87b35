"""The weekly review note ``Review/<ISO week>.md`` (pure: texts in, text out).

Reads the Spaced Repetition plugin's scheduling comments in assessments
(``<!--SR:!2026-12-07,3,250-->``: due date, interval in days, ease; a multi-line or
cloze card holds one ``!date,interval,ease`` group per sibling card, on the card's line
or on the line after it) and writes what to review this week: cards overdue and due
this week per assessment, the weakest topics (many due cards, low ease), the study
notes added this week and the topic notes to revise. ``today`` is always passed in,
so the note is a pure function of the vault's text and the date.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from vault_tools import frontmatter
from vault_tools.graph_note import md_text

REVIEW_TYPE = "weekly-review"
DEFAULT_EASE = 250  # the SR plugin's base ease; every lapse lowers it by 20
_SR_COMMENT = re.compile(r"<!--SR:([^>]*)-->")
_SR_GROUP = re.compile(r"!(\d{4}-\d{2}-\d{2}),(\d+),(\d+)")


@dataclass(frozen=True)
class Schedule:
    """One card's schedule from an SR comment."""

    due: date
    interval: int
    ease: int


def sr_schedules(text: str) -> list[Schedule]:
    """Every card schedule in a note: each ``!date,interval,ease`` group of every SR
    comment (a malformed date is skipped, not guessed)."""
    out = []
    for comment in _SR_COMMENT.findall(text):
        for d, interval, ease in _SR_GROUP.findall(comment):
            try:
                out.append(Schedule(date.fromisoformat(d), int(interval), int(ease)))
            except ValueError:
                continue
    return out


def iso_week(today: date) -> str:
    """``2026-W49``: the ISO year and week (the ISO year can differ from the date's)."""
    year, week, _ = today.isocalendar()
    return f"{year}-W{week:02d}"


def week_bounds(today: date) -> tuple[date, date]:
    """Monday and Sunday of ``today``'s ISO week."""
    monday = today - timedelta(days=today.weekday())
    return monday, monday + timedelta(days=6)


@dataclass
class DeckState:
    """The cards of one assessment as of ``today``."""

    path: str  # the assessment, vault-relative
    title: str
    note: str | None  # the study note it tests (vault path), when known
    overdue: int = 0
    due_week: int = 0
    scheduled: int = 0
    low_ease: list[int] = field(default_factory=list)  # eases below the default

    @property
    def weakness(self) -> float:
        """Due and overdue cards, plus one per 20 points of ease lost (one lapse)."""
        return self.overdue * 1.5 + self.due_week + sum(
            (DEFAULT_EASE - e) / 20 for e in self.low_ease)


def deck_state(path: str, title: str, note: str | None, text: str, today: date
               ) -> DeckState:
    _, sunday = week_bounds(today)
    deck = DeckState(path, title, note)
    for s in sr_schedules(text):
        deck.scheduled += 1
        if s.due < today:
            deck.overdue += 1
        elif s.due <= sunday:
            deck.due_week += 1
        if s.ease < DEFAULT_EASE:
            deck.low_ease.append(s.ease)
    return deck


def _target(path: str) -> str:
    return path[:-3] if path.lower().endswith(".md") else path


def _wikilink(path: str, label: str) -> str:
    label = " ".join(label.split()).translate(str.maketrans("[]|#^", "()/＃ˆ"))
    if re.search(r"[\[\]|^#\\\n]", path):
        return md_text(label)
    return f"[[{_target(path)}|{label}]]"


@dataclass(frozen=True)
class TopicRef:
    path: str  # the topic note
    name: str
    members: tuple[str, ...]  # study note paths


def render_review(today: date, decks: Sequence[DeckState],
                  added: Sequence[tuple[str, str]], topics: Sequence[TopicRef]) -> str:
    """The review note for ``today``'s ISO week. ``added``: (path, title) of the study
    notes created this week; ``topics``: the maintained topic notes."""
    week = iso_week(today)
    monday, sunday = week_bounds(today)
    overdue = sum(d.overdue for d in decks)
    due = sum(d.due_week for d in decks)
    fm = {"type": REVIEW_TYPE, "week": week, "from": monday.isoformat(),
          "to": sunday.isoformat(), "due": due, "overdue": overdue, "tags": ["review"]}
    out = [f"# Weekly review {week}", "",
           "> [!info] Written by vaultd",
           f"> {monday.isoformat()} to {sunday.isoformat()}, counted on "
           f"{today.isoformat()} from the Spaced Repetition schedules in your assessments.",
           "", "## Flashcards", "",
           f"- Overdue: **{overdue}**", f"- Due this week: **{due}**", ""]
    busy = sorted((d for d in decks if d.overdue or d.due_week),
                  key=lambda d: (-(d.overdue + d.due_week), d.path))
    if busy:
        out += ["| Assessment | Overdue | Due this week |", "| --- | ---: | ---: |"]
        out += [f"| {_wikilink(d.path, d.title)} | {d.overdue} | {d.due_week} |"
                for d in busy]
    else:
        out.append("_Nothing due this week._")
    by_note = {d.note: d for d in decks if d.note}
    weak: list[tuple[float, str, TopicRef | None, str]] = []
    for t in topics:
        score = sum(by_note[m].weakness for m in t.members if m in by_note)
        if score > 0:
            weak.append((score, t.name, t, t.path))
    if not weak:  # no topic notes yet: rank the assessments themselves
        weak = [(d.weakness, d.title, None, d.path) for d in decks if d.weakness > 0]
    weak.sort(key=lambda w: (-w[0], w[3]))
    out += ["", "## Weakest topics", ""]
    out += [f"{i}. {_wikilink(p, name)} · weakness {score:.1f}"
            for i, (score, name, _t, p) in enumerate(weak[:8], 1)] or ["_None: well done._"]
    out += ["", "## Added this week", ""]
    out += [f"- {_wikilink(p, title)}" for p, title in sorted(added)] or ["_No new notes._"]
    revise = [t for _s, _n, t, _p in weak if t is not None]
    out += ["", "## Topic notes to revise", ""]
    out += [f"- {_wikilink(t.path, t.name)}" for t in revise[:8]] or (
        [f"- {_wikilink(t.path, t.name)}" for t in sorted(topics, key=lambda t: t.path)[:8]]
        or ["_No topic notes yet._"])
    return frontmatter.compose(fm, "\n".join(out) + "\n")
