"""Supervised threads: an error in one command fails that job; a dead thread ends the daemon.

A real :class:`~daemon.service.daemon.Daemon` runs in-process on a temp vault (offline backend,
real watchdog observer, the ticker, SQLite ledger, writer, graph keeper, dispatcher).
Failures are injected by replacing one method of one real object after start -- the
seam each thread really calls in its loop -- never by a test switch in vaultd's code.

* One write that raises: that job fails with the error as its reason (inbox line and
  ledger), the traceback is logged once, the next line still becomes a note and
  ``run --once`` ends with exit code 0.
* A core thread that dies (writer, dispatcher, graph keeper, watcher, scheduler): the
  run loop ends by itself, ``daemon.json`` names the dead thread, no watchdog ping is
  sent any more, ``status`` reports it after the process is gone, and ``vaultd run``
  exits non-zero.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.cli import commands as cli
from daemon.cli.status import format_status, gather_status
from daemon.jobs.ledger import Ledger
from daemon.service.daemon import STATUS_FILE, Daemon, RunOptions
from daemon.writer.pdf.filing import PdfFiling
from tests.helpers import lecture_srt, wait_for
from vault_tools.inbox import parse_inbox

CONFIG = """\
[daemon]
debounce_seconds = 0.1
rescan_seconds = 1

[generate]
backend = "offline"

[pdf]
enabled = false
"""


@pytest.fixture
def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    vault = tmp_path / "vault"
    (vault / ".vaultd").mkdir(parents=True)
    (vault / ".vaultd" / "config.toml").write_text(CONFIG)
    (vault / "Lectures").mkdir()
    for topic in ("memory", "gravity"):
        (vault / "Lectures" / f"{topic}.srt").write_text(lecture_srt(topic))
    (vault / "inbox.md").write_text("- [[Lectures/memory.srt]]\n- [[Lectures/gravity.srt]]\n")
    monkeypatch.setenv("VAULTD_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    return vault


@pytest.fixture
def notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A systemd notify socket: every datagram the daemon sends, in order."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    got: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                got.append(sock.recv(4096).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    yield got
    done.set()
    reader.join(timeout=2)
    sock.close()


def run_in_thread(d: Daemon, timeout: float = 60.0) -> None:
    """``d.run()`` with a deadline: a daemon that hangs fails the test instead."""
    t = threading.Thread(target=d.run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        d.stop_event.set()
        t.join(5)
        d.stop()
        raise AssertionError(f"the daemon's run loop did not end within {timeout:.0f} s "
                             f"(failure recorded: {getattr(d, 'supervisor', None)!r})")


def lines(vault: Path) -> list[str]:
    return [p.annotation for p in parse_inbox((vault / "inbox.md").read_text())]


def test_an_error_in_one_write_fails_that_job_and_the_writer_takes_the_next(
        vault: Path, caplog: pytest.LogCaptureFixture) -> None:
    d = Daemon(vault, RunOptions(once=True, sequential=True))
    d.start()
    create = d.writer.files.create

    def create_or_break(key: str, content: Any) -> Any:
        if key == "file:Lectures/memory.srt":
            raise RuntimeError("the disk spoke in tongues")
        return create(key, content)

    d.writer.files.create = create_or_break  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR):
        run_in_thread(d)
        d.stop()
    assert d.supervisor.failure is None
    memory, gravity = lines(vault)
    assert memory == (" — ❌ failed: internal error while writing: RuntimeError: "
                      "the disk spoke in tongues")
    assert "✅ [[" in gravity
    ledger = Ledger(d.paths.ledger)
    try:
        job = ledger.get("file:Lectures/memory.srt")
        assert job is not None and job.state == "failed"
        assert job.last_error is not None and "tongues" in job.last_error
    finally:
        ledger.close()
    logged = [r for r in caplog.records if "tongues" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info, [r.getMessage() for r in logged]


def _kill_writer(d: Daemon) -> None:
    def broken() -> float:
        raise RuntimeError("writer loop broke")
    d.writer.pdf.next_look = broken  # type: ignore[method-assign]
    d.writer.request_tick()


def _kill_dispatcher(d: Daemon) -> None:
    def broken() -> float:
        raise RuntimeError("dispatcher loop broke")
    d.dispatcher._idle_timeout = broken  # type: ignore[method-assign]
    d.dispatcher.wake()


def _kill_keeper(d: Daemon) -> None:
    def broken(*_a: object, **_k: object) -> object:
        raise RuntimeError("keeper loop broke")
    d.keeper.queue.get = broken  # type: ignore[method-assign]
    d.keeper.render_now()  # wakes the get() in progress; the next one breaks


def _kill_watcher(d: Daemon) -> None:
    observer = d.watcher._observer
    assert observer is not None

    def broken(*_a: object) -> None:
        raise RuntimeError("observer broke")
    observer.dispatch_events = broken  # type: ignore[method-assign]


def _kill_scheduler(d: Daemon) -> None:
    def broken() -> float:
        raise RuntimeError("scheduler broke")
    d.scheduler.run_due = broken  # type: ignore[method-assign]
    d.scheduler._changed.set()  # wakes the ticker's wait; its next pass breaks


KILLS: dict[str, Callable[[Daemon], None]] = {
    "vault-writer": _kill_writer, "dispatcher": _kill_dispatcher,
    "graph-keeper": _kill_keeper, "watcher": _kill_watcher, "scheduler": _kill_scheduler,
}


@pytest.mark.parametrize("thread", list(KILLS))
def test_a_dead_core_thread_stops_the_daemon_and_says_so(
        thread: str, vault: Path, notify: list[str]) -> None:
    d = Daemon(vault, RunOptions(sequential=True))  # a service: it never ends by itself
    d.start()
    wait_for(lambda: any(m.startswith("READY=1") for m in notify), timeout=10,
             what="READY=1")
    wait_for(lambda: "WATCHDOG=1" in notify, timeout=10, what="a first watchdog ping")
    KILLS[thread](d)
    run_in_thread(d, timeout=30)  # ends by itself: nobody set stop_event
    reason = d.supervisor.failure
    assert reason is not None and f"the {thread} thread died" in reason
    assert "broke" in reason

    # daemon.json (what status reads) names the dead thread; no more watchdog pings.
    status_file = d.paths.state / STATUS_FILE
    assert json.loads(status_file.read_text())["failure"] == reason
    wait_for(lambda: any(m.startswith("STATUS=failed:") for m in notify), timeout=10,
             what="STATUS=failed (sd_notify datagrams arrive on the fixture's thread)")
    failed_at = next(i for i, m in enumerate(notify) if m.startswith("STATUS=failed:"))
    d.write_status()  # the 2-second heartbeat job, once more
    assert json.loads(status_file.read_text())["failure"] == reason
    d.stop()
    assert "WATCHDOG=1" not in notify[failed_at:]

    # After the process is gone, status tells what happened.
    st = gather_status(vault)
    assert st["daemon"] is None
    assert st["last_failure"]["reason"] == reason
    assert f"crashed: {reason}" in format_status(st)


def test_vaultd_run_exits_nonzero_when_a_thread_dies_instead_of_hanging(
        vault: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: PdfFiling) -> float:
        raise RuntimeError("writer loop broke")
    monkeypatch.setattr(PdfFiling, "next_look", broken)
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(
        cli.main(["run", "--vault", str(vault), "--once", "--sequential"])), daemon=True)
    # cli.main installs signal handlers, which only the main thread may do.
    monkeypatch.setattr(cli.signal, "signal", lambda *_a: None)
    t.start()
    t.join(60)
    assert not t.is_alive(), "vaultd run --once hung after its writer died"
    assert result == [cli.EXIT_FAILURE]


def test_after_a_clean_stop_status_no_longer_reports_the_crash(vault: Path) -> None:
    d = Daemon(vault, RunOptions(sequential=True))
    d.start()
    _kill_writer(d)
    run_in_thread(d, timeout=30)
    d.stop()
    assert gather_status(vault)["last_failure"] is not None
    d = Daemon(vault, RunOptions(once=True, sequential=True))
    d.start()
    run_in_thread(d)
    d.stop()
    assert d.supervisor.failure is None
    assert gather_status(vault)["last_failure"] is None
    assert all("✅" in line for line in lines(vault))
