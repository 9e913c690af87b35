"""Test oracle: the Spaced Repetition plugin's card parser, ported line by line.

A faithful Python port of how st3v3nmw/obsidian-spaced-repetition (1.15.4, commit
22fbea0a) reads the cards of a note and their schedules, so tests can check what the
plugin itself would see in a file vaultd wrote. It is deliberately written apart from
:mod:`vault_tools.sr_schedule` (which it checks), following the TypeScript:

* ``splitNoteIntoFrontmatterAndContent`` (src/utils/strings.ts): frontmatter blanked;
* ``parse`` (src/parser.ts), quirks included: an HTML comment line is skipped with the
  line after it; a line with ``::`` / ``:::`` (not in inline code) is a single-line card
  at once, taking a next line that starts with ``<!--SR:``; a ``?`` / ``??`` line makes
  the lines since the last blank a multi-line card; a cloze line (clozecraft pattern)
  starts a cloze card; a card ends at a blank line; fenced code is skipped;
* ``QuestionText.splitText`` (question.ts): the question without the schedule comment
  (``/<!--SR:.+-->/gm`` removed), trimmed at the end, topic tag and block id cut off;
* ``NotesDataStore.createSchedule`` + ``CommentParser.parseMultiScheduleComment``: the
  schedule of each sub-card from the first ``<!--SR:...-->`` of the card text;
  ``2000-01-01`` marks a sub-card not reviewed yet;
* ``CardFrontBackUtil.expand``: how many cards a question makes (2 for reversed, one per
  cloze deletion).

Default settings are the plugin's ``DEFAULT_SETTINGS`` (settings.ts).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

SINGLE_BASIC, SINGLE_REVERSED, MULTI_BASIC, MULTI_REVERSED, CLOZE = range(5)
DUMMY_DUE = "2000-01-01"


@dataclass
class Options:
    single_line: str = "::"
    single_line_reversed: str = ":::"
    multi_line: str = "?"
    multi_line_reversed: str = "??"
    end_marker: str = ""
    cloze_patterns: list[str] = field(default_factory=lambda: ["==[123;;]answer[;;hint]=="])


@dataclass
class ParsedQuestion:
    card_type: int
    text: str
    first: int
    last: int


# -- clozecraft 0.4 (ClozePattern.ts) ------------------------------------------------------

_NUM = re.compile(r"\[(?:(?:\\\])?[^\]]?)+?\d+(?:(?:\\\])?[^\]]?)+?\]")
_HINT = re.compile(r"\[(?:(?:\\\])?[^\]]?)+?hint(?:(?:\\\])?[^\]]?)+?\]")


def _escape(text: str) -> str:
    return re.sub(r"[.*+?^${}()|[\]\\]", lambda m: "\\" + m.group(0), text)


def _process(bracket: str, replace: Callable[[str], str]) -> str:
    inner = bracket[1:-1].replace("\\[", "[").replace("\\]", "]")
    return replace(_escape(inner))


class ClozePattern:
    """clozecraft's ClozePattern: the three regexes (classic, overlapping, simple)."""

    def __init__(self, raw: str) -> None:
        num, hint = _NUM.search(raw), _HINT.search(raw)
        assert num and hint and "answer" in raw
        num_re = _process(num.group(0), lambda t: re.sub(r"\d+", r"(\\d+)", t))
        seq_re = _process(num.group(0), lambda t: re.sub(r"\d+", "([ash]+)", t))

        def hint_replace(t: str) -> str:
            after = t[t.index("hint") + 4:]
            if t.index("hint") == 0 or not after:
                return t.replace("hint", "(.+?)", 1)
            return t.replace("hint", f"((?:(?!{after}).)+?)", 1)

        hint_re = "(?:" + _process(hint.group(0), hint_replace) + ")?"

        def build(num_part: str) -> re.Pattern[str]:
            if num.start() < hint.start():
                a, ar, b, br = num, num_part, hint, hint_re
            else:
                a, ar, b, br = hint, hint_re, num, num_part
            out = (_escape(raw[:a.start()]) + ar + _escape(raw[a.end():b.start()]) + br
                   + _escape(raw[b.end():]))
            return re.compile(out.replace("answer", "(.+?)", 1))

        self.regexes = [build(num_re), build(seq_re), build("")]  # priority order
        self.simple = self.regexes[2]


def is_cloze(line: str, patterns: list[ClozePattern]) -> bool:
    return any(r.search(line) for p in patterns for r in p.regexes)


def cloze_count(text: str, patterns: list[ClozePattern]) -> int:
    """Cards of a cloze question: simple clozes count one each (ClozeNoteSimple);
    numbered ones (classic) count up to their highest number."""
    classic = max((int(m.group(1)) for p in patterns for m in p.regexes[0].finditer(text)),
                  default=0)
    if classic:
        return classic
    seen: set[int] = set()
    for p in patterns:
        for m in p.simple.finditer(text):
            idx = m.start() + m.group(0).index(m.group(1))
            if idx in seen:
                break
            seen.add(idx)
    return len(seen)


# -- parser.ts -----------------------------------------------------------------------------

def _inside_code(text: str, marker: str, idx: int) -> bool:
    before = text[:idx].count("`")
    after = text[idx + len(marker):].count("`")
    return before % 2 == 1 and after % 2 == 1


def _has_inline_marker(text: str, marker: str) -> bool:
    if not marker:
        return False
    idx = text.find(marker)
    return idx != -1 and not _inside_code(text, marker, idx)


def parse(text: str, options: Options | None = None) -> list[ParsedQuestion]:
    o = options or Options()
    inline = sorted([(o.single_line, SINGLE_BASIC), (o.single_line_reversed, SINGLE_REVERSED)],
                    key=lambda p: -len(p[0]))
    patterns = [ClozePattern(p) for p in o.cloze_patterns]
    cards: list[ParsedQuestion] = []
    card_text = ""
    card_type: int | None = None
    first = 0
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        current = lines[i]
        trimmed = current.strip()
        if current.startswith("<!--") and not current.startswith("<!--SR:"):
            while i + 1 < len(lines) and "-->" not in current:
                i += 1
            i += 1
            i += 1  # the for loop's i++
            continue
        empty = len(trimmed) == 0
        end_marker = bool(o.end_marker) and trimmed == o.end_marker
        if (empty and not o.end_marker) or (empty and card_type is None) or end_marker:
            if card_type is not None:
                cards.append(ParsedQuestion(card_type, card_text.rstrip(), first, i - 1))
                card_type = None
            card_text = ""
            first = i + 1
            i += 1
            continue
        if card_text:
            card_text += "\n"
        card_text += current.rstrip()
        for marker, kind in inline:
            if _has_inline_marker(current, marker):
                card_type = kind
                break
        if card_type in (SINGLE_BASIC, SINGLE_REVERSED):
            card_text = current
            first = i
            if i + 1 < len(lines) and lines[i + 1].startswith("<!--SR:"):
                card_text += "\n" + lines[i + 1]
                i += 1
            elif i + 1 < len(lines) and lines[i + 1].startswith("> [!sr|card-metadata]"):
                for j in range(i + 1, len(lines)):
                    card_text += "\n" + lines[j]
                    i += 1
                    if "<!--SR:" in lines[j]:
                        break
            cards.append(ParsedQuestion(card_type, card_text, first, i))
            card_type = None
            card_text = ""
        elif trimmed == o.multi_line:
            if len(card_text) > 1:
                card_type = MULTI_BASIC
        elif trimmed == o.multi_line_reversed:
            if len(card_text) > 1:
                card_type = MULTI_REVERSED
        elif current.startswith("```") or current.startswith("~~~"):
            close = re.match(r"`+|~+", current).group(0)  # type: ignore[union-attr]
            while i + 1 < len(lines) and not lines[i + 1].startswith(close):
                i += 1
                card_text += "\n" + lines[i]
            card_text += "\n" + close
            i += 1
        elif card_type is None and is_cloze(current, patterns):
            card_type = CLOZE
        i += 1
    if card_type is not None and card_text:
        cards.append(ParsedQuestion(card_type, card_text.rstrip(), first, len(lines) - 1))
    return cards


# -- the note, questions and schedules ------------------------------------------------------

def blank_frontmatter(note: str) -> str:
    """splitNoteIntoFrontmatterAndContent: the content with frontmatter lines blanked."""
    lines = re.split(r"\r\n|\r|\n", note)
    if not lines or lines[0] != "---":
        return "\n".join(lines)
    for n in range(1, len(lines)):
        if lines[n] == "---":
            return "\n".join([""] * (n + 1) + lines[n + 1:])
    return "\n".join(lines)


def actual_question(original: str) -> str:
    """QuestionText.splitText: no schedule, trimmed end, no topic tag, no block id."""
    text = re.sub(r"<!--SR:.+-->", "", original).rstrip()
    stripped = text.lstrip()
    if re.match(r"#[^\s#]+", stripped):
        text = re.sub(r"^#[^\s#]+", "", stripped).lstrip()
    m = re.search(r" (\^[a-zA-Z0-9-]+)$", text)
    if m:
        text = text[:m.start()].rstrip()
    return text


def schedules(original: str) -> list[str | None]:
    """createSchedule: one entry per sub-card ("date,interval,ease"), None = new."""
    m = re.search(r"<!--SR:(.+?)-->", original)
    if not m:
        return []
    out: list[str | None] = []
    for segment in (s.strip() for s in m.group(1).split("!")):
        if segment:
            out.append(None if segment.startswith(DUMMY_DUE) else segment)
    return out


def card_count(card_type: int, question: str, options: Options) -> int:
    if card_type in (SINGLE_REVERSED, MULTI_REVERSED):
        return 2
    if card_type == CLOZE:
        return cloze_count(question, [ClozePattern(p) for p in options.cloze_patterns])
    return 1


@dataclass
class Card:
    """One reviewable card: its question's text and the schedule the plugin reads."""

    question: str
    index: int
    schedule: str | None


def cards(note: str, options: Options | None = None) -> list[Card]:
    """Every card of a note as the plugin reviews it, with its schedule (None = new)."""
    o = options or Options()
    out: list[Card] = []
    for q in parse(blank_frontmatter(note), o):
        question = actual_question(q.text)
        found = schedules(q.text)
        for n in range(card_count(q.card_type, question, o)):
            out.append(Card(question, n, found[n] if n < len(found) else None))
    return out


def schedule_map(note: str, options: Options | None = None) -> dict[tuple[str, int], str]:
    """{(question text, sub-card): schedule} for the scheduled cards of a note."""
    return {(c.question, c.index): c.schedule for c in cards(note, options)
            if c.schedule is not None}


# -- what the plugin writes after a review --------------------------------------------------

def format_schedule(question: ParsedQuestion, entries: list[str], same_line: bool) -> str:
    """Question.formatForNote: the card text with its schedule comment, same line or next
    line (a card ending in a code block always gets it on the next line)."""
    text = re.sub(r"<!--SR:.+-->", "", question.text).rstrip()
    comment = "<!--SR:" + "".join(f"!{e}" for e in entries) + "-->"
    m = re.search(r" (\^[a-zA-Z0-9-]+)$", text)
    on_same_line = same_line and not text.endswith("```")
    if m:
        body = text[:m.start()].rstrip()
        return (f"{body} {comment} {m.group(1)}" if on_same_line
                else f"{body} {m.group(1)}\n{comment}")
    return f"{text}{' ' if on_same_line else chr(10)}{comment}"


def find_and_replace(source: str, search: str, replacement: str) -> str | None:
    """MultiLineTextFinder.findAndReplace (strings.ts): the first literal occurrence, else
    the first run of lines equal once trimmed; None when the text is not there."""
    if search in source:
        return source.replace(search, replacement, 1)
    src, want = re.split(r"\r\n|\r|\n", source), re.split(r"\r\n|\r|\n", search)
    k = 0
    for n, line in enumerate(src):
        if line.strip() == want[k].strip():
            if k == len(want) - 1:
                start = n - k
                src[start:start + len(want)] = replacement.split("\n")
                return "\n".join(src)
            k += 1
        else:
            k = 0
    return None


def review_all(note: str, same_line: bool | Callable[[str], bool],
               entry: Callable[[str, int], str], options: Options | None = None) -> str:
    """The note after the plugin reviewed every card once: each question written back
    as the plugin does (updateQuestionWithinNoteText: formatForNote's text put in place
    of the question's original text) with ``entry(question_text, sub_card_index)`` as its
    schedule, the comment on the same line when ``same_line`` (or
    ``same_line(question_text)``)."""
    o = options or Options()
    text = note
    for q in parse(blank_frontmatter(note), o):
        question = actual_question(q.text)
        n = card_count(q.card_type, question, o)
        entries = [entry(question, k) for k in range(n)]
        same = same_line(question) if callable(same_line) else same_line
        text = find_and_replace(text, q.text, format_schedule(q, entries, same)) or text
    return text


def retired_inner(note: str) -> str:
    """The text inside the "Retired cards" code block ('' when there is none)."""
    m = re.search(r"^## Retired cards\n(?:(?!```).*\n)*?(`{3,})[^\n]*\n(.*?)^\1\s*$", note,
                  re.M | re.S)
    return m.group(2) if m else ""
