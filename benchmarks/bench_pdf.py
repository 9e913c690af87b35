"""Benchmark: export a 5,000-word study note with tables and code to PDF.

Target (issue 5): <= 1 s per note. Prints cold (first export in the process, includes
font discovery and registration) and warm timings (the daemon's PDF pool is long-lived,
so warm is what each note costs), plus the machine facts recorded in RESULTS-pdf.md.

    .venv/bin/python benchmarks/bench_pdf.py [--words 5000] [--runs 5]
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

from machineinfo import cpu_model  # benchmarks/ is the script's folder

from vault_tools.pdf import export_pdf

_VOCAB = (
    "attention gradient vector matrix token embedding layer softmax loss optimiser "
    "batch epoch weight bias residual normalisation encoder decoder sequence query key "
    "value head dimension training inference model learning rate schedule warmup the of "
    "and to in is that for with as on by this are be it from at which an"
).split()


def make_note(words: int = 5000, seed: int = 7) -> str:
    """A realistic long note: frontmatter, sections, lists, tables, code, callouts, cards."""
    rng = random.Random(seed)

    def sentence(n: int) -> str:
        chosen = [rng.choice(_VOCAB) for _ in range(n)]
        chosen[0] = chosen[0].capitalize()
        return " ".join(chosen) + "."

    parts = [
        "---\ntype: study-note\ntitle: Benchmark Lecture on Attention\n"
        "source: https://www.youtube.com/watch?v=bench000001\nvideo_id: bench000001\n"
        "channel: Bench Channel\nduration: 5400\npublished: 2024-01-02\n"
        "created: 2024-02-03\ntags: [bench, ml]\n---\n",
        "# Benchmark Lecture on Attention\n",
    ]
    count = 0
    section = 0
    while count < words:
        section += 1
        parts.append(f"## Section {section}: {sentence(3)[:-1]}\n")
        for _ in range(3):
            para = " ".join(sentence(rng.randint(8, 18)) for _ in range(4))
            para = para.replace(" the ", " **the** ", 1).replace(" of ", " *of* ", 1)
            link = f"https://youtu.be/bench000001?t={section * 60}"
            parts.append(para + f" See [{section}:00]({link}).\n")
            count += len(para.split())
        parts.append("".join(f"- {sentence(7)}\n" for _ in range(4)))
        count += 28
        if section % 2 == 0:
            rows = "".join(f"| {rng.choice(_VOCAB)} | {sentence(6)} | {rng.randint(1, 99)} |\n"
                           for _ in range(8))
            parts.append("| Term | Meaning | Count |\n|:--|:--|--:|\n" + rows)
            count += 64
        if section % 3 == 0:
            parts.append("```python\n" + "\n".join(
                f"def f{i}(x):\n    return softmax(x @ W{i}) + bias_{i}  # {sentence(5)}"
                for i in range(6)) + "\n```\n")
            count += 60
        if section % 4 == 0:
            parts.append(f"> [!note] Remember\n> {sentence(14)}\n")
            count += 14
    parts.append("## Flashcards\n")
    parts.extend(f"What is term {i}?::{sentence(6)}\n<!--SR:!2026-01-01,3,250-->\n\n"
                 for i in range(10))
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    note = make_note(args.words)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.pdf"
        start = time.perf_counter()
        report = export_pdf(note, out)
        cold = time.perf_counter() - start
        warm = []
        for _ in range(args.runs):
            start = time.perf_counter()
            export_pdf(note, out)
            warm.append(time.perf_counter() - start)
        size = out.stat().st_size
    cpu = cpu_model()
    try:
        import _rl_accel  # type: ignore[import-not-found]  # noqa: F401
        accel = "yes"
    except ImportError:
        accel = "no"
    import os

    print(f"words≈{len(note.split())} chars={len(note)} pages={report.pages} "
          f"pdf={size / 1024:.0f} KiB warnings={len(report.warnings)}")
    print(f"cold {cold:.3f} s; warm median {statistics.median(warm):.3f} s "
          f"(min {min(warm):.3f}, max {max(warm):.3f}, runs {len(warm)})")
    print(f"nproc={os.cpu_count()} cpu={cpu!r} python={platform.python_version()} "
          f"rl_accel={accel}")


if __name__ == "__main__":
    main()
