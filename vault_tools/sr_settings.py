"""The Spaced Repetition plugin's settings that vaultd must respect.

The Obsidian plugin st3v3nmw/obsidian-spaced-repetition keeps its settings in
``.obsidian/plugins/obsidian-spaced-repetition/data.json`` as ``{"settings": {...}}``
(``src/data/plugin-data.ts``); a key missing there takes the plugin's default
(``DEFAULT_SETTINGS`` in ``src/data/settings.ts``). This module owns reading the few
keys vaultd depends on:

* the card syntax (``singleLineCardSeparator`` ``::``, ``singleLineReversedCardSeparator``
  ``:::``, ``multilineCardSeparator`` ``?``, ``multilineReversedCardSeparator`` ``??``,
  ``multilineCardEndMarker`` empty = a blank line ends a card, ``clozePatterns``,
  ``==…==`` only by default), so scheduling comments are kept on the right cards;
* the tags the plugin reacts to: ``flashcardTags`` (default ``#flashcards``, a note with
  one is a card source) and ``tagsToReview`` (default ``#review``, a note with one joins
  the note-review queue). Generated tags must never be one of these.

A missing, unreadable or malformed file means the defaults: the plugin behaves the same.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from vault_tools.pathgate import PathGate, PathRefused

DATA_JSON = ".obsidian/plugins/obsidian-spaced-repetition/data.json"

HIGHLIGHT_CLOZE = "==[123;;]answer[;;hint]=="
BOLD_CLOZE = "**[123;;]answer[;;hint]**"
CURLY_CLOZE = "{{[123;;]answer[;;hint]}}"


def _strings(value: object, default: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    return default


def _string(value: object, default: str) -> str:
    return value if isinstance(value, str) else default


@dataclass(frozen=True)
class SrSettings:
    """The plugin settings vaultd reads (defaults = the plugin's defaults)."""

    flashcard_tags: tuple[str, ...] = ("#flashcards",)
    review_tags: tuple[str, ...] = ("#review",)
    single_line: str = "::"
    single_line_reversed: str = ":::"
    multi_line: str = "?"
    multi_line_reversed: str = "??"
    end_marker: str = ""
    cloze_patterns: tuple[str, ...] = field(default=(HIGHLIGHT_CLOZE,))

    @classmethod
    def from_data_json(cls, text: str | None) -> SrSettings:
        """Settings from the text of the plugin's data.json (None: not installed)."""
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {}
        raw = data.get("settings") if isinstance(data, dict) else None
        s = raw if isinstance(raw, dict) else {}
        d = cls()
        patterns = _strings(s.get("clozePatterns"), ())
        if "clozePatterns" not in s or not isinstance(s.get("clozePatterns"), list):
            # the plugin's upgradeSettings: the patterns from the older three switches
            legacy = [(s.get("convertHighlightsToClozes", True), HIGHLIGHT_CLOZE),
                      (s.get("convertBoldTextToClozes", False), BOLD_CLOZE),
                      (s.get("convertCurlyBracketsToClozes", False), CURLY_CLOZE)]
            patterns = tuple(p for on, p in legacy if on is True)
        return cls(
            flashcard_tags=_strings(s.get("flashcardTags"), d.flashcard_tags),
            review_tags=_strings(s.get("tagsToReview"), d.review_tags),
            single_line=_string(s.get("singleLineCardSeparator"), d.single_line),
            single_line_reversed=_string(s.get("singleLineReversedCardSeparator"),
                                         d.single_line_reversed),
            multi_line=_string(s.get("multilineCardSeparator"), d.multi_line),
            multi_line_reversed=_string(s.get("multilineReversedCardSeparator"),
                                        d.multi_line_reversed),
            end_marker=_string(s.get("multilineCardEndMarker"), d.end_marker),
            cloze_patterns=patterns,
        )

    @classmethod
    def load(cls, vault: Path, gate: PathGate | None = None) -> SrSettings:
        """The vault's plugin settings, read through the path gate (default: the vault's
        gate with symlinks out refused); the defaults when the plugin has none there, the
        file is not a regular file inside the vault, or it is not JSON."""
        gate = gate or PathGate(vault)
        try:
            return cls.from_data_json(gate.read_text(DATA_JSON, limit=1 << 20))
        except (OSError, UnicodeDecodeError, PathRefused):
            return cls()

    def deck_body(self, body: str) -> str:
        """An assessment body whose ``#flashcards/<deck>`` line uses this vault's first
        flashcard tag when the plugin is set to other tags than ``#flashcards``, so the
        assessment stays a card source (the plugin matches a tag or one nested under it,
        case-sensitively)."""
        tags = [t for t in self.flashcard_tags if t.startswith("#") and len(t) > 1]
        if not tags or "#flashcards" in tags:
            return body
        return re.sub(r"^#flashcards/(?=\S)", lambda m: f"{tags[0]}/", body, count=1,
                      flags=re.M)

    def plugin_tags(self) -> frozenset[str]:
        """Every tag the plugin reacts to, lowercased, without '#'. A tag nested under
        one (``flashcards/x``) counts too: see :meth:`is_plugin_tag`."""
        return frozenset(t.lstrip("#").casefold() for t in
                         (*self.flashcard_tags, *self.review_tags) if t.lstrip("#"))

    def is_plugin_tag(self, tag: str) -> bool:
        """True for a tag the plugin would read as a flashcard or review tag: the tag
        itself or one nested under it (the plugin matches ``#flashcards/deck`` too)."""
        t = tag.strip().lstrip("#").casefold()
        return any(t == p or t.startswith(p + "/") for p in self.plugin_tags())
