"""End to end with a local model: ``vaultd run --once`` with ``backend = "openai"``.

A temp vault lists two local lecture transcripts in ``inbox.md``; the config has the two
lines a user with Ollama types (``backend = "openai"`` plus the server's address, here a
loopback stand-in speaking the OpenAI Chat Completions API). No Anthropic key is set.
The vault afterwards must hold a study note and an assessment per lecture, timestamps
inside each lecture, flashcards, the tokens in the frontmatter, and ``status`` must name
the backend and model. One reply is cut at the output limit: it is continued, not asked
again, and ``status`` counts it.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from fake_openai import FakeOpenAI, Reply, text  # noqa: E402

from tests.helpers import lecture_srt, status_json, vaultd, vaultd_env  # noqa: E402
from vault_tools import frontmatter  # noqa: E402
from vault_tools.inbox import parse_inbox  # noqa: E402

MODEL = "qwen2.5:7b-instruct"
STAMP = re.compile(r"`(\d+):(\d{2})`")


CUT = threading.Event()  # the first study note is cut at the output limit, once


def local_model(body: dict[str, Any]) -> Reply:
    """A small model that answers in the requested JSON from the transcript it was sent;
    the first study note it writes is cut at the length limit, and continued when the
    partial reply comes back as the assistant's turn."""
    full = answer(body).text or ""
    last = body["messages"][-1]
    if last["role"] == "assistant":
        return text(full[len(last["content"]):])
    if body["messages"][1]["content"].startswith("Write the study note") and not CUT.is_set():
        CUT.set()
        return text(full[:len(full) // 2], finish_reason="length")
    return text(full)


def answer(body: dict[str, Any]) -> Reply:
    system = body["messages"][0]["content"]
    user = body["messages"][1]["content"]
    lines = re.findall(r"^\[(\d+:\d{2})\] (.+)$", system.split("## Transcript", 1)[-1], re.M)
    gist = [(ts, " ".join(w.split()[:8])) for ts, w in lines]
    if user.startswith("Write the study note"):
        body_md = "## Key concepts\n" + "\n".join(f"- {w} [{ts}]" for ts, w in gist[::6])
        return text(json.dumps({"tldr": f"{gist[0][1]} [{gist[0][0]}].", "tags": ["lecture"],
                                "aliases": [], "key_terms": ["entropy"], "note": body_md}))
    qa = {k: [{"question": f"What is said about {gist[i][1]}?",
               "answer": f"{gist[i + 1][1]} [{gist[i + 1][0]}]"}]
          for i, k in enumerate(("gap", "application", "further", "synthesis"))}
    qa["flashcards"] = [{"front": "What opens the lecture?", "back": gist[0][1]},
                        {"front": "And closes it?", "back": gist[-1][1]}]
    return text(json.dumps(qa))


def test_run_once_with_a_local_openai_compatible_model(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    (vault / "Lectures").mkdir(parents=True)
    (vault / ".vaultd").mkdir()
    inbox = "# Inbox\n\n"
    for i, topic in enumerate(("entropy", "photosynthesis")):
        (vault / "Lectures" / f"{topic}.srt").write_text(lecture_srt(topic, 60, seed=i))
        inbox += f"- [[Lectures/{topic}.srt]]\n"
    (vault / "inbox.md").write_text(inbox)
    env = vaultd_env(tmp_path / "state")
    env.pop("OPENAI_API_KEY", None)
    with FakeOpenAI(local_model, models={MODEL}) as fake:
        (vault / ".vaultd" / "config.toml").write_text(
            f'[generate]\nbackend = "openai"\n\n[openai]\nbase_url = "{fake.base_url}"\n'
            f'model = "{MODEL}"\n\n[pdf]\nenabled = false\n'
            # the two lectures could form a topic; its synthesis calls are another test's
            '\n[topics]\nenabled = false\n')
        proc = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=180)
        assert proc.returncode == 0, proc.stderr[-3000:]
        chats = fake.chat_requests()
    # a note and an assessment per lecture, plus one continuation; nothing re-asked
    assert len(chats) == 5
    continued = [r for r in chats if r.body["messages"][-1]["role"] == "assistant"]
    assert len(continued) == 1
    assert all(r.body["response_format"]["type"] == "json_schema" for r in chats
               if r not in continued)
    lines = parse_inbox((vault / "inbox.md").read_text())
    assert all("✅" in line.annotation for line in lines), [x.annotation for x in lines]
    notes = sorted((vault / "Study Notes").glob("*.md"))
    study = [n for n in notes if not n.stem.endswith("(Assessment)")]
    assessments = [n for n in notes if n.stem.endswith("(Assessment)")]
    assert len(study) == 2 and len(assessments) == 2, notes
    duration = 60 * 5  # 60 cues of 5 s
    for note in study:
        data, body = frontmatter.split(note.read_text())
        assert data["model"] == MODEL and data["tokens"]["in"] > 0
        stamps = [int(m) * 60 + int(s) for m, s in STAMP.findall(body)]
        assert len(stamps) >= 3 and all(0 <= t < duration for t in stamps), stamps
        assert body.lstrip().startswith("> [!tldr]")
    for assessment in assessments:
        body = assessment.read_text()
        assert "#flashcards/" in body and "What opens the lecture?::" in body
        assert "> [!answer]- Answer" in body and STAMP.search(body)
    st = status_json(vault, env)
    assert st["backend"] == "openai" and MODEL in st["model"]
    assert st["usage_today"]["tokens"] > 0 and st["usage_today"]["cost_usd"] == 0
    shown = vaultd("status", "--vault", str(vault), env=env).stdout
    assert f"backend: openai, model {MODEL}" in shown
    assert st["replies"] == {"salvaged": 0, "continued": 1}
    assert "replies: 0 salvaged off-format, 1 continued" in shown
