"""``vaultd doctor``: read-only health checks of one vault's setup, each with a verdict.

The doctor checks the vault folder, config, inbox, state dir, ledger, running daemon,
backend, API key (presence and file permissions, never its value), proxy and Tor
control port, network reach of YouTube and the Anthropic API, fonts for PDFs and the
service install. Every check returns a :class:`Check` with a plain verdict ("ok",
"warn", "fail", "skip"), what was found and a concrete fix. A check never raises: an
unexpected exception becomes a "fail" naming it.

Doctor changes nothing: the config file is not written on first use, the ledger is
only opened when it exists, and the YouTube probe bypasses the pacing gate (one HEAD
request, no pacing files written) but uses the configured proxy. Any secret seen while
checking (API key, proxy password) is scrubbed from the report as a last line of defence.

This package is the public face (import from ``daemon.cli.doctor``); the parts are
``model`` (verdict, result and shared context), ``runner`` (order, scrubbing, report,
exit code), ``vault`` (the vault's files and state), ``runtime`` (daemon, service,
backend, API key, fonts) and ``network`` (proxy, Tor, YouTube, Anthropic).
"""

from daemon.cli.doctor.model import Check, Verdict
from daemon.cli.doctor.runner import (
    ANTHROPIC_URL,
    YOUTUBE_URL,
    exit_code,
    format_report,
    run_checks,
)

__all__ = [
    "ANTHROPIC_URL",
    "YOUTUBE_URL",
    "Check",
    "Verdict",
    "exit_code",
    "format_report",
    "run_checks",
]
