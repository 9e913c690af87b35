"""``Study Notes.base``: valid YAML with only the keys Obsidian's Bases syntax documents
(help.obsidian.md/bases/syntax), created by the daemon once, never over your file."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.helpers import vaultd, vaultd_env
from vault_tools.bases_file import BASE_NAME, BASE_TEXT

TOP_KEYS = {"filters", "formulas", "properties", "summaries", "views"}
VIEW_KEYS = {"type", "name", "limit", "groupBy", "filters", "order", "summaries"}
PROPERTY_KEYS = {"displayName"}


def check_filter(f: object) -> None:
    """A filter is an expression string or an object with exactly one of and/or/not."""
    if isinstance(f, str):
        return
    assert isinstance(f, dict) and len(f) == 1, f
    ((op, items),) = f.items()
    assert op in ("and", "or", "not") and isinstance(items, list)
    for item in items:
        check_filter(item)


def test_base_file_uses_only_documented_keys() -> None:
    base = yaml.safe_load(BASE_TEXT)
    assert set(base) <= TOP_KEYS
    check_filter(base["filters"])
    formulas = set(base.get("formulas", {}))
    for name, prop in base.get("properties", {}).items():
        assert set(prop) <= PROPERTY_KEYS
        assert re.match(r"^(note|file|formula)\.\w+$", name)
    views = base["views"]
    assert {v["type"] for v in views} == {"table", "cards"}
    for view in views:
        assert set(view) <= VIEW_KEYS, set(view) - VIEW_KEYS
        check_filter(view["filters"])
        for column in view["order"]:
            assert re.match(r"^(note|file|formula)\.\w+$", column), column
            if column.startswith("formula."):
                assert column[8:] in formulas
    names = {v["name"] for v in views}
    assert {"Study notes", "Assessments", "Topics"} <= names
    study = next(v for v in views if v["name"] == "Study notes")
    for column in ("note.title", "note.channel", "formula.minutes", "note.created",
                   "note.tags"):
        assert column in study["order"]


def test_the_daemon_creates_it_once_and_never_over_yours(tmp_path: Path) -> None:
    env = vaultd_env(tmp_path / "state")
    vault = tmp_path / "vault"
    (vault / ".vaultd").mkdir(parents=True)
    (vault / ".vaultd" / "config.toml").write_text('[generate]\nbackend = "offline"\n')
    proc = vaultd("run", "--once", "--vault", str(vault), env=env)
    assert proc.returncode == 0, proc.stderr
    assert (vault / BASE_NAME).read_text(encoding="utf-8") == BASE_TEXT
    mine = "views:\n  - type: table\n    name: Mine\n"
    (vault / BASE_NAME).write_text(mine, encoding="utf-8")
    proc = vaultd("run", "--once", "--vault", str(vault), env=env)
    assert proc.returncode == 0, proc.stderr
    assert (vault / BASE_NAME).read_text(encoding="utf-8") == mine
    (vault / BASE_NAME).unlink()  # you deleted it: created once means not again
    proc = vaultd("run", "--once", "--vault", str(vault), env=env)
    assert proc.returncode == 0, proc.stderr
    assert not (vault / BASE_NAME).exists()


def test_the_daemon_says_it_kept_your_own_base_file(tmp_path: Path) -> None:
    """A Study Notes.base you made before vaultd ever ran is kept, and the log says so
    (and that vaultd's own view is therefore not there), once per start."""
    env = vaultd_env(tmp_path / "state")
    vault = tmp_path / "vault"
    (vault / ".vaultd").mkdir(parents=True)
    (vault / ".vaultd" / "config.toml").write_text('[generate]\nbackend = "offline"\n')
    mine = "views:\n  - type: cards\n    name: My own\n"
    (vault / BASE_NAME).write_text(mine, encoding="utf-8")
    proc = vaultd("run", "--once", "--vault", str(vault), env=env)
    assert proc.returncode == 0, proc.stderr
    assert (vault / BASE_NAME).read_text(encoding="utf-8") == mine
    said = [line for line in proc.stderr.splitlines() if BASE_NAME in line]
    assert len(said) == 1 and " INFO " in said[0], said
    assert f"kept your own {BASE_NAME}" in said[0]
    assert "no vaultd-managed study notes view" in said[0]
