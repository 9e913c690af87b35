"""Review history (Spaced Repetition scheduling comments) carried through regeneration.

The Obsidian Spaced Repetition plugin (st3v3nmw/obsidian-spaced-repetition) stores a
card's schedule in the note, as ``<!--SR:!2026-12-21,12,250-->`` (a cloze or reversed
card with several sub-cards holds one ``!date,interval,ease`` per sub-card). It writes
the comment on the line after the card by default, or at the end of the card's last line
with "save scheduling comment on the same line". This module owns keeping every
comment on its card when vaultd regenerates an assessment:

* :meth:`SrSchedule.take` finds the cards the way the plugin's ``parse()`` does
  (``src/parser.ts``: ``::``, ``:::``, a ``?`` / ``??`` line, a cloze line, a card running
  to the next blank line, fenced code skipped), takes each card's comment out of the text
  and remembers it under the card's identity: its question (the part before ``::``, the
  lines before ``?``, the whole text of a cloze), normalised (case, spaces, Unicode
  form), and the layout the comment had (same line or next line);
* :meth:`SrSchedule.put` finds the cards of the merged new text and gives each the
  comment of the old card with the same whole text, else the same identity (in the
  layout that card had); a card reworded a little gets the
  comment of the old card whose question is most similar (difflib ratio at least
  :data:`FUZZY_THRESHOLD`) only when that choice is unambiguous (no other old card comes
  within :data:`FUZZY_MARGIN`, and the two are each other's best match), so a schedule
  is never attached to a different card;
* an old card with a schedule that no longer exists is kept, with its schedule, in a
  "Retired cards" section at the end, inside a fenced code block (the plugin does not
  read cards in code blocks, so it is not reviewed); when a later regeneration brings the
  card back it gets its schedule again and leaves the retired block.

Pure text in, text out; the plugin's card syntax comes from :class:`SrSettings`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from vault_tools.sr_settings import SrSettings

FUZZY_THRESHOLD = 0.8
FUZZY_MARGIN = 0.05
DUMMY_DUE = "2000-01-01"
RETIRED_HEADING = "## Retired cards"
RETIRED_INTRO = ("These cards are no longer in the regenerated assessment. vaultd keeps them "
                 "here with their review history (the Spaced Repetition plugin does not "
                 "review cards inside a code block) and puts the history back if a card "
                 "returns.")
_SR = re.compile(r"<!--SR:.+?-->")
_SR_WITH_SPACE = re.compile(r"[ \t]*<!--SR:.+?-->")
_BLOCK_ID = re.compile(r" (\^[a-zA-Z0-9-]+)$")
_TOPIC_TAG = re.compile(r"^\s*#[^\s#]+\s*")
_METADATA_CALLOUT = "> [!sr|card-metadata]"
SINGLE, SINGLE_REVERSED, MULTI, MULTI_REVERSED, CLOZE = (
    "single", "single-reversed", "multi", "multi-reversed", "cloze")


# -- the plugin's card rules ----------------------------------------------------------

def _cloze_regex(pattern: str) -> re.Pattern[str] | None:
    """The plugin's (clozecraft's) "simple" regex for a cloze pattern such as
    ``==[123;;]answer[;;hint]==``: the sequence part dropped, the hint optional. It
    matches every cloze the classic and overlapping forms match."""
    num = re.search(r"\[[^\]]*?\d+[^\]]*?\]", pattern)
    hint = re.search(r"\[[^\]]*?hint[^\]]*?\]", pattern)
    if not num or not hint or "answer" not in pattern:
        return None
    parts: list[tuple[int, int, str]] = [
        (num.start(), num.end(), ""),
        (hint.start(), hint.end(),
         "(?:" + re.escape(hint.group(0)[1:-1]).replace("hint", ".+?", 1) + ")?")]
    out, pos = "", 0
    for start, end, regex in sorted(parts):
        out += re.escape(pattern[pos:start]).replace("answer", "(.+?)", 1) + regex
        pos = end
    out += re.escape(pattern[pos:]).replace("answer", "(.+?)", 1)
    return re.compile(out)


def _marker_outside_code(line: str, marker: str) -> bool:
    """The plugin's ``hasInlineMarker``: the first ``marker`` not inside inline code."""
    if not marker:
        return False
    idx = line.find(marker)
    if idx < 0:
        return False
    before, after = line[:idx].count("`"), line[idx + len(marker):].count("`")
    return not (before % 2 == 1 and after % 2 == 1)


@dataclass
class Span:
    """One card as the plugin sees it: its kind and first/last line (inclusive)."""

    kind: str
    first: int
    last: int


def find_cards(lines: list[str], settings: SrSettings) -> list[Span]:
    """The cards of a note body, by the rules of the plugin's ``parse()``."""
    inline = sorted([(settings.single_line, SINGLE),
                     (settings.single_line_reversed, SINGLE_REVERSED)],
                    key=lambda pair: -len(pair[0]))
    clozes = [r for r in (_cloze_regex(p) for p in settings.cloze_patterns) if r]
    cards: list[Span] = []
    kind: str | None = None
    text = ""
    first = last = 0
    i = 0
    while i < len(lines):
        line, trimmed = lines[i], lines[i].strip()
        if line.startswith("<!--") and not line.startswith("<!--SR:"):
            # parser.ts skips an HTML comment line and the line after it
            if "-->" not in line:
                i = len(lines) - 1
            i += 2
            continue
        empty = not trimmed
        if (empty and not settings.end_marker) or (empty and kind is None) or (
                settings.end_marker and trimmed == settings.end_marker):
            if kind:
                cards.append(Span(kind, first, last))
                kind = None
            text, first = "", i + 1
            i += 1
            continue
        if not text:  # the card's text starts here (parser.ts keeps a stale line
            first = i  # number after a single-line card; the text is what counts)
        text = f"{text}\n{line.rstrip()}" if text else line.rstrip()
        last = i  # the last line in the card's text (not a skipped comment line)
        for marker, marker_kind in inline:
            if _marker_outside_code(line, marker):
                kind = marker_kind
                break
        if kind in (SINGLE, SINGLE_REVERSED):
            first = i
            if i + 1 < len(lines) and lines[i + 1].startswith("<!--SR:"):
                i += 1
            elif i + 1 < len(lines) and lines[i + 1].startswith(_METADATA_CALLOUT):
                for j in range(i + 1, len(lines)):
                    i += 1
                    if "<!--SR:" in lines[j]:
                        break
            cards.append(Span(kind, first, i))
            kind, text, last = None, "", i
        elif trimmed == settings.multi_line:
            if len(text) > 1:
                kind = MULTI
        elif trimmed == settings.multi_line_reversed:
            if len(text) > 1:
                kind = MULTI_REVERSED
        elif line.startswith(("```", "~~~")):
            close = re.match(r"`+|~+", line).group(0)  # type: ignore[union-attr]
            while i + 1 < len(lines) and not lines[i + 1].startswith(close):
                i += 1
            text += "\n" + close
            i += 1
            last = min(i, len(lines) - 1)
        elif kind is None and any(r.search(line) for r in clozes):
            kind = CLOZE
        i += 1
    if kind and text:
        cards.append(Span(kind, first, last))
    return cards


# -- identity ---------------------------------------------------------------------------

def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", _SR.sub("", text)).casefold()
    text = _BLOCK_ID.sub("", text.rstrip())
    return " ".join(_TOPIC_TAG.sub("", text, count=1).split())


def question_of(kind: str, lines: list[str], settings: SrSettings) -> str:
    """A card's identity: its normalised question (the whole text for a cloze)."""
    body = [ln for ln in lines if _SR.sub("", ln).strip() or not _SR.search(ln)]
    if kind in (SINGLE, SINGLE_REVERSED):
        sep = settings.single_line if kind == SINGLE else settings.single_line_reversed
        return _normalise(body[0].split(sep, 1)[0] if body else "")
    if kind in (MULTI, MULTI_REVERSED):
        sep = settings.multi_line if kind == MULTI else settings.multi_line_reversed
        cut = next((n for n, ln in enumerate(body) if ln.strip() == sep), len(body))
        return _normalise("\n".join(body[:cut]))
    return _normalise("\n".join(body))


def _has_history(comment: str) -> bool:
    """False for a comment of only "new card" entries (the plugin's 2000-01-01 dummy
    date): nothing was earned, nothing to retire."""
    entries = [e for e in comment[len("<!--SR:"):-len("-->")].split("!") if e.strip()]
    return any(not e.strip().startswith(DUMMY_DUE) for e in entries)


def _family(kind: str) -> str:
    return "cloze" if kind == CLOZE else "qa"


@dataclass(eq=False)
class Scheduled:
    """A card that had a schedule: identity, comment, layout and its lines as written."""

    family: str
    question: str
    comment: str
    same_line: bool
    lines: list[str] = field(default_factory=list)
    whole: str = ""  # the whole card, normalised: the same text is the same card


# -- the retired section -------------------------------------------------------------------

def _fence_for(lines: list[str]) -> str:
    longest = max((len(m.group(0)) for ln in lines if (m := re.match(r"`+", ln))), default=0)
    return "`" * max(4, longest + 1)


def _retired_section(entries: list[Scheduled]) -> list[str]:
    inner: list[str] = []
    for entry in entries:
        inner += [*entry.lines, ""]
    inner = inner[:-1]
    fence = _fence_for(inner)
    return [RETIRED_HEADING, "", RETIRED_INTRO, "", f"{fence}text", *inner, fence]


def _cut_retired(lines: list[str], settings: SrSettings) -> tuple[list[str], list[str]]:
    """(body without the retired section, the lines inside its code block).

    Only a section vaultd wrote counts: the heading, then its intro sentence, then a code
    block holding at least one scheduled card. Anything else under such a heading is the
    user's text and stays where it is."""
    for start in reversed([n for n, ln in enumerate(lines) if ln.strip() == RETIRED_HEADING]):
        n = start + 1
        while n < len(lines) and not lines[n].strip():
            n += 1
        if n >= len(lines) or lines[n].strip() != RETIRED_INTRO:
            continue
        n += 1
        while n < len(lines) and not lines[n].strip():
            n += 1
        fence = re.match(r"`{3,}", lines[n]) if n < len(lines) else None
        if fence is None:
            continue
        end = n + 1
        while end < len(lines) and lines[end].strip() != fence.group(0):
            end += 1
        inner = lines[n + 1:end]
        if not any(_SR.search(ln) for ln in inner) or not find_cards(inner, settings):
            continue
        lo = start - 1 if start > 0 and not lines[start - 1].strip() else start
        return lines[:lo] + lines[end + 1:], inner
    return lines, []


# -- take and put --------------------------------------------------------------------------

class SrSchedule:
    """The schedules of one assessment's cards, taken out of its text to be put back."""

    def __init__(self, settings: SrSettings | None = None) -> None:
        self.settings = settings or SrSettings()
        self.live: list[Scheduled] = []
        self.retired: list[Scheduled] = []
        self.kept = self.restored = self.newly_retired = 0

    def __bool__(self) -> bool:
        return bool(self.live or self.retired)

    def _scheduled(self, lines: list[str]) -> list[tuple[Span, Scheduled]]:
        found = []
        for span in find_cards(lines, self.settings):
            card = lines[span.first:span.last + 1]
            where = next((n for n, ln in enumerate(card) if _SR.search(ln)), None)
            if where is None:
                continue
            comment = _SR.search(card[where]).group(0)  # type: ignore[union-attr]
            same_line = bool(_SR.sub("", card[where]).strip())
            found.append((span, Scheduled(
                _family(span.kind), question_of(span.kind, card, self.settings), comment,
                same_line, list(card), _normalise("\n".join(card)))))
        return found

    @classmethod
    def take(cls, body: str, settings: SrSettings | None = None) -> tuple[str, SrSchedule]:
        """The body without its cards' SR comments and retired section, and the schedules."""
        sched = cls(settings)
        lines, inner = _cut_retired(body.split("\n"), sched.settings)
        sched.retired = [s for _, s in sched._scheduled(inner)]
        found = sched._scheduled(lines)
        sched.live = [s for _, s in found]
        drop: set[int] = set()
        for span, _ in found:
            for n in range(span.first, span.last + 1):
                if not _SR.search(lines[n]):
                    continue
                if _SR.sub("", lines[n]).strip():
                    lines[n] = _SR_WITH_SPACE.sub("", lines[n])
                else:
                    drop.add(n)
        return "\n".join(ln for n, ln in enumerate(lines) if n not in drop), sched

    def _match(self, new: list[tuple[str, str, str]]) -> dict[int, Scheduled]:
        """{index of a new card: the old card whose schedule it gets}: the same whole
        text first (even where the plugin reads the card as another kind), then the same
        question, then an unambiguous close question."""
        pools = [list(self.live), list(self.retired)]
        chosen: dict[int, Scheduled] = {}
        for same in (lambda s, n: s.whole == n[2],
                     lambda s, n: (s.family, s.question) == n[:2]):
            for idx, card in enumerate(new):
                if idx in chosen:
                    continue
                for pool in pools:
                    hit = next((s for s in pool if same(s, card)), None)
                    if hit is not None:
                        pool.remove(hit)
                        chosen[idx] = hit
                        break
        left = [s for pool in pools for s in pool]
        open_new = [i for i in range(len(new)) if i not in chosen]
        scores: dict[tuple[int, int], float] = {}
        for i in open_new:
            for k, old in enumerate(left):
                if old.family != new[i][0]:
                    continue
                sm = SequenceMatcher(None, new[i][1], old.question, autojunk=False)
                if sm.real_quick_ratio() >= FUZZY_THRESHOLD - FUZZY_MARGIN and \
                        sm.quick_ratio() >= FUZZY_THRESHOLD - FUZZY_MARGIN:
                    scores[(i, k)] = sm.ratio()  # (cheap upper bounds first)
        for (i, k), score in sorted(scores.items(), key=lambda item: -item[1]):
            if score < FUZZY_THRESHOLD or i in chosen or left[k] in chosen.values():
                continue
            rivals = [v for (a, b), v in scores.items() if (a == i) != (b == k)
                      and a not in chosen and left[b] not in chosen.values()]
            if any(v > score - FUZZY_MARGIN for v in rivals):
                continue  # another card is about as close: attaching could be wrong
            chosen[i] = left[k]
        return chosen

    def put(self, body: str) -> str:
        """``body`` with each card's old schedule back in its layout, and the cards that
        are gone (with a schedule) in the retired section at the end."""
        if not self:
            return body
        lines = body.split("\n")
        spans = find_cards(lines, self.settings)
        new = [(_family(s.kind), question_of(s.kind, lines[s.first:s.last + 1], self.settings),
                _normalise("\n".join(lines[s.first:s.last + 1]))) for s in spans]
        chosen = self._match(new)
        for idx in sorted(chosen, reverse=True):
            span, old = spans[idx], chosen[idx]
            if any(_SR.search(ln) for ln in lines[span.first:span.last + 1]):
                continue  # the card already carries a schedule of its own
            last = lines[span.last]
            if old.same_line and not last.startswith(("```", "~~~")):
                m = _BLOCK_ID.search(last)
                lines[span.last] = (f"{last[:m.start()].rstrip()} {old.comment} {m.group(1)}"
                                    if m else f"{last.rstrip()} {old.comment}")
            else:
                lines.insert(span.last + 1, old.comment)
        used = list(chosen.values())
        self.restored = sum(1 for s in self.retired if s in used)
        self.kept = len(used) - self.restored
        gone = [s for s in self.retired if s not in used]
        fresh = [s for s in self.live if s not in used and _has_history(s.comment)]
        self.newly_retired = len(fresh)
        if not gone and not fresh:
            return "\n".join(lines)
        section = ["", *_retired_section(gone + fresh)]
        if lines and lines[-1] == "":  # before the final newline
            lines[-1:] = [*section, ""]
        else:
            lines += section
        return "\n".join(lines)
