"""Regenerating a note the user may have edited, without losing a word of theirs.

The daemon keeps the exact text it last wrote for a note (in the ledger, outside the
vault). On regeneration that text is the *base*, the file as it is now is *theirs*
(the user's edits) and the new generated text is *ours*. The bodies are merged line by
line (:mod:`vault_tools.merge`): our changes land where the user did not touch, the
user's edits stay. Frontmatter is merged key by key: ours updated, the user's keys and
their order kept. Spaced-repetition scheduling comments (``<!--SR:...-->``) that the
plugin added to flashcards are set aside before merging and put back on the card with
the same question, so a card's review history survives a reworded answer.

When both sides changed the same lines, the caller's ``collisions`` list gets those
blocks (the user's text stays in the note; :mod:`vault_tools.conflicts` writes the new
text of only those blocks to a conflict copy); without a list the merge is refused.
"""

from __future__ import annotations

import re

from vault_tools import frontmatter
from vault_tools.merge import Collision, merge3_blocks

_SR = re.compile(r"\s*<!--SR:[^>]*-->")


def _card_key(line: str) -> str | None:
    """The question of a flashcard line (``Q::A`` / ``Q:::A``), casefolded."""
    if "::" in line:
        return line.split("::", 1)[0].strip().casefold()
    return None


def take_sr_comments(body: str) -> tuple[str, dict[str, str]]:
    """Body without SR comments, and {card question or previous line: comment}."""
    comments: dict[str, str] = {}
    out: list[str] = []
    lines = body.split("\n")
    for i, line in enumerate(lines):
        found = _SR.findall(line)
        if not found:
            out.append(line)
            continue
        stripped = _SR.sub("", line)
        comment = "".join(found).strip()
        if stripped.strip():  # comment at the end of a card line
            key = _card_key(stripped) or stripped.strip().casefold()
            comments[key] = comment
            out.append(stripped)
        else:  # comment on its own line after a multi-line card: key it by the question
            j = len(out) - 1
            while j >= 0 and out[j].strip() not in ("?", "??") and j > len(out) - 12:
                j -= 1
            question = out[j - 1] if j >= 1 else (lines[i - 1] if i else "")
            comments["\n" + question.strip().casefold()] = comment
    return "\n".join(out), comments


def put_sr_comments(body: str, comments: dict[str, str]) -> str:
    if not comments:
        return body
    out: list[str] = []
    lines = body.split("\n")
    pending: str | None = None
    for i, line in enumerate(lines):
        key = _card_key(line)
        if key is not None and key in comments:
            line = f"{line} {comments[key]}"
        out.append(line)
        if line.strip() in ("?", "??") and i >= 1:
            pending = comments.get("\n" + lines[i - 1].strip().casefold())
        elif pending and (not line.strip() or i == len(lines) - 1):
            if not line.strip():
                out.insert(len(out) - 1, pending)
            else:
                out.append(pending)
            pending = None
    return "\n".join(out)


def regenerate(base_text: str, current_text: str, new_text: str,
               collisions: list[Collision] | None = None) -> str | None:
    """Merged note text, or None when the user's edits and ours collide. With a
    ``collisions`` list, never None: every change that does not collide is applied, the
    user's text wins each collided block and those blocks are appended to the list."""
    base_fm, base_body = frontmatter.split(base_text)
    cur_fm, cur_body = frontmatter.split(current_text)
    new_fm, new_body = frontmatter.split(new_text)
    if new_fm is None:
        raise ValueError("generated text has no frontmatter")
    cur_body, comments = take_sr_comments(cur_body)
    base_body = take_sr_comments(base_body)[0]
    merged, found = merge3_blocks(base_body.split("\n"), new_body.split("\n"),
                                  cur_body.split("\n"))
    if found and collisions is None:
        return None
    if collisions is not None:
        collisions.extend(found)
    body = put_sr_comments("\n".join(merged), comments)
    return frontmatter.compose(merge_frontmatter(base_fm, cur_fm, new_fm), body)


def merge_frontmatter(base_fm: object, cur_fm: object, new_fm: object) -> object:
    """The user's frontmatter (keys, order, comments) with our new values applied.

    A key the user changed and we did not keeps the user's value; list keys (tags,
    aliases) keep the items the user added; otherwise our new value wins.
    """
    fm = cur_fm if cur_fm is not None else frontmatter.merge(None, {})
    base = frontmatter.plain(base_fm)  # type: ignore[arg-type]
    cur = frontmatter.plain(cur_fm)  # type: ignore[arg-type]
    for key, new in frontmatter.plain(new_fm).items():  # type: ignore[arg-type]
        old, mine = base.get(key), cur.get(key)
        if isinstance(new, list) and isinstance(mine, list):
            added = [x for x in mine if x not in (old or []) and x not in new]
            value: object = new + added
        elif key in cur and mine != old and new == old:
            continue  # the user's edit of a value we did not change
        else:
            value = new
        fm = frontmatter.merge(fm, {key: value})  # type: ignore[arg-type]
    return fm
