"""Knowledge graph model: parsing, resolution, incremental updates == rebuild, JSON."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from vault_tools.graph import KnowledgeGraph, NoteFacts, link_key, note_from_markdown

NOTE = """---
title: "Gradient Descent: a primer"
type: study-note
tags: [ml, '#Optimisation']
aliases:
  - GD
created: 2025-03-01T10:30:00
concepts: [Learning Rate, loss function]
assessment: "[[Gradient Descent - Assessment]]"
---
# Gradient Descent

Uses [[Calculus#Derivatives|derivatives]] and [[Linear Algebra]] and ![[plot.png]].
See [the notes](Study%20Notes/Convexity.md) and [web](https://example.com/x.md).
Tagged #Math/Analysis and #2024 but not x#inline.

```python
# [[Not A Link]] #notatag
```

`[[Inline Code]]` %% [[Commented]] %%
"""


def md(title: str | None = None, *, body: str = "", **fm: object) -> str:
    lines = ["---"]
    if title is not None:
        lines.append(f"title: {json.dumps(title)}")
    lines += [f"{k}: {json.dumps(v)}" for k, v in fm.items()]
    return "\n".join(lines + ["---", body, ""])


def test_note_from_markdown_reads_frontmatter_and_body() -> None:
    f = note_from_markdown("Study Notes/Gradient Descent.md", NOTE)
    assert f.title == "Gradient Descent: a primer"
    assert f.kind == "study-note"
    assert f.aliases == ["GD"]
    assert f.created == "2025-03-01T10:30:00"
    assert f.concepts == ["Learning Rate", "loss function"]
    assert sorted(f.tags) == ["#Optimisation", "Math/Analysis", "ml"]
    assert f.links == [
        "Gradient Descent - Assessment",
        "Calculus#Derivatives|derivatives",
        "Linear Algebra",
        "plot.png",
        "Study Notes/Convexity.md",
    ]


def test_note_without_frontmatter_takes_title_from_file_name() -> None:
    f = note_from_markdown("Ideas/My Idea.md", "Just text with [[Other]].\n")
    assert (f.title, f.kind, f.links) == (None, "user", ["Other"])
    kg = KnowledgeGraph()
    kg.update_from_facts(f)
    assert kg.G.nodes["note:Ideas/My Idea.md"]["title"] == "My Idea"


def test_broken_frontmatter_is_ignored_not_fatal() -> None:
    f = note_from_markdown("a.md", "---\ntitle: [unclosed\n---\n[[B]]\n")
    assert f.title is None and f.links == ["B"]


def test_link_key_normalises_targets() -> None:
    assert link_key("Folder/Note.md#Heading|shown") == "folder/note"
    assert link_key("  Some   Note^block ") == "some note"


def test_update_is_idempotent_and_replaces_outgoing_edges() -> None:
    kg = KnowledgeGraph()
    args = dict(title="A", tags=["x"], links=["B"], concepts=["c1"], created=None,
                kind="study-note")
    kg.update_note("A.md", **args)
    first = kg.snapshot()
    kg.update_note("A.md", **args)
    assert kg.snapshot() == first
    kg.update_note("A.md", **{**args, "tags": ["y"], "links": [], "concepts": ["c2"]})
    assert set(kg.G.successors("note:A.md")) == {"tag:y", "concept:c2"}
    assert "tag:x" not in kg.G and "missing:b" not in kg.G and "concept:c1" not in kg.G


def test_resolution_prefers_path_then_name_then_title_then_alias() -> None:
    kg = KnowledgeGraph()
    kg.update_note("x/Alpha.md", title="Beta", tags=[], links=[], concepts=[], created=None,
                   kind="user", aliases=["Gamma"])
    kg.update_note("y/Beta.md", title="Other", tags=[], links=[], concepts=[],
                   created=None, kind="user")
    kg.update_note("z/Gamma.md", title="Gamma", tags=[], links=[], concepts=[],
                   created=None, kind="user")
    assert kg.resolve("x/Alpha") == "note:x/Alpha.md"
    assert kg.resolve("Beta") == "note:y/Beta.md"  # file name beats title
    assert kg.resolve("gamma") == "note:z/Gamma.md"  # file name beats alias
    assert kg.resolve("Nope") is None


def test_link_before_target_exists_resolves_when_target_arrives() -> None:
    kg = KnowledgeGraph()
    kg.update_note("A.md", title="A", tags=[], links=["B Title"], concepts=[],
                   created=None, kind="user")
    assert kg.G.has_edge("note:A.md", "missing:b title")
    kg.update_note("B.md", title="B Title", tags=[], links=[], concepts=[], created=None,
                   kind="user")
    assert kg.G.has_edge("note:A.md", "note:B.md")
    assert "missing:b title" not in kg.G


def test_remove_turns_incoming_links_into_missing_and_drops_orphaned_terms() -> None:
    kg = KnowledgeGraph()
    kg.update_note("A.md", title="A", tags=["t"], links=["B"], concepts=["c"],
                   created=None, kind="user")
    kg.update_note("B.md", title="B", tags=["t", "u"], links=[], concepts=["d"],
                   created=None, kind="user")
    kg.remove_note("B.md")
    assert kg.G.has_edge("note:A.md", "missing:b")
    assert "tag:u" not in kg.G and "concept:d" not in kg.G and "tag:t" in kg.G
    kg.remove_note("B.md")  # unknown: no error
    kg.remove_note("A.md")
    assert kg.G.number_of_nodes() == 0


def test_rename_keeps_facts_and_reresolves_links() -> None:
    kg = KnowledgeGraph()
    kg.update_note("Notes/B.md", title="Bee", tags=["t"], links=[], concepts=["c"],
                   created="2025-01-01", kind="study-note")
    kg.update_note("A.md", title="A", tags=[], links=["Bee", "Notes/B"], concepts=[],
                   created=None, kind="user")
    kg.update_note("C.md", title=None, tags=[], links=["New Name"], concepts=[],
                   created=None, kind="user")
    kg.rename_note("Notes/B.md", "Archive/New Name.md")
    new = "note:Archive/New Name.md"
    assert "note:Notes/B.md" not in kg.G
    assert kg.G.nodes[new]["title"] == "Bee"  # frontmatter title stays
    assert kg.G.nodes[new]["created"] == "2025-01-01"
    assert set(kg.G.successors(new)) == {"tag:t", "concept:c"}
    assert kg.G.has_edge("note:A.md", new)  # by title
    assert kg.G.has_edge("note:A.md", "missing:notes/b")  # old path no longer exists
    assert kg.G.has_edge("note:C.md", new)  # now matches the new file name
    kg.rename_note("C.md", "D.md")
    assert kg.G.nodes["note:D.md"]["title"] == "D"  # title from file name follows


def test_graph_note_itself_is_never_a_node() -> None:
    kg = KnowledgeGraph()
    kg.update_note("Knowledge Graph.md", title="KG", tags=[], links=["A"], concepts=[],
                   created=None, kind="knowledge-graph")
    assert kg.G.number_of_nodes() == 0


def test_json_round_trip_keeps_graph_and_indexes() -> None:
    kg = KnowledgeGraph()
    kg.update_from_facts(note_from_markdown("Study Notes/Gradient Descent.md", NOTE))
    kg.update_note("Linear Algebra.md", title=None, tags=[], links=["GD"], concepts=[],
                   created=None, kind="user")
    raw = kg.to_json()
    assert "edges" in json.loads(raw) and "links" not in json.loads(raw)
    back = KnowledgeGraph.from_json(raw)
    assert back == kg
    for g in (kg, back):  # indexes restored: later updates behave identically
        g.update_note("Calculus.md", title=None, tags=[], links=[], concepts=[],
                      created=None, kind="user")
        g.remove_note("Linear Algebra.md")
    assert back == kg and back.to_json() == kg.to_json()


def _write_vault(root: Path) -> dict[str, str]:
    files = {
        "Study Notes/Gradient Descent.md": NOTE,
        "Study Notes/Gradient Descent - Assessment.md": md(
            "Gradient Descent - Assessment", type="assessment",
            notes="[[Gradient Descent]]", body="Quiz on [[GD]].",
        ),
        "Calculus.md": md(None, tags="math analysis", body="Limits. [[Linear Algebra]]"),
        "Linear Algebra.md": md("Linear Algebra", aliases=["LA"], concepts=["Vectors"],
                                body="See [[Calculus]] and [[Nowhere]]."),
        "Study Notes/Convexity.md": md("Convexity", concepts=["loss function", "Vectors"],
                                       created="2025-02-02", body="[[LA]] [[la]]"),
        "Knowledge Graph.md": md(None, type="knowledge-graph", body="[[Calculus]]"),
    }
    skipped = {
        ".obsidian/workspace.md": "[[Calculus]]",
        ".trash/Old.md": "[[Calculus]]",
        ".vaultd/x.md": "[[Calculus]]",
        ".hidden/y.md": "[[Calculus]]",
        "Study Notes/image.png": "binary",
    }
    for rel, text in {**files, **skipped}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return files


def test_rebuild_equals_incremental_in_any_order(tmp_path: Path) -> None:
    files = _write_vault(tmp_path)
    rebuilt = KnowledgeGraph.rebuild(tmp_path)
    incremental = KnowledgeGraph()
    for rel in reversed(sorted(files)):  # links arrive before their targets
        incremental.update_from_facts(note_from_markdown(rel, files[rel]))
    assert rebuilt == incremental
    notes = rebuilt.notes()
    assert len(notes) == 5 and "note:Knowledge Graph.md" not in notes
    assert rebuilt.G.has_edge("note:Study Notes/Convexity.md", "note:Linear Algebra.md")
    assert rebuilt.G.has_edge(
        "note:Study Notes/Gradient Descent - Assessment.md",
        "note:Study Notes/Gradient Descent.md",
    )
    assert rebuilt.G.has_edge("note:Linear Algebra.md", "missing:nowhere")
    assert {"tag:math", "tag:analysis", "tag:math/analysis"} <= set(rebuilt.G)


def test_rebuild_after_edits_equals_incremental_updates(tmp_path: Path) -> None:
    files = _write_vault(tmp_path)
    kg = KnowledgeGraph.rebuild(tmp_path)
    (tmp_path / "Calculus.md").rename(tmp_path / "Study Notes/Calculus I.md")
    kg.rename_note("Calculus.md", "Study Notes/Calculus I.md")
    (tmp_path / "Linear Algebra.md").unlink()
    kg.remove_note("Linear Algebra.md")
    text = md("Vectors", concepts=["Vectors"], body="[[Calculus I]] [[Convexity]]")
    (tmp_path / "Vectors.md").write_text(text, encoding="utf-8")
    kg.update_from_facts(note_from_markdown("Vectors.md", text))
    assert kg == KnowledgeGraph.rebuild(tmp_path)
    assert files  # the vault was written


# --- property: any sequence of operations ends equal to a from-scratch build -----------

TITLES = ["Alpha", "Beta", "Gamma", "Delta"]
PATHS = ["Alpha.md", "notes/Beta.md", "notes/Gamma.md", "Delta.md", "x/Alpha.md"]
facts_st = st.builds(
    NoteFacts,
    path=st.sampled_from(PATHS),
    title=st.one_of(st.none(), st.sampled_from(TITLES)),
    kind=st.sampled_from(["study-note", "assessment", "user"]),
    tags=st.lists(st.sampled_from(["a", "B", "#c"]), max_size=2),
    aliases=st.lists(st.sampled_from(TITLES + ["Ep"]), max_size=2),
    links=st.lists(st.sampled_from(TITLES + PATHS + ["Nope", "notes/Beta#h|x"]), max_size=4),
    concepts=st.lists(st.sampled_from(["k1", "K2", "k3"]), max_size=3),
    created=st.one_of(st.none(), st.just("2025-01-01")),
)
op_st = st.one_of(
    st.tuples(st.just("update"), facts_st),
    st.tuples(st.just("remove"), st.sampled_from(PATHS)),
    st.tuples(st.just("rename"), st.tuples(st.sampled_from(PATHS), st.sampled_from(PATHS))),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(op_st, max_size=14))
def test_incremental_equals_from_scratch_for_any_history(ops: list[tuple]) -> None:
    kg = KnowledgeGraph()
    state: dict[str, NoteFacts] = {}
    for op, arg in ops:
        if op == "update":
            kg.update_from_facts(arg)
            state[arg.path] = arg
        elif op == "remove":
            kg.remove_note(arg)
            state.pop(arg, None)
        else:
            old, new = arg
            kg.rename_note(old, new)
            if old in state and old != new:
                f = state.pop(old)
                state[new] = NoteFacts(new, f.title, f.kind, f.tags, f.aliases, f.links,
                                       f.concepts, f.created)
    assert kg == KnowledgeGraph.from_facts(state.values())
    assert KnowledgeGraph.from_json(kg.to_json()) == kg
