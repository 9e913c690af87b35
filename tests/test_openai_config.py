"""The ``[openai]`` config section and ``generate.backend = "openai"``: defaults, errors
that name the bad setting, the key file rules, and the key never in a message."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import load_config
from daemon.errors import ConfigError
from daemon.service.daemon import resolve_backend

SECRET = "sk-local-SECRET-abcdef123"


def vault_with(tmp_path: Path, text: str) -> Path:
    (tmp_path / ".vaultd").mkdir(exist_ok=True)
    (tmp_path / ".vaultd" / "config.toml").write_text(text)
    return tmp_path


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)


def test_two_lines_pick_ollama_defaults(tmp_path: Path) -> None:
    config = load_config(vault_with(tmp_path, '[generate]\nbackend = "openai"\n'))
    backend, why = resolve_backend(config)
    assert backend == "openai"
    assert why == ("generate.backend = openai: llama3.1:8b at http://127.0.0.1:11434/v1")
    assert config.get("openai", "concurrency") == 1


def test_auto_still_means_claude_or_offline(tmp_path: Path) -> None:
    config = load_config(vault_with(tmp_path, "[openai]\nmodel = \"qwen2.5:7b\"\n"))
    assert resolve_backend(config)[0] == "offline"


@pytest.mark.parametrize("text, setting", [
    ('[openai]\nbase_url = "127.0.0.1:11434"\n', "openai.base_url"),
    ("[openai]\ncontext_window_tokens = 512\n", "openai.context_window_tokens"),
    ("[openai]\nconcurrency = 0\n", "openai.concurrency"),
    ('[openai]\nstructured_output = "grammar"\n', "openai.structured_output"),
    ("[openai]\nmodle = \"x\"\n", "openai.modle"),
    ('[generate]\nbackend = "ollama"\n', "generate.backend"),
])
def test_bad_settings_are_named(tmp_path: Path, text: str, setting: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(vault_with(tmp_path, text))
    assert info.value.setting == setting


def test_key_file_must_be_private_and_is_never_shown(tmp_path: Path) -> None:
    key = tmp_path / "openai.key"
    key.write_text(SECRET + "\n")
    key.chmod(0o644)
    config = load_config(vault_with(tmp_path, f'[generate]\nbackend = "openai"\n\n[openai]\n'
                                              f'api_key_file = "{key}"\n'))
    with pytest.raises(ConfigError) as info:
        resolve_backend(config)
    assert info.value.setting == "openai.api_key_file" and "chmod 600" in str(info.value)
    assert SECRET not in str(info.value)
    key.chmod(0o600)
    assert resolve_backend(config)[0] == "openai" and SECRET not in resolve_backend(config)[1]


def test_status_names_the_model_and_server_once(tmp_path: Path) -> None:
    """``vaultd status`` said 'openai, model M at URL (generate.backend = openai: M at
    URL)'; the model and URL appear once."""
    from tests.helpers import vaultd, vaultd_env

    (tmp_path / "v").mkdir()
    vault = vault_with(tmp_path / "v", '[generate]\nbackend = "openai"\n')
    out = vaultd("status", "--vault", str(vault), env=vaultd_env(tmp_path / "state"))
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("backend:"))
    assert line.count("llama3.1:8b") == 1 and line.count("127.0.0.1:11434") == 1, line
    assert line == ("backend: openai, model llama3.1:8b at http://127.0.0.1:11434/v1 "
                    "(generate.backend = openai)"), line
