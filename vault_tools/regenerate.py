"""Regenerating a note the user may have edited, without losing a word of theirs.

The daemon keeps the exact text it last wrote for a note (in the ledger, outside the
vault). On regeneration that text is the *base*, the file as it is now is *theirs*
(the user's edits) and the new generated text is *ours*. The bodies are merged line by
line (:mod:`vault_tools.merge`): our changes land where the user did not touch, the
user's edits stay. Frontmatter is merged key by key: ours updated, the user's keys and
their order kept. Spaced-repetition scheduling comments (``<!--SR:...-->``) that the
plugin added to flashcards are set aside before merging and put back on the card with
the same identity, in the layout the user's plugin writes (:mod:`vault_tools.sr_schedule`),
so a card's review history survives a reworded answer; a card that is gone keeps its
history in a "Retired cards" block.

When both sides changed the same lines, the caller's ``collisions`` list gets those
blocks (the user's text stays in the note; :mod:`vault_tools.conflicts` writes the new
text of only those blocks to a conflict copy); without a list the merge is refused.
"""

from __future__ import annotations

from vault_tools import frontmatter
from vault_tools.merge import Collision, merge3_blocks
from vault_tools.sr_schedule import SrSchedule
from vault_tools.sr_settings import SrSettings


def regenerate(base_text: str, current_text: str, new_text: str,
               collisions: list[Collision] | None = None,
               sr_settings: SrSettings | None = None) -> str | None:
    """Merged note text, or None when the user's edits and ours collide. With a
    ``collisions`` list, never None: every change that does not collide is applied, the
    user's text wins each collided block and those blocks are appended to the list.

    ``sr_settings`` is the vault's Spaced Repetition plugin card syntax (the plugin's
    defaults when None), so each scheduling comment stays on its own card."""
    base_fm, base_body = frontmatter.split(base_text)
    cur_fm, cur_body = frontmatter.split(current_text)
    new_fm, new_body = frontmatter.split(new_text)
    if new_fm is None:
        raise ValueError("generated text has no frontmatter")
    cur_body, schedules = SrSchedule.take(cur_body, sr_settings)
    base_body = SrSchedule.take(base_body, sr_settings)[0]
    new_body = SrSchedule.take(new_body, sr_settings)[0]
    merged, found = merge3_blocks(base_body.split("\n"), new_body.split("\n"),
                                  cur_body.split("\n"))
    if found and collisions is None:
        return None
    if collisions is not None:
        collisions.extend(found)
    body = schedules.put("\n".join(merged))
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
