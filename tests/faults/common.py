"""Shared pieces of the fault suite: sizes, vault builders, read-only ledger access and
the whole-vault invariants every fault test ends with.

Sizes: each scenario runs in a *reduced* form in the default (CI) run and in a *full*
form marked ``slow`` that only runs with ``VAULTD_FAULTS_FULL=1``::

    VAULTD_FAULTS_FULL=1 .venv/bin/pytest -m slow tests/faults
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import TOPICS, lecture_srt, wait_for
from vault_tools import frontmatter
from vault_tools.inbox import InboxLine, parse_inbox

FULL_ENV = "VAULTD_FAULTS_FULL"
FULL = os.environ.get(FULL_ENV) == "1"
SEED_ENV = "VAULTD_FAULTS_SEED"

USER_TEXT = "# Inbox\n\nMy reading list for the exam — do not lose this line!\n\n"
TEMP_MARKER = ".vaultd-tmp"
NOTES = "Study Notes"
_GENERATED = re.compile(r"vaultd\.dispatcher: .*?\bgenerated (\S+) \(")
_NUMBERED = re.compile(r" \(\d+\)$")


def scales() -> list[Any]:
    """``reduced`` (default run) and ``full`` (slow, only with VAULTD_FAULTS_FULL=1)."""
    return [
        pytest.param("reduced", id="reduced"),
        pytest.param("full", id="full", marks=[
            pytest.mark.slow,
            pytest.mark.skipif(not FULL, reason=f"full size: set {FULL_ENV}=1 (see "
                               "docs/faults.md)"),
        ]),
    ]


def seeded_rng(label: str) -> tuple[random.Random, int]:
    """A fresh RNG; its seed comes from VAULTD_FAULTS_SEED when set (to replay a run)."""
    seed = int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(2**32))
    print(f"{label}: {SEED_ENV}={seed}")
    return random.Random(seed), seed


# ----------------------------------------------------------------------------- vaults


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def write_config(vault: Path, sections: dict[str, dict[str, Any]]) -> None:
    out = []
    for name, values in sections.items():
        out.append(f"[{name}]")
        out.extend(f"{k} = {toml_value(v)}" for k, v in values.items())
        out.append("")
    (vault / ".vaultd").mkdir(parents=True, exist_ok=True)
    (vault / ".vaultd" / "config.toml").write_text("\n".join(out), encoding="utf-8")


def make_lectures(vault: Path, n: int, *, sentences: int = 30, folder: str = "Lectures"
                  ) -> list[str]:
    """``n`` subtitle files with distinct titles; returns their inbox lines."""
    (vault / folder).mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        topic = f"{TOPICS[i % len(TOPICS)]}-{i:03d}"
        name = f"{topic}.srt"
        (vault / folder / name).write_text(lecture_srt(topic, sentences, seed=i),
                                           encoding="utf-8")
        lines.append(f"- [ ] [[{folder}/{name}]]")
    return lines


# ----------------------------------------------------------------------------- ledger


def ledger_file(state: Path) -> Path | None:
    found = sorted(state.glob("*/ledger.sqlite3"))
    assert len(found) <= 1, found
    return found[0] if found else None


def read_jobs(state: Path) -> dict[str, dict[str, Any]]:
    """Every ledger row (without the big text columns), opened read-only; {} before the
    daemon made its ledger."""
    path = ledger_file(state)
    if path is None:
        return {}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    db.row_factory = sqlite3.Row
    try:
        rows = db.execute(
            "SELECT key, state, attempts, write_attempts, waiting, last_error, generated_at,"
            " note_path, assessment_path, input_tokens, output_tokens, cache_read_tokens,"
            " cache_write_tokens, cost_usd, length(content) AS content_len FROM jobs").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # a ledger the daemon is (re)creating right now
            return {}
        raise
    finally:
        db.close()
    return {r["key"]: dict(r) for r in rows}


def generations_in_log(text: str) -> Counter[str]:
    """How many times each job's generation was committed, from the daemon's log."""
    return Counter(_GENERATED.findall(text))


# ----------------------------------------------------------------------------- daemon


def kill9(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(30)


def terminate(proc: subprocess.Popen, timeout: float = 90) -> int:  # type: ignore[type-arg]
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout)


def daemon_ready(proc: subprocess.Popen, state: Path) -> bool:  # type: ignore[type-arg]
    """True once this daemon process wrote its heartbeat file (start-up is over)."""
    if proc.poll() is not None:
        raise AssertionError(f"vaultd exited early with code {proc.returncode}")
    for path in state.glob("*/daemon.json"):
        try:
            if json.loads(path.read_text(encoding="utf-8")).get("pid") == proc.pid:
                return True
        except (OSError, ValueError):
            continue
    return False


def tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-n:]
    except OSError:
        return ""


# ----------------------------------------------------------------------------- checks


def inbox_lines(vault: Path) -> list[InboxLine]:
    return parse_inbox((vault / "inbox.md").read_text(encoding="utf-8"))


def final_lines(vault: Path) -> int:
    """Source lines in a final state (done or failed)."""
    return sum(1 for line in inbox_lines(vault) if any(m in line.annotation for m in "✅❌"))


def file_problems(vault: Path) -> list[str]:
    """Temp files left behind, empty files, and notes, PDFs or canvases cut short."""
    problems = []
    for path in sorted(vault.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(vault).as_posix()
        if TEMP_MARKER in path.name:
            problems.append(f"temp file left behind: {rel}")
            continue
        data = path.read_bytes()
        if not data:
            problems.append(f"empty file: {rel}")
        elif path.suffix == ".pdf":
            if not data.startswith(b"%PDF-") or b"%%EOF" not in data[-1024:]:
                problems.append(f"partial PDF: {rel}")
        elif path.suffix == ".canvas":
            try:
                json.loads(data)
            except ValueError:
                problems.append(f"partial canvas: {rel}")
        elif path.suffix == ".md" and rel.startswith(f"{NOTES}/"):
            meta, body = frontmatter.split(data.decode("utf-8", "replace"))
            if not meta or meta.get("type") not in ("study-note", "assessment") \
                    or not body.strip():
                problems.append(f"partial note: {rel}")
    return problems


def all_done(state: Path, n: int) -> bool:
    """The ledger holds exactly ``n`` jobs and every one is done."""
    jobs = read_jobs(state)
    return len(jobs) == n and all(j["state"] == "done" for j in jobs.values())


def wait_all_done(state: Path, n: int, *, timeout: float = 120.0,
                  what: str = "every source done") -> None:
    """Poll the ledger until :func:`all_done` (the daemon resumed and finished)."""
    wait_for(partial(all_done, state, n), timeout=timeout, interval=0.3, what=what)


def check_all_done(vault: Path, expected_bodies: list[str], *, pdf: bool) -> None:
    """No lost job, no duplicate note, every line done and linking an existing note."""
    lines = inbox_lines(vault)
    assert [line.body for line in lines] == expected_bodies
    notes_dir = vault / NOTES
    files = sorted(notes_dir.glob("*.md"))
    study = [f for f in files if not f.stem.endswith("(Assessment)")]
    assessments = [f for f in files if f.stem.endswith("(Assessment)")]
    n = len(set(expected_bodies))
    assert len(study) == n and len(assessments) == n, [f.name for f in files]
    numbered = [f.name for f in files if _NUMBERED.search(f.stem.removesuffix(" (Assessment)"))]
    assert not numbered, f"duplicate notes: {numbered}"
    keys = []
    for note in study:
        meta, _ = frontmatter.split(note.read_text(encoding="utf-8"))
        assert meta is not None and meta["type"] == "study-note", note
        keys.append(meta["source_key"])
        target = vault / (str(meta["assessment"])[2:-2].split("|")[0] + ".md")
        assert target.is_file(), (note, meta["assessment"])
    assert len(set(keys)) == n, Counter(keys).most_common(3)
    for line in lines:
        link = re.search(r"✅ \[\[([^\]|]+)", line.annotation)
        assert link, f"line not done: {line.body}{line.annotation}"
        assert (vault / f"{link.group(1)}.md").is_file(), line
    if pdf:
        pdfs = sorted((vault / "PDF" / NOTES).glob("*.pdf"))
        assert sorted(p.stem for p in pdfs) == sorted(f.stem for f in files)
    assert file_problems(vault) == []
