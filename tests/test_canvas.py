"""JSON Canvas export: validates, lays clusters out without overlaps, deterministic."""

from __future__ import annotations

import copy
import json
import random

from vault_tools.canvas import overlapping_nodes, render_canvas, validate_canvas
from vault_tools.graph import KnowledgeGraph
from vault_tools.graph_note import analyze


def build(n: int = 60, topics: int = 5, seed: int = 1) -> KnowledgeGraph:
    rng = random.Random(seed)
    kg = KnowledgeGraph()
    for k in range(n):
        t = k % topics
        kg.update_note(
            f"Notes/{k:03d} \"odd\" [x].md", title=f"T{k}", tags=[f"topic{t}"],
            links=[f"T{j}" for j in range(t, k, topics)][-2:],
            concepts=[f"c{t}-{i}" for i in rng.sample(range(6), 3)],
            created=None, kind="study-note",
        )
    return kg


def test_canvas_validates_and_covers_every_note() -> None:
    kg = build()
    data = render_canvas(kg)
    assert validate_canvas(data) == []
    json.dumps(data)  # JSON-ready
    files = sorted(n["file"] for n in data["nodes"] if n["type"] == "file")
    assert files == sorted(n[5:] for n in kg.notes())
    groups = [n for n in data["nodes"] if n["type"] == "group"]
    assert len(groups) == len(analyze(kg).clusters) >= 2
    by_id = {n["id"]: n for n in data["nodes"]}
    links = {(u, v) for u, v, k in kg.G.edges(data="kind") if k == "link"}
    assert {
        ("note:" + by_id[e["fromNode"]]["file"], "note:" + by_id[e["toNode"]]["file"])
        for e in data["edges"]
    } == links


def test_notes_sit_inside_their_cluster_group_without_overlaps() -> None:
    kg = build(n=120, topics=7)
    data = render_canvas(kg)
    assert overlapping_nodes(data) == []
    by_file = {n["file"]: n for n in data["nodes"] if n["type"] == "file"}
    groups = [n for n in data["nodes"] if n["type"] == "group"]
    for group, cluster in zip(groups, analyze(kg).clusters, strict=True):
        for note in cluster.notes:
            r = by_file[note[5:]]
            assert group["x"] <= r["x"] and r["x"] + r["width"] <= group["x"] + group["width"]
            assert group["y"] <= r["y"] and r["y"] + r["height"] <= group["y"] + group["height"]


def test_caps_limit_the_canvas_and_say_so() -> None:
    kg = build(n=80, topics=4)
    data = render_canvas(kg, max_clusters=2, max_notes_per_cluster=5)
    assert validate_canvas(data) == [] and overlapping_nodes(data) == []
    assert sum(n["type"] == "file" for n in data["nodes"]) == 10
    summary = next(n for n in data["nodes"] if n["id"] == "summary")
    assert "80 notes" in summary["text"] and "showing 10 notes" in summary["text"]


def test_render_is_deterministic_and_empty_graph_is_valid() -> None:
    kg = build()
    assert render_canvas(kg) == render_canvas(KnowledgeGraph.from_json(kg.to_json()))
    empty = render_canvas(KnowledgeGraph())
    assert validate_canvas(empty) == [] and [n["id"] for n in empty["nodes"]] == ["summary"]


def test_validator_reports_structural_problems() -> None:
    good = render_canvas(build(n=12, topics=2))
    assert validate_canvas(good) == []

    def broken(mutate: object) -> list[str]:
        data = copy.deepcopy(good)
        mutate(data)  # type: ignore[operator]
        return validate_canvas(data)

    file_node = next(n for n in good["nodes"] if n["type"] == "file")
    idx = good["nodes"].index(file_node)
    assert validate_canvas([]) == ["canvas must be a JSON object"]
    assert validate_canvas({"nodes": {}}) == ["nodes and edges must be arrays"]
    assert any("x must be an integer" in e
               for e in broken(lambda d: d["nodes"][idx].update(x=1.5)))
    assert any("needs a string 'file'" in e
               for e in broken(lambda d: d["nodes"][idx].pop("file")))
    assert any("type must be" in e for e in broken(lambda d: d["nodes"][idx].update(type="x")))
    assert any("duplicate id" in e
               for e in broken(lambda d: d["nodes"].append(copy.deepcopy(d["nodes"][idx]))))
    assert any("is not a node" in e
               for e in broken(lambda d: d["edges"][0].update(toNode="ghost")))
    assert any("fromSide" in e for e in broken(lambda d: d["edges"][0].update(fromSide="up")))
    assert any("positive" in e for e in broken(lambda d: d["nodes"][idx].update(width=0)))
    assert any("straddles group" in e
               for e in broken(lambda d: d["nodes"][idx].update(x=d["nodes"][idx]["x"] - 100)))


def test_overlap_detector_finds_overlaps() -> None:
    def node(i: str, x: int, y: int, kind: str = "text") -> dict[str, object]:
        return {"id": i, "type": kind, "x": x, "y": y, "width": 100, "height": 100, "text": ""}

    assert overlapping_nodes({"nodes": [node("a", 0, 0), node("b", 50, 50)]}) == [("a", "b")]
    assert overlapping_nodes({"nodes": [node("a", 0, 0), node("b", 100, 0)]}) == []
    group = {**node("g", -10, -10, "group"), "width": 300, "height": 300}
    assert overlapping_nodes({"nodes": [group, node("a", 0, 0)]}) == []
