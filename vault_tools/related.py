"""The "Related" region of a study note: the one part of a note the daemon keeps editing.

A study note ends with a ``## Related`` section whose list sits between two Obsidian
comment lines (hidden in reading view and in the PDF)::

    ## Related

    %% vaultd:related 3f9c0a1b77e2d4c5a6b8 %%
    - [[Gradient descent]]
    %% vaultd:related-end 3f9c0a1b77e2d4c5a6b8 %%

The list is the daemon's, chosen when the note is written. When a later study note
names this one among *its* related notes, the daemon adds a link back here, so the
relation shows from both sides without ever touching a note the user wrote.

**Whose region it is.** Generated text (a model's reply, a transcript, a video title)
is untrusted and could contain marker lines of its own; if the user then deletes the
real pair (the documented way to opt out of back-links), a planted pair must not become
a place vaultd edits. So the markers carry a *tag*: :func:`region_tag`, an HMAC-SHA256
of the note's owner key (its ledger key, also its ``source_key``) under a secret that
only the daemon holds (a random key in the state dir, never in the vault, never sent to
a model). Text from outside cannot reproduce the tag of the note it lands in: it never
sees the secret, and a tag copied from another note belongs to that note's key. Only a
region marked with *this* note's tag is ever edited. Why an HMAC rather than a random
nonce per note: the tag can be recomputed from the key, so nothing new has to be stored
in the ledger, and the merge base kept there gets the same markers. (The sanitiser also
strips marker lines from generated text, :func:`vault_tools.sanitize.strip_region_markers`:
two independent layers.)

Notes written before tags (plain ``%% vaultd:related %%`` markers) keep working, and are
migrated on their next edit: their region is trusted only when the text vaultd itself
wrote for the note (``legacy_base``, the ledger's merge base) is from before tags (no
tagged marker) and holds exactly one plain pair, so a pair planted by generated text
(which would make two) is never trusted; the edit then rewrites the two marker lines
with the tag.

The contract that keeps this safe for the user's text:

* only a note with exactly one region carrying its tag is changed, and only between its
  two marker lines; the heading, the rest of the note and anything the user wrote are
  kept byte for byte (line endings included);
* lines are only ever added (the placeholder of an empty region is replaced): a link the
  user deleted from the region is not put back by a later note, and text the user typed
  inside the region stays;
* nothing is added when the note already links the target anywhere, or when the region
  holds :data:`MAX_LINKS` links already.

Pure functions of text; the writer applies them with a compare-and-swap edit.
"""

from __future__ import annotations

import hashlib
import hmac
import re

HEADING = "## Related"
START = "%% vaultd:related %%"  # the untagged markers of notes written before tags
END = "%% vaultd:related-end %%"
PLACEHOLDER = "_None yet: vaultd adds notes here as related ones arrive._"
MAX_LINKS = 12

_LINK_LINE = re.compile(r"^\s*[-*+]\s+!?\[\[")


_ANY_MARKER = re.compile(r"^%% vaultd:related(-end)? [0-9a-f]{20} %%$")


def region_tag(secret: bytes, owner: str) -> str:
    """The tag of the region of the note owned by ``owner`` (its ledger key)."""
    return hmac.new(secret, owner.encode("utf-8", "surrogateescape"),
                    hashlib.sha256).hexdigest()[:20]


def start_marker(tag: str) -> str:
    return f"%% vaultd:related {tag} %%"


def end_marker(tag: str) -> str:
    return f"%% vaultd:related-end {tag} %%"


def section(targets: list[str], tag: str) -> str:
    """The Related section for a new note linking ``targets`` (link targets, in order)."""
    items = [f"- [[{t}]]" for t in targets] or [PLACEHOLDER]
    return "\n".join([HEADING, "", start_marker(tag), *items, end_marker(tag)]) + "\n"


def with_section(body: str, targets: list[str], tag: str) -> str:
    """``body`` with the Related section appended."""
    return f"{body.rstrip()}\n\n{section(targets, tag)}"


def _pair(lines: list[str], start: str, end: str) -> tuple[int, int] | None:
    """(start, end) line indexes of one marker pair, or None unless exactly one."""
    starts = [i for i, line in enumerate(lines) if line.strip() == start]
    ends = [i for i, line in enumerate(lines) if line.strip() == end]
    if len(starts) != 1 or len(ends) != 1 or starts[0] > ends[0]:
        return None
    return starts[0], ends[0]


def _region(lines: list[str], tag: str, legacy_base: str | None) -> tuple[int, int] | None:
    """The region vaultd owns in ``lines``: the one pair with this note's tag; else,
    for a note written before tags, the one plain pair when ``legacy_base`` (the text
    vaultd wrote) held exactly one plain pair too."""
    found = _pair(lines, start_marker(tag), end_marker(tag))
    if found is not None or legacy_base is None or start_marker(tag) in legacy_base:
        return found  # a base with tagged markers was written after tags: no legacy
    if _pair(legacy_base.split("\n"), START, END) is None:
        return None
    return _pair(lines, START, END)


def links_in_region(text: str, tag: str | None = None) -> list[str]:
    """Link targets listed in the region (empty when there is none). Without ``tag``
    (reading only, e.g. for a report) the one pair of tagged markers, whatever the tag,
    or else the one plain pair."""
    lines = text.split("\n")
    if tag is not None:
        found = _region(lines, tag, None)
    else:
        marks = [(i, m.group(1)) for i, line in enumerate(lines)
                 if (m := _ANY_MARKER.match(line.strip()))]
        if [end for _, end in marks] == [None, "-end"]:
            found = (marks[0][0], marks[1][0])
        else:
            found = _pair(lines, START, END)
    if found is None:
        return []
    out = []
    for line in lines[found[0] + 1:found[1]]:
        m = re.search(r"\[\[([^\]|#\n]+)", line)
        if m and _LINK_LINE.match(line):
            out.append(m.group(1).strip())
    return out


def _links_to(text: str, target: str) -> bool:
    pattern = re.compile(r"\[\[\s*" + re.escape(target) + r"\s*(?:[|#\]])", re.I)
    return pattern.search(text) is not None


def add_link(text: str, target: str, tag: str, *, legacy_base: str | None = None
             ) -> str | None:
    """``text`` with ``- [[target]]`` added at the end of its region, or None when the
    note must not change (no region with this note's ``tag``, already linked, region
    full). ``legacy_base``: see the module docstring; a legacy region edited gets its
    markers tagged."""
    lines = text.split("\n")
    found = _region(lines, tag, legacy_base)
    if found is None or _links_to(text, target):
        return None
    start, end = found
    inside = lines[start + 1:end]
    if sum(1 for line in inside if _LINK_LINE.match(line)) >= MAX_LINKS:
        return None
    cr = "\r" if lines[end].endswith("\r") else ""
    kept = [line for line in inside if line.rstrip("\r") != PLACEHOLDER]
    head, tail = lines[:start + 1], lines[end:]
    if head[-1].strip() == START:  # a legacy region: tag it now
        head[-1] = head[-1].replace(START, start_marker(tag))
        tail[0] = tail[0].replace(END, end_marker(tag))
    return "\n".join([*head, *kept, f"- [[{target}]]{cr}", *tail])
