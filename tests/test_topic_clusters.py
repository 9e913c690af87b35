"""Topic clusters: Louvain on study notes tied by shared concepts (k strongest ties)."""

from __future__ import annotations

import random

from vault_tools.graph import KnowledgeGraph
from vault_tools.topic_clusters import study_clusters, topic_inputs


def test_planted_topics_survive_a_concept_every_note_shares() -> None:
    """Two subjects of 20 notes each; every note also names one broad concept and a few
    stray ones. Only study notes count: an assessment and a note of yours that name the
    same concepts are not topic members."""
    rng = random.Random(3)
    g = KnowledgeGraph()
    groups = {"bio": [f"cell {i}" for i in range(8)], "econ": [f"price {i}" for i in range(8)]}
    for name, vocab in groups.items():
        for n in range(20):
            concepts = rng.sample(vocab, 4) + ["science", f"stray {name}{n}"]
            g.update_note(f"S/{name}{n}.md", title=None, tags=[], links=[],
                          concepts=concepts, created=None, kind="study-note")
    g.update_note("S/bio0 (Assessment).md", title=None, tags=[], links=[],
                  concepts=groups["bio"], created=None, kind="assessment")
    g.update_note("Mine.md", title=None, tags=[], links=[], concepts=groups["econ"],
                  created=None, kind="user")
    clusters = study_clusters(topic_inputs(g))
    assert sorted(map(sorted, clusters)) == sorted(
        sorted(f"S/{name}{n}.md" for n in range(20)) for name in groups)


def test_no_study_notes_no_clusters() -> None:
    assert study_clusters(topic_inputs(KnowledgeGraph())) == []


def test_notes_sharing_nothing_are_apart() -> None:
    g = KnowledgeGraph()
    for name, concept in (("a", "x"), ("b", "y")):
        g.update_note(f"S/{name}.md", title=None, tags=[], links=[], concepts=[concept],
                      created=None, kind="study-note")
    assert sorted(study_clusters(topic_inputs(g))) == [["S/a.md"], ["S/b.md"]]
