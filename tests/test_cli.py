"""The CLI contract: commands, exit codes (0 ok, 1 failure, 2 usage/config), messages."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import lecture_srt, vaultd, vaultd_env
from vault_tools.inbox import parse_inbox


def test_add_appends_once_per_video_and_refuses_unsupported(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    vault.mkdir()
    env = vaultd_env(tmp_path / "state")
    (vault / "talk.srt").write_text(lecture_srt("memory"))
    proc = vaultd("add", "--vault", str(vault), "https://youtu.be/dQw4w9WgXcQ",
                  "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=3", "talk.srt", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "already in the inbox: https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=3" in proc.stdout
    lines = parse_inbox((vault / "inbox.md").read_text())
    assert [ref.key for line in lines for ref in line.sources] == [
        "youtube:dQw4w9WgXcQ", "file:talk.srt"]
    bad = vaultd("add", "--vault", str(vault), "https://vimeo.com/1", env=env)
    assert bad.returncode == 2 and "vimeo.com" in bad.stderr and "Traceback" not in bad.stderr
    assert len(parse_inbox((vault / "inbox.md").read_text())) == 2


def test_add_to_an_inbox_that_is_no_file_fails_plainly(tmp_path: Path) -> None:
    """An inbox that is a named pipe (or a folder): ``add`` names the inbox and why,
    exits 1, and shows no traceback (it crashed with ``OSError: not a regular file``)."""
    import os

    env = vaultd_env(tmp_path / "state")
    for kind in ("fifo", "folder"):
        vault = tmp_path / kind
        vault.mkdir()
        os.mkfifo(vault / "inbox.md") if kind == "fifo" else (vault / "inbox.md").mkdir()
        proc = vaultd("add", "--vault", str(vault), "https://youtu.be/dQw4w9WgXcQ", env=env,
                      timeout=60)
        assert proc.returncode == 1, (proc.returncode, proc.stderr)
        assert "Traceback" not in proc.stderr and "inbox.md" in proc.stderr, proc.stderr
        assert "nothing added" in proc.stderr


def test_run_once_on_an_inbox_it_cannot_read_ends_non_zero(tmp_path: Path) -> None:
    """A cron job running ``run --once`` must learn that nothing was done: an inbox that
    is a named pipe, a folder or larger than vaultd reads ended with exit 0."""
    import os

    env = vaultd_env(tmp_path / "state")
    for kind in ("fifo", "folder", "huge"):
        vault = tmp_path / kind
        vault.mkdir()
        if kind == "fifo":
            os.mkfifo(vault / "inbox.md")
        elif kind == "folder":
            (vault / "inbox.md").mkdir()
        else:
            with open(vault / "inbox.md", "wb") as fh:  # sparse: no disk, 25 MB long
                fh.truncate(25_000_000)
        proc = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=120)
        assert proc.returncode == 1, (kind, proc.returncode, proc.stderr[-2000:])
        assert "inbox not read" in proc.stderr and "Traceback" not in proc.stderr, \
            proc.stderr[-2000:]
    assert (tmp_path / "huge" / "inbox.md").stat().st_size == 25_000_000  # untouched


def test_retry_says_why_a_failed_invalid_link_is_not_retried(tmp_path: Path) -> None:
    """``status`` lists a failed ``youtu.be/abc`` line; a bare ``retry`` said only
    "nothing to do", which reads as if there were no failures."""
    vault = tmp_path / "v"
    vault.mkdir()
    (vault / "inbox.md").write_text("- https://youtu.be/abc\n")
    env = vaultd_env(tmp_path / "state")
    assert vaultd("run", "--vault", str(vault), "--once", env=env).returncode == 0
    proc = vaultd("retry", "--vault", str(vault), env=env)
    assert proc.returncode == 0
    assert "1 failed line(s) hold no valid video id" in proc.stdout, proc.stdout


def test_usage_errors_exit_2_with_a_plain_message(tmp_path: Path) -> None:
    env = vaultd_env(tmp_path / "state")
    missing = vaultd("run", "--vault", str(tmp_path / "nope"), "--once", env=env)
    assert missing.returncode == 2 and "vault folder not found" in missing.stderr
    (tmp_path / "file").write_text("x")
    not_dir = vaultd("status", "--vault", str(tmp_path / "file"), env=env)
    assert not_dir.returncode == 2 and "not a folder" in not_dir.stderr
    (tmp_path / "v").mkdir()
    workers = vaultd("run", "--vault", str(tmp_path / "v"), "--workers", "0", env=env)
    assert workers.returncode == 2 and "--workers" in workers.stderr
    no_cmd = vaultd(env=env)
    assert no_cmd.returncode == 2


def test_status_retry_and_regenerate_name_jobs_plainly(tmp_path: Path) -> None:
    vault = tmp_path / "v"
    vault.mkdir()
    env = vaultd_env(tmp_path / "state")
    (vault / "inbox.md").write_text("- [[gone.srt]]\n- https://youtu.be/bad\n")
    assert vaultd("run", "--vault", str(vault), "--once", env=env).returncode == 0
    st = json.loads(vaultd("status", "--vault", str(vault), "--json", env=env).stdout)
    assert st["daemon"] is None and st["backend"] == "offline"
    assert {f["key"]: f["reason"] for f in st["failures"]} == {
        "file:gone.srt": "subtitle file not found in the vault: gone.srt",
        "invalid:bad": "'bad' is not a valid YouTube video id (expected 11 letters, digits, "
                       "- or _)"}
    human = vaultd("status", "--vault", str(vault), env=env).stdout
    assert "0 done" in human and "2 failed" in human and "gone.srt" in human
    (vault / "gone.srt").write_text(lecture_srt("gravity"))
    retry = vaultd("retry", "--vault", str(vault), "gone.srt", env=env)
    assert retry.returncode == 0 and "queued again: file:gone.srt" in retry.stdout
    assert vaultd("run", "--vault", str(vault), "--once", env=env).returncode == 0
    st = json.loads(vaultd("status", "--vault", str(vault), "--json", env=env).stdout)
    assert st["counts"]["done"] == 1
    done = vaultd("retry", "--vault", str(vault), "gone.srt", env=env)
    assert done.returncode == 0 and "gone.srt is done, not failed; use vaultd regenerate" \
        in done.stderr
    typo = vaultd("retry", "--vault", str(vault), "gnoe.srt", env=env)
    assert typo.returncode == 2 and "no such job: gnoe.srt" in typo.stderr
    regen = vaultd("regenerate", "--vault", str(vault), "file:gone.srt", env=env)
    assert "queued for regeneration: file:gone.srt" in regen.stdout
    assert vaultd("run", "--vault", str(vault), "--once", env=env).returncode == 0
    notes = sorted(p.name for p in (vault / "Study Notes").glob("*.md"))
    assert notes == ["Gone (Assessment).md", "Gone.md"]  # merged in place, no copies


def test_add_refuses_a_file_outside_the_vault_with_the_gates_reason(tmp_path: Path) -> None:
    """``add ../x.srt`` (or an absolute path elsewhere, or ~) is refused at once with the
    path gate's reason and exit 2, and nothing is added (it was accepted into the inbox
    and failed only when the daemon read it)."""
    vault = tmp_path / "v"
    vault.mkdir()
    (tmp_path / "x.srt").write_text(lecture_srt("memory"))
    env = vaultd_env(tmp_path / "state")
    for target in ("../x.srt", str(tmp_path / "x.srt"), "~/x.srt"):
        proc = vaultd("add", "--vault", str(vault), "https://youtu.be/dQw4w9WgXcQ", target,
                      env=env)
        assert proc.returncode == 2, (target, proc.returncode, proc.stdout, proc.stderr)
        assert "outside the vault" in proc.stderr and "Traceback" not in proc.stderr
        assert target in proc.stderr, proc.stderr
        assert not (vault / "inbox.md").exists() or "x.srt" not in (
            vault / "inbox.md").read_text(), "refused, yet added"


def test_retry_with_the_inbox_linked_out_of_the_vault_says_why_plainly(tmp_path: Path
                                                                      ) -> None:
    """The job is queued again; the inbox (a symlink to a file outside the vault) is not
    followed, and the message gives the path gate's reason, not '[Errno 40] Too many
    levels of symbolic links'."""
    vault, out = tmp_path / "v", tmp_path / "out"
    vault.mkdir()
    out.mkdir()
    env = vaultd_env(tmp_path / "state")
    (vault / "inbox.md").write_text("- [[x.srt]]\n")
    assert vaultd("run", "--once", "--vault", str(vault), env=env).returncode == 0
    (vault / "inbox.md").rename(out / "inbox.md")
    (vault / "inbox.md").symlink_to(out / "inbox.md")
    before = (out / "inbox.md").read_text()
    proc = vaultd("retry", "--vault", str(vault), env=env)
    assert proc.returncode == 0 and "queued again: file:x.srt" in proc.stdout, proc
    assert "Errno" not in proc.stderr and "outside the vault" in proc.stderr, proc.stderr
    assert (out / "inbox.md").read_text() == before
