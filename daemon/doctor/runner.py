"""Running the doctor checks and turning their verdicts into a report and an exit code.

The runner owns two orders. The run order lets later checks use what earlier ones put
in the :class:`Context` (vault before config before state; api-key before backend).
The report order is what people read (and what ``--json`` lists), grouped by topic.

It also owns the "never raises" promise: an exception escaping a check becomes a
"fail" verdict naming it, and every detail and fix passes the one scrubber
(:func:`daemon.secrets.scrub`) together with every secret a check recorded -- a last
line of defence, as no check is meant to print one. ``exit_code`` is 1 if anything failed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from daemon.doctor.model import Check, Context
from daemon.doctor.network import check_anthropic, check_proxy, check_tor, check_youtube
from daemon.doctor.openai_endpoint import check_openai
from daemon.doctor.runtime import (
    check_api_key,
    check_backend,
    check_daemon,
    check_fonts,
    check_service,
)
from daemon.doctor.vault import (
    check_config,
    check_inbox,
    check_ledger,
    check_state,
    check_symlinks,
    check_vault,
)
from daemon.secrets import register_config, scrub

YOUTUBE_URL = "https://www.youtube.com"
ANTHROPIC_URL = "https://api.anthropic.com"

_CHECKS: list[tuple[str, Callable[[Context], Check]]] = [
    ("vault", check_vault), ("config", check_config), ("state", check_state),
    ("inbox", check_inbox), ("ledger", check_ledger), ("daemon", check_daemon),
    ("symlinks", check_symlinks),
    ("api-key", check_api_key), ("backend", check_backend), ("proxy", check_proxy),
    ("tor", check_tor), ("youtube", check_youtube), ("anthropic", check_anthropic),
    ("openai", check_openai), ("fonts", check_fonts), ("service", check_service),
]
_ORDER = ["vault", "config", "inbox", "symlinks", "state", "ledger", "daemon", "backend",
          "api-key", "proxy", "tor", "youtube", "anthropic", "openai", "fonts", "service"]


def run_checks(
    vault: Path,
    *,
    network: bool = True,
    timeout: float = 5.0,
    youtube_url: str = YOUTUBE_URL,
    anthropic_url: str | None = None,
    font_dirs: Sequence[Path] | None = None,
) -> list[Check]:
    """Every check for ``vault``, in report order. Never raises.

    ``anthropic_url`` defaults to ``$ANTHROPIC_BASE_URL``, else the public API;
    ``youtube_url`` and ``font_dirs`` exist so tests can point at stand-ins.
    """
    ctx = Context(
        vault=Path(os.path.abspath(Path(vault).expanduser())), network=network,
        timeout=timeout, youtube_url=youtube_url, font_dirs=font_dirs,
        anthropic_url=anthropic_url or os.environ.get("ANTHROPIC_BASE_URL") or ANTHROPIC_URL)
    results: dict[str, Check] = {}
    for name, check in _CHECKS:  # run order: later checks use what earlier ones found
        try:
            results[name] = check(ctx)
        except Exception as exc:  # noqa: BLE001 - a doctor must report, not crash
            results[name] = Check(name, "fail", f"the check itself failed: "
                                  f"{type(exc).__name__}: {exc}",
                                  "report this as a vaultd bug, with this line")
    if ctx.config is not None:
        register_config(ctx.config)
    return [_scrub(results[name], ctx.secrets) for name in _ORDER]


def _scrub(check: Check, secrets: set[str]) -> Check:
    return replace(check, detail=scrub(check.detail, secrets), fix=scrub(check.fix, secrets))


def format_report(checks: Sequence[Check]) -> str:
    """One line per check (verdict, name, detail), a ``fix:`` line under warn/fail."""
    lines: list[str] = []
    for check in checks:
        lines.append(f"{check.verdict:<6}{check.name:<13}{check.detail}")
        if check.verdict in ("warn", "fail") and check.fix:
            lines.append(f"{'':<19}fix: {check.fix}")
    return "\n".join(lines) + "\n"


def exit_code(checks: Sequence[Check]) -> int:
    """0 when nothing failed, else 1."""
    return 1 if any(c.verdict == "fail" for c in checks) else 0
