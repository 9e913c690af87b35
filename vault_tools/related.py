"""The "Related" region of a study note: the one part of a note the daemon keeps editing.

A study note ends with a ``## Related`` section whose list sits between two Obsidian
comment lines (hidden in reading view and in the PDF)::

    ## Related

    %% vaultd:related %%
    - [[Gradient descent]]
    %% vaultd:related-end %%

The list is the daemon's, chosen when the note is written. When a later study note
names this one among *its* related notes, the daemon adds a link back here, so the
relation shows from both sides without ever touching a note the user wrote.

The contract that keeps this safe for the user's text:

* only a note with exactly one well-formed region is changed, and only between its two
  marker lines; the heading, the rest of the note and anything the user wrote are kept
  byte for byte (line endings included);
* lines are only ever added (the placeholder of an empty region is replaced): a link the
  user deleted from the region is not put back by a later note, and text the user typed
  inside the region stays;
* nothing is added when the note already links the target anywhere, or when the region
  holds :data:`MAX_LINKS` links already.

Pure functions of text; the writer applies them with a compare-and-swap edit.
"""

from __future__ import annotations

import re

HEADING = "## Related"
START = "%% vaultd:related %%"
END = "%% vaultd:related-end %%"
PLACEHOLDER = "_None yet: vaultd adds notes here as related ones arrive._"
MAX_LINKS = 12

_LINK_LINE = re.compile(r"^\s*[-*+]\s+!?\[\[")


def section(targets: list[str]) -> str:
    """The Related section for a new note linking ``targets`` (link targets, in order)."""
    items = [f"- [[{t}]]" for t in targets] or [PLACEHOLDER]
    return "\n".join([HEADING, "", START, *items, END]) + "\n"


def with_section(body: str, targets: list[str]) -> str:
    """``body`` with the Related section appended."""
    return f"{body.rstrip()}\n\n{section(targets)}"


def _region(lines: list[str]) -> tuple[int, int] | None:
    """(start, end) line indexes of the markers, or None unless exactly one region."""
    starts = [i for i, line in enumerate(lines) if line.strip() == START]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if len(starts) != 1 or len(ends) != 1 or starts[0] > ends[0]:
        return None
    return starts[0], ends[0]


def links_in_region(text: str) -> list[str]:
    """Link targets listed in the region (empty when there is none)."""
    lines = text.split("\n")
    found = _region(lines)
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


def add_link(text: str, target: str) -> str | None:
    """``text`` with ``- [[target]]`` added at the end of its region, or None when the
    note must not change (no single region, already linked, region full)."""
    lines = text.split("\n")
    found = _region(lines)
    if found is None or _links_to(text, target):
        return None
    start, end = found
    inside = lines[start + 1:end]
    if sum(1 for line in inside if _LINK_LINE.match(line)) >= MAX_LINKS:
        return None
    cr = "\r" if lines[end].endswith("\r") else ""
    kept = [line for line in inside if line.rstrip("\r") != PLACEHOLDER]
    return "\n".join([*lines[:start + 1], *kept, f"- [[{target}]]{cr}", *lines[end:]])
