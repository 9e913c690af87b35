"""From the model's reply to note and assessment Markdown we can trust.

Owns the reply formats the prompts ask for (tagged blocks: ``<meta>``, ``<tldr>``,
``<note>``; ``<section kind=...>`` with ``<question>``s, ``<flashcards>``), their
validation, and the rendering into Obsidian Markdown:

* timestamps ``[12:34]`` become clickable links with
  :func:`vault_tools.models.timestamp_link`; a time slightly past the end is clamped to
  the last second, one further out is dropped (the model invented it);
* ``[[links]]`` survive only when they name a title (or alias) from the related notes,
  normalised to ``[[Title|surface text]]``; anything else becomes its plain text, so no
  dangling link ever reaches the vault;
* answers go into folded ``> [!answer]- Answer`` callouts; a question whose answer cites
  no valid moment of the video is dropped; flashcards are kept only in Obsidian Spaced
  Repetition syntax, under ``#flashcards/<slug>``.

``build_note`` and ``build_assessment`` apply these rules to the parts of a reply, whatever
format it came in (JSON per :mod:`.tasks`' schemas, the tagged text format parsed here, or
Markdown salvaged by :mod:`.reader`). A reply that cannot be used raises
:class:`MalformedReplyError`. The writer still sanitises everything afterwards.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from daemon.errors import MalformedReplyError
from vault_tools.models import SourceMeta, timestamp_link

from .base import RelatedNote

CLAMP_SLACK_SECONDS = 5.0
KINDS = ("gap", "application", "further", "synthesis")
DEFAULT_TITLES = {"gap": "Gap check", "application": "Application",
                  "further": "One step further", "synthesis": "Synthesis"}

_TS = re.compile(r"\[(?:(\d{1,2}):)?(\d{1,2}):(\d{2})\](?:\([^)\s]*\))?")
_LINK = re.compile(r"(!?)\[\[([^\[\]|#]*)(#[^\[\]|]*)?(?:\|([^\[\]]*))?\]\]")
_SR_COMMENT = re.compile(r"\s*<!--SR:[^>]*-->")


def _block(reply: str, tag: str) -> str | None:
    m = re.search(rf"<{tag}>\s*(.*?)\s*</{tag}>", reply, re.S)
    return m.group(1) if m else None


@dataclass
class Timestamps:
    """Converts ``[m:ss]`` markers into links, counting what it kept and dropped."""

    meta: SourceMeta
    duration: float
    kept: int = 0
    dropped: int = 0

    def __call__(self, text: str) -> str:
        def replace(m: re.Match[str]) -> str:
            h, mnt, sec = int(m.group(1) or 0), int(m.group(2)), int(m.group(3))
            if sec >= 60 or (m.group(1) and mnt >= 60):
                self.dropped += 1
                return ""
            seconds = float(h * 3600 + mnt * 60 + sec)
            if seconds >= self.duration:
                if seconds > self.duration + CLAMP_SLACK_SECONDS:
                    self.dropped += 1
                    return ""
                seconds = max(float(int(self.duration) - 1), 0.0)
            self.kept += 1
            return timestamp_link(self.meta, seconds)

        out = _TS.sub(replace, text)
        # a dropped marker leaves " ." or double spaces behind
        return re.sub(r"[ \t]+([.,;:)])", r"\1", re.sub(r"[ \t]{2,}", " ", out))


def filter_links(text: str, related: Sequence[RelatedNote]) -> str:
    """Keep ``[[...]]`` only to related notes (as ``[[Title|surface]]``); unlink the rest."""
    known: dict[str, str] = {}
    for note in related:
        for name in (note.title, *note.aliases):
            known.setdefault(name.strip().casefold(), note.title)

    def replace(m: re.Match[str]) -> str:
        embed, target, surface = m.group(1), m.group(2).strip(), m.group(4)
        words = (surface if surface is not None else target).strip() or target
        title = known.get(target.casefold())
        if embed or title is None or not words:
            return words
        return f"[[{title}|{words}]]"

    return _LINK.sub(replace, text)


def has_timestamp(text: str) -> bool:
    return _TS.search(text) is not None


def slugify(text: str, fallback: str = "video") -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:48].rstrip("-") or fallback


def _tag(text: str) -> str | None:
    tag = re.sub(r"[^\w/-]+", "-", text.strip().lstrip("#").lower()).strip("-/")
    return tag if tag and not tag.isdigit() else None


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@dataclass
class Note:
    markdown: str
    tags: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    key_terms: list[str] = field(default_factory=list)


def parse_note(reply: str, meta: SourceMeta, duration: float,
               related: Sequence[RelatedNote]) -> Note:
    """The tagged text format (``<meta>``, ``<tldr>``, ``<note>``) into a :class:`Note`."""
    tldr, body, meta_block = _block(reply, "tldr"), _block(reply, "note"), _block(reply, "meta")
    if not tldr or not body:
        raise MalformedReplyError("the study note lacked its TL;DR or body")
    fields: dict[str, str] = {}
    for line in (meta_block or "").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    return build_note(tldr, body, meta, duration, related, tags=_csv(fields.get("tags", "")),
                      aliases=_csv(fields.get("aliases", "")),
                      key_terms=_csv(fields.get("key_terms", "")))


def build_note(tldr: str, body: str, meta: SourceMeta, duration: float,
               related: Sequence[RelatedNote], *, tags: Sequence[str] = (),
               aliases: Sequence[str] = (), key_terms: Sequence[str] = ()) -> Note:
    """The one place a note's timestamp and link rules are applied, whatever the format
    the model replied in. A body citing no valid moment is unusable."""
    if not tldr.strip() or not body.strip():
        raise MalformedReplyError("the study note lacked its TL;DR or body")
    stamps = Timestamps(meta, duration)
    body_md = stamps(filter_links(body.strip(), related))
    if stamps.kept == 0:
        raise MalformedReplyError("the study note cited no moment of the video")
    tldr_md = stamps(filter_links(tldr.strip(), related))
    callout = "\n".join(["> [!tldr] TL;DR", *(f"> {ln}".rstrip() for ln in tldr_md.splitlines())])
    clean = [t for t in (_tag(x) for x in tags) if t]
    return Note(
        markdown=f"{callout}\n\n{body_md}\n",
        tags=list(dict.fromkeys(clean)),
        aliases=[a.strip() for a in aliases if a.strip()],
        key_terms=[k.strip() for k in key_terms if k.strip()],
    )


_SECTION = re.compile(r'<section\s+kind="([a-z_]+)"(?:\s+title="([^"]*)")?\s*>(.*?)</section>',
                      re.S)
_QUESTION = re.compile(r"<question>\s*<ask>(.*?)</ask>\s*<answer>(.*?)</answer>\s*</question>",
                       re.S)


def _quote(text: str) -> str:
    return "\n".join(f"> {ln}".rstrip() for ln in text.strip().splitlines())


def _flashcards(raw: str, stamps: Timestamps, related: Sequence[RelatedNote]) -> list[str]:
    cards: list[str] = []
    for block in re.split(r"\n\s*\n", _SR_COMMENT.sub("", raw).strip()):
        lines = [ln.rstrip() for ln in block.strip().splitlines() if ln.strip()]
        if not lines:
            continue
        text = "\n".join(lines)
        single = len(lines) == 1 and "::" in lines[0]
        multi = any(ln.strip() in ("?", "??") for ln in lines[1:-1]) if len(lines) >= 3 else False
        cloze = re.search(r"==[^=\n]+==", text) is not None
        if single or multi or cloze:
            cards.append(stamps(filter_links(text, related)))
    return cards


Questions = list[tuple[str, str, list[tuple[str, str]]]]  # (kind, title, [(ask, answer)])


def tagged_assessment(reply: str) -> tuple[Questions, list[str]]:
    """The questions and flashcard blocks of the tagged text format (``<section>``s,
    ``<flashcards>``; a block left open by a cut reply still counts)."""
    sections: Questions = [(kind, title, _QUESTION.findall(inner))
                           for kind, title, inner in _SECTION.findall(reply)]
    block = re.search(r"<flashcards>\s*(.*?)\s*(?:</flashcards>|$)", reply, re.S)
    cards = [b for b in re.split(r"\n\s*\n", block.group(1) if block else "") if b.strip()]
    return sections, cards


def build_assessment(sections: Questions, cards_raw: Sequence[str], meta: SourceMeta,
                     duration: float, related: Sequence[RelatedNote], *,
                     complete: bool = True) -> str:
    """The one place an assessment's rules are applied, whatever the reply format.

    An answer must cite a valid moment of the video (else its question is dropped).
    ``complete`` demands all four kinds and at least one flashcard (a well-formed reply);
    a salvaged reply needs only one usable question, and its empty kinds are left out.
    """
    stamps = Timestamps(meta, duration)
    found: dict[str, tuple[str, list[str]]] = {}
    for kind, title, questions in sections:
        kind = "further" if kind in ("one_step_further", "step_further") else kind
        if kind not in KINDS:
            continue
        rendered: list[str] = []
        for ask, answer in questions:
            before = stamps.kept
            answer_md = stamps(filter_links(answer.strip(), related))
            if stamps.kept == before or not ask.strip():
                continue  # an answer must point at a moment of the video
            ask_md = stamps(filter_links(" ".join(ask.split()), related))
            rendered.append(f"{ask_md}\n\n> [!answer]- Answer\n{_quote(answer_md)}")
        heading = title.strip() or DEFAULT_TITLES[kind]
        old = found.get(kind, (heading, []))
        found[kind] = (old[0], old[1] + rendered)
    missing = [k for k in KINDS if not found.get(k, ("", []))[1]]
    if missing and (complete or len(missing) == len(KINDS)):
        raise MalformedReplyError(
            f"the assessment lacked usable {', '.join(missing)} questions")
    cards = _flashcards("\n\n".join(cards_raw), stamps, related)
    if not cards and complete:
        raise MalformedReplyError("the assessment had no flashcards in a usable syntax")
    out: list[str] = []
    n = 0
    for kind in KINDS:
        heading, questions = found.get(kind, ("", []))
        if not questions:
            continue
        out.append(f"## {heading}\n")
        for q in questions:
            n += 1
            out.append(f"**{n}.** {q}\n")
    if cards:
        deck = slugify(meta.title, fallback=slugify(meta.video_id or "", "video"))
        out.append("## Flashcards\n")
        out.append(f"#flashcards/{deck}\n")
        out.append("\n\n".join(cards) + "\n")
    return "\n".join(out)
