"""A PDF that fails once is made later (issue 19 item 6).

The PDF folder's name is taken by a plain file of the user's, so every export fails
while the notes are written. ``vaultd status`` must list each missing PDF with its
reason; once the file is gone, the next run makes every PDF by itself (before the
durable retry queue, the jobs were done with no export row and no run ever made them).
"""

from __future__ import annotations

from pathlib import Path

from tests.faults.common import USER_TEXT, check_all_done, make_lectures, write_config
from tests.faults.test_state_faults import FAST, _expected
from tests.helpers import status_json, vaultd, vaultd_env


def test_failed_pdfs_are_listed_and_made_by_the_next_run(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    lines = make_lectures(vault, 2, sentences=30)
    write_config(vault, {"daemon": dict(FAST), "pdf": {"enabled": True}})
    (vault / "inbox.md").write_text(USER_TEXT + "\n".join(lines) + "\n", encoding="utf-8")
    blocker = vault / "PDF"
    blocker.write_text("my own file called PDF\n", encoding="utf-8")
    env = vaultd_env(tmp_path / "state")

    first = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    missing = status_json(vault, env)["pdf_failures"]
    assert len(missing) == 4, missing  # two notes, two assessments
    assert all(m["reason"] for m in missing), missing
    text = vaultd("status", "--vault", str(vault), env=env).stdout
    assert "no PDF" in text, text
    assert blocker.read_text(encoding="utf-8") == "my own file called PDF\n"

    blocker.unlink()
    second = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    check_all_done(vault, _expected(lines), pdf=True)
    assert status_json(vault, env)["pdf_failures"] == []
