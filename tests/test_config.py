"""Config file: commented defaults on first run, errors that name the setting, state dirs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from daemon.config import SCHEMA, load_config, render_default_config
from daemon.errors import ConfigError
from daemon.paths import state_dir_for


def test_first_run_writes_commented_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    text = (tmp_path / ".vaultd" / "config.toml").read_text()
    assert tomllib.loads(text) == {s: {} for s in SCHEMA}  # every setting commented out
    for section, settings in SCHEMA.items():
        assert f"[{section}]" in text
        for s in settings:
            assert f"# {s.key} = " in text
            assert config.get(section, s.key) == s.default


def test_uncommenting_a_default_gives_a_valid_config(tmp_path: Path) -> None:
    text = render_default_config()
    uncommented = "\n".join(line[2:] if " = " in line and line.startswith("# ") else line
                            for line in text.splitlines())
    (tmp_path / ".vaultd").mkdir()
    (tmp_path / ".vaultd" / "config.toml").write_text(uncommented)
    load_config(tmp_path)


@pytest.mark.parametrize("body,setting", [
    ("[daemon]\nworkerz = 3\n", "daemon.workerz"),
    ("[deamon]\nworkers = 3\n", "deamon"),
    ("[daemon]\nworkers = 0\n", "daemon.workers"),
    ("[daemon]\nworkers = \"two\"\n", "daemon.workers"),
    ("[daemon]\nworkers = true\n", "daemon.workers"),
    ("[generate]\nbackend = \"gpt\"\n", "generate.backend"),
    ("[vault]\ninbox = \"../outside.md\"\n", "vault.inbox"),
    ("[youtube]\nlanguages = [\"en\", 3]\n", "youtube.languages"),
    ("[daemon\nworkers = 3\n", "config.toml"),
    ("[openai]\nbase_url = \"http://\"\n", "openai.base_url"),
    ("[openai]\nbase_url = \"http://localhost:99999/v1\"\n", "openai.base_url"),
    ("[openai]\nbase_url = \"http://[::1/v1\"\n", "openai.base_url"),
    ("[openai]\nbase_url = \"http://local host:11434/v1\"\n", "openai.base_url"),
])
def test_bad_settings_are_named(tmp_path: Path, body: str, setting: str) -> None:
    (tmp_path / ".vaultd").mkdir()
    (tmp_path / ".vaultd" / "config.toml").write_text(body)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert setting in str(err.value)


def test_cli_exits_2_and_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / ".vaultd").mkdir()
    (tmp_path / ".vaultd" / "config.toml").write_text("[daemon]\nworkers = -1\n")
    proc = subprocess.run([sys.executable, "-m", "daemon.cli", "status", "--vault",
                           str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "daemon.workers" in proc.stderr and "Traceback" not in proc.stderr


def test_a_wrong_type_is_named_in_plain_words(tmp_path: Path) -> None:
    (tmp_path / ".vaultd").mkdir()
    (tmp_path / ".vaultd" / "config.toml").write_text('[daemon]\nworkers = "two"\n')
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert "daemon.workers: must be an integer, got 'two'" in str(err.value)


def test_state_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vault = tmp_path / "My Vault"
    vault.mkdir()
    monkeypatch.delenv("VAULTD_STATE_DIR", raising=False)
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "systemd-state"))
    assert state_dir_for(vault).parent == tmp_path / "systemd-state"
    monkeypatch.setenv("VAULTD_STATE_DIR", str(tmp_path / "mine"))
    first = state_dir_for(vault)
    assert first.parent == tmp_path / "mine" and first.name.startswith("My-Vault-")
    other = tmp_path / "b" / "My Vault"
    other.mkdir(parents=True)
    assert state_dir_for(other) != first  # one folder per vault
    monkeypatch.delenv("VAULTD_STATE_DIR")
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert state_dir_for(vault).parent == tmp_path / "xdg" / "vaultd"


def test_state_dir_inside_the_vault_is_refused(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULTD_STATE_DIR", str(tmp_path / "state"))
    with pytest.raises(ConfigError) as err:
        state_dir_for(tmp_path)
    assert "VAULTD_STATE_DIR" in str(err.value)


def test_configuration_reference_is_current() -> None:
    from daemon.config import render_reference

    doc = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    assert doc.read_text(encoding="utf-8") == render_reference(), \
        "regenerate: python -m daemon.config > docs/configuration.md"
