"""Topic notes: one maintained note per topic cluster of study notes (pure, no I/O).

This module owns three things:

* **Reading** a study note into :class:`StudyNote` (its concepts and every timestamped
  sentence, with the heading a link can point at): :func:`read_study_note`.
* **Identity**: :func:`match_topics` pairs the graph's new clusters with the topics of
  the last refresh by member overlap. A topic keeps its id (and with it its note) while
  it shares members with a cluster; a split leaves the id with the part that shares the
  most; a cluster that shares nothing with any old topic is a new topic. So a topic is
  renamed only when its overlap is lost.
* **Rendering** the offline, extractive note: :func:`render_topic_note`. Shared concepts
  are the key ideas; for each, the best sentence per video (a ``Key terms`` definition
  first, else the earliest mention) with a link to the heading it sits under and the
  moment (``m:ss``; a YouTube URL jumps to it). The watch order puts the notes whose
  concepts the others build on first. The text is a pure function of the member notes,
  so an unchanged topic renders byte-identical text and is not rewritten.

Every title, concept and sentence is untrusted: it is escaped as inert markdown and
Mermaid labels get entity codes (the helpers of :mod:`vault_tools.graph_note`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from vault_tools import frontmatter
from vault_tools.graph_note import md_text, mermaid_label
from vault_tools.sanitize import sanitize_markdown

TOPIC_TYPE = "topic-note"
LIMITS = {"ideas": 8, "singles": 6, "questions": 6, "mermaid_concepts": 10}
# A moment as study notes write it: `1:15` (local files) or [1:15](https://youtu.be/…)
_STAMP = re.compile(r"`(\d{1,3}:\d{2}(?::\d{2})?)`|\[(\d{1,3}:\d{2}(?::\d{2})?)\]\([^)\s]*\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_UNLINKABLE = re.compile(r"[\[\]#|^:%\\]")
_PREFIX = re.compile(r"^\s*(?:>\s*)*(?:[-*+]\s+|\d+\.\s+)?")
_TERM_PREFIX = re.compile(r"^\*\*[^*]+\*\*\s*[—–:-]\s*")
# The last section never changes on vaultd's side, so what you write there never meets a
# change of ours in the merge (edits elsewhere merge too, unless both sides changed the
# same lines).
YOUR_NOTES_HINT = "_Your space: vaultd never changes this section._"
_YOUTUBE_ID = re.compile(r"^[A-Za-z0-9_-]{11}$")


@dataclass(frozen=True)
class Moment:
    """One timestamped sentence of a study note."""

    text: str  # the sentence, markup removed
    stamp: str  # "m:ss" as the note shows it
    seconds: int
    heading: str  # the nearest heading a wikilink can point at ("" for the note's top)
    is_definition: bool = False  # under "Key terms"


@dataclass
class StudyNote:
    path: str  # vault-relative, with .md
    title: str
    source: str
    channel: str
    video_id: str
    created: str
    concepts: list[str]  # as written in the note, deduplicated by case
    moments: list[Moment] = field(default_factory=list)

    @property
    def target(self) -> str:
        return self.path[:-3] if self.path.lower().endswith(".md") else self.path


def seconds_of(stamp: str) -> int:
    total = 0
    for part in stamp.split(":"):
        total = total * 60 + int(part)
    return total


def _plain_sentence(line: str) -> str:
    text = _PREFIX.sub("", line)
    text = _TERM_PREFIX.sub("", text)
    text = _STAMP.sub("", text)
    text = re.sub(r"\[\[([^\]|]*\|)?([^\]]*)\]\]", r"\2", text)  # [[a|b]] -> b
    text = text.replace("**", "").replace("()", "")
    return " ".join(text.split()).strip(" ·-")


def read_study_note(path: str, text: str) -> StudyNote | None:
    """A study note's facts, or None when ``text`` is not a vaultd study note."""
    data, body = frontmatter.read(text)
    if data.get("type") != "study-note":
        return None

    def s(key: str) -> str:
        value = data.get(key)
        return "" if value is None else " ".join(str(value).split())

    seen: set[str] = set()
    concepts: list[str] = []
    raw = data.get("concepts") or data.get("key_terms") or []
    for c in raw if isinstance(raw, list) else []:
        name = " ".join(str(c).split())
        if name and name.casefold() not in seen:
            seen.add(name.casefold())
            concepts.append(name)
    note = StudyNote(path, s("title") or path.rsplit("/", 1)[-1][:-3], s("source"),
                     s("channel"), s("video_id"), s("created"), concepts)
    heading, linkable, in_terms, in_fence = "", "", False, False
    for line in body.split("\n"):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        m = _HEADING.match(line)
        if m and not in_fence:
            heading = m.group(2)
            in_terms = heading.casefold() in ("key terms", "glossary", "concepts")
            if not _UNLINKABLE.search(heading):
                linkable = heading
            continue
        stamp = _STAMP.search(line)
        if stamp and not in_fence:
            sentence = _plain_sentence(line)
            if len(sentence) >= 12:
                when = stamp.group(1) or stamp.group(2)
                note.moments.append(Moment(sentence, when, seconds_of(when), linkable,
                                           in_terms))
    return note


# --------------------------------------------------------------------------- synthesis


@dataclass(frozen=True)
class Synthesis:
    """What a model adds to a topic note (written from the study notes): an overview,
    where the videos agree, differ or contradict each other, open questions."""

    overview: str
    agree_differ: tuple[str, ...]
    questions: tuple[str, ...]


_WIKI = re.compile(r"\[\[([^\]|]*)(?:\|([^\]]*))?\]\]")
_MARKERS = re.compile(r"%%.*?%%|<!--.*?-->", re.S)


def _model_line(text: object, width: int = 600) -> str:
    """Model text as one safe line: no executable content (the sanitizer), no
    wikilinks (a topic note links only notes that exist: they become plain text), no
    comments or region markers, no headings; markup kept otherwise."""
    line = sanitize_markdown(str(text))
    line = _WIKI.sub(lambda m: m.group(2) or m.group(1), line)
    line = _MARKERS.sub(" ", line)
    line = " ".join(line.split()).lstrip("#>-*+ ").strip()
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


def parse_synthesis(reply: str) -> Synthesis:
    """The model's JSON reply (``{"overview": str, "agree_differ": [str],
    "open_questions": [str]}``, maybe inside a ```json fence); ValueError if unusable."""
    text = reply.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("overview"), str):
        raise ValueError("no overview in the reply")
    lists = []
    for key in ("agree_differ", "open_questions"):
        items = data.get(key) or []
        if not isinstance(items, list):
            raise ValueError(f"{key} is not a list")
        lists.append(tuple(x for x in (_model_line(i, 400) for i in items[:8]) if x))
    overview = _model_line(data["overview"], 1200)
    if not overview:
        raise ValueError("empty overview")
    return Synthesis(overview, lists[0], lists[1])


# --------------------------------------------------------------------------- identity


@dataclass
class TopicRecord:
    """A topic as the last refresh left it."""

    id: str
    name: str
    members: list[str]


def match_topics(old: Sequence[TopicRecord], clusters: Sequence[Sequence[str]]
                 ) -> list[tuple[str | None, list[str]]]:
    """(old topic id or None, members) per cluster, in the clusters' order.

    Greedy on overlap, largest first (ties: the bigger cluster, then the older id):
    each old topic goes to at most one cluster and each cluster takes at most one id.
    """
    pairs = []
    for i, members in enumerate(clusters):
        mset = set(members)
        for rec in old:
            shared = len(mset & set(rec.members))
            if shared:
                pairs.append((-shared, -len(mset), rec.id, i))
    pairs.sort()
    taken: dict[int, str] = {}
    used: set[str] = set()
    for _, _, rid, i in pairs:
        if i not in taken and rid not in used:
            taken[i] = rid
            used.add(rid)
    return [(taken.get(i), list(m)) for i, m in enumerate(clusters)]


def eligible(notes: Sequence[StudyNote]) -> bool:
    """A topic needs at least two study notes from different sources."""
    return len({n.source or n.path for n in notes}) >= 2


# --------------------------------------------------------------------------- analysis


def _mentions(text: str, concept: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(concept)}(?!\w)", text, re.IGNORECASE) is not None


def concept_table(notes: Sequence[StudyNote]) -> dict[str, list[StudyNote]]:
    """Casefolded concept -> the notes that list it (in the notes' order)."""
    table: dict[str, list[StudyNote]] = {}
    for n in notes:
        for c in n.concepts:
            table.setdefault(c.casefold(), []).append(n)
    return table


def best_moment(note: StudyNote, concept: str) -> Moment | None:
    """The sentence that best teaches ``concept`` in ``note``: its definition under Key
    terms, else the earliest sentence that names it."""
    hits = [m for m in note.moments if _mentions(m.text, concept)]
    if not hits:
        return None
    defs = [m for m in hits if m.is_definition]
    return defs[0] if defs else min(hits, key=lambda m: m.seconds)


def topic_name(notes: Sequence[StudyNote]) -> str:
    """The concept most members share (ties: the one listed earliest), else the first
    note's title."""
    table = concept_table(notes)
    display = {c.casefold(): c for n in reversed(notes) for c in n.concepts}
    order = {c.casefold(): (i, j) for j, n in reversed(list(enumerate(notes)))
             for i, c in reversed(list(enumerate(n.concepts)))}
    if not table:
        return notes[0].title
    best = min(table, key=lambda c: (-len(table[c]), order[c]))
    name = display[best]
    return name[:1].upper() + name[1:]


def watch_order(notes: Sequence[StudyNote]) -> list[StudyNote]:
    """Prerequisites first: a note whose concepts the other notes also use is
    foundational (high share of shared concepts); the most specialised comes last.
    Ties: created, then path."""
    table = concept_table(notes)

    def share(n: StudyNote) -> float:
        if not n.concepts:
            return 0.0
        return sum(len(table[c.casefold()]) - 1 for c in n.concepts) / len(n.concepts)

    return sorted(notes, key=lambda n: (-round(share(n), 9), n.created, n.path))


def timestamp_url(note: StudyNote, moment: Moment) -> str | None:
    """A URL that opens the video at the moment (YouTube only; local files have none)."""
    vid = note.video_id
    if vid and _YOUTUBE_ID.match(vid):
        return f"https://youtu.be/{vid}?t={moment.seconds}"  # as the study notes link
    return None


# --------------------------------------------------------------------------- rendering


_LABEL = str.maketrans({"[": "(", "]": ")", "|": "/", "\\": "/", "`": "'", "<": "‹",
                        ">": "›", "$": "＄", "%": "％", "#": "＃", "^": "ˆ"})


def _link(note: StudyNote, heading: str = "") -> str:
    """A wikilink to ``note`` (at ``heading``) labelled with its title; a path no
    wikilink can hold is shown as plain text."""
    label = " ".join(note.title.split()).translate(_LABEL) or note.target
    if re.search(r"[\[\]|^#\\\n]", note.target):
        return md_text(label)
    return f"[[{note.target}{'#' + heading if heading else ''}|{label}]]"


def moment_link(note: StudyNote, moment: Moment) -> str:
    """``[[note#heading|title]] at `m:ss` `` plus a jump link when the video has one."""
    out = f"{_link(note, moment.heading)} at `{moment.stamp}`"
    url = timestamp_url(note, moment)
    if url:
        out += f" ([▶ {moment.stamp}]({url}))"
    return out


def render_topic_note(topic_id: str, name: str, notes: Sequence[StudyNote],
                      synthesis: Synthesis | None = None) -> str:
    """The full text of a topic note (frontmatter + body): extractive, with a model's
    ``synthesis`` (overview, agreements and differences, open questions) when given.
    Key ideas, moments, order and map stay extractive either way: their links are
    built from the notes themselves, so they point only at notes and moments that
    exist."""
    notes = sorted(notes, key=lambda n: n.path)
    table = concept_table(notes)
    display = {c.casefold(): c for n in reversed(notes) for c in n.concepts}
    shared = sorted((c for c in table if len(table[c]) >= 2),
                    key=lambda c: (-len(table[c]), c))
    singles = sorted((c for c in table if len(table[c]) == 1), key=lambda c: c)
    ideas = shared[: LIMITS["ideas"]] or singles[: LIMITS["ideas"]]
    channels = sorted({n.channel for n in notes if n.channel})
    fm = {"type": TOPIC_TYPE, "topic": name, "topic_id": topic_id,
          "videos": len(notes), "synthesis": "model" if synthesis else "extractive",
          "tags": ["topic"]}
    out = [f"# {md_text(name)}", "",
           "> [!info] Maintained by vaultd",
           "> Refreshed when the videos in this topic change. Your edits stay; where "
           "you and vaultd changed the same lines, yours are kept and vaultd's go to a "
           "conflict copy. Write freely under *Your notes*.", "",
           "## Overview", ""]
    src = f" from {len(channels)} channel(s)" if channels else ""
    overview = f"{len(notes)} videos{src} teach this topic."
    if shared:
        overview += " They share " + ", ".join(md_text(display[c], 40)
                                                for c in shared[:5]) + "."
    if synthesis is not None:
        overview = synthesis.overview
    out += [overview, ""]
    out += [f"- {_link(n)}" + (f" · {md_text(n.channel, 40)}" if n.channel else "")
            for n in notes]
    out += ["", "## Key ideas", ""]
    for c in ideas:
        out.append(f"### {md_text(display[c], 60)}")
        out.append("")
        for n in table[c]:
            m = best_moment(n, display[c])
            if m is None:
                out.append(f"- {_link(n)}: lists it as a key concept")
            else:
                out.append(f"- {moment_link(n, m)}: {md_text(m.text, 240)}")
        out.append("")
    if not ideas:
        out += ["_No shared concepts yet._", ""]
    out += ["## Where the videos agree and differ", ""]
    if synthesis is not None:
        out += [f"- {line}" for line in synthesis.agree_differ]
    agree = [c for c in shared if len(table[c]) == len(notes)]
    if agree:
        out.append("- All videos cover: " + ", ".join(md_text(display[c], 40)
                                                      for c in agree[:8]) + ".")
    for c in shared:
        if c not in agree and c in ideas:
            who = ", ".join(_link(n) for n in table[c])
            out.append(f"- Only {who} cover {md_text(display[c], 40)}.")
    for n in notes:
        own = [display[c] for c in singles if table[c][0] is n][: LIMITS["singles"]]
        if own:
            out.append(f"- Only {_link(n)} goes into: "
                       + ", ".join(md_text(c, 40) for c in own) + ".")
    out += ["- Compare the definitions above side by side: where two sentences for the "
            "same idea disagree, that is the place to check a third source.", ""]
    out += ["## Order to watch", "",
            "Foundations first (the videos whose concepts the others build on):", ""]
    out += [f"{i}. {_link(n)}" for i, n in enumerate(watch_order(notes), 1)]
    out += ["", "## Open questions", ""]
    questions = []
    for c in singles:
        if shared:
            other = shared[len(questions) % len(shared)]
            questions.append(f"- How does {md_text(display[c], 40)} ({_link(table[c][0])}) "
                             f"relate to {md_text(display[other], 40)}?")
        if len(questions) >= LIMITS["questions"]:
            break
    for n in notes:
        for m in n.moments:
            if m.text.endswith("?") and len(questions) < LIMITS["questions"] + 3:
                questions.append(f"- {md_text(m.text, 160)} ({moment_link(n, m)})")
                break
    if synthesis is not None and synthesis.questions:
        questions = [f"- {q}" for q in synthesis.questions]
    out += questions or ["_None yet._"]
    out += ["", "## Map", ""] + mermaid_map(notes, table, display, shared or ideas)
    out += ["", "## Your notes", "", YOUR_NOTES_HINT]
    return frontmatter.compose(fm, "\n".join(out) + "\n")


def mermaid_map(notes: Sequence[StudyNote], table: dict[str, list[StudyNote]],
                display: dict[str, str], concepts: Sequence[str]) -> list[str]:
    """``graph LR``: videos on one side, the concepts they share on the other."""
    lines = ["```mermaid", "graph LR"]
    ids = {n.path: f"v{i}" for i, n in enumerate(notes, 1)}
    for n in notes:
        lines.append(f"  {ids[n.path]}[{mermaid_label(n.title)}]")
    for j, c in enumerate(concepts[: LIMITS["mermaid_concepts"]], 1):
        lines.append(f"  c{j}(({mermaid_label(display[c], 30)}))")
        lines += [f"  {ids[n.path]} --> c{j}" for n in table[c]]
    lines.append("```")
    return lines
