"""The daemon gives the C allocator's free pages back (daemon.service.heap).

What a user sees is the daemon's RSS after months of notes; what these tests check is the
two mechanisms that keep it down, each in a fresh Python process (the test runner's own
heap would blur the figures), against the real glibc:

* ``trim`` gives the free pages inside a thread's malloc arena back to the system;
* ``configure`` caps the arenas, so a dozen threads share two instead of one each.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.service import heap

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not heap.available(),
                                reason="the C library has no malloc_trim (not glibc)")


def run_python(code: str, **env: str) -> dict:  # type: ignore[type-arg]
    import os

    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


RSS = """
def rss_anon_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
"""

FRAGMENT = RSS + """
import json, threading
from daemon.service import heap

kept = []
def work():
    # 80 MB of note-sized buffers (above CPython's small-object limit, below glibc's mmap
    # threshold: they come from this thread's arena), every 40th kept: the arena cannot
    # shrink from the top, its free pages lie between live blocks.
    blocks = [bytearray(64 * 1024) for _ in range(1280)]
    kept.extend(blocks[::40] + blocks[-1:])
    blocks.clear()
t = threading.Thread(target=work); t.start(); t.join()
before = rss_anon_mb()
released = heap.trim()
after = rss_anon_mb()
print(json.dumps({"before": before, "after": after, "released": released}))
"""


def test_trim_gives_the_free_pages_of_a_thread_arena_back() -> None:
    r = run_python(FRAGMENT)
    assert r["released"] is True
    # ~77 MB were freed inside the arena; at least 60 MB of it leaves the process.
    assert r["before"] - r["after"] >= 60, r


ARENAS = """
import ctypes, json, os, tempfile, threading
from daemon.service import heap

configured = heap.configure() if os.environ.get("CONFIGURE") else False
start = threading.Barrier(12)
hold = threading.Event()
kept = []
def work():
    start.wait()  # all twelve threads allocate at the same time
    kept.append([bytearray(4096) for _ in range(50)])
    hold.wait()
threads = [threading.Thread(target=work) for _ in range(12)]
for t in threads: t.start()
while len(kept) < 12: pass
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
path = os.path.join(tempfile.mkdtemp(), "malloc.xml")
fh = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, fh)
libc.fclose(fh)
hold.set()
for t in threads: t.join()
print(json.dumps({"configured": configured,
                  "arenas": open(path).read().count("<heap nr=")}))
"""


def test_configure_makes_the_threads_share_two_arenas() -> None:
    unset = run_python(ARENAS)
    assert unset["arenas"] > 2, unset  # glibc's default: an arena per thread, up to 8/core
    capped = run_python(ARENAS, CONFIGURE="1")
    assert capped["configured"] is True
    assert capped["arenas"] <= heap.ARENA_MAX, capped


def test_a_user_setting_of_the_allocator_wins() -> None:
    r = run_python(ARENAS, CONFIGURE="1", MALLOC_ARENA_MAX="4")
    assert r["configured"] is False
    assert 2 < r["arenas"] <= 4, r


def test_the_daemon_trims_its_heap_on_its_ticker(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A real Daemon (offline, in-process) schedules the trim among its periodic jobs."""
    from daemon.service.daemon import Daemon, RunOptions

    vault = tmp_path / "vault"
    (vault / ".vaultd").mkdir(parents=True)
    (vault / ".vaultd" / "config.toml").write_text(
        '[generate]\nbackend = "offline"\n\n[pdf]\nenabled = false\n')
    (vault / "inbox.md").write_text("# Inbox\n")
    monkeypatch.setenv("VAULTD_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    d = Daemon(vault, RunOptions(once=True, sequential=True))
    d.start()
    try:
        job = d.scheduler._jobs.get("heap-trim")
        assert job is not None and job.fn is heap.trim
        assert job.every == heap.TRIM_EVERY
    finally:
        d.stop()


LEDGER_THREADS = """
import ctypes, json, tempfile, threading
from pathlib import Path
from daemon.jobs.ledger import Ledger

used = ctypes.CDLL("libsqlite3.so.0").sqlite3_memory_used
used.restype = ctypes.c_int64
ledger = Ledger(Path(tempfile.mkdtemp()) / "ledger.sqlite3")
for i in range(300):  # 300 notes' worth of stored text: a ledger of about 6 MB
    key = f"file:Lectures/n{i:04d}.srt"
    ledger.add(key, "file", None)
    ledger.set_note_text(key, f"note {i} " + "x" * 20000)
read, done = threading.Barrier(6), threading.Event()
def reader():  # a long-lived thread of the daemon (writer, dispatcher, ticker ...)
    ledger.all_jobs(); ledger.counts()
    read.wait(); done.wait()
threads = [threading.Thread(target=reader) for _ in range(5)]
for t in threads: t.start()
read.wait()
mb = used() / 2**20
done.set()
for t in threads: t.join()
print(json.dumps({"sqlite_mb": mb}))
"""


def test_the_ledgers_connections_stay_small_as_the_ledger_grows() -> None:
    """Six connections (the main thread and five workers) that scanned a 6 MB ledger: the
    SQLite memory is their page caches, at most 1 MiB each (it was 2 MB each, 12 MB)."""
    try:
        import ctypes

        ctypes.CDLL("libsqlite3.so.0").sqlite3_memory_used  # noqa: B018
    except (OSError, AttributeError):
        pytest.skip("no shared libsqlite3 to ask")
    r = run_python(LEDGER_THREADS)
    assert r["sqlite_mb"] <= 6 * 1.0 + 1.0, r
