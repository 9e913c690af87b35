"""Path traversal through the inbox: every way a line can name a file outside the vault
is refused with a plain reason, nothing outside is ever read — not at the first pass, and
not after ``vaultd retry`` puts the refused jobs back (issue 11, item 1: the dispatcher
used to read the file without checking again).

A real ``vaultd run --once`` on a temp vault; the secret planted outside the vault is then
searched for in every file of the vault and the state folder.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import lecture_srt, vaultd, vaultd_env
from vault_tools.inbox import parse_inbox

# -- shared by the suite's end-to-end tests (test_symlinks.py, test_foreign.py) --------
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


# -- the tests --------------------------------------------------------------------------


def hostile_lines(outside: Path) -> list[str]:
    secret = outside / "secret.srt"
    return [
        "- [[../outside/secret.srt]]",
        "- ![[../outside/secret.srt]]",
        "- [lecture](../outside/secret.srt)",
        "- [lecture](<../outside/secret.srt>)",
        "- [lecture](%2E%2E/outside/secret.srt)",
        "- [lecture](..%2Foutside%2Fsecret.srt)",
        "- [[Lectures/../../outside/secret.srt]]",
        f"- [[{secret}]]",
        f"- [lecture]({secret})",
        f"- [lecture](file://{secret})",
        "- [[~/secret.srt]]",
        "- [lecture](~/secret.srt)",
        "- [[..\\outside\\secret.srt]]",
        "- [[C:\\Users\\me\\secret.srt]]",
        "- [lecture](C:/Users/me/secret.srt)",
        "- [lecture](Lectures/gravity%00.srt)",
        "- ../outside/secret.srt",
    ]


def test_every_link_syntax_that_leaves_the_vault_is_refused_even_after_retry(
        tmp_path: Path) -> None:
    vault, outside, env = make_vault(tmp_path, [])
    lines = hostile_lines(outside)
    write_inbox(vault, ["- [[gravity.srt]]", *lines])
    first = run_once(vault, env)
    assert first.returncode == 0, first.stderr
    seen = dict(annotations(vault))
    assert "✅" in seen["- [[gravity.srt]]"]  # the vault's own file works
    for line in lines:
        status = seen.get(line)
        if status is None:
            continue  # not a source at all (file:// URL): left alone, never read
        assert "✅" not in status, (line, status)
    refused = [s for line, s in seen.items() if line in lines]
    assert any("outside the vault" in s for s in refused), refused

    # The status line invites a retry; the retried jobs must be refused again.
    retry = vaultd("retry", "--vault", str(vault), env=env)
    assert retry.returncode == 0, retry.stderr
    second = run_once(vault, env)
    assert second.returncode == 0, second.stderr
    seen = dict(annotations(vault))
    for line in lines:
        status = seen.get(line)
        assert status is None or "❌" in status, (line, status)
    assert files_containing(vault, SECRET) == []
    assert files_containing(tmp_path / "state", SECRET) == []
    assert (outside / "secret.srt").read_text(encoding="utf-8").count(SECRET) > 0


@pytest.mark.parametrize("line", ["- [[../outside/secret.srt]]",
                                  "- [[{secret}]]"], ids=["dotdot", "absolute"])
def test_retry_of_a_refused_outside_link_reads_nothing(tmp_path: Path, line: str) -> None:
    """The exact reproduction of issue 11, item 1."""
    vault, outside, env = make_vault(tmp_path, [])
    write_inbox(vault, [line.format(secret=outside / "secret.srt")])
    assert run_once(vault, env).returncode == 0
    [(_, status)] = annotations(vault)
    assert "❌ failed" in status and "outside the vault" in status
    assert vaultd("retry", "--vault", str(vault), env=env).returncode == 0
    again = run_once(vault, env)
    assert again.returncode == 0, again.stderr
    [(_, status)] = annotations(vault)
    assert "❌ failed" in status and "outside the vault" in status, status
    assert files_containing(vault, SECRET) == []
    assert not (vault / "Study Notes").exists() or not any((vault / "Study Notes").iterdir())
