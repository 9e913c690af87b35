"""Line-based three-way merge that never drops a line either side added.

Used where the daemon's change and a person's change to the same file crossed in time
(a late in-place write to the inbox, a regenerated note the user edited): ``base`` is
what both started from, ``ours`` and ``theirs`` the two descendants. Changes to
different places are both applied. Where both sides changed the same place, the result
holds ``ours``' lines followed by those of ``theirs``' lines that ``ours`` does not
have, so no text is ever lost (at worst a line appears in two versions, which a person
can see and fix; a lost line they could not). :func:`merge3_blocks` instead keeps one
side of each such place and reports the places (regeneration: the user's text stays in
the note, the new text of those places goes to a conflict copy).
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher

Change = tuple[int, int, list[str]]  # replace base[i1:i2] by lines


def _changes(base: list[str], other: list[str]) -> list[Change]:
    sm = SequenceMatcher(None, base, other, autojunk=False)
    return [(i1, i2, other[j1:j2]) for tag, i1, i2, j1, j2 in sm.get_opcodes()
            if tag != "equal"]


def _overlaps(a: Change, b: Change) -> bool:
    (a1, a2, _), (b1, b2, _) = a, b
    if a1 == a2 and b1 == b2:  # two insertions at the same point
        return a1 == b1
    if a1 == a2:  # an insertion strictly inside a changed range
        return b1 < a1 < b2
    if b1 == b2:
        return a1 < b1 < a2
    return a1 < b2 and b1 < a2


def merge3(base: list[str], ours: list[str], theirs: list[str]) -> list[str]:
    """Merge two descendants of ``base`` (lists of lines), keeping both on conflict."""
    return merge3_report(base, ours, theirs)[0]


@dataclass(frozen=True)
class Collision:
    """One place both sides changed differently: ``base`` became ``ours`` on one side and
    ``theirs`` on the other. ``before`` is the last non-blank line of the merged text
    above the place (context for a person), ``at`` where the place starts in it."""

    at: int
    before: str
    base: list[str]
    ours: list[str]
    theirs: list[str]


def merge3_report(base: list[str], ours: list[str], theirs: list[str]
                  ) -> tuple[list[str], int]:
    """(merged lines, number of places both sides changed differently)."""
    merged, collisions = _merge(base, ours, theirs, keep_both=True)
    return merged, len(collisions)


def merge3_blocks(base: list[str], ours: list[str], theirs: list[str]
                  ) -> tuple[list[str], list[Collision]]:
    """Apply every change that does not collide; where both sides changed the same
    block, keep ``theirs`` alone and report the block. For regeneration: ``theirs`` is
    the user's note, which wins every collision; ``ours`` (the new version) of those
    blocks goes to a conflict copy for the user to take what they want."""
    return _merge(base, ours, theirs, keep_both=False)


def _merge(base: list[str], ours: list[str], theirs: list[str], *, keep_both: bool
           ) -> tuple[list[str], list[Collision]]:
    if ours == theirs or theirs == base:
        return list(ours), []
    if ours == base:
        return list(theirs), []
    collisions: list[Collision] = []
    tagged = sorted([(c, 0) for c in _changes(base, ours)] + [(c, 1) for c in
                    _changes(base, theirs)], key=lambda item: (item[0][0], item[0][1]))
    out: list[str] = []
    pos = 0
    i = 0
    while i < len(tagged):
        group = [tagged[i]]
        lo, hi = tagged[i][0][0], tagged[i][0][1]
        j = i + 1
        while j < len(tagged) and any(_overlaps(tagged[j][0], g[0]) for g in group):
            group.append(tagged[j])
            hi = max(hi, tagged[j][0][1])
            j += 1
        out.extend(base[pos:lo])
        sides: list[list[str]] = [[], []]
        for side in (0, 1):
            changes = sorted((c for c, s in group if s == side), key=lambda c: c[0])
            if not changes:
                sides[side] = base[lo:hi]
                continue
            cur = lo
            for c1, c2, lines in changes:
                sides[side].extend(base[cur:c1])
                sides[side].extend(lines)
                cur = c2
            sides[side].extend(base[cur:hi])
        mine, yours = sides
        touched = {side for _, side in group}
        if touched == {1}:
            mine, yours = yours, mine
        if len(touched) == 2 and mine != yours:
            before = next((line for line in reversed(out) if line.strip()), "")
            collisions.append(Collision(len(out), before, base[lo:hi], mine, yours))
            if keep_both:
                have = set(mine)
                out.extend(mine)
                out.extend(line for line in yours if line not in have)
            else:
                out.extend(yours)
        else:
            out.extend(mine)
        pos = hi
        i = j
    out.extend(base[pos:])
    return out, collisions


def merge3_text(base: str, ours: str, theirs: str) -> str:
    """Text version: lines compared without their endings; ``ours``' line ending style."""
    eol = "\r\n" if "\r\n" in ours else "\n"
    merged = merge3(base.splitlines(), ours.splitlines(), theirs.splitlines())
    trailing = ours.endswith(("\n", "\r")) or theirs.endswith(("\n", "\r"))
    return eol.join(merged) + (eol if trailing and merged else "")
