"""sd_notify for the service manager: readiness, watchdog pings, stop and status lines.

This module owns the few lines of socket code systemd's ``Type=notify`` needs, so vaultd
takes no dependency for it. systemd passes ``$NOTIFY_SOCKET`` (a filesystem path, or an
abstract socket written with a leading ``@``); each message is one datagram of
newline-separated ``KEY=value`` assignments. Outside systemd (a terminal, launchd, tests
without the variable) every call is a cheap no-op that returns ``False``.

The unit says ``NotifyAccess=main``, so messages must come from the daemon's main process,
never from a pool worker. The daemon sends:

* ``ready()`` once the ledger is recovered and the inbox watcher is armed;
* ``watchdog_ping()`` from the main loop, at least every ``watchdog_interval() / 2``;
* ``stopping()`` when a shutdown begins, and ``extend_timeout()`` while draining if the
  drain may outlast the unit's ``TimeoutStopSec``;
* ``status(text)`` for the one-line state ``systemctl --user status`` shows.
"""

from __future__ import annotations

import logging
import os
import socket

__all__ = [
    "notify",
    "ready",
    "reloading",
    "stopping",
    "watchdog_ping",
    "status",
    "extend_timeout",
    "watchdog_interval",
]

log = logging.getLogger(__name__)


def _address(raw: str) -> str | None:
    if raw.startswith("@"):
        return "\0" + raw[1:]  # abstract namespace (Linux)
    if raw.startswith("/"):
        return raw
    return None  # vsock: and other transports are not used by user managers


def notify(message: str) -> bool:
    """Send ``message`` to ``$NOTIFY_SOCKET``. True when a datagram was sent.

    Never raises: a missing variable, an unsupported address or a socket error only
    returns False (and logs the error once at debug level), so callers need no guard.
    """
    raw = os.environ.get("NOTIFY_SOCKET", "")
    if not raw:
        return False
    address = _address(raw)
    if address is None or not hasattr(socket, "AF_UNIX"):
        log.debug("sd_notify: unsupported NOTIFY_SOCKET %r", raw)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.send(message.encode("utf-8"))
            return True
    except OSError as exc:
        log.debug("sd_notify: cannot send to %r: %s", raw, exc)
        return False


def ready(status_text: str | None = None) -> bool:
    """Tell the manager start-up is complete (``READY=1``), with an optional status."""
    msg = "READY=1"
    if status_text:
        msg += "\nSTATUS=" + _one_line(status_text)
    return notify(msg)


def reloading() -> bool:
    """Announce a configuration reload (SIGHUP); send ``ready()`` when it is done."""
    return notify("RELOADING=1")


def stopping(status_text: str | None = None) -> bool:
    """Announce that shutdown has begun (``STOPPING=1``)."""
    msg = "STOPPING=1"
    if status_text:
        msg += "\nSTATUS=" + _one_line(status_text)
    return notify(msg)


def watchdog_ping() -> bool:
    """Keep-alive for ``WatchdogSec=`` (``WATCHDOG=1``)."""
    return notify("WATCHDOG=1")


def status(text: str) -> bool:
    """Set the free-form one-line status shown by ``systemctl --user status``."""
    return notify("STATUS=" + _one_line(text))


def extend_timeout(seconds: float) -> bool:
    """Ask for ``seconds`` more before the current start/stop timeout fires.

    Useful while draining in-flight jobs on stop: each call pushes the deadline to now +
    ``seconds`` (``EXTEND_TIMEOUT_USEC``), so send it periodically while work remains.
    """
    usec = max(0, int(seconds * 1_000_000))
    return notify(f"EXTEND_TIMEOUT_USEC={usec}")


def watchdog_interval() -> float | None:
    """The watchdog timeout in seconds when it applies to this process, else None.

    Reads ``WATCHDOG_USEC``; when ``WATCHDOG_PID`` is set it must be our pid (a child
    that inherited the environment must not ping). Ping at half this interval or more
    often.
    """
    raw = os.environ.get("WATCHDOG_USEC", "")
    try:
        usec = int(raw)
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = os.environ.get("WATCHDOG_PID", "")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / 1_000_000


def _one_line(text: str) -> str:
    return " ".join(text.split())
