"""The ``Knowledge Graph.md`` note: analysis of the knowledge graph rendered as markdown.

This module owns the *reading* of a :class:`~vault_tools.graph.KnowledgeGraph`: PageRank
hubs, Louvain topic clusters (shared with :mod:`vault_tools.canvas`), orphans, suggested
links, and the markdown (with a Mermaid diagram) the vault writer puts in the vault.

Output is a pure function of the graph's content and ``now``: analysis graphs are built
from sorted nodes and edges and Louvain runs with a fixed seed, so an incrementally
updated graph, its JSON round trip and a ``--rebuild`` render byte-identical notes.
Every title, tag and concept is untrusted text: wikilinks, plain markdown and Mermaid
labels each get their own escaping so no title can break the note or the diagram.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from urllib.parse import quote

import networkx as nx
import numpy as np
import scipy as sp

from vault_tools import communities
from vault_tools.graph import KnowledgeGraph

SEED = 42
# Edge weights for analysis: links and shared concepts bind topics, tags only loosely.
WEIGHTS = {"link": 1.0, "concept": 1.0, "tag": 0.3}
SUGGEST_MAX_CONCEPT_NOTES = 50  # concepts shared by more notes are too broad to suggest
LABEL_CANDIDATES = 24  # a cluster's best-ranked terms considered for its name
LIMITS = {"hubs": 10, "clusters": 12, "cluster_notes": 15, "recent": 10, "orphans": 25,
          "suggestions": 15, "mermaid_clusters": 5, "mermaid_notes": 8, "mermaid_edges": 80}


# Tags that say who made a note or which tool reads it, not what it is about: the ones
# vaultd puts on its own notes, and the Spaced Repetition plugin's deck tags.
OWN_TAGS = frozenset({"assessment", "video-notes", "knowledge-graph"})
PLUGIN_TAG_ROOTS = ("flashcards", "review")


def is_topic(node: str) -> bool:
    """A concept, or a tag that names a topic (not vaultd's or the plugin's)."""
    if node.startswith("concept:"):
        return True
    if not node.startswith("tag:"):
        return False
    tag = node[4:]
    return tag not in OWN_TAGS and tag.split("/", 1)[0] not in PLUGIN_TAG_ROOTS


@dataclass
class Cluster:
    """One Louvain community: its notes (by PageRank, best first) and top terms."""

    index: int
    notes: list[str]
    terms: list[str] = field(default_factory=list)  # concept/tag node ids, best first

    def topics(self) -> list[str]:
        """The terms that name the cluster: its notes' concepts first, then topic tags."""
        concepts = [t for t in self.terms if t.startswith("concept:")]
        return concepts + [t for t in self.terms if is_topic(t) and t not in concepts]

    def label(self, graph: KnowledgeGraph) -> str:
        topics = self.topics()
        if topics:
            return str(graph.G.nodes[topics[0]]["label"])
        return str(graph.G.nodes[self.notes[0]]["title"])


@dataclass
class GraphAnalysis:
    pagerank: dict[str, float]
    clusters: list[Cluster]  # largest first


@dataclass
class _Arrays:
    """The graph as sorted node names and edge index arrays (``missing:`` left out)."""

    nodes: list[str]
    src: np.ndarray  # int, one row per graph edge
    dst: np.ndarray
    weight: np.ndarray  # float
    is_link: np.ndarray  # bool


def _arrays(graph: KnowledgeGraph) -> _Arrays:
    """Sorted, so the arrays (and every float sum over them) do not depend on the order
    the graph was built in: an incremental graph and a rebuild analyse the same."""
    nodes = sorted(n for n, t in graph.G.nodes(data="type") if t != "missing"
                   and (not n.startswith("tag:") or is_topic(n)))
    index = {n: i for i, n in enumerate(nodes)}
    edges = [(u, v, k) for u, v, k in graph.G.edges(data="kind") if v in index]
    src = np.fromiter((index[u] for u, _, _ in edges), dtype=np.int64, count=len(edges))
    dst = np.fromiter((index[v] for _, v, _ in edges), dtype=np.int64, count=len(edges))
    kind = [k for _, _, k in edges]
    weight = np.fromiter((WEIGHTS[k] for k in kind), dtype=float, count=len(edges))
    is_link = np.fromiter((k == "link" for k in kind), dtype=bool, count=len(edges))
    order = np.lexsort((weight, dst, src))
    return _Arrays(nodes, src[order], dst[order], weight[order], is_link[order])


def pagerank(a: _Arrays, alpha: float = 0.85, tol: float = 1.0e-6) -> np.ndarray:
    """PageRank as ``nx.pagerank`` computes it (scipy power iteration, same defaults).

    Links count one way; tag and concept edges both ways, so a shared concept passes
    rank back to the notes that share it. Converting the graph with networkx cost more
    than the iteration itself, hence arrays; ``test_graph_note`` checks the values
    against ``nx.pagerank``.
    """
    n = len(a.nodes)
    back = ~a.is_link
    rows = np.concatenate([a.src, a.dst[back]])
    cols = np.concatenate([a.dst, a.src[back]])
    data = np.concatenate([a.weight, a.weight[back]])
    A = sp.sparse.csr_array((data, (rows, cols)), shape=(n, n))
    out = np.asarray(A.sum(axis=1)).ravel()
    dangling = out == 0
    inv = np.divide(1.0, out, out=np.zeros(n), where=~dangling)
    M = (sp.sparse.diags_array(inv) @ A).T.tocsr()
    x = np.full(n, 1.0 / n)
    p = np.full(n, 1.0 / n)
    for _ in range(100):
        last = x
        x = alpha * (M @ x + x[dangling].sum() * p) + (1 - alpha) * p
        if np.abs(x - last).sum() < n * tol:
            break
    return x


def louvain(a: _Arrays, *, seed: int = SEED,
            initial: dict[str, int] | None = None) -> list[set[str]]:
    """Louvain communities of the analysis graph (see :mod:`vault_tools.communities`);
    ``initial`` (node -> community number from an earlier run) warm-starts it."""
    return communities.louvain(a.nodes, a.src, a.dst, a.weight, seed=seed, initial=initial)


def analyze(graph: KnowledgeGraph, *, seed: int = SEED,
            previous: GraphAnalysis | None = None) -> GraphAnalysis:
    """PageRank over all nodes and Louvain clusters of notes (deterministic for the same
    graph and ``previous``; ``previous`` warm-starts the clustering, see :func:`louvain`)."""
    a = _arrays(graph)
    if not a.nodes:
        return GraphAnalysis({}, [])
    pr = dict(zip(a.nodes, pagerank(a).tolist(), strict=True))
    if previous is not None:
        initial = {node: c.index for c in previous.clusters for node in (*c.notes, *c.terms)}
    else:
        notes = np.fromiter((n.startswith("note:") for n in a.nodes), dtype=bool,
                            count=len(a.nodes))
        initial = communities.strongest_neighbour_start(a.nodes, a.src, a.dst, a.weight,
                                                        notes)
    groups = louvain(a, seed=seed, initial=initial)
    clusters: list[Cluster] = []
    for members in groups:
        ranked = sorted(members, key=lambda n: (-round(pr[n], 12), n))
        notes = [n for n in ranked if n.startswith("note:")]
        if notes:
            terms = [n for n in ranked if not n.startswith("note:")]
            clusters.append(Cluster(0, notes, _by_reach(graph, notes, terms)))
    clusters.sort(key=lambda c: (-len(c.notes), c.notes[0]))
    for i, c in enumerate(clusters, 1):
        c.index = i
    return GraphAnalysis(pr, clusters)


def _by_reach(graph: KnowledgeGraph, notes: list[str], terms: list[str]) -> list[str]:
    """Terms ordered by how many of the cluster's notes hold them or name them in their
    title (the topic the cluster is about), then by PageRank (the order given). Only the
    :data:`LABEL_CANDIDATES` best-ranked are weighed, so a large cluster stays cheap."""
    G = graph.G
    titles = [str(G.nodes[n].get("title", "")).casefold() for n in notes]
    members = set(notes)

    def reach(term: str) -> int:
        label = str(G.nodes[term].get("label", "")).casefold()
        held = sum(1 for u in G.predecessors(term) if u in members)
        named = sum(1 for t in titles if label and re.search(
            rf"(?<!\w){re.escape(label)}(?!\w)", t))
        return held + named

    head = terms[:LABEL_CANDIDATES]  # the rest keep their PageRank order after them
    rank = {t: i for i, t in enumerate(head)}
    return sorted(head, key=lambda t: (-reach(t), rank[t])) + terms[LABEL_CANDIDATES:]


def links_in(G: nx.DiGraph, node: str) -> int:
    """How many distinct notes link to ``node`` (tags and concepts are not links)."""
    return sum(1 for u in G.predecessors(node)
               if u.startswith("note:") and G.edges[u, node].get("kind") == "link")


def links_out(G: nx.DiGraph, node: str) -> int:
    """How many distinct notes ``node`` links to (unresolved links name no note)."""
    return sum(1 for v in G.successors(node)
               if v.startswith("note:") and G.edges[node, v].get("kind") == "link")


def suggested_links(graph: KnowledgeGraph, limit: int) -> list[tuple[str, str, list[str]]]:
    """Pairs of notes sharing >= 2 concepts and not linked either way, most shared first."""
    G = graph.G
    shared: Counter[tuple[str, str]] = Counter()
    for c in sorted(n for n in G if n.startswith("concept:")):
        members = sorted(G.predecessors(c))
        if len(members) <= SUGGEST_MAX_CONCEPT_NOTES:
            shared.update(combinations(members, 2))
    pairs = [
        (a, b) for (a, b), k in shared.items()
        if k >= 2 and not G.has_edge(a, b) and not G.has_edge(b, a)
    ]
    pairs.sort(key=lambda p: (-shared[p], p))
    out = []
    for a, b in pairs[:limit]:
        common = sorted(set(G.successors(a)) & set(G.successors(b)))
        out.append((a, b, [G.nodes[c]["label"] for c in common if c.startswith("concept:")]))
    return out


# --------------------------------------------------------------------------- escaping

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~$%=^{}!])")
# Wikilink labels cannot be backslash-escaped: swap characters that end the link or
# start code, HTML, math or comments for look-alikes.
_LINK_LABEL = str.maketrans({"[": "(", "]": ")", "|": "/", "\\": "/", "`": "'", "<": "‹",
                             ">": "›", "$": "＄", "%": "％"})
_MERMAID_CODES = {'"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;"}


def _one_line(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def md_text(text: str, width: int = 80) -> str:
    """Untrusted text as inert markdown: one line, every markup character escaped."""
    return _MD_SPECIAL.sub(r"\\\1", _one_line(text, width))


def note_link(graph: KnowledgeGraph, nid: str) -> str:
    """A link to a note that survives any title and any path."""
    path = nid[5:]
    target = path[:-3] if path.lower().endswith(".md") else path
    label = _one_line(graph.G.nodes[nid]["title"], 80)
    label = label.translate(_LINK_LABEL) or target
    if re.search(r"[\[\]|#^\\\n]", target):
        return f"[{md_text(label)}]({quote(path)})"
    return f"[[{target}|{label}]]"


def mermaid_label(text: str, width: int = 40) -> str:
    """A quoted Mermaid label that no text can break out of (entity codes for specials)."""
    out = []
    for ch in _one_line(text, width):
        if ch in _MERMAID_CODES:
            out.append(_MERMAID_CODES[ch])
        elif ch.isalnum() or ch in " .,-_'+/:?!()@":
            out.append(ch)
        else:
            out.append(f"#{ord(ch)};")
    return '"' + "".join(out) + '"'


# --------------------------------------------------------------------------- rendering


def mermaid_block(graph: KnowledgeGraph, analysis: GraphAnalysis) -> list[str]:
    """``graph LR`` with one subgraph per top cluster and the links among shown notes."""
    lines = ["```mermaid", "graph LR"]
    ids: dict[str, str] = {}
    for c in analysis.clusters[: LIMITS["mermaid_clusters"]]:
        lines.append(f"  subgraph c{c.index}[{mermaid_label(c.label(graph))}]")
        for nid in c.notes[: LIMITS["mermaid_notes"]]:
            ids[nid] = f"n{len(ids) + 1}"
            lines.append(f"    {ids[nid]}[{mermaid_label(graph.G.nodes[nid]['title'])}]")
        lines.append("  end")
    edges = [(ids[u], ids[v]) for u, v in graph.G.subgraph(ids).edges()]
    edges.sort(key=lambda e: (int(e[0][1:]), int(e[1][1:])))
    lines += [f"  {a} --> {b}" for a, b in edges[: LIMITS["mermaid_edges"]]]
    lines.append("```")
    return lines


def _bullets(items: Iterable[str], empty: str) -> list[str]:
    out = [f"- {i}" for i in items]
    return out or [f"_{empty}_"]


def render_graph_note(
    graph: KnowledgeGraph, *, now: str, analysis: GraphAnalysis | None = None,
    extra: Sequence[str] = (),
) -> str:
    """The full ``Knowledge Graph.md`` text for ``graph`` as of ``now`` (ISO string).

    Pass ``analysis`` (from :func:`analyze`) to share one analysis with the canvas;
    ``extra`` lines (trusted markdown, e.g. a link to this week's review) go under
    "Study plan".
    """
    G = graph.G
    notes = graph.notes()
    analysis = analysis or analyze(graph)
    pr = analysis.pagerank
    kinds = Counter(G.nodes[n]["kind"] for n in notes)
    n_tags = sum(1 for n in G if n.startswith("tag:"))
    n_concepts = sum(1 for n in G if n.startswith("concept:"))
    links = [(u, v) for u, v, k in G.edges(data="kind") if k == "link"]
    resolved = sum(1 for _, v in links if v.startswith("note:"))
    out = [
        "---",
        "type: knowledge-graph",
        f"updated: {json.dumps(now)}",
        "---",
        "# Knowledge Graph",
        "",
        "> [!info] Maintained by vaultd",
        "> Rewritten automatically as notes are added; edits here are overwritten.",
        "",
        "## Overview",
        "",
        "| Notes | Tags | Concepts | Links | Unresolved links |",
        "| ---: | ---: | ---: | ---: | ---: |",
        f"| {len(notes)} | {n_tags} | {n_concepts} | {resolved} | {len(links) - resolved} |",
        "",
        f"Study notes: {kinds['study-note']} · assessments: {kinds['assessment']}"
        f" · your notes: {kinds['user']}",
        "",
        *(["## Study plan", "", *extra, ""] if extra else []),
        "## Hubs",
        "",
    ]
    hubs = sorted(notes, key=lambda n: (-round(pr.get(n, 0.0), 12), n))[: LIMITS["hubs"]]
    out += [
        f"{i}. {note_link(graph, n)} · {links_in(G, n)} in, {links_out(G, n)} out"
        for i, n in enumerate(hubs, 1)
    ] or ["_No notes yet._"]
    out += ["", "## Topic clusters", ""]
    for c in analysis.clusters[: LIMITS["clusters"]]:
        out.append(f"### {c.index}. {md_text(c.label(graph))} ({len(c.notes)} notes)")
        if c.topics():
            terms = ", ".join(md_text(G.nodes[t]["label"], 40) for t in c.topics()[:6])
            out.append(f"Key terms: {terms}")
        out.append("")
        shown = c.notes[: LIMITS["cluster_notes"]]
        out += _bullets((note_link(graph, n) for n in shown), "")
        if len(c.notes) > len(shown):
            out.append(f"- … and {len(c.notes) - len(shown)} more")
        out.append("")
    if not analysis.clusters:
        out += ["_No clusters yet._", ""]
    dated = sorted(
        (n for n in notes if G.nodes[n]["created"]),
        key=lambda n: (G.nodes[n]["created"], n), reverse=True,
    )[: LIMITS["recent"]]
    out += ["## Recent additions", ""]
    out += _bullets(
        (f"{md_text(G.nodes[n]['created'], 32)} · {note_link(graph, n)}" for n in dated),
        "No dated notes yet.",
    )
    orphans = [
        n for n in notes
        if not any(v.startswith("note:") for v in G.successors(n))
        and not any(u.startswith("note:") for u in G.predecessors(n))
    ]
    out += ["", "## Orphans", "", f"Notes with no links to or from other notes: {len(orphans)}."]
    out += [""] + _bullets((note_link(graph, n) for n in orphans[: LIMITS["orphans"]]), "None.")
    if len(orphans) > LIMITS["orphans"]:
        out.append(f"- … and {len(orphans) - LIMITS['orphans']} more")
    out += ["", "## Suggested links", ""]
    out += _bullets(
        (
            f"{note_link(graph, a)} ↔ {note_link(graph, b)} · shared: "
            + ", ".join(md_text(t, 40) for t in terms)
            for a, b, terms in suggested_links(graph, LIMITS["suggestions"])
        ),
        "No suggestions.",
    )
    out += ["", "## Map", ""] + mermaid_block(graph, analysis)
    return "\n".join(out) + "\n"
