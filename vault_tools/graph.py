"""The knowledge graph of a vault: notes, tags and concepts, and the links between them.

This module owns the graph's *model*: which nodes and edges exist, how a wikilink target
is resolved to a note, how a note's markdown is read into facts, and persistence as
node-link JSON. It is pure (no threads, no I/O except :meth:`KnowledgeGraph.rebuild`
reading the vault) so the vault writer can update it incrementally per written note, and
``vaultd graph --rebuild`` can recompute it from the vault alone. Both paths go through
the same :meth:`KnowledgeGraph.update_note`, and link resolution depends only on the set
of notes, never on the order they arrived in, so the two graphs are equal.

Node ids: ``note:<vault-relative path>``, ``tag:<casefolded tag>``,
``concept:<casefolded term>`` and ``missing:<normalised link target>`` for wikilinks that
resolve to no note (Obsidian shows those as unresolved links). Edges carry ``kind``:
``link`` (note -> note or note -> missing), ``tag`` and ``concept``. Tag, concept and
missing nodes exist only while some note points at them.

Resolution of a link target (``[[Target]]``, ``[[folder/Target.md#heading|text]]``)
prefers, in order: the full vault path without ``.md``, the file name, the note's title,
then its aliases; ties go to the smallest path. Analysis (PageRank, clusters) lives in
:mod:`vault_tools.graph_note`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

import networkx as nx

from vault_tools import frontmatter
from vault_tools.conflicts import is_conflict_copy
from vault_tools.pathgate import PathGate, PathRefused

FORMAT_VERSION = 1
KINDS = ("study-note", "assessment", "user")
SKIP_DIRS = frozenset({".obsidian", ".trash", ".vaultd"})
GRAPH_NOTE_TYPE = "knowledge-graph"
CONCEPT_KEYS = ("concepts", "key_concepts", "key concepts", "key_terms")
ATTACHMENT_EXTS = frozenset(
    "png jpg jpeg gif bmp svg webp avif pdf mp3 mp4 webm wav ogg m4a flac mov mkv "
    "canvas base excalidraw".split()
)
# Priority of the ways a note can be named by a link: lower wins.
_RANK_PATH, _RANK_NAME, _RANK_TITLE, _RANK_ALIAS = range(4)


@dataclass
class NoteFacts:
    """What one note contributes to the graph, as read from its markdown."""

    path: str
    title: str | None  # None: the title is the file name and follows renames
    kind: str = "user"
    tags: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    concepts: list[str] = field(default_factory=list)
    created: str | None = None


# --------------------------------------------------------------------------- names


def normalize_path(path: str) -> str:
    """Vault-relative POSIX path: backslashes to slashes, no leading ``./`` or ``/``."""
    p = path.replace("\\", "/").strip()
    while p.startswith("./"):
        p = p[2:]
    return p.lstrip("/")


def note_id(path: str) -> str:
    return f"note:{normalize_path(path)}"


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def tag_name(tag: str) -> str:
    """``#Machine-Learning`` -> ``machine-learning`` (Obsidian tags ignore case)."""
    return _fold(tag.strip().lstrip("#")).replace(" ", "-")


def link_key(target: str) -> str:
    """Normalise a wikilink target: drop ``|text``, ``#heading``, ``^block``, ``.md``."""
    t = target.split("|", 1)[0]
    t = re.split(r"[#^]", t, maxsplit=1)[0]
    t = normalize_path(t)
    if t.lower().endswith(".md"):
        t = t[:-3]
    return _fold(t)


def _stem(path: str) -> str:
    name = PurePosixPath(path).name
    return name[:-3] if name.lower().endswith(".md") else name


def _is_attachment(target: str) -> bool:
    base = link_key(target).rsplit("/", 1)[-1]
    return "." in base and base.rsplit(".", 1)[1] in ATTACHMENT_EXTS


def _clean(items: Iterable[str], fold: Any) -> list[str]:
    return sorted({k for k in (fold(str(i)) for i in items if i is not None) if k})


# --------------------------------------------------------------------------- the graph


class KnowledgeGraph:
    """A networkx DiGraph of notes, tags and concepts with order-independent updates."""

    def __init__(self) -> None:
        self.G: nx.DiGraph = nx.DiGraph(format=FORMAT_VERSION)
        self._names: dict[str, dict[str, int]] = {}  # link key -> {note id: rank}
        self._refs: dict[str, set[str]] = {}  # link key -> notes that link to it

    # ----------------------------------------------------------------- updates

    def update_note(
        self,
        path: str,
        *,
        title: str | None,
        tags: Sequence[str],
        links: Sequence[str],
        concepts: Sequence[str],
        created: str | None,
        kind: str,
        aliases: Sequence[str] = (),
    ) -> None:
        """Add or replace one note and all of its outgoing edges (idempotent).

        ``title=None`` means the title is the file name (and follows renames). ``links``
        are raw wikilink targets: titles, aliases or paths, with or without
        ``#heading``/``|text``; attachments (images, PDFs) are ignored. A note of kind
        ``knowledge-graph`` (the graph note itself) is never part of the graph.
        """
        if kind == GRAPH_NOTE_TYPE:
            self.remove_note(path)
            return
        path = normalize_path(path)
        attrs = {
            "type": "note",
            "title": " ".join(title.split()) if title is not None else _stem(path),
            "title_from_name": title is None,
            "kind": kind if kind in KINDS else "user",
            "created": created,
            "aliases": sorted({" ".join(a.split()) for a in aliases if a and a.strip()}),
            "links": _clean((t for t in links if not _is_attachment(t)), link_key),
        }
        self._put(f"note:{path}", attrs, _clean(tags, tag_name), _clean(concepts, _fold))

    def update_from_facts(self, facts: NoteFacts) -> None:
        self.update_note(
            facts.path,
            title=facts.title,
            tags=facts.tags,
            links=facts.links,
            concepts=facts.concepts,
            created=facts.created,
            kind=facts.kind,
            aliases=facts.aliases,
        )

    def remove_note(self, path: str) -> None:
        """Drop a note; links to it become ``missing:`` nodes. Unknown paths are ignored."""
        nid = note_id(path)
        if nid not in self.G:
            return
        old_keys = self._note_keys(nid)
        self._set_refs(nid, self.G.nodes[nid]["links"], [])
        self._set_members(nid, "tag", [])
        self._set_members(nid, "concept", [])
        self._clear_links(nid)
        incoming = set(self.G.predecessors(nid))
        self.G.remove_node(nid)
        self._reindex(nid, old_keys, {})
        self._relink(incoming)

    def rename_note(self, old: str, new: str) -> None:
        """Move a note to a new path, keeping its facts; re-resolves affected links.

        A title taken from the file name changes with it; a frontmatter title stays.
        Unknown ``old`` paths are ignored; an existing note at ``new`` is replaced.
        """
        old_id, new_id = note_id(old), note_id(new)
        if old_id not in self.G or old_id == new_id:
            return
        attrs = dict(self.G.nodes[old_id])
        tags = sorted(v[4:] for v in self.G.successors(old_id) if v.startswith("tag:"))
        concepts = sorted(
            v[8:] for v in self.G.successors(old_id) if v.startswith("concept:")
        )
        self.remove_note(old)
        if attrs["title_from_name"]:
            attrs["title"] = _stem(new_id[5:])
        self._put(new_id, attrs, tags, concepts)

    # ----------------------------------------------------------------- queries

    def notes(self) -> list[str]:
        """Ids of all note nodes, sorted."""
        return sorted(n for n, d in self.G.nodes(data=True) if d.get("type") == "note")

    def has_note(self, path: str) -> bool:
        return note_id(path) in self.G

    def resolve(self, target: str) -> str | None:
        """The note id a link target points at, or None when unresolved."""
        cands = self._names.get(link_key(target))
        if not cands:
            return None
        return min(cands.items(), key=lambda kv: (kv[1], kv[0]))[0]

    def snapshot(self) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
        """Order-free description of the graph (for equality and tests)."""
        nodes = sorted(
            (n, json.dumps(d, sort_keys=True)) for n, d in self.G.nodes(data=True)
        )
        edges = sorted((u, v, d["kind"]) for u, v, d in self.G.edges(data=True))
        return nodes, edges

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KnowledgeGraph):
            return NotImplemented
        return self.snapshot() == other.snapshot()

    __hash__ = None  # type: ignore[assignment]

    # ----------------------------------------------------------------- persistence

    def to_json(self) -> str:
        data = nx.node_link_data(self.G, edges="edges")
        return json.dumps(data, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, s: str) -> KnowledgeGraph:
        data = json.loads(s)
        if data.get("graph", {}).get("format") != FORMAT_VERSION:
            raise ValueError("unsupported knowledge graph format; rebuild it")
        kg = cls()
        kg.G = nx.node_link_graph(data, directed=True, multigraph=False, edges="edges")
        for nid in kg.notes():
            for key, rank in kg._note_keys(nid).items():
                kg._names.setdefault(key, {})[nid] = rank
            kg._set_refs(nid, [], kg.G.nodes[nid]["links"])
        return kg

    @classmethod
    def from_facts(cls, facts: Iterable[NoteFacts]) -> KnowledgeGraph:
        kg = cls()
        for f in sorted(facts, key=lambda f: normalize_path(f.path)):
            kg.update_from_facts(f)
        return kg

    @classmethod
    def rebuild(cls, vault_root: Path, *, exclude: Iterable[str] = ()) -> KnowledgeGraph:
        """Build the graph from the vault's markdown alone (see :func:`iter_vault_notes`)."""
        return cls.from_facts(iter_vault_notes(vault_root, exclude=exclude))

    # ----------------------------------------------------------------- internals

    def _note_keys(self, nid: str) -> dict[str, int]:
        a = self.G.nodes[nid]
        path = nid[5:]
        keys: dict[str, int] = {}
        for key, rank in [
            (link_key(path), _RANK_PATH),
            (_fold(_stem(path)), _RANK_NAME),
            (_fold(a["title"]), _RANK_TITLE),
            *((_fold(al), _RANK_ALIAS) for al in a["aliases"]),
        ]:
            if key and rank < keys.get(key, 99):
                keys[key] = rank
        return keys

    def _reindex(self, nid: str, old: dict[str, int], new: dict[str, int]) -> None:
        changed: set[str] = set()
        for key in old.keys() - new.keys():
            entry = self._names.get(key, {})
            entry.pop(nid, None)
            if not entry:
                self._names.pop(key, None)
            changed.add(key)
        for key, rank in new.items():
            if old.get(key) != rank:
                self._names.setdefault(key, {})[nid] = rank
                changed.add(key)
        sources: set[str] = set()
        for key in changed:
            sources |= self._refs.get(key, set())
        sources.discard(nid)
        self._relink(sources)

    def _put(self, nid: str, attrs: dict[str, Any], tags: list[str], concepts: list[str]) -> None:
        """Store normalised facts for ``nid`` and bring every affected edge up to date."""
        existed = nid in self.G
        old_keys = self._note_keys(nid) if existed else {}
        old_links: list[str] = self.G.nodes[nid]["links"] if existed else []
        self.G.add_node(nid)
        self.G.nodes[nid].clear()
        self.G.nodes[nid].update(attrs)
        self._set_members(nid, "tag", tags)
        self._set_members(nid, "concept", concepts)
        self._set_refs(nid, old_links, attrs["links"])
        self._reindex(nid, old_keys, self._note_keys(nid))
        self._relink({nid})

    def _set_refs(self, nid: str, old: Iterable[str], new: Iterable[str]) -> None:
        new = set(new)
        for key in set(old) - new:
            srcs = self._refs.get(key)
            if srcs is not None:
                srcs.discard(nid)
                if not srcs:
                    del self._refs[key]
        for key in new:
            self._refs.setdefault(key, set()).add(nid)

    def _relink(self, sources: Iterable[str]) -> None:
        for src in sources:
            if src not in self.G:
                continue
            self._clear_links(src)
            for key in self.G.nodes[src]["links"]:
                target = self.resolve(key) or f"missing:{key}"
                if target == src:
                    continue
                if target.startswith("missing:") and target not in self.G:
                    self.G.add_node(target, type="missing", label=key)
                self.G.add_edge(src, target, kind="link")

    def _clear_links(self, src: str) -> None:
        for v in [v for v, d in self.G.adj[src].items() if d["kind"] == "link"]:
            self.G.remove_edge(src, v)
            if v.startswith("missing:") and self.G.in_degree(v) == 0:
                self.G.remove_node(v)

    def _set_members(self, nid: str, kind: str, names: list[str]) -> None:
        wanted = {f"{kind}:{n}" for n in names}
        for v in [v for v, d in self.G.adj[nid].items() if d["kind"] == kind]:
            if v not in wanted:
                self.G.remove_edge(nid, v)
                if self.G.in_degree(v) == 0:
                    self.G.remove_node(v)
        for v in sorted(wanted):
            if v not in self.G:
                self.G.add_node(v, type=kind, label=v.split(":", 1)[1])
            self.G.add_edge(nid, v, kind=kind)


# --------------------------------------------------------------------------- markdown

_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
_INLINE_CODE = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
_COMMENTS = re.compile(r"%%.*?%%|<!--.*?-->", re.S)
_MATH = re.compile(r"\$\$.*?\$\$", re.S)
_WIKILINK = re.compile(r"!?\[\[([^\[\]\n]+?)\]\]")
_MDLINK = re.compile(
    r"(?<!!)\[[^\]\n]*\]\("
    r"(?:<([^>\n]+?\.md)(?:#[^>\n]*)?>|([^)\s]+?\.md)(?:#[^)\s]*)?)"
    r"(?:\s+\"[^\"\n]*\")?\)",
    re.I,
)
_TAG = re.compile(r"(?:(?<=\s)|^)#([^\s#!\"$%&'()*+,.:;<=>?@\[\]\\^`{|}~]+)", re.M)


def _strip_code(body: str) -> str:
    """Blank out fenced code blocks, inline code, comments and display math."""
    out: list[str] = []
    fence: str | None = None
    for line in body.splitlines():
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            out.append("")
        elif fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and (
                line.strip() == m.group(1)
            ):
                fence = None
            out.append("")
        elif line.startswith(("    ", "\t")) and (not out or not out[-1].strip()):
            out.append("")  # indented code block after a blank line
        else:
            out.append(line)
    text = "\n".join(out)
    for pattern in (_COMMENTS, _MATH, _INLINE_CODE):
        text = pattern.sub(" ", text)
    return text


def _as_list(value: Any, *, split: bool = False) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value if isinstance(v, str | int | float)]
    if isinstance(value, str):
        return [p for p in re.split(r"[,\s]+" if split else r",", value) if p.strip()]
    return []


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a frontmatter value (Obsidian counts property links)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def note_from_markdown(path: str, text: str) -> NoteFacts:
    """Read one note's graph facts from its markdown (frontmatter and body)."""
    fm, body = frontmatter.read(text)
    kind = str(fm.get("type", "")).strip()
    title = fm.get("title")
    concepts: list[str] = []
    for key in CONCEPT_KEYS:
        concepts += _as_list(fm.get(key))
    scrubbed = _strip_code(body)
    links = [m.group(1) for v in _strings(fm) for m in _WIKILINK.finditer(v)]
    links += [m.group(1) for m in _WIKILINK.finditer(scrubbed)]
    for m in _MDLINK.finditer(scrubbed):
        target = m.group(1) or unquote(m.group(2))
        if "://" not in target:
            links.append(target)
    no_links = _WIKILINK.sub(" ", scrubbed)
    body_tags = [t for t in _TAG.findall(no_links) if not t.strip("/").isdigit()]
    created = fm.get("created")
    return NoteFacts(
        path=normalize_path(path),
        title=title.strip() if isinstance(title, str) and title.strip() else None,
        kind=kind if kind in KINDS or kind == GRAPH_NOTE_TYPE else "user",
        tags=_as_list(fm.get("tags") or fm.get("tag"), split=True) + body_tags,
        aliases=_as_list(fm.get("aliases") or fm.get("alias")),
        links=links,
        concepts=concepts,
        created=created.strip() or None if isinstance(created, str) else None,
    )


def iter_vault_notes(vault_root: Path, *, exclude: Iterable[str] = ()) -> Iterator[NoteFacts]:
    """Facts of every markdown note in the vault, skipping hidden and tool folders.

    The graph note itself (``type: knowledge-graph``) and paths in ``exclude`` are left
    out. Unreadable or non-UTF-8 files are skipped.
    """
    root = Path(vault_root)
    skip = {normalize_path(p) for p in exclude}
    gate = PathGate(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")
        )
        for name in sorted(filenames):
            if not name.lower().endswith(".md") or name.startswith("."):
                continue
            full = Path(dirpath, name)
            rel = full.relative_to(root).as_posix()
            if rel in skip:
                continue
            try:  # through the path gate: no symlink out, no FIFO, bounded
                text = gate.read_bytes(rel, 64 << 20).decode("utf-8")
            except (OSError, UnicodeDecodeError, PathRefused):
                continue
            if is_conflict_copy(rel, text):
                continue  # a regeneration's conflict copy is no note of the graph
            facts = note_from_markdown(rel, text)
            if facts.kind != GRAPH_NOTE_TYPE:
                yield facts
