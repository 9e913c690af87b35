"""Path traversal through the inbox: every way a line can name a file outside the vault
is refused with a plain reason, nothing outside is ever read — not at the first pass, and
not after ``vaultd retry`` puts the refused jobs back (issue 11, item 1: the dispatcher
used to read the file without checking again).

A real ``vaultd run --once`` on a temp vault; the secret planted outside the vault is then
searched for in every file of the vault and the state folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import vaultd
from tests.security.common import (
    SECRET,
    annotations,
    files_containing,
    make_vault,
    run_once,
)


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
    from tests.security.common import write_inbox

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
    from tests.security.common import write_inbox

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
