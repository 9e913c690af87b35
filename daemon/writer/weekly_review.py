"""The weekly review: reads the vault's assessments and study notes, plans the note.

:func:`plan_review` runs off the writer (the scheduler thread, or ``vaultd review``):
it reads every note's frontmatter (a stat and one read per note, skipping the
``.obsidian``/``.trash``/``.vaultd`` folders), keeps assessments (their SR schedules)
and the study notes created this ISO week, and renders ``Review/<ISO week>.md`` with
:mod:`vault_tools.review_note`. The writer writes it through
:class:`daemon.writer.maintained_notes.MaintainedNotes` (created, or merged with your edits).
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from pathlib import Path

from daemon.writer.maintained_notes import MaintainedNotes
from vault_tools import frontmatter
from vault_tools.graph import SKIP_DIRS
from vault_tools.pathgate import PathRefused
from vault_tools.review_note import (
    DeckState,
    TopicRef,
    deck_state,
    iso_week,
    render_review,
    week_bounds,
)

log = logging.getLogger("vaultd.review")


def review_path(folder: str, today: date) -> str:
    return f"{folder.rstrip('/')}/{iso_week(today)}.md"


def _link_path(value: object) -> str | None:
    """``"[[Study Notes/X|label]]"`` -> ``Study Notes/X.md``."""
    if not isinstance(value, str) or not value.startswith("[["):
        return None
    target = value[2:].split("]]")[0].split("|")[0].split("#")[0].strip()
    return target if target.lower().endswith(".md") else f"{target}.md"


def _created_day(value: object) -> date | None:
    try:
        return datetime.fromisoformat(str(value)).date()
    except ValueError:
        try:
            return date.fromisoformat(str(value)[:10])
        except ValueError:
            return None


def plan_review(vault: Path, registry: MaintainedNotes, folder: str, today: date
                ) -> tuple[str, str]:
    """(vault path of this week's review note, its text)."""
    monday, sunday = week_bounds(today)
    decks: list[DeckState] = []
    added: list[tuple[str, str]] = []
    root = vault.resolve()
    for path in sorted(root.rglob("*.md")):
        rel = path.relative_to(root)
        if SKIP_DIRS.intersection(rel.parts[:-1]):
            continue
        try:  # the path gate: a symlink out of the vault, a FIFO... is not read
            text = registry.paths.gate.read_text(rel.as_posix(), 8 << 20)
        except (OSError, PathRefused):
            continue
        data, _ = frontmatter.read(text)
        kind = data.get("type")
        if kind == "assessment":
            title = str(data.get("title") or path.stem)
            decks.append(deck_state(rel.as_posix(), title, _link_path(data.get("notes")),
                                    text, today))
        elif kind == "study-note":
            day = _created_day(data.get("created"))
            if day is not None and monday <= day <= sunday:
                added.append((rel.as_posix(), str(data.get("title") or path.stem)))
    topics = [TopicRef(p, name, tuple(members))
              for p, name, members in registry.live_topics()]
    return review_path(folder, today), render_review(today, decks, added, topics)
