"""Refreshes topic notes off the writer's path: clusters in, note texts out.

After every render the graph keeper hands over the topic clusters
(:func:`study_clusters`: Louvain on the study notes and the concepts they share,
:mod:`vault_tools.communities`; :meth:`TopicKeeper.submit`). This thread waits until the
clusters have been quiet for ``[topics] debounce_seconds`` (a later submission replaces
an earlier one), then plans the refresh (:func:`plan_topics`): read the member study
notes, match the clusters to the topics of the last refresh by member overlap, render
each eligible topic's note. The texts go to the writer (``on_plan``), the only code that
writes into the vault, through :class:`daemon.maintained.MaintainedNotes`. A stop
flushes a pending refresh first, so ``vaultd run --once`` (and the demo) end with
current topic notes.

``vaultd topics`` calls :func:`plan_topics` directly, with the same registry.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from itertools import combinations
from pathlib import Path

import numpy as np

from daemon.maintained import MaintainedNotes, TopicWrite
from daemon.topicsynth import TopicSynthesizer
from vault_tools import communities, frontmatter
from vault_tools.graph import KnowledgeGraph
from vault_tools.graph_note import SEED
from vault_tools.topic_note import (
    StudyNote,
    eligible,
    match_topics,
    read_study_note,
    render_topic_note,
    topic_name,
)

log = logging.getLogger("vaultd.topics")


MAX_CONCEPT_NOTES = 50  # a concept in more notes than this is too broad to bind a topic


def study_clusters(graph: KnowledgeGraph, *, seed: int = SEED) -> list[list[str]]:
    """Topic clusters: Louvain communities of the study notes, joined by the concepts
    they share (one unit of weight per shared concept) and the links between them.

    The whole graph's clusters (the graph note's) also hold tags, your notes and
    assessments; in a small vault two lectures on one subject land in different
    clusters there, each with its own concepts. The projection onto study notes keeps
    just what a topic is: videos that teach the same ideas. Largest first."""
    G = graph.G
    study = sorted(n for n, k in G.nodes(data="kind") if k == "study-note")
    if not study:
        return []
    index = {n: i for i, n in enumerate(study)}
    weights: dict[tuple[int, int], float] = {}
    for c in (n for n in G if n.startswith("concept:")):
        members = sorted(index[u] for u in G.predecessors(c) if u in index)
        if 2 <= len(members) <= MAX_CONCEPT_NOTES:
            for a, b in combinations(members, 2):
                weights[(a, b)] = weights.get((a, b), 0.0) + 1.0
    for u, v, kind in G.edges(data="kind"):
        if kind == "link" and u in index and v in index and u != v:
            key = (min(index[u], index[v]), max(index[u], index[v]))
            weights[key] = weights.get(key, 0.0) + 1.0
    pairs = sorted(weights)
    src = np.array([a for a, _ in pairs], dtype=np.int64)
    dst = np.array([b for _, b in pairs], dtype=np.int64)
    wts = np.array([weights[p] for p in pairs], dtype=float)
    groups = communities.louvain(study, src, dst, wts, seed=seed)
    clusters = [sorted(n[5:] for n in g) for g in groups]
    clusters.sort(key=lambda c: (-len(c), c[0]))
    return clusters


def read_member(vault: Path, rel: str) -> tuple[StudyNote, str] | None:
    """A member study note (facts, body text) read from the vault; None when gone,
    unreadable, outside the vault (a symlink that leaves it) or no longer a study note."""
    path = vault / rel
    try:
        if not path.resolve().is_relative_to(vault.resolve()):
            return None
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    note = read_study_note(rel, text)
    return None if note is None else (note, frontmatter.split(text)[1])


def plan_topics(vault: Path, registry: MaintainedNotes,
                clusters: Sequence[Sequence[str]],
                synth: TopicSynthesizer | None = None) -> list[TopicWrite]:
    """Topic note texts for the eligible clusters, matched to the registry's topics;
    with ``synth``, each topic's synthesis comes from the model (cached, capped)."""
    matched = match_topics(registry.topic_records(), clusters)
    names = {r.id: r.name for r in registry.topic_records()}
    used_names = set(names.values())
    if synth is not None:
        synth.begin()
    writes = []
    for tid, members in matched:
        read = [r for r in (read_member(vault, m) for m in members) if r is not None]
        notes = [n for n, _ in read]
        if not eligible(notes):
            continue
        if tid is None:
            tid = registry.new_topic_id()
            name = topic_name(notes)
            base, k = name, 2
            while name in used_names:  # two topics never share a name
                name, k = f"{base} ({k})", k + 1
            used_names.add(name)
        else:
            name = names[tid]
        synthesis, tokens, cost = None, 0, 0.0
        if synth is not None:
            synthesis, tokens, cost = synth(name, notes, [t for _, t in read])
        text = render_topic_note(tid, name, notes, synthesis)
        writes.append(TopicWrite(tid, name, tuple(n.path for n in notes), text, tokens, cost))
    return writes


class TopicKeeper(threading.Thread):
    def __init__(self, vault: Path, registry: MaintainedNotes,
                 on_plan: Callable[[list[TopicWrite]], None], *,
                 debounce: float = 30.0, synth: TopicSynthesizer | None = None) -> None:
        super().__init__(name="topic-keeper", daemon=True)
        self.vault = vault
        self.registry = registry
        self.on_plan = on_plan
        self.debounce = debounce
        self.synth = synth
        self.queue: queue.Queue[list[list[str]] | None] = queue.Queue()
        self.refreshes = 0

    def submit(self, clusters: list[list[str]]) -> None:
        """Any thread (the graph keeper after a render)."""
        self.queue.put(clusters)

    def stop(self) -> None:
        self.queue.put(None)

    def run(self) -> None:
        pending: list[list[str]] | None = None
        due = 0.0
        while True:
            timeout = None if pending is None else max(0.0, due - time.monotonic())
            try:
                item = self.queue.get(timeout=timeout)
            except queue.Empty:
                assert pending is not None
                self._refresh(pending)
                pending = None
                continue
            if item is None:
                if pending is not None:
                    self._refresh(pending)
                return
            pending, due = item, time.monotonic() + self.debounce

    def _refresh(self, clusters: list[list[str]]) -> None:
        started = time.monotonic()
        try:
            writes = plan_topics(self.vault, self.registry, clusters, self.synth)
        except Exception:  # noqa: BLE001 - a bad note must not stop later refreshes
            log.exception("planning the topic notes failed")
            return
        self.refreshes += 1
        log.info("topic notes planned in %.2f s: %d topic(s)", time.monotonic() - started,
                 len(writes))
        self.on_plan(writes)
