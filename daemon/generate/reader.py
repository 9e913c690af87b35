"""The reply reader: any model's reply to a task → the content vaultd writes.

One reader for every backend. It tries, in order:

1. **JSON** per the task's schema (:mod:`.tasks`), found even inside a code fence or
   after a preamble; a JSON reply cut short is closed (open strings, arrays and objects)
   before it is read;
2. the **tagged text format** of the ``*-text.md`` prompts (models without JSON output,
   and vault prompt overrides written for it);
3. **salvage**: a reply that fits neither but holds usable content — a note with a TL;DR
   and ``##`` sections, an assessment with cited questions, JSON with the wrong keys — is
   used, with a warning, instead of paying for the call again.

Whatever the format, the content rules (timestamps inside the video, links only to known
notes, cited answers, flashcard syntax) are applied once, by :mod:`.content`'s
``build_note``/``build_assessment``. Only a reply with nothing usable raises
:class:`MalformedReplyError`; the caller then asks once more.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from daemon.errors import MalformedReplyError
from vault_tools.models import SourceMeta

from .base import RelatedNote
from .content import (
    KINDS,
    Note,
    Questions,
    build_assessment,
    build_note,
    has_timestamp,
    parse_note,
    tagged_assessment,
)
from .tasks import ASSESSMENT_SCHEMA, NOTES_SCHEMA

T = TypeVar("T")


@dataclass
class Read(Generic[T]):
    value: T
    how: str  # "json" | "text" | "salvaged"

    @property
    def salvaged(self) -> bool:
        return self.how == "salvaged"


# -- JSON ---------------------------------------------------------------------------

def close_json(text: str) -> str:
    """``text`` with the strings, arrays and objects it left open closed (a reply cut
    at the output limit), so what was written can still be read."""
    stack: list[str] = []
    in_str = escaped = False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    out = text[:-1] if escaped else text
    if in_str:
        out += '"'
    out = re.sub(r"[,:]\s*$", "", out.rstrip())
    return out + "".join(reversed(stack))


def find_json(text: str) -> tuple[Any, bool] | None:
    """(the JSON object in ``text``, whether it had to be repaired), or None."""
    start = text.find("{")
    if start < 0:
        return None
    body = text[start:]
    end = body.rfind("}")
    for candidate, repaired in ((body[: end + 1], False), (body, True)):
        if not candidate:
            continue
        try:
            data = json.loads(close_json(candidate) if repaired else candidate, strict=False)
        except ValueError:
            continue
        if isinstance(data, dict):
            inner = data.get("reply")  # the shared wrapper of tasks.SHARED_SCHEMA
            if len(data) == 1 and isinstance(inner, dict):
                data = inner
            return data, repaired
    return None


def conforms(value: Any, schema: dict[str, Any]) -> bool:
    """Whether ``value`` fits ``schema`` (the subset :mod:`.tasks` uses)."""
    kind = schema.get("type")
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        return isinstance(value, list) and all(conforms(v, schema["items"]) for v in value)
    if kind == "object":
        props = schema["properties"]
        return (isinstance(value, dict) and set(value) <= set(props)
                and all(k in value for k in schema.get("required", ()))
                and all(conforms(value[k], props[k]) for k in value))
    return True


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n\n".join(_text(v) for v in value)
    if isinstance(value, dict):  # {"heading": ..., "content": ...} and the like
        parts = [str(v) for v in value.values() if isinstance(v, str | list)]
        head = value.get("heading") or value.get("title")
        if head and parts:
            rest = [_text(v) for k, v in value.items() if k not in ("heading", "title")]
            return f"## {head}\n" + "\n".join(rest)
        return "\n".join(_text(v) for v in value.values())
    return "" if value is None else str(value)


def _strs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list):
        return [str(v).strip() for v in value if isinstance(v, str | int | float)]
    return []


def _first(data: dict[str, Any], *keys: str) -> Any:
    lowered = {str(k).lower().replace(" ", "_"): v for k, v in data.items()}
    for key in keys:
        if key in lowered and lowered[key]:
            return lowered[key]
    return None


# -- notes --------------------------------------------------------------------------

_TLDR = re.compile(r"^\s*(?:>\s*)?(?:\[!tldr\]|#+\s*)?\W*tl;?dr\W*?(?:\s*[:\-–]\s*|\s*$)(.*)$",
                   re.I | re.M)


def _salvage_note(text: str) -> tuple[str, str] | None:
    """(TL;DR, body) of a Markdown note that ignored the format, or None."""
    m = _TLDR.search(text)
    if not m:
        return None
    tldr = m.group(1).strip().strip("*").strip()
    rest = text[m.end():]
    if not tldr:  # the TL;DR is the paragraph under the marker
        para = re.match(r"\s*((?:(?!\s*#)[^\n]*\S[^\n]*\n?)+)", rest)
        tldr = re.sub(r"(?m)^>\s?", "", para.group(1)).strip() if para else ""
    first = re.search(r"(?m)^##\s+\S", rest)
    if not tldr or not first:
        return None
    return tldr, rest[first.start():]


def read_note(text: str, meta: SourceMeta, duration: float,
              related: Sequence[RelatedNote]) -> Read[Note]:
    found = find_json(text)
    if found is not None:
        data, repaired = found
        tldr = _text(_first(data, "tldr", "tl;dr", "summary"))
        body = _text(_first(data, "note", "body", "content", "markdown", "sections"))
        if tldr.strip() and body.strip():
            try:
                note = build_note(tldr, body, meta, duration, related,
                                  tags=_strs(data.get("tags")),
                                  aliases=_strs(data.get("aliases")),
                                  key_terms=_strs(_first(data, "key_terms", "keyterms")))
            except MalformedReplyError:
                pass
            else:
                exact = not repaired and conforms(data, NOTES_SCHEMA)
                return Read(note, "json" if exact else "salvaged")
    try:
        return Read(parse_note(text, meta, duration, related), "text")
    except MalformedReplyError:
        pass
    salvaged = _salvage_note(text)
    if salvaged is not None:
        try:
            return Read(build_note(*salvaged, meta, duration, related), "salvaged")
        except MalformedReplyError:
            pass
    raise MalformedReplyError("the study note had no TL;DR and cited sections in any "
                              "readable form")


# -- assessment ---------------------------------------------------------------------

def _pairs(items: Any) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            ask = _first(item, "question", "ask", "q", "prompt")
            answer = _first(item, "answer", "a", "model_answer", "response")
            if isinstance(ask, str) and isinstance(answer, str):
                out.append((ask, answer))
    return out


def _cards(items: Any) -> list[str]:
    out: list[str] = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            front = _first(item, "front", "question", "q")
            back = _first(item, "back", "answer", "a")
            if isinstance(front, str) and isinstance(back, str):
                front, back = " ".join(front.split()), " ".join(back.split())
                out.append(f"{front.replace('::', ':')}::{back}")
    return out


_KIND_WORDS = {"gap": ("gap",), "application": ("appl",), "further": ("further", "beyond"),
               "synthesis": ("synth", "connect")}
_MD_QUESTION = re.compile(r"^\s*(?:\*\*)?(?:\d+[.)]|[-*]|Q\d*[:.)])\s*(?:\*\*)?\s*(.+?\?)"
                          r"\s*(?:\*\*)?\s*$")


def _salvage_questions(text: str) -> tuple[Questions, list[str]]:
    """Questions (by the heading above them) and ``::`` cards from free Markdown."""
    kind = "gap"
    found: dict[str, list[tuple[str, str]]] = {}
    cards: list[str] = []
    ask: str | None = None
    answer: list[str] = []

    def flush() -> None:
        if ask and answer:
            found.setdefault(kind, []).append((ask, " ".join(answer)))

    for line in text.splitlines():
        if re.match(r"^\s*#", line):
            flush()
            ask, answer = None, []
            lower = line.lower()
            kind = next((k for k, words in _KIND_WORDS.items()
                         if any(w in lower for w in words)), kind)
        elif "::" in line and not line.lstrip().startswith(">"):
            cards.append(line.strip().lstrip("-* ").strip())
        elif m := _MD_QUESTION.match(line):
            flush()
            ask, answer = m.group(1).strip("* "), []
        elif ask and line.strip():
            answer.append(re.sub(r"^\s*(?:>\s*)*(?:\*\*)?(?:answer|a)\s*[:.](?:\*\*)?\s*", "",
                                 line.strip(), flags=re.I).lstrip("> "))
    flush()
    return [(k, "", qs) for k, qs in found.items()], cards


def read_assessment(text: str, meta: SourceMeta, duration: float,
                    related: Sequence[RelatedNote]) -> Read[str]:
    args = (meta, duration, related)
    tries: list[tuple[Questions, list[str], str]] = []  # (sections, cards, how), in order
    found = find_json(text)
    if found is not None:
        data, repaired = found
        holder = _first(data, "questions", "sections")
        source = holder if isinstance(holder, dict) else data
        sections: Questions = [(k, "", _pairs(_first(source, k, f"{k}_questions")))
                               for k in KINDS]
        cards = _cards(_first(data, "flashcards", "cards"))
        exact = not repaired and conforms(data, ASSESSMENT_SCHEMA)
        tries += [(sections, cards, "json" if exact else "salvaged"),
                  (sections, cards, "partial")]
    tagged, tagged_cards = tagged_assessment(text)
    free, free_cards = _salvage_questions(text)
    tries += [(tagged, tagged_cards, "text"), (tagged, tagged_cards, "partial"),
              (free, free_cards, "partial")]
    for sections, cards, how in tries:
        if not sections:
            continue
        try:
            value = build_assessment(sections, cards, *args, complete=how != "partial")
        except MalformedReplyError:
            continue
        return Read(value, "salvaged" if how == "partial" else how)
    raise MalformedReplyError("the assessment had no cited questions in any readable form")


def read_chunk(text: str, part: int) -> Read[str]:
    """A part's notes are Markdown in every mode; they must cite the video."""
    found = find_json(text) if text.lstrip().startswith("{") else None
    if found is not None:  # a model that answered in JSON anyway
        text = _text(found[0])
    if not has_timestamp(text):
        raise MalformedReplyError(f"the notes of part {part} cited no moment")
    return Read(text, "text" if found is None else "salvaged")
