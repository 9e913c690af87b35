"""What ``vaultd status`` reports: the ledger's counts, waiting and failed jobs, today's
usage, the running daemon's heartbeat and the service state, as a dict (``--json``) or
as plain lines for a person. Reads only (a vault never run gets no config file, state
folder or ledger from it); works whether or not the daemon runs. Every string passes the
one scrubber (:mod:`daemon.secrets`) before it is returned: reasons come from outside
(API and proxy errors) and must not show a secret.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import date
from pathlib import Path
from typing import Any

from daemon.config import Config, load_config
from daemon.errors import ConfigError
from daemon.jobs import ledger_repair
from daemon.jobs.ledger import Job, Ledger
from daemon.paths import VaultPaths
from daemon.secrets import register_config, scrub_data
from daemon.service.daemon import open_vault, read_status_file, resolve_backend
from daemon.service.supervisor import read_last_failure
from vault_tools.inbox import MAX_INBOX_BYTES
from vault_tools.pathgate import PathRefused
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
    if not vault.exists():
        # A daemon still runs for it, paused until the folder is back (a drive
        # unmounted): report that daemon, with the default settings, not "not found".
        paths = VaultPaths.from_config(vault, Config.defaults())
        if read_status_file(paths) is not None:
            return Config.defaults(), paths
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
    problem = ledger_repair.damage(paths.ledger)
    repaired = ledger_repair.read_record(paths.state)
    if problem is not None:
        # Never a traceback: say what is wrong and what happens next.
        return _damaged_status(paths.vault, paths.state, running, backend, why,
                               f"damaged ({problem}); vaultd moves it aside and rebuilds"
                               " it from the inbox and the vault at its next start (or"
                               " within seconds when it is running)")
    try:
        # A vault never run has no ledger yet: read an empty one rather than create it.
        ledger = Ledger(paths.ledger if paths.ledger.exists() else Path(":memory:"),
                        private=False)
    except (sqlite3.Error, OSError) as exc:  # e.g. a read-only or vanished state folder
        return _damaged_status(paths.vault, paths.state, running, backend, why,
                               f"cannot be read now: {exc}")
    if running and _read_only(paths.state):
        running["paused"] = f"waiting: the state folder {paths.state} is read-only"
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
            "unhandled": _unhandled(paths),
            "pdf_failures": [{"note": r["note_path"], "reason": r["reason"],
                              "attempts": r["attempts"],
                              "retry_in_seconds": max(0, round(r["next_attempt_at"] - now))}
                             for r in ledger.pdf_failures()],
            "ledger_problem": None,
            "ledger_repaired": repaired,
            "state_note": running.get("state_note") if running else None,
            "topics": _topics(paths),
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


def _unhandled(paths: VaultPaths) -> list[dict[str, Any]]:
    """Links in the inbox that make no note, and why (a Vimeo link, a channel page).

    Read through the path gate like every vault read: an inbox that is a FIFO, a device
    or a symlink out of the vault is not read (the daemon and doctor say why)."""
    try:
        text = paths.gate.read_text(paths.inbox, MAX_INBOX_BYTES)  # what the daemon reads
    except (OSError, PathRefused):
        return []
    return [{"line": u.line + 1, "link": u.link, "reason": u.reason, "follow": u.follow}
            for u in unhandled_links(text)]
def _damaged_status(vault: Path, state: Path, running: dict[str, Any] | None, backend: str,
                    why: str, problem: str) -> dict[str, Any]:
    from daemon.jobs.job import STATES

    counts = dict.fromkeys((*STATES, "waiting"), 0)
    return {"vault": str(vault), "state_dir": str(state), "daemon": running,
            "backend": running["backend"] if running else backend, "backend_reason": why,
            "counts": counts, "working_on": running["working_on"] if running else [],
            "paused": running.get("paused") if running else None, "waiting": [],
            "failures": [], "pdf_failures": [], "usage_today": {"tokens": 0, "cost_usd": 0.0},
            "service": _service_state(vault), "usage_total": _usage_total([]),
            "ledger_problem": problem,
            "ledger_repaired": ledger_repair.read_record(state),
            "state_note": running.get("state_note") if running else None,
            "notices": running.get("notices", []) if running else [],
            "replies": {"salvaged": 0, "continued": 0},
            "youtube_requests": {"videos": 0, "per_video": 0.0, "cached": 0},
            "model": None, "unhandled": [], "thread_failure": (running or {}).get("failure"),
            "last_failure": read_last_failure(state)}


def _read_only(state: Path) -> bool:
    """The state folder's file system is mounted read-only (the daemon's heartbeat
    cannot say so then: it cannot be written)."""
    try:
        return bool(os.statvfs(state).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _service_state(vault: Path) -> str:
    try:
        from daemon.service.install import service_status

        return service_status(vault).state
    except Exception as exc:  # noqa: BLE001 - status must answer even if this fails
        return f"unknown ({exc})"


def _usage_total(jobs: list[Job]) -> dict[str, Any]:
    return {"input_tokens": sum(j.input_tokens for j in jobs),
            "output_tokens": sum(j.output_tokens for j in jobs),
            "cache_read_tokens": sum(j.cache_read_tokens for j in jobs),
            "cost_usd": round(sum(j.cost_usd for j in jobs), 4)}


def _topics(paths: VaultPaths) -> dict[str, Any]:
    """Topic notes and what their synthesis cost (read from the registry, read-only)."""
    try:
        data = json.loads((paths.state / "maintained.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    topics = data.get("topics") or {}
    usage = data.get("usage") or {}
    live = sum(1 for t in topics.values() if not t.get("retired") and t.get("path")
               and (paths.vault / t["path"]).is_file())
    today = usage.get(date.today().isoformat()) or {}
    return {"notes": live, "tokens_today": int(today.get("tokens", 0)),
            "cost_today_usd": float(today.get("cost_usd", 0.0)),
            "tokens_total": sum(int(v.get("tokens", 0)) for v in usage.values()),
            "cost_total_usd": round(sum(float(v.get("cost_usd", 0.0))
                                        for v in usage.values()), 6)}


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
    why = st["backend_reason"]  # the openai reason names the model and server: say them once
    why = why.removesuffix(f": {st['model']}") if st.get("model") else why
    out.append(f"backend: {st['backend']}{model} ({why})")
    out.append(f"service: {st['service']}")
    if st["paused"]:
        out.append(f"paused:  {st['paused']}")
    if st.get("ledger_problem"):
        out.append(f"ledger:  {st['ledger_problem']}")
    elif st.get("ledger_repaired"):
        r = st["ledger_repaired"]
        out.append(f"ledger:  repaired {_ago(time.time() - r.get('at', 0))} ago: "
                   f"{r.get('message', '')}")
    if st.get("state_note"):
        out.append(f"state:   {st['state_note']}")
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
    for p in st.get("pdf_failures", []):
        out.append(f"  no PDF   {p['note']}: {p['reason']} (try {p['attempts']}, next in "
                   f"{_ago(p['retry_in_seconds'])})")
    u = st["usage_today"]
    out.append(f"today:   {u['tokens']:,} tokens, ${u['cost_usd']:.2f}")
    yr = st.get("youtube_requests") or {}
    if yr.get("videos"):
        out.append(f"youtube: {yr['per_video']:.1f} requests per video (last {yr['videos']}"
                   f" videos, {yr['cached']} from the cache with none)")
    t = st.get("topics") or {}
    if t:
        how = "offline, extractive" if not t["tokens_total"] else "model synthesis"
        out.append(f"topics:  {t['notes']} topic note(s); synthesis {t['tokens_today']:,} "
                   f"tokens today (${t['cost_today_usd']:.2f}), {t['tokens_total']:,} in "
                   f"all (${t['cost_total_usd']:.2f}; {how})")
    return "\n".join(out)
