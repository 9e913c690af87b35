"""Graph note: sections, determinism, PageRank parity, Mermaid that parses under attack."""

from __future__ import annotations

import random
import re

import networkx as nx
import pytest

from vault_tools.graph import KnowledgeGraph, note_from_markdown
from vault_tools.graph_note import (
    LIMITS,
    _arrays,
    analyze,
    mermaid_label,
    note_link,
    pagerank,
    render_graph_note,
)

NOW = "2025-06-01T12:00:00Z"
HOSTILE = [
    'Say "hi" [now] | later; done',
    "Line one\nline two",
    "```mermaid\ngraph TD\n```",
    "end",
    "A --> B",
    "%% comment %% <script>alert(1)</script>",
    "subgraph x[y]",
    "#quot; & #35; {curly} (paren)",
    "Ünïcödé 名前 🚀",
]


def build(n_topics: int = 4, per_topic: int = 6, titles: list[str] | None = None,
          seed: int = 3) -> KnowledgeGraph:
    """Topic-structured notes: shared concepts within a topic, links inside and across."""
    rng = random.Random(seed)
    kg = KnowledgeGraph()
    names = titles or [f"Note {t}-{i}" for t in range(n_topics) for i in range(per_topic)]
    for k, title in enumerate(names):
        topic = k % n_topics
        concepts = [f"topic{topic} concept{j}" for j in rng.sample(range(5), 3)]
        links = [names[j] for j in range(topic, len(names), n_topics) if j < k][-2:]
        if rng.random() < 0.2:
            links.append(names[rng.randrange(len(names))])
        kg.update_note(f"Study Notes/{k:03d}.md", title=title, tags=[f"t{topic}", "video"],
                       links=links, concepts=concepts, created=f"2025-01-{k % 28 + 1:02d}",
                       kind="study-note")
    return kg


def mermaid_lines(note: str) -> list[str]:
    blocks = re.findall(r"^```mermaid\n(.*?)^```$", note, re.S | re.M)
    assert len(blocks) == 1
    return blocks[0].splitlines()


# Inside quotes: plain safe characters or entity codes (#quot; #91; ...), nothing else.
LABEL = r'"(?:[^\W_]|[ .,\-_\'+/:?!()@]|#(?:\d+|quot|lt|gt|amp);)*"'


def parse_mermaid(lines: list[str]) -> tuple[dict[str, str], list[tuple[str, str]],
                                              dict[str, list[str]]]:
    """Tiny parser for the subset we emit; every line must match one production."""
    assert lines[0] == "graph LR"
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    groups: dict[str, list[str]] = {}
    current: str | None = None
    for line in lines[1:]:
        if m := re.fullmatch(rf"  subgraph (c\d+)\[({LABEL})\]", line):
            assert current is None
            current = m.group(1)
            groups[current] = []
        elif line == "  end":
            assert current is not None
            current = None
        elif m := re.fullmatch(rf"    (n\d+)\[({LABEL})\]", line):
            assert current is not None and m.group(1) not in nodes
            nodes[m.group(1)] = m.group(2)
            groups[current].append(m.group(1))
        elif m := re.fullmatch(r"  (n\d+) --> (n\d+)", line):
            assert m.group(1) in nodes and m.group(2) in nodes
            edges.append((m.group(1), m.group(2)))
        else:
            raise AssertionError(f"unparseable mermaid line: {line!r}")
    assert current is None
    return nodes, edges, groups


def decode(label: str) -> str:
    named = {"quot": '"', "lt": "<", "gt": ">", "amp": "&"}
    return re.sub(r"#(\w+);", lambda m: named.get(m.group(1)) or chr(int(m.group(1))),
                  label[1:-1])


def test_mermaid_block_parses_and_matches_top_clusters() -> None:
    kg = build()
    note = render_graph_note(kg, now=NOW)
    nodes, edges, groups = parse_mermaid(mermaid_lines(note))
    analysis = analyze(kg)
    top = analysis.clusters[: LIMITS["mermaid_clusters"]]
    assert len(groups) == len(top) >= 2
    shown: list[str] = []
    for c, (_, members) in zip(top, groups.items(), strict=True):
        expected = c.notes[: LIMITS["mermaid_notes"]]
        assert [decode(nodes[m]) for m in members] == [
            kg.G.nodes[n]["title"] for n in expected
        ]
        shown += expected
    by_mermaid = dict(zip(nodes, shown, strict=True))
    expected_edges = {(u, v) for u, v in kg.G.subgraph(shown).edges()}
    assert {(by_mermaid[a], by_mermaid[b]) for a, b in edges} == expected_edges
    assert len(edges) == len(expected_edges) > 0


def test_hostile_titles_cannot_break_mermaid_or_markdown() -> None:
    kg = build(n_topics=3, per_topic=3, titles=HOSTILE)
    note = render_graph_note(kg, now=NOW)
    nodes, _, _ = parse_mermaid(mermaid_lines(note))
    assert sorted(decode(v) for v in nodes.values()) == sorted(
        " ".join(t.split())[:40] if len(" ".join(t.split())) <= 40
        else " ".join(t.split())[:39].rstrip() + "…" for t in HOSTILE
    )
    assert note.count("```") == 2  # only the mermaid fence opens and closes
    assert "<script>" not in note
    for link in re.findall(r"\[\[(.*?)\]\]", note):
        target, _, label = link.partition("|")
        assert re.fullmatch(r"Study Notes/\d{3}", target)
        assert not set(label) & set("[]|\n`<>%$")


def test_hostile_paths_fall_back_to_markdown_links() -> None:
    kg = KnowledgeGraph()
    kg.update_note("Odd [1] #x|y.md", title="Odd", tags=[], links=[], concepts=[],
                   created=None, kind="user")
    assert note_link(kg, "note:Odd [1] #x|y.md") == "[Odd](Odd%20%5B1%5D%20%23x%7Cy.md)"


def test_mermaid_label_escapes_every_special() -> None:
    label = mermaid_label('a"b[c]d|e;f\ng`h<i>#j{k}%')
    assert label.startswith('"') and label.endswith('"')
    assert re.fullmatch(LABEL, label)
    assert not set(re.sub(r"#\w+;", "", label[1:-1])) & set('"[]|;\n`<>{}%#')
    assert decode(label) == 'a"b[c]d|e;f g`h<i>#j{k}%'


def test_render_is_deterministic_across_update_order_and_json() -> None:
    kg = build()
    again = KnowledgeGraph.from_json(kg.to_json())
    shuffled = KnowledgeGraph()
    notes = [(n, dict(kg.G.nodes[n])) for n in kg.notes()]
    random.Random(9).shuffle(notes)
    for nid, a in notes:
        succ = list(kg.G.successors(nid))
        shuffled.update_note(
            nid[5:], title=a["title"], tags=[s[4:] for s in succ if s.startswith("tag:")],
            links=a["links"], concepts=[s[8:] for s in succ if s.startswith("concept:")],
            created=a["created"], kind=a["kind"],
        )
    assert shuffled == kg
    first = render_graph_note(kg, now=NOW)
    assert render_graph_note(kg, now=NOW) == first
    assert render_graph_note(again, now=NOW) == first
    assert render_graph_note(shuffled, now=NOW) == first


def test_pagerank_matches_networkx() -> None:
    kg = build()
    kg.update_note("Dangling.md", title="Dangling", tags=[], links=[], concepts=[],
                   created=None, kind="user")
    a = _arrays(kg)
    ref = nx.DiGraph()
    ref.add_nodes_from(a.nodes)
    for s, d, w, link in zip(a.src, a.dst, a.weight, a.is_link, strict=True):
        ref.add_edge(a.nodes[s], a.nodes[d], weight=w)
        if not link:
            ref.add_edge(a.nodes[d], a.nodes[s], weight=w)
    expected = nx.pagerank(ref, weight="weight")
    got = dict(zip(a.nodes, pagerank(a), strict=True))
    assert got == pytest.approx(expected, abs=1e-6)


def test_sections_counts_orphans_recent_and_suggestions() -> None:
    kg = KnowledgeGraph()
    common = dict(tags=["x"], created=None, kind="study-note")
    kg.update_note("A.md", title="A", links=["B"], concepts=["c1", "c2", "c3"], **common)
    kg.update_note("B.md", title="B", links=["Ghost"], concepts=["c1", "c2"], **common)
    kg.update_note("C.md", title="C", links=[], concepts=["c1", "c2"],
                   **{**common, "created": "2025-05-05"})
    kg.update_note("D.md", title="D", links=[], concepts=["c3"],
                   **{**common, "kind": "user", "created": "2025-05-06"})
    note = render_graph_note(kg, now=NOW)
    assert note.startswith(f'---\ntype: knowledge-graph\nupdated: "{NOW}"\n---\n')
    assert "| 4 | 1 | 3 | 1 | 1 |" in note  # notes, tags, concepts, links, unresolved
    section = note.split("## Suggested links")[1].split("##")[0]
    assert "[[A|A]] ↔ [[C|C]] · shared: c1, c2" in section
    assert "[[B|B]] ↔ [[C|C]] · shared: c1, c2" in section
    assert "[[A|A]] ↔ [[B|B]]" not in section  # already linked
    assert "[[D|D]]" not in section  # shares only one concept
    orphans = note.split("## Orphans")[1].split("##")[0]
    assert "other notes: 2." in orphans and "[[C|C]]" in orphans and "[[D|D]]" in orphans
    recent = note.split("## Recent additions")[1].split("##")[0]
    assert recent.index("[[D|D]]") < recent.index("[[C|C]]")
    assert "[[A|A]]" not in recent  # undated
    assert note_from_markdown("Knowledge Graph.md", note).kind == "knowledge-graph"


def test_empty_graph_renders() -> None:
    note = render_graph_note(KnowledgeGraph(), now=NOW)
    assert "| 0 | 0 | 0 | 0 | 0 |" in note
    assert parse_mermaid(mermaid_lines(note)) == ({}, [], {})


def test_warm_started_clustering_keeps_topics_and_covers_every_note() -> None:
    kg = build(n_topics=4, per_topic=8)
    first = analyze(kg)
    kg.update_note("Study Notes/new.md", title="New one", tags=["t1"], links=["Note 1-0"],
                   concepts=["topic1 concept1", "topic1 concept2"], created="2025-02-01",
                   kind="study-note")
    warm = analyze(kg, previous=first)
    notes = [n for c in warm.clusters for n in c.notes]
    assert sorted(notes) == sorted(kg.notes())  # every note in exactly one cluster
    # Notes of one topic stay together, and the new note joins its topic.
    home = {n: c.index for c in warm.clusters for n in c.notes}
    topic1 = [f"note:Study Notes/{k:03d}.md" for k in range(1, 32, 4)]
    assert len({home[n] for n in topic1}) == 1
    assert home["note:Study Notes/new.md"] == home[topic1[0]]


def demo_like() -> KnowledgeGraph:
    """Three topics as vaultd writes them: a study note (vaultd's 'video-notes' tag plus
    topic tags and concepts) and its assessment ('assessment' tag, a flashcards deck tag)
    linking each other, and one note of the user's per topic."""
    kg = KnowledgeGraph()
    topics = {"Photosynthesis": ["chlorophyll", "calvin cycle", "light reactions"],
              "Spaced repetition": ["forgetting curve", "retrieval practice",
                                    "spaced repetition"],
              "TCP": ["congestion window", "slow start", "packet loss"]}
    for title, concepts in topics.items():
        deck = title.lower().replace(" ", "-")
        kg.update_note(f"Study Notes/{title}.md", title=title,
                       tags=["video-notes", concepts[0].replace(" ", "-")],
                       links=[f"{title} (Assessment)", f"Mine {title}", f"Mine {title}"],
                       concepts=concepts, created="2025-05-01", kind="study-note")
        kg.update_note(f"Study Notes/{title} (Assessment).md", title=f"{title} — Assessment",
                       tags=["assessment", f"flashcards/{deck}"], links=[title],
                       concepts=[], created="2025-05-01", kind="assessment")
        kg.update_note(f"My notes/Mine {title}.md", title=f"Mine {title}", tags=[],
                       links=[], concepts=concepts[:1], created=None, kind="user")
    return kg


def test_clusters_are_named_from_their_notes_concepts_never_vaultd_tags() -> None:
    kg = demo_like()
    note = render_graph_note(kg, now=NOW)
    section = note.split("## Topic clusters")[1].split("## Recent")[0]
    headings = re.findall(r"^### \d+\. (.*) \(\d+ notes\)$", section, re.M)
    assert len(headings) == 3
    concepts = {c for n in kg.notes() for c in kg.G.successors(n) if c.startswith("concept:")}
    labels = {kg.G.nodes[c]["label"] for c in concepts}
    assert set(headings) <= labels, headings
    assert "spaced repetition" in headings  # the concept its notes name, not "forgetting…"
    terms = [t for line in re.findall(r"^Key terms: (.*)$", section, re.M)
             for t in line.split(", ")]
    assert terms and not {"assessment", "video-notes"} & {*terms, *headings}
    assert not [t for t in terms if t.startswith("flashcards")]
    for c in analyze(kg).clusters:
        assert c.label(kg) in labels


def test_hub_degrees_count_distinct_linked_notes() -> None:
    kg = demo_like()
    note = render_graph_note(kg, now=NOW)
    hubs = note.split("## Hubs")[1].split("##")[0]
    # The study note links its assessment and (twice) one note of the user's; it is
    # linked from its assessment. Its tags and concepts are not links.
    assert "[[Study Notes/TCP|TCP]] · 1 in, 2 out" in hubs
    assert "[[Study Notes/TCP (Assessment)|TCP — Assessment]] · 1 in, 1 out" in hubs
    assert "[[My notes/Mine TCP|Mine TCP]] · 1 in, 0 out" in hubs
