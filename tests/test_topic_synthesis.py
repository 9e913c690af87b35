"""Topic synthesis with a model: the real ``anthropic`` SDK against a loopback stand-in.

Checks what a user (and their bill) would: the model reads the study notes (not
transcripts), its overview lands in the note with nothing executable and no link to a
note that does not exist, an unchanged topic costs no second call, a changed topic one
call, the daily cap turns synthesis off (extractive note, no request), and a bad reply
leaves an extractive note rather than no note.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_anthropic import FakeAnthropic, Reply, text  # noqa: E402

from daemon.config import Config  # noqa: E402
from daemon.paths import VaultPaths  # noqa: E402
from daemon.writer.maintained_notes import MaintainedNotes  # noqa: E402
from daemon.writer.note_files import NoteFiles  # noqa: E402
from daemon.writer.topic_keeper import clusters_for, plan_topics  # noqa: E402
from daemon.writer.topic_synthesizer import TopicSynthesizer, synthesizer_for  # noqa: E402
from tests.test_topic_notes import study_note  # noqa: E402
from vault_tools import frontmatter  # noqa: E402
from vault_tools.graph import KnowledgeGraph  # noqa: E402
from vault_tools.topic_clusters import topic_inputs  # noqa: E402

REPLY = {
    "overview": "Brain waves come in bands; the videos agree on alpha and beta. "
                "<script>alert(1)</script> See [[Nonexistent note]] for more.",
    "agree_differ": ["Wave A says gamma is fast; Wave B calls it the fastest band."],
    "open_questions": ["Why do bands overlap?"],
}


def respond(body: dict[str, Any]) -> Reply:
    return text(json.dumps(REPLY))


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with FakeAnthropic(respond) as fake:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0000")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
        monkeypatch.setenv("VAULTD_STATE_DIR", str(tmp_path / "state"))
        vault = tmp_path / "vault"
        vault.mkdir()
        for name in ("Wave A", "Wave B", "Wave C"):
            study_note(vault, name, ["alpha wave", "beta wave", "gamma wave"])
        paths = VaultPaths.from_config(vault, Config.defaults())
        registry = MaintainedNotes(paths, NoteFiles(paths, lambda: None), "Topics")
        yield fake, vault, paths, registry


def synthesizer(paths: VaultPaths, registry: MaintainedNotes, cap: int = 100_000,
                backend: str = "claude") -> TopicSynthesizer:
    config = Config.defaults()
    config.values["generate"].update(retry_max_wait_seconds=0.01, retry_attempts=2)
    config.values["topics"]["daily_token_cap"] = cap
    paths.state.mkdir(parents=True, exist_ok=True)
    synth = synthesizer_for(config, backend, paths.state, registry.tokens_today)
    assert synth is not None
    return synth


def refresh(vault: Path, registry: MaintainedNotes, synth: TopicSynthesizer) -> str:
    graph = KnowledgeGraph.rebuild(vault, exclude=[])
    clusters = clusters_for(topic_inputs(graph), registry)
    registry.apply_topics(plan_topics(vault, registry, clusters, synth))
    (note,) = (vault / "Topics").glob("*.md")
    return note.read_text(encoding="utf-8")


def test_model_synthesis_is_used_cached_and_safe(setup) -> None:
    fake, vault, paths, registry = setup
    synth = synthesizer(paths, registry)
    note = refresh(vault, registry, synth)
    (request,) = fake.message_requests()
    prompt = request.body["messages"][0]["content"]
    assert "=== Video: Wave A" in prompt and "Wave B explains beta wave" in prompt
    assert request.body["model"] == Config.defaults().get("generate", "small_model")
    data, body = frontmatter.split(note)
    assert data["synthesis"] == "model"
    assert "Brain waves come in bands" in body
    assert "<script>" not in body and "alert(1)" not in body
    assert "[[Nonexistent note" not in body and "See Nonexistent note for more" in body
    assert "Wave A says gamma is fast" in body and "Why do bands overlap?" in body
    assert " at `" in body  # key ideas and moments stay extractive, with links
    spent = registry.tokens_today()
    assert spent > 0
    # Nothing changed: no second call, no new tokens, same note.
    assert refresh(vault, registry, synthesizer(paths, registry)) == note
    assert len(fake.message_requests()) == 1 and registry.tokens_today() == spent
    # One note changed: one call for the topic.
    study_note(vault, "Wave C", ["alpha wave", "beta wave", "gamma wave", "delta wave"])
    refresh(vault, registry, synthesizer(paths, registry))
    assert len(fake.message_requests()) == 2 and registry.tokens_today() > spent


def test_daily_cap_and_bad_replies_fall_back_to_extractive(setup) -> None:
    fake, vault, paths, registry = setup
    note = refresh(vault, registry, synthesizer(paths, registry, cap=50))
    assert fake.message_requests() == []  # over the cap: not even asked
    assert frontmatter.split(note)[0]["synthesis"] == "extractive"
    assert "3 videos teach this topic" in note
    fake.queue(text("not json"))
    study_note(vault, "Wave C", ["alpha wave", "beta wave", "gamma wave", "theta"])
    note = refresh(vault, registry, synthesizer(paths, registry))
    assert len(fake.message_requests()) == 1
    assert frontmatter.split(note)[0]["synthesis"] == "extractive"
    assert registry.tokens_today() > 0  # the unusable reply was paid for: it counts
    config = Config.defaults()
    config.values["topics"]["daily_token_cap"] = 0  # 0: never synthesise
    assert synthesizer_for(config, "claude", paths.state, registry.tokens_today) is None
    assert synthesizer_for(Config.defaults(), "offline", paths.state, lambda: 0) is None


def test_openai_compatible_server_writes_the_synthesis(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The same synthesis through the OpenAI-compatible transport (Ollama, llama.cpp…):
    the real ``openai`` SDK against a loopback server."""
    from fake_openai import FakeOpenAI
    from fake_openai import text as openai_text

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("VAULTD_STATE_DIR", str(tmp_path / "state"))
    with FakeOpenAI(lambda body: openai_text(json.dumps(REPLY))) as fake:
        vault = tmp_path / "vault"
        vault.mkdir()
        for name in ("Wave A", "Wave B"):
            study_note(vault, name, ["alpha wave", "beta wave"])
        config = Config.defaults()
        config.values["openai"].update(base_url=fake.base_url, model="llama3.1:8b")
        paths = VaultPaths.from_config(vault, config)
        registry = MaintainedNotes(paths, NoteFiles(paths, lambda: None), "Topics")
        paths.state.mkdir(parents=True)
        synth = synthesizer_for(config, "openai", paths.state, registry.tokens_today)
        assert synth is not None
        note = refresh(vault, registry, synth)
        (request,) = fake.chat_requests()
        assert request.body["model"] == "llama3.1:8b"
        assert "=== Video: Wave B" in request.body["messages"][-1]["content"]
        assert frontmatter.split(note)[0]["synthesis"] == "model"
        assert "Brain waves come in bands" in note and "<script>" not in note
        assert registry.tokens_today() > 0
