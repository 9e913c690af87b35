"""Louvain clustering on arrays (the graph note's topic clusters).

What a user sees: notes on one topic end up in one cluster, every note in exactly one,
the clusters are as good as networkx's own Louvain finds, and they are the same on every
render of the same vault.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from vault_tools.communities import louvain, strongest_neighbour_start


def planted(groups: int, size: int, p_in: float, p_out: float, seed: int
            ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, list[set[str]]]:
    rng = np.random.default_rng(seed)
    nodes = [f"n{g}-{i}" for g in range(groups) for i in range(size)]
    n = len(nodes)
    i, j = np.triu_indices(n, 1)
    same = (i // size) == (j // size)
    keep = rng.random(len(i)) < np.where(same, p_in, p_out)
    src, dst = i[keep], j[keep]
    truth = [set(nodes[g * size:(g + 1) * size]) for g in range(groups)]
    return nodes, src, dst, np.ones(len(src)), truth


def modularity(nodes: list[str], src: np.ndarray, dst: np.ndarray, w: np.ndarray,
               parts: list[set[str]]) -> float:
    G = nx.Graph()
    G.add_nodes_from(nodes)
    for u, v, x in zip(src.tolist(), dst.tolist(), w.tolist(), strict=True):
        a, b = nodes[u], nodes[v]
        G.add_edge(a, b, weight=G[a][b]["weight"] + x if G.has_edge(a, b) else x)
    return nx.community.modularity(G, parts, weight="weight")


def test_planted_topics_are_recovered_exactly() -> None:
    nodes, src, dst, w, truth = planted(6, 30, 0.35, 0.01, seed=1)
    found = louvain(nodes, src, dst, w, seed=42)
    assert sorted(map(sorted, found)) == sorted(map(sorted, truth))


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_as_good_as_networkx_louvain(seed: int) -> None:
    """Noisy structure: modularity within 0.01 of networkx's on the same graph."""
    nodes, src, dst, w, _ = planted(12, 40, 0.12, 0.02, seed=seed)
    w = np.random.default_rng(seed).choice([0.3, 1.0], size=len(src))
    ours = louvain(nodes, src, dst, w, seed=42)
    G = nx.Graph()
    G.add_nodes_from(nodes)
    G.add_weighted_edges_from(
        (nodes[u], nodes[v], x) for u, v, x in zip(src.tolist(), dst.tolist(), w.tolist(),
                                                  strict=True))
    theirs = nx.community.louvain_communities(G, weight="weight", seed=42)
    assert modularity(nodes, src, dst, w, ours) >= \
        nx.community.modularity(G, theirs, weight="weight") - 0.01


def test_every_node_once_deterministic_and_warm_start_stable() -> None:
    nodes, src, dst, w, _ = planted(8, 25, 0.3, 0.015, seed=5)
    nodes = [*nodes, "lonely-a", "lonely-b"]  # no edges at all
    first = louvain(nodes, src, dst, w, seed=42)
    flat = sorted(x for part in first for x in part)
    assert flat == sorted(nodes)  # each node in exactly one cluster
    assert {"lonely-a"} in first and {"lonely-b"} in first
    assert louvain(nodes, src, dst, w, seed=42) == first
    previous = {x: k for k, part in enumerate(first) for x in part}
    warm = louvain(nodes, src, dst, w, seed=42, initial=previous)
    # Warm-started from its own result: topics stay put (only stragglers move), and the
    # clustering is no worse.
    for part in warm:
        assert max(len(part & old) for old in first) >= 0.8 * len(part)
    assert modularity(nodes, src, dst, w, warm) >= modularity(nodes, src, dst, w, first) - 1e-9


def test_degenerate_graphs() -> None:
    empty = np.array([], dtype=np.int64)
    assert louvain([], empty, empty, np.array([]), seed=1) == []
    assert louvain(["a", "b"], empty, empty, np.array([]), seed=1) in ([{"a"}, {"b"}],
                                                                         [{"b"}, {"a"}])
    pair = louvain(["a", "b"], np.array([0]), np.array([1]), np.array([1.0]), seed=1)
    assert pair == [{"a", "b"}]


def test_cold_start_puts_each_note_with_its_strongest_concept() -> None:
    nodes = ["c:a", "c:b", "n1", "n2", "n3", "t:x"]
    src = np.array([2, 2, 3, 4, 4])
    dst = np.array([0, 1, 1, 5, 3])  # n3 -> tag x (0.3) and n3 -> n2 (a link)
    w = np.array([1.0, 0.5, 1.0, 0.3, 1.0])
    notes = np.array([False, False, True, True, True, False])
    start = strongest_neighbour_start(nodes, src, dst, w, notes)
    assert start["n1"] == start["c:a"] and start["n2"] == start["c:b"]
    assert start["n3"] == start["t:x"]  # only non-notes are anchors
    assert len({start["c:a"], start["c:b"], start["t:x"]}) == 3
    seeded = louvain(nodes, src, dst, w, seed=1, initial=start)
    assert sorted(x for part in seeded for x in part) == sorted(nodes)
