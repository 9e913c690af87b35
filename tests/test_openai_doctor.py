"""``vaultd doctor`` for the OpenAI-compatible backend, against the loopback server:
Ollama with and without the model (the ``ollama pull`` line), a plain OpenAI-compatible
server (``/v1/models``), a server that is down, and the key never shown."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_openai import FakeOpenAI  # noqa: E402

from daemon.doctor.runner import format_report, run_checks  # noqa: E402
from tests.helpers import closed_port  # noqa: E402

MODEL = "llama3.1:8b"


def vault_for(tmp_path: Path, base_url: str, model: str = MODEL) -> Path:
    vault = tmp_path / "vault"
    (vault / ".vaultd").mkdir(parents=True)
    (vault / "inbox.md").write_text("# Inbox\n")
    (vault / ".vaultd" / "config.toml").write_text(
        f'[generate]\nbackend = "openai"\n\n[openai]\nbase_url = "{base_url}"\n'
        f'model = "{model}"\n')
    return vault


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VAULTD_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def openai_check(vault: Path):  # noqa: ANN201
    checks = run_checks(vault, timeout=3, youtube_url="http://127.0.0.1:9")
    return next(c for c in checks if c.name == "openai"), checks


def test_ollama_with_the_model(tmp_path: Path) -> None:
    with FakeOpenAI(models={MODEL, "other:7b"}) as fake:
        check, checks = openai_check(vault_for(tmp_path, fake.base_url))
    assert check.verdict == "ok" and f"serves {MODEL}" in check.detail
    assert "json_schema" in check.detail
    backend = next(c for c in checks if c.name == "backend")
    assert backend.detail.startswith(f"openai (generate.backend = openai: {MODEL}")


def test_ollama_missing_the_model_gives_the_pull_line(tmp_path: Path) -> None:
    with FakeOpenAI(models={"other:7b"}) as fake:
        check, checks = openai_check(vault_for(tmp_path, fake.base_url))
    assert check.verdict == "fail" and check.fix == f"ollama pull {MODEL}"
    assert "other:7b" in check.detail
    assert f"ollama pull {MODEL}" in format_report(checks)


def test_plain_server_is_asked_for_its_models_with_the_key_hidden(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-local-SECRET-123456"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    with FakeOpenAI(models={"gpt-4.1-mini"}, ollama=False) as fake:
        vault = vault_for(tmp_path, fake.base_url, "gpt-4.1-mini")
        check, checks = openai_check(vault)
        sent = [r for r in fake.requests if r.path == "/v1/models"]
        assert check.verdict == "ok", check
        missing, _ = openai_check(vault_for(tmp_path / "b", fake.base_url, "nope"))
    assert sent and sent[0].headers["Authorization"] == f"Bearer {secret}"
    assert missing.verdict == "fail" and "gpt-4.1-mini" in missing.detail
    assert secret not in format_report(checks)


def test_server_down_is_a_failure_with_a_fix(tmp_path: Path) -> None:
    check, _ = openai_check(vault_for(tmp_path, f"http://127.0.0.1:{closed_port()}/v1"))
    assert check.verdict == "fail" and "unreachable" in check.detail
    assert "ollama serve" in check.fix


def test_other_backends_skip_the_check(tmp_path: Path) -> None:
    vault = vault_for(tmp_path, "http://127.0.0.1:9/v1")
    (vault / ".vaultd" / "config.toml").write_text('[generate]\nbackend = "offline"\n')
    check, _ = openai_check(vault)
    assert check.verdict == "skip"
