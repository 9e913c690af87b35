"""Topic clusters: which study notes teach the same ideas (pure: arrays in, groups out).

The graph note's clusters (:mod:`vault_tools.graph_note`) hold every kind of node: tags,
your notes, assessments. In a small vault two lectures on one subject land in different
clusters there, each with its own concepts. A topic is narrower: videos that teach the
same ideas. So topics are Louvain communities (:mod:`vault_tools.communities`) of the
study notes alone, tied by the concepts they share (one unit of weight per shared
concept; a concept in more than ``MAX_CONCEPT_NOTES`` notes is too broad to count) and
by links between them.

Two steps, so the cheap one can run where the graph lives and the slow one elsewhere:
:func:`topic_inputs` reads the graph into plain data (the graph keeper, after a render);
:func:`study_clusters` clusters it (the topic keeper, once per debounced refresh).

At scale, notes on a broad subject share a concept or two with hundreds of others; all
those weak ties made Louvain take 7 s at 10,000 notes. Each note keeps only its
``NEIGHBOURS`` strongest ties (a k-nearest-neighbour graph, built with a sparse matrix
product): about 1 s at 10,000 notes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy as sp

from vault_tools import communities
from vault_tools.graph import KnowledgeGraph

SEED = 42
MAX_CONCEPT_NOTES = 50
NEIGHBOURS = 12


@dataclass(frozen=True)
class TopicInputs:
    """The study notes (vault paths, sorted), their concept memberships and links, as
    index arrays into ``notes``."""

    notes: tuple[str, ...]
    member_note: np.ndarray  # one row per (note, concept) membership
    member_concept: np.ndarray
    link_src: np.ndarray
    link_dst: np.ndarray


def topic_inputs(graph: KnowledgeGraph) -> TopicInputs:
    G = graph.G
    study = sorted(n for n, k in G.nodes(data="kind") if k == "study-note")
    index = {n: i for i, n in enumerate(study)}
    rows: list[int] = []
    cols: list[int] = []
    concepts = sorted(n for n in G if n.startswith("concept:"))
    for j, c in enumerate(concepts):
        members = [index[u] for u in G.predecessors(c) if u in index]
        if 2 <= len(members) <= MAX_CONCEPT_NOTES:
            rows += members
            cols += [j] * len(members)
    links = [(index[u], index[v]) for u, v, k in G.edges(data="kind")
             if k == "link" and u in index and v in index and u != v]
    return TopicInputs(tuple(n[5:] for n in study), np.array(rows, dtype=np.int64),
                       np.array(cols, dtype=np.int64),
                       np.array([a for a, _ in links], dtype=np.int64),
                       np.array([b for _, b in links], dtype=np.int64))


def _ties(inputs: TopicInputs) -> sp.sparse.csr_array:
    """Symmetric note x note weights: shared concepts plus links, no diagonal."""
    n = len(inputs.notes)
    k = int(inputs.member_concept.max()) + 1 if len(inputs.member_concept) else 0
    b = sp.sparse.csr_array((np.ones(len(inputs.member_note)),
                             (inputs.member_note, inputs.member_concept)), shape=(n, k))
    links = sp.sparse.coo_array((np.ones(len(inputs.link_src)),
                                 (inputs.link_src, inputs.link_dst)), shape=(n, n))
    w = (b @ b.T + links + links.T).tocsr()
    w.setdiag(0)
    w.eliminate_zeros()
    return w


def _strongest(w: sp.sparse.csr_array, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges (i < j) among each note's ``k`` strongest ties (ties: lower index first)."""
    src: list[np.ndarray] = []
    dst: list[np.ndarray] = []
    for i in range(w.shape[0]):
        lo, hi = w.indptr[i], w.indptr[i + 1]
        cols, vals = w.indices[lo:hi], w.data[lo:hi]
        if len(cols) > k:
            pick = np.lexsort((cols, -vals))[:k]
            cols = cols[pick]
        src.append(np.full(len(cols), i))
        dst.append(cols)
    a = np.concatenate(src).astype(np.int64) if src else np.zeros(0, dtype=np.int64)
    b = np.concatenate(dst).astype(np.int64) if dst else np.zeros(0, dtype=np.int64)
    if not len(a):  # no two notes share anything
        return a, b, np.zeros(0, dtype=float)
    pairs = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1), axis=0)
    weights = np.asarray(w[pairs[:, 0], pairs[:, 1]], dtype=float).ravel()
    return pairs[:, 0], pairs[:, 1], weights


def study_clusters(inputs: TopicInputs, *, initial: Mapping[str, int] | None = None,
                   seed: int = SEED) -> list[list[str]]:
    """Topic clusters (sorted vault paths), largest first; ``initial`` (note path ->
    earlier topic number) warm-starts Louvain."""
    if not inputs.notes:
        return []
    src, dst, wts = _strongest(_ties(inputs), NEIGHBOURS)
    groups = communities.louvain(list(inputs.notes), src, dst, wts, seed=seed,
                                 initial=initial)
    clusters = [sorted(g) for g in groups]
    clusters.sort(key=lambda c: (-len(c), c[0]))
    return clusters
