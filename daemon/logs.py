"""Logging for a long-running service: stderr, one line per event, job key on each line.

Under systemd (``JOURNAL_STREAM`` set) lines carry a ``<N>`` syslog priority prefix and
no timestamp (journald adds its own); elsewhere a compact timestamp is shown. The job
being worked on is taken from a context variable so every line logged on its behalf
names it. Secrets are scrubbed by :class:`daemon.secrets.ScrubFilter` on the handler:
every record (message and traceback) passes the one scrubber before it is formatted.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys

from daemon.secrets import ScrubFilter

current_job: contextvars.ContextVar[str] = contextvars.ContextVar("current_job", default="")

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}


class _Formatter(logging.Formatter):
    def __init__(self, journald: bool) -> None:
        super().__init__()
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        job = getattr(record, "job", "") or current_job.get()
        msg = record.getMessage()
        if record.exc_text:  # formatted and scrubbed by ScrubFilter
            msg += "\n" + record.exc_text
        elif record.exc_info:
            msg += "\n" + self.formatException(record.exc_info)
        prefix = f"job={job} " if job else ""
        if self.journald:
            return f"<{_PRIORITY.get(record.levelno, 6)}>{record.name}: {prefix}{msg}"
        stamp = self.formatTime(record, "%H:%M:%S")
        return f"{stamp} {record.levelname:<7} {record.name}: {prefix}{msg}"


def setup_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(journald=bool(os.environ.get("JOURNAL_STREAM"))))
    handler.addFilter(ScrubFilter())
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "urllib3", "anthropic", "openai"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # watchdog logs an ERROR for events that race its own shutdown; nothing to act on.
    logging.getLogger("watchdog").setLevel(logging.CRITICAL)
