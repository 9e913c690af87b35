"""The offline backend: study notes and assessments without a model or a network.

This module owns turning a transcript into the two markdown bodies (study note and
assessment with flashcards) using only :mod:`daemon.generate.extractive`. Everything it
quotes comes from the transcript, with a timestamp, and is cleaned of anything Obsidian
would execute or interpret (tags, code spans, templates, comments, wikilinks, highlights,
flashcard separators). It is deterministic: the same input gives the same notes.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from daemon.errors import EmptyTranscriptError
from daemon.generate.base import GenerationContext, check_enough_words, min_words
from daemon.generate.extractive import Analysis, KeyTerm, Sentence, content_words
from vault_tools.models import (
    SourceMeta,
    Transcript,
    Usage,
    VideoContent,
    format_timestamp,
    timestamp_link,
)

MODEL = "offline-extractive"

_UNSAFE = re.compile(r"</?[A-Za-z!?%][^<>]*>|<%|%>|<(?=[A-Za-z/!?%])|`+|%%|\{\{|\}\}|\[\[|\]\]"
                     r"|==|!(?=\[)")
_EXAMPLE = re.compile(r"\b(?:for example|for instance|imagine|suppose|such as|say you|picture"
                      r"|think about|consider|in practice|real world)\b", re.I)
_CAUSE = re.compile(r"\b(?:because|therefore|which means|so that|leads? to|causes?|as a result"
                    r"|if|unless|without|depends? on|that is why|this is why)\b", re.I)


@dataclass
class _Section:
    start: float
    end: float
    label: str
    picks: list[int]


class OfflineBackend:
    """Extractive generator: TextRank key sentences, key terms, templated questions."""

    name = "offline"

    def __init__(self, config: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.config = config or {}

    def generate(
        self, transcript: Transcript, meta: SourceMeta, ctx: GenerationContext
    ) -> VideoContent:
        text = transcript.text
        check_enough_words(transcript, ctx.config)
        if len(content_words(text)) < max(1, min_words(ctx.config) // 3):
            raise EmptyTranscriptError(
                "The transcript holds only filler words (like 'um', 'so', 'the'), nothing "
                "to study from."
            )
        analysis = Analysis(transcript.segments)
        end = transcript.end
        vocabulary = analysis.key_terms(40)
        terms = vocabulary[:12]
        title = clean(meta.title) or "Untitled video"
        writer = _Writer(analysis, meta, terms, end)
        note = writer.note(title, _sections(analysis, meta, vocabulary, end))
        assessment = writer.assessment(title)
        tags = ["video-notes"] + [slug(t.term) for t in terms[:5]]
        return VideoContent(
            meta=meta,
            note_markdown=note,
            assessment_markdown=assessment,
            model=MODEL,
            tags=list(dict.fromkeys(t for t in tags if t)),
            key_terms=[clean(t.term) for t in terms[:10]],
            usage=Usage(),
        )


def clean(text: str) -> str:
    """Transcript text made safe to quote: no markup, code, templates, links or SR syntax."""
    text = html.unescape(text)
    previous = None
    while previous != text:  # removing one construct can form another ("<<b>%")
        previous = text
        text = _UNSAFE.sub("", text)
    text = re.sub(r":{2,}", ":", text).replace("$$", "$")
    text = re.sub(r"(?<![\w\\])#(?=[^\W\d_])", r"\\#", text)  # '#word' would become a tag
    return re.sub(r"\s+", " ", text).strip(" :")


def slug(text: str) -> str:
    """Lowercase Obsidian-valid tag part: letters, digits, '-' only, never purely numeric."""
    value = re.sub(r"[^\w]+|_+", "-", clean(text).lower()).strip("-")
    value = re.sub(r"-{2,}", "-", value)
    return value if value and not value.isdigit() else ""


def _length(seconds: float) -> str:
    """A source's length in words: seconds under a minute (a 24 s clip is not "about
    1 minute"), else minutes, else hours and minutes."""
    if seconds < 59.5:
        secs = max(1, round(seconds))
        return f"{secs} second{'s' if secs > 1 else ''}"
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes > 1 else ''}"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h" if not rest else f"{hours} h {rest} min"


def _sections(analysis: Analysis, meta: SourceMeta, terms: Sequence[KeyTerm],
              end: float) -> list[_Section]:
    chapters = sorted((c for c in meta.chapters if 0 <= c.start < end), key=lambda c: c.start)
    if chapters:
        starts = [c.start for c in chapters]
        labels = [clean(c.title) for c in chapters]
        if starts[0] > 0:
            starts.insert(0, 0.0)
            labels.insert(0, "Opening")
    else:
        size = max(150.0, end / 12)
        starts = analysis.boundaries(max(1, round(end / size)), end)
        labels = [""] * len(starts)
    sections: list[_Section] = []
    bounds = starts[1:] + [math.inf]
    for start, stop, label in zip(starts, bounds, labels, strict=True):
        inside = sum(1 for s in analysis.sentences if start <= s.start < stop)
        picks = analysis.top(max(2, min(5, round(inside / 12))), start=start, end=stop)
        if not picks:
            continue
        if not label:
            label = analysis.label(start, stop, terms) or f"Part {len(sections) + 1}"
        sections.append(_Section(start, min(stop, end), label[:1].upper() + label[1:], picks))
    return sections


class _Writer:
    """Renders the note and assessment for one analysed transcript."""

    def __init__(self, analysis: Analysis, meta: SourceMeta, terms: Sequence[KeyTerm],
                 end: float) -> None:
        self.analysis = analysis
        self.meta = meta
        self.terms = list(terms)
        self.end = end
        minutes = end / 60
        self.points = analysis.top(int(min(15, max(5, 4 + minutes / 6))))

    # -- helpers -------------------------------------------------------------------

    def sentence(self, index: int) -> Sentence:
        return self.analysis.sentences[index]

    def quote(self, index: int) -> str:
        text = clean(self.sentence(index).text)
        text = text[:1].upper() + text[1:]
        return text if re.search(r"[.!?…]$", text) else f"{text}…"

    def at(self, index: int) -> str:
        return timestamp_link(self.meta, min(self.sentence(index).start, self.end))

    def cited(self, index: int) -> str:
        return f"{self.quote(index)} ({self.at(index)})"

    def term_for(self, index: int) -> KeyTerm | None:
        """The most specific key term a sentence mentions (phrases before single words)."""
        found = [t for t in self.terms if index in self.analysis.containing(t.term)]
        return max(found, key=lambda t: len(t.term.split()), default=None)

    # -- study note ------------------------------------------------------------------

    def note(self, title: str, sections: Sequence[_Section]) -> str:
        lines = [f"# {title}", ""]
        topics = [clean(t.term) for t in self.terms[:3]]
        about = ", ".join(topics[:-1]) + f" and {topics[-1]}" if len(topics) > 1 else "".join(
            topics)
        lead = f"In about {_length(self.end)}, this talk covers"
        lines.append("> [!summary] TL;DR")
        lines.append(f"> {lead} {about}." if about else f"> {lead} one topic.")
        best = sorted(sorted(self.points, key=lambda i: -self.analysis.scores[i])[:3])
        lines += [f"> - {self.cited(i)}" for i in best]
        lines += ["", "## Key points", ""]
        lines += [f"- {self.at(i)} {self.quote(i)}" for i in self.points]
        lines += ["", "## Sections", ""]
        for section in sections:
            span = f"{format_timestamp(section.start)}–{format_timestamp(section.end)}"
            lines += [f"### {span} · {section.label}", ""]
            lines += [f"- {self.at(i)} {self.quote(i)}" for i in section.picks]
            lines.append("")
        if self.terms:
            lines += ["## Key terms", ""]
            ordered = sorted(self.terms, key=lambda t: (t.explained_in, t.term))
            lines += [f"- **{clean(t.term)}** — {self.cited(t.explained_in)}" for t in ordered]
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    # -- assessment ----------------------------------------------------------------------

    def assessment(self, title: str) -> str:
        lines = [f"# {title} — Assessment", "", "## Questions", ""]
        for number, (kind, question, answer) in enumerate(self.questions(), start=1):
            lines += [f"### {number}. {kind}", "", question, "", "> [!answer]- Answer"]
            lines += [f"> {line}" if line else ">" for line in answer]
            lines.append("")
        lines += ["## Flashcards", "", f"#flashcards/{slug(title) or 'video'}", ""]
        for card in self.flashcards():
            lines += [card, ""]
        return "\n".join(lines).rstrip() + "\n"

    def questions(self) -> list[tuple[str, str, list[str]]]:
        sentences = self.analysis.sentences
        best = sorted(range(len(sentences)), key=lambda i: -self.analysis.scores[i])
        terms = self.terms or [KeyTerm(clean(sentences[best[0]].text.split()[0]), 1, best[0])]
        out: list[tuple[str, str, list[str]]] = []
        for term in sorted(terms[:6], key=lambda t: not t.defined)[:2]:
            others = [i for i in self.analysis.containing(term.term) if i != term.explained_in]
            answer = [self.cited(term.explained_in)]
            if others:
                answer.append(f"It comes back later: {self.cited(max(others, key=self._w))}")
            out.append(("Gap check", f"Explain **{clean(term.term)}** in your own words: what "
                        "is it, and why does it matter in this talk?", answer))
        example = self._find(_EXAMPLE, best) or self.points[0]
        focus = self.term_for(example) or terms[0]
        out.append(("Application", f"The talk illustrates **{clean(focus.term)}** with an "
                    "example. Describe a different situation, outside the talk, where the "
                    "same idea applies, and say what you would expect to happen.",
                    [f"The talk's own example: {self.cited(example)}",
                     *([f"It goes on: {self.cited(example + 1)}"]
                       if example + 1 < len(sentences) else []),
                     "A strong answer keeps the same mechanism but changes the setting, and "
                     "says which part of the idea predicts the outcome."]))
        cause = self._find(_CAUSE, best, exclude={example}) or self.points[-1]
        follow = cause + 1 if cause + 1 < len(sentences) else cause
        out.append(("One step further", f"The talk says: \"{self.quote(cause)}\" "
                    f"({self.at(cause)}). What would you predict if this stopped being true, "
                    "and what question does that open next?",
                    [f"Start from the reason given at {self.at(cause)}; the talk continues: "
                     f"{self.cited(follow)}",
                     "Reverse the cause and trace its effect one step beyond what was said."]))
        out.append(self._synthesis(terms))
        return out

    def _w(self, index: int) -> float:
        return float(self.analysis.scores[index])

    def _find(self, pattern: re.Pattern[str], order: Sequence[int],
              exclude: set[int] | None = None) -> int | None:
        """Best-ranked sentence matching ``pattern``, preferring ones with a key term."""
        fits = [i for i in order if i not in (exclude or set())
                and 8 <= self.sentence(i).words <= 50 and pattern.search(self.sentence(i).text)]
        return next((i for i in fits if self.term_for(i)), fits[0] if fits else None)

    def _synthesis(self, terms: Sequence[KeyTerm]) -> tuple[str, str, list[str]]:
        top = list(terms[:6])
        hits = {t.term: set(self.analysis.containing(t.term)) for t in top}
        pairs = [(len(hits[a.term] & hits[b.term]), a, b) for n, a in enumerate(top)
                 for b in top[n + 1:]
                 if not set(a.term.lower().split()) & set(b.term.lower().split())]
        pairs.sort(key=lambda p: -p[0])
        if pairs:
            shared, first, second = pairs[0]
        else:
            shared, first, second = 0, top[0], top[-1]
        answer = [f"**{clean(first.term)}**: {self.cited(first.explained_in)}"]
        if second is not first:
            answer.append(f"**{clean(second.term)}**: {self.cited(second.explained_in)}")
        if shared:
            link = max(hits[first.term] & hits[second.term], key=self._w)
            answer.append(f"Where the talk ties them together: {self.cited(link)}")
        question = (f"How do **{clean(first.term)}** and **{clean(second.term)}** connect in "
                    "this talk? Explain how one shapes the other, using both ideas.")
        return "Synthesis", question, answer

    # -- flashcards ----------------------------------------------------------------------

    def flashcards(self) -> list[str]:
        cards: list[str] = []
        for term in self.terms[:8]:
            cards.append(f"{clean(term.term)} — what does it mean in this talk?::"
                         f"{self.cited(term.explained_in)}")
        asked: set[tuple[str, float]] = set()
        for index in self.points:
            term = self.term_for(index)
            key = (term.term if term else "", self.sentence(index).start)
            if key in asked or len(asked) >= 4:
                continue
            asked.add(key)
            topic = f"**{clean(term.term)}**" if term else "this part of the talk"
            follow = index + 1 if index + 1 < len(self.analysis.sentences) else None
            answer = [self.cited(index)] + ([self.cited(follow)] if follow else [])
            cards.append("\n".join([f"What does the talk say about {topic} at "
                                    f"{format_timestamp(self.sentence(index).start)}?", "?",
                                    *answer]))
        made = 0
        for index in self.points:
            term = self.term_for(index)
            text = self.quote(index)
            if term is None or made >= 4:
                continue
            pattern = re.compile(rf"(?<!\w)({re.escape(clean(term.term))})(?!\w)", re.I)
            cloze, hits = pattern.subn(r"==\1==", text, count=1)
            if hits:
                cards.append(f"{cloze} ({self.at(index)})")
                made += 1
        return cards
