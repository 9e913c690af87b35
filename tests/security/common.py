"""Shared pieces of the adversarial suite: a temp vault run by the real CLI, the inbox as
a user reads it, and a search of a whole folder tree for a planted secret."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.helpers import lecture_srt, vaultd, vaultd_env
from vault_tools.inbox import parse_inbox

SECRET = "OUTSIDE-SECRET-7f3a9c"  # planted in files outside the vault; must never get in
CONFIG = ('[generate]\nbackend = "offline"\n[pdf]\nenabled = {pdf}\n'
          '[daemon]\nbackoff_base_seconds = 0.2\n')


def make_vault(tmp_path: Path, lines: list[str], *, pdf: bool = False,
               extra_config: str = "") -> tuple[Path, Path, dict[str, str]]:
    """(vault, outside folder, env): a vault with two lectures, an inbox holding
    ``lines``, and beside it an ``outside`` folder holding ``secret.srt``."""
    vault = tmp_path / "vault"
    (vault / ".vaultd").mkdir(parents=True)
    (vault / ".vaultd" / "config.toml").write_text(
        CONFIG.format(pdf="true" if pdf else "false") + extra_config, encoding="utf-8")
    (vault / "Lectures").mkdir()
    (vault / "Lectures" / "gravity.srt").write_text(lecture_srt("gravity"), encoding="utf-8")
    (vault / "Lectures" / "memory.srt").write_text(lecture_srt("memory"), encoding="utf-8")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.srt").write_text(lecture_srt(SECRET), encoding="utf-8")
    write_inbox(vault, lines)
    env = vaultd_env(tmp_path / "state", HOME=str(outside))
    return vault, outside, env


def write_inbox(vault: Path, lines: list[str]) -> None:
    (vault / "inbox.md").write_text("# Inbox\n\n" + "".join(f"{x}\n" for x in lines),
                                    encoding="utf-8")


def run_once(vault: Path, env: dict[str, str], timeout: float = 180
             ) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return vaultd("run", "--vault", str(vault), "--once", env=env, timeout=timeout)


def annotations(vault: Path) -> list[tuple[str, str]]:
    """(line as typed, status vaultd wrote after it) for every source line."""
    text = (vault / "inbox.md").read_text(encoding="utf-8")
    return [(line.body, line.annotation or "") for line in parse_inbox(text)]


def files_containing(root: Path, needle: str) -> list[Path]:
    """Every regular file under ``root`` (symlinks not followed) whose bytes hold
    ``needle`` — PDFs are searched in their text streams too (ReportLab compresses, so
    their text is extracted)."""
    found = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = Path(folder, name)
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            if name.endswith(".pdf"):
                from pypdf import PdfReader

                data = "".join(p.extract_text() or "" for p in PdfReader(path).pages).encode()
            if needle.encode() in data:
                found.append(path)
    return found
