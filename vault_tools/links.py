"""Wikilinker: link mentions of existing notes in a new note as ``[[Target|surface]]``.

This module owns the decision "which words of a generated note become links". It is
built from ``(title, aliases, target)`` entries (see ``VaultIndex.titles_and_aliases``)
into a trie over casefolded *tokens* (words, single punctuation marks and one "space"
token for any run of blanks), so one pass over the note finds every candidate mention
whatever the number of notes in the vault; there is no regex per title.

Rules: markdown-aware (nothing is linked inside frontmatter, fenced or indented code,
inline code, existing wikilinks and markdown links, URLs, HTML tags and comments,
headings, callout title lines, math, tags, footnote and block references, Dataview
inline-field keys or ``::`` separators); whole words only, Unicode-aware and
case-insensitive; the longest match wins; only the first mention of each target is
linked (targets the note already links count as mentioned); the note never links to
itself. A surface text shared by several notes links only when one of them owns it as
its title (titles beat aliases); otherwise it is ambiguous and left alone.

All-caps patterns (acronyms such as ``AI`` or ``ARE``) match only in that exact case,
so they do not fire on ordinary words; other patterns shorter than ``min_length``
characters are ignored.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable
from itertools import accumulate

__all__ = ["Linker", "fold", "protected_mask"]

_PUNCT = (
    r"!-/:-@\[-\^`{-~\u00a1\u00a7\u00ab\u00b6\u00b7\u00bb\u00bf\u2010-\u2027"
    r"\u2030-\u205e\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65"
)
_TOKENS = re.compile(rf"[^\s{_PUNCT}]+|[^\S\n]+|\n|.", re.S)
_BLANKS = " \t\r\f\v\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
_BLANKS += "\u200a\u202f\u205f\u3000"
_BLANK_TO_SPACE = {ord(c): " " for c in _BLANKS}
_END = ""  # trie key marking "a pattern ends here" (never a token)
_FORBIDDEN = re.compile(r"[\[\]|\n#^]")
_HAS_WORD = re.compile(rf"[^\s{_PUNCT}]")

FREE, PROTECTED, TABLE = 0, 1, 2  # protected_mask values

# Block-level patterns, applied per line.
_FENCE = re.compile(r"^[ \t]*(?:>[ \t]?)*[ \t]*(?:[-*+]|\d{1,9}[.)])?[ \t]*(`{3,}|~{3,})")
_HEADING = re.compile(r"^[ \t]*(?:>[ \t]?)*[ \t]{0,3}#{1,6}(?:[ \t]|$)")
_CALLOUT_TITLE = re.compile(r"^[ \t]*(?:>[ \t]?)+[ \t]*\[![^\]\n]*\]")
_REF_DEF = re.compile(r"^[ \t]{0,3}\[(?!\^)[^\]\n]+\]:")
_SETEXT = re.compile(r"^[ \t]{0,3}(?:=+|-+)[ \t]*$")
_TABLE_DELIM = re.compile(r"^[ \t]*\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$")
_FIELD_KEY = re.compile(r"^[ \t]*(?:[-*+][ \t]+)?(?:[^\s:?][^:?\n]{0,40}?)::")
_LINES = re.compile(r"[^\n]*\n?")

# Inline constructs, each found with its own literal-prefixed regex (fast to scan).
_INLINE = [
    re.compile(r"\[\[[^\]\n]*\]\]"),  # wikilinks and embeds
    re.compile(r"\[(?:[^\[\]\n]|\[[^\]\n]*\])*\]\((?:[^()\n]|\([^()\n]*\))*\)"),  # [a](b)
    re.compile(r"\[[^\[\]\n]*\]\[[^\]\n]*\]"),  # [text][ref]
    re.compile(r"\[\^[^\]\n]*\]"),  # footnote references
    re.compile(r"<!--[\s\S]*?(?:-->|$)"),  # HTML comments, e.g. <!--SR:...-->
    re.compile(r"%%[\s\S]*?(?:%%|$)"),  # Obsidian comments
    re.compile(r"<a\b[^>]*>[\s\S]*?</a\s*>", re.I),  # HTML links with their text
    re.compile(r"<[A-Za-z/][^<>\n]*>"),  # HTML tags and autolinks
    re.compile(r"www\.[^\s<>]*"),  # bare URLs without a scheme
    re.compile(r"mailto:[^\s<>]*"),
    re.compile(r"\$\$[\s\S]*?(?:\$\$|$)"),  # display math
    re.compile(r"\$(?=[^\s$])[^$\n]*(?<=[^\s$])\$"),  # inline math
    re.compile(r"#[^\s#\[\](),.;:!?\"']+"),  # tags
    re.compile(r"\^[A-Za-z0-9-]+[ \t]*$", re.M),  # block ids
    re.compile(r"::+"),  # Q::A / Q:::A separators, key:: value
    re.compile(r"\[[^\[\]()\n]*::[^\[\]()\n]*\]"),  # [key:: value]
    re.compile(r"\([^\[\]()\n]*::[^\[\]()\n]*\)"),  # (key:: value)
]
_URL_SCHEME_SEP = re.compile(r"://[^\s<>]*")
_SCHEME_BEFORE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]{0,30}$")
_BACKTICK_RUN = re.compile(r"`+")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_WIKILINK_TARGET = re.compile(r"\[\[([^\]|#^\n]+)")


def fold(text: str) -> str:
    """Casefold ``text`` one character at a time, keeping its length (and so offsets)."""
    folded = text.casefold()
    if len(folded) == len(text):
        return folded
    out = []
    for char in text:
        lowered = char.casefold()
        if len(lowered) != 1:
            lowered = char.lower() if len(char.lower()) == 1 else char
        out.append(lowered)
    return "".join(out)


def protected_mask(markdown: str) -> bytearray:
    """One byte per character: ``PROTECTED`` where links must not go, ``TABLE`` for table
    rows (links there need an escaped pipe), ``FREE`` elsewhere."""
    mask = bytearray(len(markdown))

    def protect(start: int, end: int) -> None:
        mask[start:end] = b"\x01" * (end - start)

    lines = [(m.start(), m.end()) for m in _LINES.finditer(markdown) if m.end() > m.start()]
    texts = [markdown[a:b] for a, b in lines]
    n = len(lines)
    i = 0
    if n and texts[0].rstrip() == "---":  # frontmatter
        for j in range(1, n):
            if texts[j].rstrip() in ("---", "..."):
                protect(lines[0][0], lines[j][1])
                i = j + 1
                break
    fence: str | None = None
    math = indented = False
    previous_blank = True
    while i < n:
        start, end = lines[i]
        line = texts[i]
        blank = not line.strip()
        if fence is not None:
            protect(start, end)
            opener = _FENCE.match(line)
            if opener and opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence):
                if not line[opener.end() :].strip():
                    fence = None
        elif math:
            protect(start, end)
            math = "$$" not in line
        elif (opener := _FENCE.match(line)) is not None:
            protect(start, end)
            fence = opener.group(1)
        elif line.lstrip(" \t>").startswith("$$"):
            protect(start, end)
            math = line.count("$$") % 2 == 1
        elif not blank and (line.startswith(("    ", "\t")) and (previous_blank or indented)):
            protect(start, end)
            indented = True
        elif _HEADING.match(line) or _CALLOUT_TITLE.match(line) or _REF_DEF.match(line):
            protect(start, end)
        elif _SETEXT.match(line) and not previous_blank and i > 0:
            protect(lines[i - 1][0], end)
        elif "|" in line and i + 1 < n and _TABLE_DELIM.match(texts[i + 1].rstrip("\n")):
            j = i
            while j < n and "|" in texts[j] and texts[j].strip():
                a, b = lines[j]
                mask[a:b] = b"\x02" * (b - a)
                j += 1
            i = j
            previous_blank, indented = False, False
            continue
        else:
            key = _FIELD_KEY.match(line)
            if key and len(key.group(0).split()) <= 4:
                protect(start, start + key.end())
        if not blank:
            indented = indented and line.startswith(("    ", "\t"))
        previous_blank = blank
        i += 1

    _protect_code_spans(markdown, mask)
    for pattern in _INLINE:
        for match in pattern.finditer(markdown):
            protect(match.start(), match.end())
    for match in _URL_SCHEME_SEP.finditer(markdown):  # scheme://... URLs
        scheme = _SCHEME_BEFORE.search(markdown, max(0, match.start() - 31), match.start())
        protect(scheme.start() if scheme else match.start(), match.end())
    return mask


def _protect_code_spans(markdown: str, mask: bytearray) -> None:
    runs = [m for m in _BACKTICK_RUN.finditer(markdown) if mask[m.start()] != PROTECTED]
    blanks = [m.start() for m in _BLANK_LINE.finditer(markdown)]
    i = 0
    while i < len(runs):
        opener = runs[i]
        width = opener.end() - opener.start()
        limit_index = bisect_left(blanks, opener.end())
        limit = blanks[limit_index] if limit_index < len(blanks) else len(markdown)
        for j in range(i + 1, len(runs)):
            closer = runs[j]
            if closer.start() >= limit:
                break
            if closer.end() - closer.start() == width:
                mask[opener.start() : closer.end()] = b"\x01" * (closer.end() - opener.start())
                i = j
                break
        i += 1


def _tokens(folded: str) -> list[str]:
    """Tokens of casefolded text; every run of blanks becomes the single token " "."""
    return [" " if token[0] == " " else token for token in _TOKENS.findall(folded)]


class Linker:
    """Multi-pattern linker over note titles and aliases (see module docstring)."""

    def __init__(
        self, entries: Iterable[tuple[str, Iterable[str], str]] = (), *, min_length: int = 3
    ) -> None:
        self.min_length = min_length
        self._root: dict[str, dict] = {}
        self._targets: dict[str, dict[str, int]] = {}  # pattern key -> {target: priority}
        self._by_target: dict[str, set[str]] = {}
        self._exact: dict[str, str] = {}  # acronym pattern key -> required exact surface
        for title, aliases, target in entries:
            self.add(title, aliases, target)

    def __len__(self) -> int:
        return len(self._by_target)

    def add(self, title: str, aliases: Iterable[str] = (), target: str | None = None) -> None:
        """Register a note (again: replaces its previous patterns)."""
        target = target or title
        if not target or _FORBIDDEN.search(target):
            return
        self.remove(target)
        for priority, pattern in enumerate([title, *aliases]):
            self._add_pattern(pattern.strip(), target, min(priority, 1))

    def remove(self, target: str) -> None:
        """Forget a note's title and aliases."""
        for key in self._by_target.pop(target, set()):
            owners = self._targets.get(key, {})
            owners.pop(target, None)
            if not owners:
                self._targets.pop(key, None)
                self._exact.pop(key, None)

    def link(self, markdown: str, *, self_title: str | None = None) -> str:
        """``markdown`` with the first mention of each known note turned into a wikilink."""
        used = {fold(t.strip()) for t in _WIKILINK_TARGET.findall(markdown)}
        out: list[str] = []
        position = 0
        for start, end, target, in_table in self._matches(markdown, self_title):
            key = fold(target)
            if key in used or key.rsplit("/", 1)[-1] in used:
                continue
            used.add(key)
            surface = markdown[start:end]
            pipe = "\\|" if in_table else "|"
            out.append(markdown[position:start])
            out.append(f"[[{target}]]" if surface == target else f"[[{target}{pipe}{surface}]]")
            position = end
        out.append(markdown[position:])
        return "".join(out)

    def candidates(
        self, text: str, limit: int = 20, *, self_title: str | None = None
    ) -> list[tuple[str, int]]:
        """The ``limit`` notes mentioned most often in ``text``, as (target, mentions)."""
        counts: dict[str, int] = {}
        for _start, _end, target, _table in self._matches(text, self_title):
            counts[target] = counts.get(target, 0) + 1
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0].casefold()))
        return ranked[:limit]

    # ------------------------------------------------------------------ internals

    def _add_pattern(self, pattern: str, target: str, priority: int) -> None:
        if not pattern or _FORBIDDEN.search(pattern) or not _HAS_WORD.search(pattern):
            return
        compact = "".join(pattern.split())
        acronym = len(compact) >= 2 and compact.isupper()
        if len(compact) < self.min_length and not acronym:
            return
        folded = fold(pattern).translate(_BLANK_TO_SPACE)
        forms = (
            {folded}
            if folded.isascii()
            else {unicodedata.normalize(form, folded) for form in ("NFC", "NFD")}
        )
        for key in forms:
            node = self._root
            for token in _tokens(key):
                node = node.setdefault(token, {})
            node[_END] = key  # type: ignore[assignment]
            owners = self._targets.setdefault(key, {})
            owners[target] = min(priority, owners.get(target, priority))
            self._by_target.setdefault(target, set()).add(key)
            if acronym:
                self._exact[key] = pattern

    def _resolve(self, key: str) -> str | None:
        owners = self._targets.get(key)
        if not owners:
            return None
        best = min(owners.values())
        chosen = [target for target, priority in owners.items() if priority == best]
        return chosen[0] if len(chosen) == 1 else None

    def _matches(self, text: str, self_title: str | None) -> Iterable[tuple[int, int, str, bool]]:
        """Leftmost-longest unprotected mentions as (start, end, target, in a table row),
        skipping the note itself and ambiguous surfaces."""
        parts = _TOKENS.findall(fold(text).translate(_BLANK_TO_SPACE))
        ends = list(accumulate(map(len, parts)))
        self_key = fold(self_title.strip()) if self_title else None
        root, targets = self._root, self._targets
        firsts = [i for i, token in enumerate(parts) if token in root]
        if not firsts:
            return
        mask = protected_mask(text)
        n = len(parts)
        resume = 0
        for i in firsts:
            if i < resume:
                continue
            start = ends[i] - len(parts[i])
            if mask[start] == PROTECTED:
                continue
            node = root[parts[i]]
            best_key, best_j = None, i
            j = i
            while True:
                key = node.get(_END)
                if key is not None and key in targets:
                    if mask.find(PROTECTED, start, ends[j]) != -1:
                        break
                    best_key, best_j = key, j
                j += 1
                if j >= n:
                    break
                token = parts[j]
                child = node.get(token)
                if child is None and token[0] == " ":
                    child = node.get(" ")  # several blanks match one
                if child is None:
                    break
                node = child
            if best_key is None:
                continue
            end = ends[best_j]
            resume = best_j + 1
            exact = self._exact.get(best_key)
            if exact is not None and text[start:end] != exact:
                continue
            target = self._resolve(best_key)
            if target is None or (self_key is not None and best_key == self_key):
                continue
            target_key = fold(target)
            if self_key is not None and self_key in (target_key, target_key.rsplit("/", 1)[-1]):
                continue
            yield start, end, target, mask[start] == TABLE
