"""Keeps the knowledge graph current and renders the graph note, off the writer's path.

The keeper thread owns the :class:`~vault_tools.graph.KnowledgeGraph`. The writer sends
it the facts of every note it writes (and of user notes that change); the keeper applies
them (sub-millisecond), saves the graph as node-link JSON in the state dir, and — once
changes have been quiet for ``debounce`` seconds, at most every ``max_interval``, and
never more often than keeps rendering under ``RENDER_SHARE`` of a core — runs the
analysis (PageRank, clusters) and renders ``Knowledge Graph.md`` and its canvas.
The rendered text goes back to the writer, the only code that writes into the vault, as
a millisecond job. Rendering at 10,000 notes takes seconds, which is why it lives here.

:func:`write_graph_files` is how the writer (and ``vaultd graph``) puts the note and its
canvas into the vault: through the path gate, and never over a file vaultd did not
make — a user's own ``Knowledge Graph.md`` or ``.canvas`` stays, and vaultd's goes
beside it as ``Knowledge Graph (vaultd).md`` / ``.canvas``, said in the log.

At start the saved graph is loaded (notes deleted meanwhile are dropped from it); without
one (or when it is unreadable) the graph is rebuilt from the vault, in this thread. A note
deleted while the daemon runs is removed at once (the writer sends ``remove``).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from vault_tools.atomic import write_atomic
from vault_tools.canvas import render_canvas
from vault_tools.frontmatter import split as split_frontmatter
from vault_tools.graph import GRAPH_NOTE_TYPE, KnowledgeGraph, NoteFacts
from vault_tools.graph_note import Cluster, GraphAnalysis, analyze, render_graph_note
from vault_tools.pathgate import PathGate

log = logging.getLogger("vaultd.graph")

Op = tuple[str, object, object]


def render_outputs(graph: KnowledgeGraph, previous: GraphAnalysis | None = None
                   ) -> tuple[str, str, GraphAnalysis]:
    """(graph note markdown, canvas JSON, analysis) from one analysis; ``previous``
    warm-starts the clustering (a few new notes do not reshuffle every cluster)."""
    now = datetime.now().astimezone().replace(microsecond=0).isoformat()
    analysis = analyze(graph, previous=previous)
    note = render_graph_note(graph, now=now, analysis=analysis)
    canvas = json.dumps(render_canvas(graph, analysis=analysis), indent=1, ensure_ascii=False)
    return note, canvas, analysis


CANVAS_MARK = "Maintained by vaultd"  # in the canvas's summary node (vault_tools.canvas)
BESIDE = " (vaultd)"


def _graph_note_ours(text: str) -> bool:
    data, _ = split_frontmatter(text)
    return bool(data) and data.get("type") == GRAPH_NOTE_TYPE


def _canvas_ours(text: str) -> bool:
    try:
        nodes = json.loads(text).get("nodes", [])
        return any(isinstance(n, dict) and n.get("id") == "summary"
                   and CANVAS_MARK in str(n.get("text", "")) for n in nodes)
    except (ValueError, AttributeError):
        return False


def write_graph_files(gate: PathGate, note_path: Path, note: str, canvas: str
                      ) -> list[str]:
    """Write the graph note and its canvas through the gate, each only over a file of
    ours (by identity: the note's ``type: knowledge-graph``, the canvas's summary node).
    A user's file at either name is left alone and ours goes beside it with `` (vaultd)``
    in its name (both of ours together, so the pair stays a pair). Returns what was done
    differently, one sentence each, for the log and ``status``. Raises ``OSError`` and
    ``PathRefused`` (a symlink out) unchanged."""
    canvas_path = note_path.with_suffix(".canvas")
    said: list[str] = []
    for path, ours in ((note_path, _graph_note_ours), (canvas_path, _canvas_ours)):
        if _taken_by_user(gate, path, ours):
            said.append(f"{gate.rel(path)} is not vaultd's; left it alone")
    if said:
        note_path = note_path.with_name(f"{note_path.stem}{BESIDE}{note_path.suffix}")
        canvas_path = note_path.with_suffix(".canvas")
        for path, ours in ((note_path, _graph_note_ours), (canvas_path, _canvas_ours)):
            if _taken_by_user(gate, path, ours):
                said.append(f"{gate.rel(path)} is not vaultd's either; graph note not "
                            "written")
                return said
        said[-1] += f"; wrote the graph to {gate.rel(note_path)} instead"
    gate.write(note_path, note)
    gate.write(canvas_path, canvas)
    return said


def _taken_by_user(gate: PathGate, path: Path, ours: Callable[[str], bool]) -> bool:
    if not gate.exists(path):
        return False
    try:
        return not ours(gate.read_text(path))
    except FileNotFoundError:
        return False
    except OSError:
        return True


def load_or_rebuild(vault: Path, saved: Path, exclude: list[str], *, rebuild: bool = False
                    ) -> tuple[KnowledgeGraph, bool]:
    """(graph, rebuilt?)"""
    if not rebuild and saved.exists():
        try:
            return KnowledgeGraph.from_json(saved.read_text(encoding="utf-8")), False
        except (OSError, ValueError, KeyError) as exc:
            log.warning("saved graph unreadable (%s); rebuilding from the vault", exc)
    return KnowledgeGraph.rebuild(vault, exclude=exclude), True


RENDER_SHARE = 0.1  # a refresh waits until renders have used at most this share of a core


def next_render_at(first_change: float, last_change: float, *, debounce: float,
                   max_interval: float, earliest: float) -> float:
    """When to render after changes: ``debounce`` after the last one, at the latest
    ``max_interval`` after the first, never before ``earliest`` (set from the previous
    render's duration, so a vault whose note takes 5 s to render is refreshed about once
    a minute during a long batch, not every few seconds)."""
    return max(min(last_change + debounce, first_change + max_interval), earliest)


class GraphKeeper(threading.Thread):
    def __init__(self, vault: Path, state: Path, exclude: list[str],
                 on_render: Callable[[str, str], None], *, debounce: float = 5.0,
                 max_interval: float = 60.0) -> None:
        super().__init__(name="graph-keeper", daemon=True)
        self.vault = vault
        self.saved = state / "graph.json"
        self.saved_clusters = state / "graph-clusters.json"
        self.exclude = exclude
        self.on_render = on_render
        self.debounce = debounce
        self.max_interval = max_interval
        self.queue: queue.Queue[Op | None] = queue.Queue()
        self.graph: KnowledgeGraph | None = None
        self.ready = threading.Event()
        self.renders = 0
        self.analysis: GraphAnalysis | None = None
        self._earliest = 0.0  # monotonic time before which no scheduled render starts

    def _load_clusters(self) -> None:
        """The previous run's clusters warm-start the first render after a start."""
        try:
            data = json.loads(self.saved_clusters.read_text(encoding="utf-8"))
            self.analysis = GraphAnalysis({}, [Cluster(int(c["index"]), list(c["notes"]),
                                                       list(c["terms"])) for c in data])
        except (OSError, ValueError, KeyError, TypeError):
            self.analysis = None

    def _save_clusters(self) -> None:
        assert self.analysis is not None
        data = [{"index": c.index, "notes": c.notes, "terms": c.terms}
                for c in self.analysis.clusters]
        write_atomic(self.saved_clusters, json.dumps(data, ensure_ascii=False))

    # -- requests (any thread) -------------------------------------------------------
    def update(self, facts: NoteFacts) -> None:
        self.queue.put(("update", facts, None))

    def remove(self, path: str) -> None:
        self.queue.put(("remove", path, None))

    def rename(self, old: str, new: str) -> None:
        self.queue.put(("rename", old, new))

    def rebuild(self) -> None:
        self.queue.put(("rebuild", None, None))

    def render_now(self) -> None:
        self.queue.put(("render", None, None))

    def stop(self) -> None:
        self.queue.put(None)

    # -- loop --------------------------------------------------------------------------
    def run(self) -> None:
        started = time.monotonic()
        try:
            self.graph, rebuilt = load_or_rebuild(self.vault, self.saved, self.exclude)
        except Exception:  # noqa: BLE001 - an unreadable vault must not kill the thread
            log.exception("could not build the knowledge graph; starting empty")
            self.graph, rebuilt = KnowledgeGraph(), True
        gone = [] if rebuilt else self._drop_deleted()
        dirty_from_start = bool(gone)
        self._load_clusters()  # an initial assignment only: valid even after a rebuild
        log.info("knowledge graph %s in %.1f s: %d notes", "rebuilt" if rebuilt else "loaded",
                 time.monotonic() - started, len(self.graph.notes()))
        self.ready.set()
        dirty = rebuilt or dirty_from_start
        first_change = last_change = time.monotonic() if dirty else 0.0
        force = dirty
        while True:
            timeout = None
            if dirty:
                due = next_render_at(first_change, last_change, debounce=self.debounce,
                                     max_interval=self.max_interval, earliest=self._earliest)
                timeout = max(0.0, due - time.monotonic())
            try:
                op = self.queue.get(timeout=timeout)
            except queue.Empty:
                op = ("render", None, None)  # scheduled: due now
            if op is None:
                if dirty:
                    self._render()
                return
            kind, a, b = op
            if kind == "render":
                if dirty or force or a is None:
                    self._render()
                dirty = force = False
                continue
            try:
                self._apply(kind, a, b)
            except Exception:  # noqa: BLE001 - one bad note must not stop the graph
                log.exception("graph update %s failed", kind)
                continue
            now = time.monotonic()
            if not dirty:
                first_change = now
            dirty, last_change = True, now

    def _drop_deleted(self) -> list[str]:
        """Notes of the saved graph deleted while the daemon was stopped leave it now (a
        stat per note), not at the next rebuild."""
        assert self.graph is not None
        gone = [n[5:] for n in self.graph.notes() if not (self.vault / n[5:]).is_file()]
        for path in gone:
            self.graph.remove_note(path)
        if gone:
            log.info("%d note(s) deleted while stopped left the graph", len(gone))
        return gone

    def _apply(self, kind: str, a: object, b: object) -> None:
        assert self.graph is not None
        if kind == "update":
            assert isinstance(a, NoteFacts)
            if a.path not in self.exclude:
                self.graph.update_from_facts(a)
        elif kind == "remove":
            self.graph.remove_note(str(a))
        elif kind == "rename":
            if self.graph.has_note(str(a)):
                self.graph.rename_note(str(a), str(b))
        elif kind == "rebuild":
            self.graph, _ = load_or_rebuild(self.vault, self.saved, self.exclude, rebuild=True)

    def _render(self) -> None:
        assert self.graph is not None
        started = time.monotonic()
        try:
            note, canvas, self.analysis = render_outputs(self.graph, self.analysis)
            self.saved.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.saved, self.graph.to_json())
            self._save_clusters()
        except Exception:  # noqa: BLE001 - keep the daemon alive; next change retries
            log.exception("rendering the graph note failed")
            return
        self.renders += 1
        took = time.monotonic() - started
        self._earliest = time.monotonic() + took * (1 / RENDER_SHARE - 1)
        log.info("graph note rendered in %.2f s", took)
        self.on_render(note, canvas)
