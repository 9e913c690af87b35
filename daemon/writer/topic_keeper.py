"""Refreshes topic notes off the writer's path: clusters in, note texts out.

After every render the graph keeper hands over what topics are made of (the study notes,
their concepts and links: :func:`vault_tools.topic_clusters.topic_inputs`;
:meth:`TopicKeeper.submit`). This thread waits until that has been quiet for ``[topics]
debounce_seconds`` (a later submission replaces an earlier one), then clusters it
(:func:`vault_tools.topic_clusters.study_clusters`)
and plans the refresh (:func:`plan_topics`): read the member study notes, match the
clusters to the topics of the last refresh by member overlap, render each eligible
topic's note. The texts go to the writer (``on_plan``), the only code that writes into
the vault, through :class:`daemon.writer.maintained_notes.MaintainedNotes`. A stop flushes a pending
refresh first, so ``vaultd run --once`` (and the demo) end with current topic notes.

``vaultd topics`` calls :func:`plan_topics` directly, with the same registry.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from daemon.writer.maintained_notes import MaintainedNotes, TopicWrite
from daemon.writer.topic_synthesizer import TopicSynthesizer
from vault_tools import frontmatter
from vault_tools.pathgate import PathGate, PathRefused
from vault_tools.topic_clusters import TopicInputs, study_clusters
from vault_tools.topic_note import (
    StudyNote,
    eligible,
    match_topics,
    read_study_note,
    render_topic_note,
    topic_name,
)

log = logging.getLogger("vaultd.topics")


def read_member(gate: PathGate, rel: str) -> tuple[StudyNote, str] | None:
    """A member study note (facts, body text) read through the path gate; None when
    gone, unreadable, refused (a symlink out of the vault) or no longer a study note."""
    try:
        text = gate.read_text(rel, 8 << 20)
    except (OSError, PathRefused):
        return None
    note = read_study_note(rel, text)
    return None if note is None else (note, frontmatter.split(text)[1])


def clusters_for(inputs: TopicInputs, registry: MaintainedNotes) -> list[list[str]]:
    """Topic clusters, from a cold start every time: Louvain warm-started from the last
    topics never splits one (a node only moves to a neighbouring community, so two
    halves that drifted apart stay together). Identity across refreshes comes from
    :func:`match_topics`, not from the clustering; ~1 s at 10,000 notes, once per
    debounced refresh, on this thread. ``registry`` is for callers' symmetry."""
    del registry
    return study_clusters(inputs)


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
        read = [r for r in (read_member(registry.paths.gate, m) for m in members)
                if r is not None]
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
        self.queue: queue.Queue[TopicInputs | None] = queue.Queue()
        self.refreshes = 0

    def submit(self, inputs: TopicInputs) -> None:
        """Any thread (the graph keeper after a render: :func:`topic_inputs`)."""
        self.queue.put(inputs)

    def stop(self) -> None:
        self.queue.put(None)

    def run(self) -> None:
        pending: TopicInputs | None = None
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

    def _refresh(self, inputs: TopicInputs) -> None:
        started = time.monotonic()
        try:
            clusters = clusters_for(inputs, self.registry)
            writes = plan_topics(self.vault, self.registry, clusters, self.synth)
        except Exception:  # noqa: BLE001 - a bad note must not stop later refreshes
            log.exception("planning the topic notes failed")
            return
        self.refreshes += 1
        log.info("topic notes planned in %.2f s: %d topic(s)", time.monotonic() - started,
                 len(writes))
        self.on_plan(writes)
