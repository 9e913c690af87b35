"""Benchmark: vault index build and wikilinking on a generated 10,000-note vault.

Measures, in one run on one machine:
  * ``VaultIndex.build`` over N generated notes (frontmatter with aliases / video ids);
  * building the ``Linker`` from the index;
  * linking one generated 5,000-word study note with our trie linker;
  * the same with a naive linker (one case-insensitive regex per title and alias,
    longest first, first mention only, not markdown-aware), compiled inside and outside
    the timed region;
  * ``Linker.candidates`` and ``sanitize_markdown`` on the same note, for context.

Targets (issue 4): index build <= 3 s, linking <= 20 ms.

    .venv/bin/python benchmarks/bench_linker.py [--notes 10000] [--words 5000] [--seed 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from machineinfo import cpu_model  # noqa: E402

from vault_tools.links import Linker  # noqa: E402
from vault_tools.sanitize import sanitize_markdown  # noqa: E402
from vault_tools.vault_index import VaultIndex  # noqa: E402

MODIFIERS = """working long-term short-term episodic semantic procedural bayesian linear
logistic recurrent convolutional spaced active passive cognitive behavioral neural
quantum classical organic inorganic cellular molecular social economic monetary fiscal
political cultural medieval modern ancient statistical differential integral discrete
continuous stochastic deterministic distributed parallel concurrent functional
object-oriented relational graph-based self-supervised reinforcement transfer
comparative experimental clinical developmental evolutionary ecological""".split()
NOUNS = """memory learning attention inference regression network retrieval repetition
recall encoding consolidation potentiation plasticity theory model analysis equation
calculus algebra geometry topology mechanics thermodynamics entropy evolution selection
genetics metabolism photosynthesis respiration economics inflation policy markets trade
history empire revolution philosophy ethics logic rhetoric grammar syntax semantics
programming algorithms compilers databases transactions caching scheduling concurrency
psychology motivation perception emotion cognition language acquisition""".split()
SUFFIXES = [
    "",
    "",
    "",
    "",
    " Basics",
    " in Practice",
    " (Lecture)",
    " II",
    " 101",
    " Explained",
    " and Its Limits",
    " Revisited",
]
SPECIAL = [
    "C++ Templates",
    "Node.js Streams",
    "Self-Attention",
    "Ökonomie",
    "Volkswirtschaftslehre",
    "Теория вероятностей",
    "Линейная алгебра",
    "Économie politique",
    "Straße und Verkehr",
    "Mind–Body Problem",
    "AI",
    "ML",
    "World War II",
    "The Big-O Notation",
    "E = mc²",
    "Zürich Model",
]
FILLER = """the a of and to in is that for it as with on by this be are from at or an
which can we when more these how about their into our also what first then because
very between each both some other about most such often through during before after
important example students lecture video explains shows idea concept process""".split()


def make_titles(count: int, rng: random.Random) -> list[tuple[str, list[str]]]:
    titles: dict[str, list[str]] = {}
    for special in SPECIAL:
        titles[special] = []
    while len(titles) < count:
        words = [rng.choice(MODIFIERS)] if rng.random() < 0.8 else []
        words.append(rng.choice(NOUNS))
        if rng.random() < 0.25:
            words.append(rng.choice(NOUNS))
        title = " ".join(w.capitalize() for w in words) + rng.choice(SUFFIXES)
        if rng.random() < 0.08:
            title += f" {rng.randint(2, 999)}"
        if title in titles:
            continue
        aliases: list[str] = []
        if rng.random() < 0.5 and len(words) > 1:
            aliases.append("".join(w[0] for w in " ".join(words).replace("-", " ").split()).upper())
        if rng.random() < 0.4:
            aliases.append(" ".join(words) + "s")
        if rng.random() < 0.2:
            aliases.append(f"{rng.choice(NOUNS)} {rng.choice(NOUNS)}")
        titles[title] = aliases
    return list(titles.items())[:count]


def write_vault(root: Path, titles: list[tuple[str, list[str]]], rng: random.Random) -> None:
    folders = ["Study Notes", "Study Notes/Archive", "Inbox", "Projects/Thesis", "Daily", ""]
    for n, (title, aliases) in enumerate(titles):
        folder = root / folders[n % len(folders)]
        folder.mkdir(parents=True, exist_ok=True)
        lines = ["---", "type: study-note", f'title: "{title}"']
        if n % 5 < 2:
            lines.append(f"video_id: v{n:010d}")
        lines.append("tags:\n  - study\n  - generated")
        if aliases:
            lines.append("aliases:")
            lines += [f'  - "{alias}"' for alias in aliases]
        lines += ["created: 2024-05-01", "---", ""]
        body = " ".join(rng.choice(FILLER) for _ in range(rng.randint(80, 400)))
        safe = title.replace("/", "-").replace(":", "-")
        (folder / f"{safe}.md").write_text("\n".join(lines) + f"# {title}\n\n{body}\n")
    for junk in (".obsidian/workspace.md", ".trash/Old.md", "Notes.sync-conflict-1.md"):
        (root / junk).parent.mkdir(parents=True, exist_ok=True)
        (root / junk).write_text("---\naliases: [junk]\n---\n")


def make_note(words: int, titles: list[tuple[str, list[str]]], rng: random.Random) -> str:
    mentions = [t for t, _ in titles] + [a for _, aliases in titles for a in aliases]
    out: list[str] = ["---", "type: study-note", "title: Benchmark Note", "---", ""]
    count = 0
    section = 0
    while count < words:
        section += 1
        out.append(f"## Section {section}: {rng.choice(mentions)}\n")
        for _ in range(rng.randint(2, 4)):
            sentence: list[str] = []
            for _ in range(rng.randint(40, 90)):
                if rng.random() < 0.03:
                    mention = rng.choice(mentions)
                    sentence.append(mention.lower() if rng.random() < 0.5 else mention)
                else:
                    sentence.append(rng.choice(FILLER))
            count += len(sentence)
            text = " ".join(sentence)
            if rng.random() < 0.3:
                text += f" [{section}:15](https://youtu.be/abc123def45?t={section * 60})"
            if rng.random() < 0.2:
                text += " with `inline code` and $x^2$ math"
            out.append(text + ".\n")
        if section % 3 == 0:
            out.append("```python\nmemory = working_memory(attention)\n```\n")
        if section % 4 == 0:
            out.append(f"> [!note] {rng.choice(mentions)}\n> {rng.choice(mentions)} matters.\n")
        if section % 5 == 0:
            out.append(f"- Q: what is {rng.choice(mentions)}?::An answer.\n")
    return "\n".join(out)


def naive_link(text: str, patterns: list[tuple[re.Pattern[str], str]]) -> str:
    """Regex per title: longest first, first mention only, no markdown awareness."""
    taken: list[tuple[int, int]] = []
    used: set[str] = set()
    found: list[tuple[int, int, str]] = []
    for regex, target in patterns:
        if target in used:
            continue
        match = regex.search(text)
        if match and not any(a < match.end() and match.start() < b for a, b in taken):
            taken.append(match.span())
            used.add(target)
            found.append((match.start(), match.end(), target))
    out, position = [], 0
    for start, end, target in sorted(found):
        out += [text[position:start], f"[[{target}|{text[start:end]}]]"]
        position = end
    return "".join(out + [text[position:]])


def compile_naive(titles: list[tuple[str, list[str]]]) -> list[tuple[re.Pattern[str], str]]:
    pairs = [(p, t) for t, aliases in titles for p in [t, *aliases]]
    pairs.sort(key=lambda pair: -len(pair[0]))
    return [(re.compile(rf"(?<!\w){re.escape(p)}(?!\w)", re.IGNORECASE), t) for p, t in pairs]


def timed(fn: Callable[[], object], repeat: int) -> tuple[list[tuple[float, float]], object]:
    """(wall seconds, CPU seconds of this process) per run, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return times, result


def ms(values: list[tuple[float, float]]) -> str:
    wall = [w * 1000 for w, _ in values]
    cpu = [c * 1000 for _, c in values]
    return (
        f"wall median {statistics.median(wall):.1f} ms (min {min(wall):.1f}, max {max(wall):.1f});"
        f" CPU median {statistics.median(cpu):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--notes", type=int, default=10_000)
    parser.add_argument("--words", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    titles = make_titles(args.notes, rng)
    note = make_note(args.words, titles, rng)
    with tempfile.TemporaryDirectory(prefix="vaultd-bench-") as tmp:
        root = Path(tmp)
        write_vault(root, titles, rng)
        build_times, index = timed(lambda: VaultIndex.build(root), 3)
    assert isinstance(index, VaultIndex)
    linker_build, linker = timed(lambda: Linker(index.titles_and_aliases()), 1)
    assert isinstance(linker, Linker)
    link_times, linked = timed(lambda: linker.link(note, self_title="Benchmark Note"), 20)
    cand_times, cands = timed(lambda: linker.candidates(note, 30), 10)
    san_times, _ = timed(lambda: sanitize_markdown(note), 10)
    naive_cold, _ = timed(lambda: naive_link(note, compile_naive(titles)), 1)
    compiled = compile_naive(titles)
    naive_warm, naive_out = timed(lambda: naive_link(note, compiled), 2)
    patterns = sum(1 + len(aliases) for _, aliases in titles)
    print(f"load average at end (other work on the machine): {os.getloadavg()}")
    print(f"date: {datetime.now(UTC).isoformat(timespec='seconds')}")
    print(
        f"machine: nproc={os.cpu_count()}, cpu={cpu_model()}, "
        f"python={platform.python_version()} ({platform.platform()})"
    )
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"vault: {len(index)} notes indexed, {patterns} titles+aliases; "
        f"note: {len(note.split())} words, {len(note)} chars"
    )
    print(f"index build (3 runs, warm page cache): {ms(build_times)}")
    print(f"linker build from index: {ms(linker_build)}")
    print(f"link (ours, 20 runs): {ms(link_times)}; links made: {str(linked).count('[[')}")
    print(f"link (naive regex per title, compile included): {ms(naive_cold)}")
    print(
        f"link (naive regex per title, precompiled, 2 runs): {ms(naive_warm)}; "
        f"links made: {str(naive_out).count('[[')}"
    )
    print(f"candidates (30, 10 runs): {ms(cand_times)}; top: {cands[:3]}")  # type: ignore[index]
    print(f"sanitize_markdown (10 runs): {ms(san_times)}")


if __name__ == "__main__":
    main()
