"""Special files as sources (issue 19, items 1 and 2): a symlink to ``/dev/zero`` and a
FIFO, linked by bare name (``[[z.srt]]``, found anywhere in the vault) and by path.

Before the path gate, the bare-name lookup indexed non-regular files and the 20 MB limit
trusted ``st_size`` (0 for a device): the daemon grew by ~400 MB/s reading /dev/zero; the
FIFO blocked the dispatcher in ``open()`` forever and ``run --once`` never ended. Now each
line fails with a plain reason, a normal lecture after them is done, ``run --once`` ends,
and the daemon's memory stays small. The test watches the process tree's RSS while it
runs and kills it (failing) at 500 MB or when it has not ended in time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import lecture_srt, vaultd_env
from vault_tools.inbox import parse_inbox

RSS_LIMIT = 500 * 1024 * 1024
DEADLINE = 150.0

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists() or
                                not Path("/dev/zero").exists() or not hasattr(os, "mkfifo"),
                                reason="needs Linux /proc (RSS), /dev/zero and mkfifo")


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and its children (the process pool's workers)."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(kids.get(p, []))
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def run_watched(vault: Path, env: dict[str, str]) -> tuple[int, int]:
    """(exit code, peak RSS) of ``vaultd run --once``; fails if it hangs or bloats."""
    proc = subprocess.Popen([sys.executable, "-m", "daemon.cli", "run", "--vault",
                             str(vault), "--once"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    peak = 0
    deadline = time.monotonic() + DEADLINE
    try:
        while proc.poll() is None:
            peak = max(peak, tree_rss(proc.pid))
            if peak > RSS_LIMIT:
                pytest.fail(f"vaultd's RSS passed {peak // 2**20} MB")
            if time.monotonic() > deadline:
                pytest.fail(f"run --once did not end within {DEADLINE:.0f} s (hung)")
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    return proc.returncode, peak


@pytest.mark.parametrize("allow", [False, True], ids=["default", "allow-symlinks-out"])
def test_dev_zero_and_fifo_by_bare_name_and_by_path(tmp_path: Path, allow: bool) -> None:
    vault = tmp_path / "vault"
    (vault / ".vaultd").mkdir(parents=True)
    (vault / ".vaultd" / "config.toml").write_text(
        '[generate]\nbackend = "offline"\n[pdf]\nenabled = false\n'
        + ("[vault]\nallow_symlinks_out = true\n" if allow else ""))
    lectures = vault / "Lectures"
    lectures.mkdir()
    os.symlink("/dev/zero", lectures / "z.srt")
    os.mkfifo(lectures / "f.srt")
    (lectures / "gravity.srt").write_text(lecture_srt("gravity"))
    lines = ["- [[z.srt]]", "- [[Lectures/z.srt]]", "- [[f.srt]]", "- [[Lectures/f.srt]]",
             "- [[gravity.srt]]"]
    (vault / "inbox.md").write_text("# Inbox\n\n" + "\n".join(lines) + "\n")
    env = vaultd_env(tmp_path / "state")

    code, peak = run_watched(vault, env)

    assert code == 0
    seen = {line.body: line.annotation for line in
            parse_inbox((vault / "inbox.md").read_text(encoding="utf-8"))}
    for line in lines[:4]:
        assert "❌ failed" in seen[line], (line, seen[line])
    why = " ".join(seen[line] for line in lines[:4])
    assert ("device" in why) if allow else ("outside the vault" in why)
    assert "pipe" in why or "FIFO" in why
    assert "✅" in seen["- [[gravity.srt]]"]  # the queue moved on past them
    assert peak < RSS_LIMIT
