"""Conflict copies: where a regeneration's new text collided with the user's edits.

A regeneration applies every change that does not touch what the user edited
(:func:`vault_tools.merge.merge3_blocks`); for each block both sides changed, the user's
text stays in the note and the new text goes to a *conflict copy* beside it, named
``<note> (regenerated YYYY-MM-DD HHMM).md``, holding only those blocks.

A conflict copy is not knowledge: it stays out of the graph, the linker, the vault index
and "Suggested links" (otherwise a note is proposed to link to its own copy). It is
recognised by its name *and* the frontmatter marker ``vaultd_conflict: true``, so a
user's note that happens to match the name pattern still counts, and the marker alone
(pasted into another note) changes nothing. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from vault_tools import frontmatter
from vault_tools.merge import Collision

MARKER = "vaultd_conflict"
_NAME = re.compile(r" \(regenerated \d{4}-\d{2}-\d{2} \d{4}\)(?: \(\d+\)| \d+)?\.md$",
                   re.IGNORECASE)
_MARKER_LINE = re.compile(rf"^{MARKER}:[ \t]*(?:true|yes)[ \t]*\r?$", re.MULTILINE)


def copy_name(stem: str, when: str) -> str:
    """File name of a conflict copy of note ``stem`` made at ``when`` (ISO timestamp)."""
    return f"{stem} (regenerated {when[:10]} {when[11:16].replace(':', '')}).md"


def has_copy_name(rel: str) -> bool:
    return bool(_NAME.search(rel))


def has_marker(head: str | None) -> bool:
    """``head``: the note's frontmatter text (or the whole note: only its head counts)."""
    if not head:
        return False
    if head.startswith("---"):
        end = re.search(r"\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|$)", head[3:])
        head = head[3: 3 + end.start()] if end else ""
    return bool(_MARKER_LINE.search(head))


def is_conflict_copy(rel: str, text_or_head: str | None) -> bool:
    """Name pattern and marker both: see the module docstring."""
    return has_copy_name(rel) and has_marker(text_or_head)


def _fenced(lines: list[str]) -> list[str]:
    """Lines in a code block (longer fence than any inside): shown as written, while
    their flashcards are not reviewed twice and their links add no edges."""
    if not lines:
        return []
    runs = [len(m) for line in lines for m in re.findall(r"`+", line)]
    fence = "`" * max(3, max(runs, default=0) + 1)
    return [f"{fence}markdown", *lines, fence]


def render_copy(note_rel: str, collisions: Sequence[Collision], when: str) -> str:
    """The conflict copy's text: what to do with it, then each collided block's new text
    with the line above it for orientation. The user's own text is in the note."""
    link = note_rel[:-3] if note_rel.endswith(".md") else note_rel
    title = link.rsplit("/", 1)[-1]
    n = len(collisions)
    body = [f"# {title}: regenerated text that collided with your edits", "",
            f"vaultd regenerated [[{link}|{title}]] on {when[:16].replace('T', ' ')} and "
            "applied every change that did not touch what you had edited. "
            f"In {'this place' if n == 1 else f'these {n} places'} you and the new version "
            "both changed the text: your text stayed in the note, the new text is below. "
            "Copy what you want into the note, then delete this file.", ""]
    for i, c in enumerate(collisions, 1):
        where = f"after “{c.before.strip()[:80]}”" if c.before.strip() else "at the start"
        body += [f"## {i}. {where}", "", "New version (not applied):", ""]
        body += _fenced(c.ours) or ["(the new version removes these lines)"]
        body += ["", "Yours (kept in the note):", ""]
        body += _fenced(c.theirs) or ["(you removed these lines)"]
        body.append("")
    data = {MARKER: True, "conflict_of": note_rel, "created": when,
            "tags": ["vaultd-conflict"]}
    return frontmatter.compose(data, "\n".join(body))
