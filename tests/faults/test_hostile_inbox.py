"""The inbox under hostile input, checked with a real ``vaultd run``: what the user sees
(the inbox line, ``vaultd status``, the log) and that nothing of their file is lost.

* An inbox larger than the editor reads (``MAX_INBOX_BYTES``): a 50 MB inbox took the
  daemon to ~800 MB of RSS; now the file is not read at all and never rewritten, the
  daemon says why in the log and in ``status`` and keeps running, and picks the inbox up
  again once the user has moved old lines out.
* More source lines than the daemon takes (``MAX_SOURCE_LINES``): the first are taken,
  the rest wait untouched, and the daemon says why.
* Odd content (a BOM, CRLF, invalid UTF-8, a form feed or U+2028 inside a line, a 10 MB
  line, a million short lines): the source line is annotated and every other byte is kept.
* Odd files in the inbox's place (a folder, a FIFO, a symlink to a file outside the
  vault, a symlink to ``/dev/zero``): not read, said why, nothing outside touched.
* An inbox deleted and written again and again while the daemon edits it: the user's
  last text is what is left.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import lecture_srt, start_daemon, status_json, vaultd, vaultd_env, wait_for
from vault_tools.inbox import MAX_INBOX_BYTES, MAX_SOURCE_LINES, parse_inbox

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists() or
                                not hasattr(os, "mkfifo"), reason="needs Linux /proc and mkfifo")

LINK = "- [[Lectures/gravity.srt]]"


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def peak_rss(pid: int) -> int:
    """The process's peak resident bytes so far (``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


class Daemon:
    def __init__(self, tmp_path: Path) -> None:
        self.vault = tmp_path / "vault"
        (self.vault / ".vaultd").mkdir(parents=True)
        (self.vault / ".vaultd" / "config.toml").write_text(
            '[generate]\nbackend = "offline"\n[pdf]\nenabled = false\n')
        (self.vault / "Lectures").mkdir()
        for topic in ("gravity", "memory", "entropy"):
            (self.vault / "Lectures" / f"{topic}.srt").write_text(lecture_srt(topic))
        self.inbox = self.vault / "inbox.md"
        self.env = vaultd_env(tmp_path / "state")
        self.log = tmp_path / "daemon.log"
        self.proc: subprocess.Popen | None = None  # type: ignore[type-arg]

    def start(self) -> None:
        self.proc = start_daemon(self.vault, self.env, log=self.log)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def notices(self) -> list[str]:
        return list(status_json(self.vault, self.env)["notices"])

    def says(self, text: str) -> list[str]:
        """Wait until ``vaultd status`` lists a notice containing ``text``."""
        return wait_for(lambda: [n for n in self.notices() if text in n],
                        timeout=60, interval=0.3, what=f"status notice {text!r}")

    def annotated(self, body: str, mark: str = "✅") -> str:
        def find() -> str | None:
            text = self.inbox.read_bytes().decode("utf-8", "surrogateescape")
            for line in parse_inbox(text):
                if line.body.lstrip("\ufeff") == body and mark in line.annotation:
                    return line.annotation
            return None
        return wait_for(find, timeout=90, interval=0.2, what=f"{body} annotated {mark}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path)
    try:
        yield d
    finally:
        d.stop()


def test_an_inbox_over_the_limit_is_not_read_nor_rewritten_and_the_daemon_says_why(
        daemon: Daemon) -> None:
    # Source lines first (a parse would queue them), then plain lines up to 30 MB.
    line = b"notes notes notes notes notes notes notes notes notes notes notes notes\n"
    with open(daemon.inbox, "wb") as fh:
        fh.write(b"# Inbox\n\n" + LINK.encode() + b"\n- https://youtu.be/dQw4w9WgXcQ\n")
        fh.write(line * (30_000_000 // len(line)))
    size = daemon.inbox.stat().st_size
    assert size > MAX_INBOX_BYTES
    before = digest(daemon.inbox)
    daemon.start()

    why = (f"inbox.md is {size // 1_000_000} MB; vaultd reads inboxes up to "
           f"{MAX_INBOX_BYTES // 1_000_000} MB: move old lines to another note")
    assert daemon.says(why)
    assert why in daemon.log.read_text()
    shown = vaultd("status", "--vault", str(daemon.vault), env=daemon.env)
    assert why in shown.stdout
    assert daemon.alive()
    assert digest(daemon.inbox) == before  # not one byte changed
    assert status_json(daemon.vault, daemon.env)["counts"]["ready"] == 0  # nothing queued
    assert peak_rss(daemon.proc.pid) < 200 * 2**20  # type: ignore[union-attr]

    # `vaultd add` refuses too, with the same reason, and adds nothing.
    add = vaultd("add", "--vault", str(daemon.vault), "https://youtu.be/aqz-KE-bpKQ",
                 env=daemon.env)
    assert add.returncode == 1 and why in add.stderr, add.stderr
    assert digest(daemon.inbox) == before

    # The user moves old lines out: the inbox is read again and the notice goes.
    daemon.inbox.write_text(f"# Inbox\n\n{LINK}\n")
    daemon.annotated(LINK)
    wait_for(lambda: not [n for n in daemon.notices() if "vaultd reads inboxes" in n],
             timeout=30, interval=0.3, what="the notice gone from status")
    assert daemon.alive()


def test_a_200_mb_inbox_of_nul_bytes_costs_no_memory(daemon: Daemon) -> None:
    with open(daemon.inbox, "wb") as fh:  # sparse: 200 MB of NUL bytes, no disk used
        fh.truncate(200_000_000)
    daemon.start()
    assert daemon.says("inbox.md is 200 MB; vaultd reads inboxes up to")
    assert daemon.alive()
    assert daemon.inbox.stat().st_size == 200_000_000
    with open(daemon.inbox, "rb") as fh:
        assert not fh.read().strip(b"\0")  # still only NUL bytes, none added
    assert peak_rss(daemon.proc.pid) < 200 * 2**20  # type: ignore[union-attr]


def test_source_lines_past_the_limit_wait_unchanged_and_the_daemon_says_why(
        daemon: Daemon) -> None:
    """600,000 links in a 19 MB inbox took the daemon to 2.3 GB and minutes a pass. Now it
    takes the first MAX_SOURCE_LINES source lines; the rest wait, byte for byte, and are
    taken once the user has moved done lines out."""
    links = "".join(f"- https://youtu.be/{i:011d}\n" for i in range(MAX_SOURCE_LINES))
    tail = f"{LINK}\nmy own line\n"
    daemon.inbox.write_text(f"# Inbox\n{links}{tail}")
    daemon.start()
    why = (f"inbox.md has more than {MAX_SOURCE_LINES:,} source lines; vaultd reads the "
           f"first {MAX_SOURCE_LINES:,} (up to line {MAX_SOURCE_LINES + 1:,}): move done "
           "lines to another note")
    assert daemon.says(why)
    assert why in daemon.log.read_text()
    wait_for(lambda: status_json(daemon.vault, daemon.env)["counts"]["ready"]
             + status_json(daemon.vault, daemon.env)["counts"]["failed"] > 0,
             timeout=60, what="the first lines queued")
    assert daemon.inbox.read_text().endswith(tail)  # the line past the limit: untouched
    assert daemon.alive()
    assert peak_rss(daemon.proc.pid) < 400 * 2**20  # type: ignore[union-attr]

    daemon.inbox.write_text(f"# Inbox\n{tail}")  # done lines moved out
    daemon.annotated(LINK, mark=" — ")  # taken now (queued behind the 10,000, or done)
    wait_for(lambda: why not in daemon.notices(), timeout=30, interval=0.3,
             what="the notice gone from status")


def test_odd_content_is_kept_byte_for_byte_around_the_annotation(daemon: Daemon) -> None:
    """A BOM, CRLF line ends, invalid UTF-8, NUL bytes, a form feed and U+2028 (not line
    ends to Obsidian), a 10 MB line and a million short lines: the source lines are
    annotated at their ends, nothing else changes."""
    parts = [b"\xef\xbb\xbf- [[Lectures/memory.srt]]\r\n",  # BOM, then a source line
             b"# Inbox\r\n", b"bad \xff\xfe utf-8 and a NUL \x00 here\r\n",
             b"y" * 10_000_000 + b" https://youtu.be/dQw4w9WgXcQ\r\n",  # too long: no source
             LINK.encode() + b"\r\n",
             "- my \x0c[[gravity.srt]] \u2028 again\n".encode(),  # no line ends to Obsidian
             b"- a\n" * 1_000_000,
             b"- [[Lectures/entropy.srt]]",  # last line, no line end
             ]
    original = b"".join(parts)
    daemon.inbox.write_bytes(original)
    daemon.start()
    notes = [daemon.annotated("- [[Lectures/memory.srt]]"), daemon.annotated(LINK),
             daemon.annotated("- my \x0c[[gravity.srt]] \u2028 again"),
             daemon.annotated("- [[Lectures/entropy.srt]]")]
    after = daemon.inbox.read_bytes()
    for note in notes:
        after = after.replace(note.encode("utf-8"), b"", 1)
    assert after == original  # every byte but the annotations is the user's
    assert daemon.alive()


def test_odd_files_in_the_inbox_place_are_not_read_and_said(daemon: Daemon,
                                                              tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "notes.md"
    secret.write_text("- https://youtu.be/dQw4w9WgXcQ\nprivate\n")
    daemon.inbox.write_text(f"# Inbox\n\n{LINK}\n")
    daemon.start()
    daemon.annotated(LINK)

    def replace_inbox(make: object) -> None:
        if daemon.inbox.is_dir() and not daemon.inbox.is_symlink():
            daemon.inbox.rmdir()
        else:
            daemon.inbox.unlink()
        make()  # type: ignore[operator]

    cases = [(lambda: daemon.inbox.mkdir(), "inbox.md is a folder, not a file"),
             (lambda: os.mkfifo(daemon.inbox), "inbox.md is a named pipe (FIFO), not a file"),
             (lambda: os.symlink(secret, daemon.inbox),
              f"inbox.md is a symlink to {secret}, outside the vault"),
             (lambda: os.symlink("/dev/zero", daemon.inbox),
              "inbox.md is a symlink to /dev/zero, outside the vault")]
    for make, why in cases:
        replace_inbox(make)
        assert daemon.says(why), why
        assert daemon.alive()
    assert secret.read_text() == "- https://youtu.be/dQw4w9WgXcQ\nprivate\n"
    assert sorted(p.name for p in outside.iterdir()) == ["notes.md"]
    assert status_json(daemon.vault, daemon.env)["counts"]["ready"] == 0

    replace_inbox(lambda: daemon.inbox.write_text(f"# Inbox\n\n{LINK}\n- [[memory.srt]]\n"))
    daemon.annotated("- [[memory.srt]]")  # a file again: the daemon carries on


def test_an_inbox_deleted_and_written_again_rapidly_keeps_the_users_last_text(
        daemon: Daemon) -> None:
    daemon.inbox.write_text(f"# Inbox\n\n{LINK}\n")
    daemon.start()
    daemon.annotated(LINK)
    stop = threading.Event()
    written: list[str] = []

    def user() -> None:  # delete, then write the file again with one more line, flat out
        n = 0
        while not stop.is_set():
            n += 1
            text = f"# Inbox\n\n{LINK}\n" + "".join(f"line {i}\n" for i in range(n % 50))
            try:
                daemon.inbox.unlink()
            except FileNotFoundError:
                pass
            daemon.inbox.write_text(text)
            written.append(text)

    t = threading.Thread(target=user)
    t.start()
    try:
        wait_for(lambda: len(written) > 2000, timeout=60, what="2000 rewrites")
    finally:
        stop.set()
        t.join(30)
    last = written[-1]
    # The daemon annotates the user's last text, and nothing else of it changes.
    note = daemon.annotated(LINK)
    assert daemon.inbox.read_text() == last.replace(f"{LINK}\n", f"{LINK}{note}\n")
    assert daemon.alive()
    assert not [p.name for p in daemon.vault.iterdir() if ".vaultd-tmp" in p.name]
