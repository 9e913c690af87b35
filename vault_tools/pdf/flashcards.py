"""Flashcard syntax (Obsidian Spaced Repetition plugin) to question/answer pairs.

Owns recognising cards inside a paragraph's raw markdown so they print as a clean
Q/A block instead of raw markup: single-line ``Question::Answer`` and
``Question:::Answer``, multi-line cards split by a line holding only ``?`` or ``??``, and
cloze cards (``==hidden==`` or Anki-style ``{{c1::hidden}}``), whose question shows a
blank and whose answer shows the hidden words highlighted. ``==x==`` is only read as a
cloze in a flashcard context (an assessment note, a ``flashcards`` tag, a heading that
mentions flashcards); elsewhere it stays an ordinary highlight. Scheduling comments are
removed earlier, in :mod:`vault_tools.pdf.source`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CODE_SPAN_RE = re.compile(r"(`+)(.+?)\1")
_SEPARATOR_RE = re.compile(r":{2,3}")
_MARK_CLOZE_RE = re.compile(r"==(?=\S)(.+?)(?<=\S)==")
_ANKI_CLOZE_RE = re.compile(r"\{\{c\d+::(.+?)(?:::(.+?))?\}\}")
BLANK = "[…]"


@dataclass(frozen=True)
class Card:
    """One card; ``question`` and ``answer`` are inline markdown."""

    question: str
    answer: str


def _mask_code(line: str) -> str:
    return _CODE_SPAN_RE.sub(lambda m: "x" * len(m.group(0)), line)


def _inline_card(line: str) -> Card | None:
    masked = _mask_code(line)
    match = _SEPARATOR_RE.search(masked)
    if match is None:
        return None
    question = line[:match.start()].strip()
    answer = line[match.end():].strip()
    if not question or not answer or answer.startswith(":"):
        return None
    return Card(question, answer)


def _cloze_card(line: str, context: bool) -> Card | None:
    if _ANKI_CLOZE_RE.search(line):
        question = _ANKI_CLOZE_RE.sub(lambda m: f"[{m.group(2)}]" if m.group(2) else BLANK,
                                      line)
        answer = _ANKI_CLOZE_RE.sub(lambda m: f"=={m.group(1)}==", line)
        return Card(question.strip(), answer.strip())
    if context and _MARK_CLOZE_RE.search(_mask_code(line)):
        return Card(_MARK_CLOZE_RE.sub(BLANK, line).strip(), line.strip())
    return None


def split_cards(content: str, cloze_context: bool) -> list[str | Card] | None:
    """Paragraph source as text runs and cards, or None when it holds no card."""
    lines = content.split("\n")
    for i, line in enumerate(lines):
        if line.strip() in ("?", "??") and 0 < i < len(lines) - 1:
            return [Card("\n".join(lines[:i]).strip(), "\n".join(lines[i + 1:]).strip())]
    segments: list[str | Card] = []
    found = False
    for line in lines:
        card = _cloze_card(line, cloze_context) or _inline_card(line)
        if card is not None:
            found = True
            segments.append(card)
        elif segments and isinstance(segments[-1], str):
            segments[-1] = segments[-1] + "\n" + line
        else:
            segments.append(line)
    return segments if found else None
