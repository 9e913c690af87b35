"""Benchmark of the knowledge graph, graph note and canvas on generated vaults.

Measures, for 1k- and 10k-note graphs: ``update_note`` time per note (p50/p99, while
growing the graph note by note, as the vault writer does), graph note render time
(target <= 2 s at 10k), canvas render time, JSON dump/load time and size.

Run:  .venv/bin/python benchmarks/bench_graph.py [--sizes 1000 10000] [--seed 7]
Results are recorded by hand in benchmarks/RESULTS-graph.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machineinfo import cpu_model  # noqa: E402

from vault_tools.canvas import render_canvas, validate_canvas  # noqa: E402
from vault_tools.graph import KnowledgeGraph, NoteFacts  # noqa: E402
from vault_tools.graph_note import render_graph_note  # noqa: E402

WORDS = (
    "gradient descent neural network attention transformer entropy bayes prior "
    "posterior markov chain monte carlo fourier transform eigenvalue matrix vector "
    "calculus integral derivative limit series topology graph tree heap sort search "
    "protein enzyme cell mitosis photosynthesis climate ocean carbon history empire "
    "revolution economy market inflation interest bond equity option risk portfolio "
    "language grammar syntax semantics logic proof induction set group ring field"
).split()


def generate(n: int, seed: int) -> list[NoteFacts]:
    """Realistic-ish notes: topic-biased concepts (zipf-like), tags, links to earlier notes."""
    rng = random.Random(seed)
    n_topics = max(n // 100, 5)
    concepts = [f"{rng.choice(WORDS)} {rng.choice(WORDS)}" for _ in range(n // 3)]
    topics = [rng.sample(concepts, min(30, len(concepts))) for _ in range(n_topics)]
    tags = [f"topic/{w}" for w in WORDS[:40]] + ["video", "lecture", "to-review"]
    facts: list[NoteFacts] = []
    for i in range(n):
        topic = rng.randrange(n_topics)
        title = f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {i}"
        kind = rng.choices(["study-note", "assessment", "user"], [5, 4, 2])[0]
        own = rng.sample(topics[topic], 4) + [rng.choice(concepts)]
        links = [facts[rng.randrange(i)].title or "" for _ in range(rng.randint(0, 4)) if i]
        links += [f"Missing {rng.randrange(n)}"] if rng.random() < 0.1 else []
        facts.append(
            NoteFacts(
                path=f"Study Notes/{title}.md",
                title=title,
                kind=kind,
                tags=[tags[topic % len(tags)], rng.choice(tags)],
                aliases=[f"alias {i}"] if rng.random() < 0.3 else [],
                links=links,
                concepts=own,
                created=f"2025-{1 + i * 12 // n:02d}-{1 + i % 28:02d}T10:00:00",
            )
        )
    return facts


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def bench(n: int, seed: int) -> dict[str, float]:
    facts = generate(n, seed)
    kg = KnowledgeGraph()
    times = []
    for f in facts:
        t0 = time.perf_counter()
        kg.update_from_facts(f)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    note = render_graph_note(kg, now="2025-12-31T00:00:00Z")
    t_note = time.perf_counter() - t0
    t0 = time.perf_counter()
    canvas = render_canvas(kg)
    t_canvas = time.perf_counter() - t0
    assert not validate_canvas(canvas), validate_canvas(canvas)[:5]
    t0 = time.perf_counter()
    raw = kg.to_json()
    t_dump = time.perf_counter() - t0
    t0 = time.perf_counter()
    loaded = KnowledgeGraph.from_json(raw)
    t_load = time.perf_counter() - t0
    assert loaded == kg
    return {
        "notes": n,
        "nodes": kg.G.number_of_nodes(),
        "edges": kg.G.number_of_edges(),
        "update_p50_ms": statistics.median(times) * 1e3,
        "update_p99_ms": pct(times, 0.99) * 1e3,
        "update_max_ms": max(times) * 1e3,
        "graph_note_s": t_note,
        "graph_note_kb": len(note.encode()) / 1024,
        "canvas_s": t_canvas,
        "canvas_nodes": len(canvas["nodes"]),
        "json_dump_s": t_dump,
        "json_load_s": t_load,
        "json_mb": len(raw.encode()) / 2**20,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    print(f"machine: nproc={os.cpu_count()} cpu={cpu_model()} python={platform.python_version()}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    for n in args.sizes:
        r = bench(n, args.seed)
        fields = (f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items())
        print(" ".join(fields))


if __name__ == "__main__":
    main()
