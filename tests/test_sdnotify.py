"""sd_notify against real AF_UNIX datagram sockets (a filesystem path and an abstract one)."""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.service import sdnotify

pytestmark = pytest.mark.skipif(
    not hasattr(socket, "AF_UNIX"), reason="AF_UNIX sockets are not available here"
)


@pytest.fixture
def listener(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A datagram socket bound in a short temp dir (sun_path is limited to ~100 bytes)."""
    with tempfile.TemporaryDirectory(prefix="sdn") as tmp:
        path = Path(tmp) / "notify"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        try:
            yield sock
        finally:
            sock.close()


def _recv(sock: socket.socket) -> str:
    return sock.recv(4096).decode("utf-8")


def test_ready_and_friends_reach_the_socket(listener: socket.socket) -> None:
    assert sdnotify.ready() is True
    assert _recv(listener) == "READY=1"
    assert sdnotify.watchdog_ping() is True
    assert _recv(listener) == "WATCHDOG=1"
    assert sdnotify.stopping() is True
    assert _recv(listener) == "STOPPING=1"
    assert sdnotify.reloading() is True
    assert _recv(listener) == "RELOADING=1"
    assert sdnotify.extend_timeout(2.5) is True
    assert _recv(listener) == "EXTEND_TIMEOUT_USEC=2500000"


def test_status_is_one_line(listener: socket.socket) -> None:
    assert sdnotify.status("3 jobs\nworking:  abc") is True
    assert _recv(listener) == "STATUS=3 jobs working: abc"
    assert sdnotify.ready("watching inbox.md")
    assert _recv(listener) == "READY=1\nSTATUS=watching inbox.md"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets are Linux")
def test_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"vaultd-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.ready() is True
        assert _recv(sock) == "READY=1"


def test_no_socket_is_a_quiet_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.ready() is False


def test_unreachable_socket_returns_false(monkeypatch: pytest.MonkeyPatch) -> None:
    with tempfile.TemporaryDirectory(prefix="sdn") as tmp:
        monkeypatch.setenv("NOTIFY_SOCKET", str(Path(tmp) / "nobody-listens"))
        assert sdnotify.notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "relative/path")
    assert sdnotify.notify("READY=1") is False


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert sdnotify.watchdog_interval() is None

    monkeypatch.setenv("WATCHDOG_USEC", "120000000")
    assert sdnotify.watchdog_interval() == 120.0

    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == 120.0

    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert sdnotify.watchdog_interval() is None

    monkeypatch.delenv("WATCHDOG_PID")
    for bad in ("", "0", "-5", "soon"):
        monkeypatch.setenv("WATCHDOG_USEC", bad)
        assert sdnotify.watchdog_interval() is None
