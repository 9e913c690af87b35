"""A second process edits ``inbox.md`` every 10 ms while the daemon annotates 200 lines.

The daemon (``vaultd run``, a subprocess) works through 200 source lines, each
annotated queued → working → done, while :mod:`tests.faults.editor`, another process,
adds a line every 10 ms: in place (append, or truncate-and-rewrite as Obsidian saves)
and by rename. Lines are user text in any script, task-list items, lines that merely
look like annotations, and links to more subtitle files (which become jobs themselves).

Property, checked on the final file: every pre-existing line is unchanged (source lines
may only have gained the daemon's annotation at their end) and the lines the editor
added are each present exactly once, in order, after them; every source line ends done.

The end-to-end run draws its script from a seeded RNG (a run takes ~30 s, too long for
Hypothesis to search). The same property is then searched by Hypothesis in process:
an editor process runs the drawn script while this process rewrites every annotation
through :func:`vault_tools.inbox.edit_inbox` (the daemon's compare-and-swap) flat out.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.faults.common import (
    daemon_ready,
    kill9,
    make_lectures,
    scales,
    seeded_rng,
    tail,
    terminate,
    write_config,
)
from tests.helpers import start_daemon, vaultd_env, wait_for
from vault_tools.inbox import (
    InboxBusy,
    Status,
    annotate,
    edit_inbox,
    parse_inbox,
    release_replaced,
    strip_annotation,
)

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Size:
    sources: int  # source lines the daemon annotates
    files: int  # distinct subtitle files they link (the same file twice is one job)
    edits: int  # lines the editor adds (one every 10 ms)
    extra: int  # extra subtitle files the editor may link
    runs: int  # whole daemon runs, each with its own script
    examples: int  # Hypothesis examples of the in-process compare-and-swap property


SIZES = {"reduced": Size(200, 50, 800, 8, 1, 6), "full": Size(200, 200, 3000, 40, 3, 150)}
HEADER = ("# Inbox\n\nDo not lose a word of this.\n\n"
          "- [ ] buy index cards  \n\t* indented note — with a dash ✅ that is mine\n\n")
# Everything a line may hold, except what changes the document structure around it
# (line breaks of any kind, code fences, HTML comments) or is a source by accident.
_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_ALPHABET = ("abcdefghijklmnopqrstuvwxyzABCXYZ 0123456789 \t.,;:!?'\"()[]{}<>|#*_=+-/\\"
             " —–…✅⏳❌⚙️🔁 éüßø ñ ÄÖ 漢字かな 한글 עברית العربية 😀👩‍🔬🏳️‍🌈 \u0301\u200d\u00a0")


def _plain_line(s: str) -> bool:
    stripped = s.lstrip()
    return not stripped.startswith(("```", "~~~", "<!--")) and "youtu" not in s.lower() \
        and not any(ext in s.lower() for ext in (".srt", ".vtt", ".txt"))


TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=_BREAKS)
               | st.sampled_from(_ALPHABET), max_size=40).filter(_plain_line)
HOW = st.sampled_from(["append", "rewrite", "rename"])


def line_strategy(extra_lines: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        TEXT,
        TEXT.map(lambda s: f"- [ ] {s}"),
        TEXT.map(lambda s: f"note {s} — ✅ [[not a link]]"),  # looks like ours, is not
        st.sampled_from(extra_lines),  # a new source while the daemon works
    )


def random_script(rng: random.Random, n: int, extra_lines: list[str]) -> list[list[str]]:
    """The same kinds of lines, drawn from a seeded RNG (one daemon run is ~30 s, too
    long to let Hypothesis search; the in-process property below does that)."""
    def text() -> str:
        while True:
            s = "".join(rng.choice(_ALPHABET) for _ in range(rng.randrange(41)))
            if _plain_line(s):
                return s

    def line() -> str:
        if rng.random() < 0.03:  # a few new sources: each one is a job more to wait for
            return rng.choice(extra_lines)
        kind = rng.randrange(3)
        return [text(), f"- [ ] {text()}", f"note {text()} — ✅ [[not a link]]"][kind]

    return [[line(), rng.choice(["append", "rewrite", "rename"])] for _ in range(n)]


def lines_of(text: str) -> list[str]:
    return text.split("\n")


def without_annotations(text: str) -> list[str]:
    """The file's lines with the daemon's annotation taken off source lines only."""
    sources = {line.index for line in parse_inbox(text)}
    out = []
    for i, raw in enumerate(text.splitlines(keepends=True)):
        body = raw.rstrip("\r\n")
        out.append(strip_annotation(body)[0] if i in sources else body)
    return out


def run_editor(inbox: Path, script: list[list[str]], folder: Path,
               pace: float = 0.01) -> subprocess.Popen:  # type: ignore[type-arg]
    script_file = folder / "script.json"
    script_file.write_text(json.dumps(script), encoding="utf-8")
    return subprocess.Popen([sys.executable, "-m", "tests.faults.editor", str(inbox),
                             str(script_file), str(pace)], cwd=ROOT)


def link_form(line: str, form: int) -> str:
    """The same file linked another way (wikilink with alias, markdown link, bare path)."""
    target = line.split("[[", 1)[1].split("]]", 1)[0]
    forms = [line, f"- [[{target}|that lecture]] again", f"* [a lecture]({target})",
             f"1. {target}"]
    return forms[form % len(forms)]


def all_done(inbox: Path, n_sources: int) -> bool:
    found = parse_inbox(inbox.read_text(encoding="utf-8"))
    return len(found) == n_sources and all("✅" in x.annotation for x in found)


def check_edits_survived(before: str, script: list[list[str]], final: str) -> None:
    expected = lines_of(before.rstrip("\n")) + [ln for ln, _ in script]
    got = without_annotations(final)
    # Every pre-existing line unchanged; each added line once, in order, after them.
    assert got == expected, first_difference(expected, got)


@pytest.mark.parametrize("scale", scales())
def test_editor_every_10ms_while_the_daemon_annotates(tmp_path: Path, scale: str) -> None:
    size = SIZES[scale]
    template = tmp_path / "template"
    lines = make_lectures(template, size.files + size.extra, sentences=12)
    files, extra = lines[: size.files], lines[size.files:]
    sources = [link_form(files[i % size.files], i // size.files) for i in range(size.sources)]
    for run in range(size.runs):
        rng, _seed = seeded_rng(f"editor run {run}")
        script = random_script(rng, size.edits, extra)
        root = tmp_path / f"run{run}"
        vault, state = root / "vault", root / "state"
        vault.mkdir(parents=True)
        shutil.copytree(template / "Lectures", vault / "Lectures")
        write_config(vault, {"daemon": {"workers": 2, "debounce_seconds": 0.05,
                                        "rescan_seconds": 1.0},
                             "pdf": {"enabled": False}})
        # Sources interleaved with the user's own notes about them.
        before = HEADER + "".join(
            f"{src}\n" + (f"  - my note on lecture {i}: re-watch part 2\n" if i % 7 == 0
                          else "")
            for i, src in enumerate(sources))
        inbox = vault / "inbox.md"
        inbox.write_text(before, encoding="utf-8")
        log = root / "daemon.log"
        proc = start_daemon(vault, vaultd_env(state), log=log)
        editor = None
        try:
            wait_for(partial(daemon_ready, proc, state), timeout=120, interval=0.05,
                     what="daemon start-up")
            editor = run_editor(inbox, script, root)
            assert editor.wait(timeout=600) == 0
            done_at_end = sum("✅" in x.annotation for x in
                              parse_inbox(inbox.read_text(encoding="utf-8")))
            n_sources = size.sources + sum(1 for ln, _ in script if ln in extra)
            wait_for(partial(all_done, inbox, n_sources), timeout=300, interval=0.25,
                     what="every source line done")
            assert terminate(proc) == 0, tail(log)
        finally:
            if editor is not None and editor.poll() is None:
                editor.kill()
                editor.wait(10)
            kill9(proc)
        # The editor must have overlapped the daemon's work to prove anything.
        assert done_at_end < n_sources, "the daemon finished before the editor did"
        check_edits_survived(before, script, inbox.read_text(encoding="utf-8"))
        assert "Traceback" not in tail(log, 10**9)


def cycle_statuses(text: str, turn: int) -> str:
    """What the daemon's writer does to the inbox, without the daemon: give every
    source line the next status in a cycle (so each call really rewrites the file)."""
    kinds = [Status("queued"), Status("working"), Status("waiting", "YouTube [blocked]"),
             Status("done", "[[Study Notes/A note|A note]]"), Status("failed", "no\nway|")]
    found = parse_inbox(text)
    statuses: dict[int, Status | None] = {
        line.index: kinds[(turn + line.index) % len(kinds)] for line in found}
    return annotate(text, statuses, {line.index: line.body for line in found})


@pytest.mark.parametrize("scale", scales())
def test_compare_and_swap_against_an_editor_process(tmp_path_factory: pytest.TempPathFactory,
                                                     scale: str) -> None:
    """Hypothesis draws the edit script; the editor process runs it (2 ms apart) while
    this process rewrites the inbox's annotations through ``edit_inbox`` as fast as it
    can. Every edit must survive."""
    size = SIZES[scale]
    sources = [f"- [[Lectures/file-{i}.srt]] https://youtu.be/abcdefghij{i % 10}"
               for i in range(20)]

    explore = {"derandomize": False} if scale == "full" else {}  # see tests/conftest.py

    @settings(max_examples=size.examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), **explore)
    @given(script=st.lists(st.tuples(line_strategy(sources[:3]), HOW).map(list),
                           min_size=1, max_size=60),
           user_lines=st.lists(TEXT, max_size=5))
    def run(script: list[list[str]], user_lines: list[str]) -> None:
        root = tmp_path_factory.mktemp("cas")
        inbox = root / "inbox.md"
        before = "\n".join([*user_lines, *sources]) + "\n"
        inbox.write_text(before, encoding="utf-8")
        editor = run_editor(inbox, script, root, pace=0.002)
        turn = 0
        try:
            while editor.poll() is None:
                turn += 1
                try:
                    edit_inbox(inbox, lambda t, n=turn: cycle_statuses(t, n))
                except InboxBusy:
                    continue
            assert editor.returncode == 0
            edit_inbox(inbox, lambda t: cycle_statuses(t, turn + 1))
        finally:
            if editor.poll() is None:
                editor.kill()
                editor.wait(10)
            release_replaced(inbox.absolute())
        check_edits_survived(before, script, inbox.read_text(encoding="utf-8"))

    run()


def first_difference(expected: list[str], got: list[str]) -> str:
    for i, (a, b) in enumerate(zip(expected, got, strict=False)):
        if a != b:
            return f"line {i}: expected {a!r}, got {b!r}"
    return f"lengths differ: expected {len(expected)} lines, got {len(got)}"
