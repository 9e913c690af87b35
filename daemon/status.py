"""What ``vaultd status`` reports: the ledger's counts, waiting and failed jobs, today's
usage, the running daemon's heartbeat and the service state, as a dict (``--json``) or
as plain lines for a person. Reads only (a vault never run gets no config file, state
folder or ledger from it); works whether or not the daemon runs. Every string passes the
one scrubber (:mod:`daemon.secrets`) before it is returned: reasons come from outside
(API and proxy errors) and must not show a secret.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from daemon.config import Config, load_config
from daemon.errors import ConfigError
from daemon.ledger import Job, Ledger
from daemon.paths import VaultPaths
from daemon.runner import open_vault, read_status_file, resolve_backend
from daemon.secrets import register_config, scrub_data
from daemon.supervisor import read_last_failure
from vault_tools.unhandled import unhandled_links


def _ago(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _open_read_only(vault: Path) -> tuple[Config, VaultPaths]:
    """Like ``open_vault``, but a vault without a config file gets the defaults, not a
    new file: ``status`` writes nothing (nor does ``doctor``)."""
    if not vault.is_dir():
        return open_vault(vault)  # raises the plain "vault folder not found" error
    config = load_config(vault, create=False)
    return config, VaultPaths.from_config(vault, config)


def gather_status(vault: Path) -> dict[str, Any]:
    """Everything ``status`` shows, as plain data (the ``--json`` contract)."""
    config, paths = _open_read_only(vault)
    register_config(config)
    running = read_status_file(paths)
    try:
        backend, why = resolve_backend(config)
    except ConfigError as exc:
        backend, why = "none", str(exc)
    # A vault never run has no ledger yet: read an empty one rather than create it.
    ledger = Ledger(paths.ledger if paths.ledger.exists() else Path(":memory:"))
    try:
        now = time.time()
        waiting = [j for j in ledger.in_state("ready", "generated") if j.waiting]
        return scrub_data({
            "vault": str(paths.vault),
            "state_dir": str(paths.state),
            "daemon": running,
            # a core thread died: in the running daemon (about to exit), or the last run
            "thread_failure": (running or {}).get("failure"),
            "last_failure": read_last_failure(paths.state),
            "backend": running["backend"] if running else backend,
            "backend_reason": why,
            "counts": ledger.counts(),
            "working_on": running["working_on"] if running else [],
            "paused": running.get("paused") if running else None,
            "notices": running.get("notices", []) if running else [],
            "waiting": [{"key": j.key, "reason": j.last_error,
                         "retry_in_seconds": max(0, round(j.next_attempt_at - now)),
                         "attempts": j.attempts} for j in waiting],
            "failures": [{"key": j.key, "url": j.url, "reason": j.last_error,
                          "attempts": j.attempts, "at": j.updated_at}
                         for j in ledger.recent_failures(10)],
            "usage_today": ledger.usage_on(),
            "youtube_requests": dict(zip(("videos", "per_video", "cached"),
                                         ledger.source_requests(), strict=True)),
            "model": _model_of(config, running["backend"] if running else backend),
            "replies": ledger.repaired_replies(),
            "service": _service_state(paths.vault),
            "usage_total": _usage_total(ledger.all_jobs()),
            "unhandled": _unhandled(paths.inbox),
        })
    finally:
        ledger.close()


def _model_of(config: Any, backend: str) -> str | None:
    """The model the backend uses (None for the offline generator)."""
    if backend == "claude":
        return str(config.get("generate", "model"))
    if backend == "openai":
        return f"{config.get('openai', 'model')} at {config.get('openai', 'base_url')}"
    return None


def _unhandled(inbox: Path) -> list[dict[str, Any]]:
    """Links in the inbox that make no note, and why (a Vimeo link, a channel page)."""
    try:
        text = inbox.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [{"line": u.line + 1, "link": u.link, "reason": u.reason, "follow": u.follow}
            for u in unhandled_links(text)]


def _service_state(vault: Path) -> str:
    try:
        from daemon.service_install import service_status

        return service_status(vault).state
    except Exception as exc:  # noqa: BLE001 - status must answer even if this fails
        return f"unknown ({exc})"


def _usage_total(jobs: list[Job]) -> dict[str, Any]:
    return {"input_tokens": sum(j.input_tokens for j in jobs),
            "output_tokens": sum(j.output_tokens for j in jobs),
            "cache_read_tokens": sum(j.cache_read_tokens for j in jobs),
            "cost_usd": round(sum(j.cost_usd for j in jobs), 4)}


def format_status(st: dict[str, Any]) -> str:
    """The status as a person reads it, one fact per line."""
    out = [f"vault:   {st['vault']}"]
    d = st["daemon"]
    if d:
        out.append(f"daemon:  running (pid {d['pid']}, up {_ago(time.time() - d['started_at'])},"
                   f" {d['workers']} worker(s), {d['watcher']})")
    else:
        out.append("daemon:  not running")
    if st.get("thread_failure"):
        out.append(f"failed:  {st['thread_failure']}; the daemon is exiting to be restarted")
    elif st.get("last_failure"):
        lf = st["last_failure"]
        at = f" {_ago(time.time() - lf['at'])} ago" if lf.get("at") else ""
        out.append(f"crashed: {lf['reason']}{at}; the service manager restarts it")
    model = f", model {st['model']}" if st.get("model") else ""
    out.append(f"backend: {st['backend']}{model} ({st['backend_reason']})")
    out.append(f"service: {st['service']}")
    if st["paused"]:
        out.append(f"paused:  {st['paused']}")
    c = st["counts"]
    out.append(f"jobs:    {c['done']} done, {c['running'] + c['generated'] + c['written']} "
               f"working, {c['ready'] - c['waiting']} queued, {c['waiting']} waiting, "
               f"{c['failed']} failed")
    for w in st["working_on"]:
        out.append(f"  working  {w['key']} for {_ago(w['seconds'])}")
    for w in st["waiting"]:
        out.append(f"  waiting  {w['key']}: {w['reason']} (next try in "
                   f"{_ago(w['retry_in_seconds'])})")
    for f in st["failures"]:
        out.append(f"  failed   {f['key']}: {f['reason']}")
    r = st["replies"]
    if r["salvaged"] or r["continued"]:
        out.append(f"replies: {r['salvaged']} salvaged off-format, {r['continued']} continued "
                   "after the output limit (none paid twice)")
    for n in st.get("unhandled", []):
        out.append(f"  no note  line {n['line']}: {n['link']}: {n['reason']}")
    for n in st.get("notices", []):
        out.append(f"  notice   {n}")
    u = st["usage_today"]
    out.append(f"today:   {u['tokens']:,} tokens, ${u['cost_usd']:.2f}")
    yr = st.get("youtube_requests") or {}
    if yr.get("videos"):
        out.append(f"youtube: {yr['per_video']:.1f} requests per video (last {yr['videos']}"
                   f" videos, {yr['cached']} from the cache with none)")
    return "\n".join(out)
