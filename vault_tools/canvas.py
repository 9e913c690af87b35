"""``Knowledge Graph.canvas``: the knowledge graph as a JSON Canvas 1.0 document.

This module owns the canvas layout and its structural validation. Notes are grouped by
the same Louvain clusters as the graph note (:func:`vault_tools.graph_note.analyze`):
one ``group`` node per cluster, its notes as ``file`` nodes on a grid inside it, groups
packed in rows (shelf packing), so no two nodes overlap. Wikilinks between shown notes
become edges. Node ids derive from note paths, so the same note keeps its id across
renders. The canvas is capped (clusters, notes per cluster, edges) so Obsidian's Canvas
view stays usable on a 10,000-note vault; the summary text node says what was left out.

Spec: https://jsoncanvas.org/spec/1.0/
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from typing import Any

from vault_tools.graph import KnowledgeGraph
from vault_tools.graph_note import GraphAnalysis, analyze

NOTE_W, NOTE_H, GAP = 300, 180, 40
PAD, GROUP_GAP, MAX_COLS, ROW_WIDTH = 60, 160, 6, 6000
NODE_TYPES = {"text", "file", "link", "group"}
SIDES = {"top", "right", "bottom", "left"}
ENDS = {"none", "arrow"}


def _nid(note: str) -> str:
    return hashlib.sha1(note.encode("utf-8")).hexdigest()[:16]


def _sides(a: dict[str, Any], b: dict[str, Any]) -> tuple[str, str]:
    dx = (b["x"] + b["width"] / 2) - (a["x"] + a["width"] / 2)
    dy = (b["y"] + b["height"] / 2) - (a["y"] + a["height"] / 2)
    if abs(dx) >= abs(dy):
        return ("right", "left") if dx >= 0 else ("left", "right")
    return ("bottom", "top") if dy >= 0 else ("top", "bottom")


def render_canvas(
    graph: KnowledgeGraph,
    *,
    max_clusters: int = 30,
    max_notes_per_cluster: int = 48,
    max_edges: int = 3000,
    analysis: GraphAnalysis | None = None,
) -> dict[str, Any]:
    """The canvas document (a JSON-ready dict) for ``graph``; deterministic."""
    analysis = analysis or analyze(graph)
    clusters = analysis.clusters[:max_clusters]
    nodes: list[dict[str, Any]] = []
    placed: dict[str, dict[str, Any]] = {}
    x = y = row_h = 0
    for c in clusters:
        shown = c.notes[:max_notes_per_cluster]
        cols = min(MAX_COLS, math.ceil(math.sqrt(len(shown))))
        rows = math.ceil(len(shown) / cols)
        gw = 2 * PAD + cols * NOTE_W + (cols - 1) * GAP
        gh = 2 * PAD + rows * NOTE_H + (rows - 1) * GAP
        if x > 0 and x + gw > ROW_WIDTH:
            x, y, row_h = 0, y + row_h + GROUP_GAP, 0
        label = " ".join(c.label(graph).split())[:80]
        more = len(c.notes) - len(shown)
        nodes.append({
            "id": f"group-{c.index}", "type": "group", "x": x, "y": y,
            "width": gw, "height": gh, "color": str((c.index - 1) % 6 + 1),
            "label": f"{label} ({len(c.notes)})" + (f", {more} not shown" if more else ""),
        })
        for i, note in enumerate(shown):
            r, col = divmod(i, cols)
            node = {
                "id": _nid(note), "type": "file", "file": note[5:],
                "x": x + PAD + col * (NOTE_W + GAP), "y": y + PAD + r * (NOTE_H + GAP),
                "width": NOTE_W, "height": NOTE_H,
            }
            nodes.append(node)
            placed[note] = node
        x += gw + GROUP_GAP
        row_h = max(row_h, gh)
    total = len(graph.notes())
    summary = (
        f"# Knowledge Graph\n\n{total} notes in {len(analysis.clusters)} clusters; "
        f"showing {len(placed)} notes in the {len(clusters)} largest clusters.\n\n"
        "Maintained by vaultd: edits to this canvas are overwritten."
    )
    nodes.insert(0, {
        "id": "summary", "type": "text", "text": summary,
        "x": 0, "y": -(240 + GROUP_GAP), "width": 640, "height": 240,
    })
    links = sorted(
        (u, v) for u, v, k in graph.G.edges(data="kind")
        if k == "link" and u in placed and v in placed
    )[:max_edges]
    edges = []
    for i, (u, v) in enumerate(links, 1):
        a, b = placed[u], placed[v]
        from_side, to_side = _sides(a, b)
        edges.append({
            "id": f"edge-{i}", "fromNode": a["id"], "toNode": b["id"],
            "fromSide": from_side, "toSide": to_side, "toEnd": "arrow",
        })
    return {"nodes": nodes, "edges": edges}


# --------------------------------------------------------------------------- validation


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_node(n: Any, i: int) -> list[str]:
    if not isinstance(n, dict):
        return [f"nodes[{i}]: not an object"]
    where = f"node {n.get('id', i)!r}"
    errs = []
    if not isinstance(n.get("id"), str) or not n["id"]:
        errs.append(f"{where}: id must be a non-empty string")
    if n.get("type") not in NODE_TYPES:
        errs.append(f"{where}: type must be one of {sorted(NODE_TYPES)}")
    for key in ("x", "y", "width", "height"):
        if not _is_int(n.get(key)):
            errs.append(f"{where}: {key} must be an integer")
    if all(_is_int(n.get(k)) for k in ("width", "height")) and min(
        n["width"], n["height"]
    ) <= 0:
        errs.append(f"{where}: width and height must be positive")
    required = {"text": "text", "file": "file", "link": "url"}.get(n.get("type", ""))
    if required and not isinstance(n.get(required), str):
        errs.append(f"{where}: {n['type']} node needs a string {required!r}")
    for key in ("label", "background", "subpath", "color"):
        if key in n and not isinstance(n[key], str):
            errs.append(f"{where}: {key} must be a string")
    if isinstance(n.get("subpath"), str) and not n["subpath"].startswith("#"):
        errs.append(f"{where}: subpath must start with '#'")
    if n.get("backgroundStyle", "cover") not in {"cover", "ratio", "repeat"}:
        errs.append(f"{where}: bad backgroundStyle")
    return errs


def _check_edge(e: Any, i: int, node_ids: set[str]) -> list[str]:
    if not isinstance(e, dict):
        return [f"edges[{i}]: not an object"]
    where = f"edge {e.get('id', i)!r}"
    errs = []
    if not isinstance(e.get("id"), str) or not e["id"]:
        errs.append(f"{where}: id must be a non-empty string")
    for key in ("fromNode", "toNode"):
        if e.get(key) not in node_ids:
            errs.append(f"{where}: {key} {e.get(key)!r} is not a node")
    for key in ("fromSide", "toSide"):
        if key in e and e[key] not in SIDES:
            errs.append(f"{where}: {key} must be one of {sorted(SIDES)}")
    for key in ("fromEnd", "toEnd"):
        if key in e and e[key] not in ENDS:
            errs.append(f"{where}: {key} must be 'none' or 'arrow'")
    for key in ("label", "color"):
        if key in e and not isinstance(e[key], str):
            errs.append(f"{where}: {key} must be a string")
    return errs


def _rect(n: dict[str, Any]) -> tuple[int, int, int, int]:
    return n["x"], n["y"], n["x"] + n["width"], n["y"] + n["height"]


def _intersects(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def validate_canvas(data: Any) -> list[str]:
    """Problems with a JSON Canvas document; empty when it is well formed.

    Checks required keys and types, unique ids (nodes and edges share one namespace),
    edges referencing existing nodes, and that a node touching a group lies wholly
    inside it (groups contain their children; nothing straddles a group's border).
    """
    if not isinstance(data, dict):
        return ["canvas must be a JSON object"]
    nodes, edges = data.get("nodes", []), data.get("edges", [])
    if not isinstance(nodes, list) or not isinstance(edges, list):
        return ["nodes and edges must be arrays"]
    errs: list[str] = []
    for i, n in enumerate(nodes):
        errs += _check_node(n, i)
    ids = [n.get("id") for n in nodes if isinstance(n, dict)]
    ids += [e.get("id") for e in edges if isinstance(e, dict)]
    errs += [f"duplicate id {i!r}" for i, k in sorted(Counter(map(str, ids)).items()) if k > 1]
    node_ids = {n["id"] for n in nodes if isinstance(n, dict) and isinstance(n.get("id"), str)}
    for i, e in enumerate(edges):
        errs += _check_edge(e, i, node_ids)
    if errs:
        return errs
    groups = [n for n in nodes if n["type"] == "group"]
    for n in nodes:
        if n["type"] == "group":
            continue
        r = _rect(n)
        for g in groups:
            gr = _rect(g)
            if _intersects(r, gr) and not _contains(gr, r):
                errs.append(f"node {n['id']!r} straddles group {g['id']!r}")
    return errs


def _contains(outer: tuple[int, ...], inner: tuple[int, ...]) -> bool:
    return (
        outer[0] <= inner[0] and outer[1] <= inner[1]
        and inner[2] <= outer[2] and inner[3] <= outer[3]
    )


def overlapping_nodes(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Pairs of overlapping nodes, except a non-group node wholly inside a group."""
    items = sorted(data["nodes"], key=lambda n: (n["x"], n["id"]))
    out = []
    for i, a in enumerate(items):
        ra = _rect(a)
        for b in items[i + 1:]:
            rb = _rect(b)
            if rb[0] >= ra[2]:
                break
            if not _intersects(ra, rb):
                continue
            nested = (a["type"] == "group") != (b["type"] == "group") and (
                _contains(ra, rb) if a["type"] == "group" else _contains(rb, ra)
            )
            if not nested:
                out.append((a["id"], b["id"]))
    return out
