"""Command line: ``vaultd run|add|status|retry|demo`` (see docs/architecture.md).

Exit codes: 0 ok, 1 runtime failure, 2 usage or config error (the message names the
bad setting). Errors are one plain line on stderr, never a traceback for bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daemon.errors import ConfigError, VaultdError, VaultMissingError
from daemon.ledger import Job, Ledger
from daemon.logs import setup_logging
from daemon.runner import (
    AlreadyRunning,
    Daemon,
    RunOptions,
    open_vault,
    read_status_file,
    resolve_backend,
)
from daemon.service_install import ServiceInstallError
from vault_tools.inbox import append_lines, edit_inbox, parse_inbox
from vault_tools.sources import find_sources

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(VaultdError):
    pass


def _vault_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vault", required=True, type=Path, help="path to the Obsidian vault")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vaultd", description="Turn videos pasted into "
                                     "inbox.md into study notes in an Obsidian vault.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run the daemon")
    _vault_arg(run)
    run.add_argument("--once", action="store_true", help="drain the inbox and exit")
    run.add_argument("--workers", type=int, help="worker processes (default: config)")
    run.add_argument("--sequential", action="store_true", help=argparse.SUPPRESS)
    add = sub.add_parser("add", help="append URLs or subtitle-file links to the inbox")
    _vault_arg(add)
    add.add_argument("urls", nargs="+", metavar="URL")
    status = sub.add_parser("status", help="jobs by state, work in progress, failures")
    _vault_arg(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    retry = sub.add_parser("retry", help="put failed jobs back in the queue")
    _vault_arg(retry)
    retry.add_argument("jobs", nargs="*", metavar="JOB",
                       help="job keys, video ids or URLs (default: every failed job)")
    demo = sub.add_parser("demo", help="build and process an offline sample vault")
    demo.add_argument("dir", nargs="?", type=Path, default=Path("vaultd-demo"))
    service = sub.add_parser("service", help="install, uninstall or inspect the "
                             "systemd/launchd service for a vault")
    service.add_argument("action", choices=["install", "uninstall", "status"])
    _vault_arg(service)
    service.add_argument("--dry-run", action="store_true",
                         help="change nothing; print the unit/plist and the commands")
    service.add_argument("--no-sandbox", action="store_true",
                         help="leave out systemd sandboxing (for restricted kernels)")
    service.add_argument("--json", action="store_true", help="status as JSON")
    return parser


# -- run -----------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    daemon = Daemon(args.vault, RunOptions(workers=args.workers, once=args.once,
                                           sequential=args.sequential))
    setup_logging(daemon.config.get("daemon", "log_level"))
    signals = {"count": 0}

    def on_signal(signum: int, _frame: object) -> None:
        signals["count"] += 1
        if signals["count"] > 1:
            os._exit(EXIT_FAILURE)  # second signal: leave now; ledger and files are safe
        daemon.stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda _s, _f: daemon.reload_requested.set())
    daemon.start()
    try:
        daemon.run()
    finally:
        daemon.stop()
    return EXIT_OK


# -- add -----------------------------------------------------------------------------------
def cmd_add(args: argparse.Namespace) -> int:
    _config, paths = open_vault(args.vault)
    bad = [u for u in args.urls if not find_sources(u)]
    if bad:
        raise UsageError("not a supported video URL or subtitle-file link: "
                         + ", ".join(repr(b) for b in bad))
    added: list[str] = []

    def transform(text: str) -> str:
        present = {ref.key for line in parse_inbox(text) for ref in line.sources}
        fresh = []
        for url in args.urls:
            keys = {r.key for r in find_sources(url)}
            if not keys <= present:
                fresh.append(url)
                present |= keys
        added[:] = fresh
        return append_lines(text, fresh)

    paths.inbox.parent.mkdir(parents=True, exist_ok=True)
    edit_inbox(paths.inbox, transform, create=True)
    for url in args.urls:
        print(f"{'added' if url in added else 'already in the inbox'}: {url}")
    return EXIT_OK


# -- status --------------------------------------------------------------------------------
def _ago(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def gather_status(vault: Path) -> dict[str, Any]:
    config, paths = open_vault(vault)
    running = read_status_file(paths)
    try:
        backend, why = resolve_backend(config)
    except ConfigError as exc:
        backend, why = "none", str(exc)
    ledger = Ledger(paths.ledger)
    try:
        now = time.time()
        waiting = [j for j in ledger.in_state("ready", "generated") if j.waiting]
        return {
            "vault": str(paths.vault),
            "state_dir": str(paths.state),
            "daemon": running,
            "backend": running["backend"] if running else backend,
            "backend_reason": why,
            "counts": ledger.counts(),
            "working_on": running["working_on"] if running else [],
            "paused": running.get("paused") if running else None,
            "waiting": [{"key": j.key, "reason": j.last_error,
                         "retry_in_seconds": max(0, round(j.next_attempt_at - now)),
                         "attempts": j.attempts} for j in waiting],
            "failures": [{"key": j.key, "url": j.url, "reason": j.last_error,
                          "attempts": j.attempts, "at": j.updated_at}
                         for j in ledger.recent_failures(10)],
            "usage_today": ledger.usage_on(),
            "service": _service_state(paths.vault),
            "usage_total": _usage_total(ledger.all_jobs()),
        }
    finally:
        ledger.close()


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


def cmd_status(args: argparse.Namespace) -> int:
    st = gather_status(args.vault)
    if args.json:
        print(json.dumps(st, indent=2))
        return EXIT_OK
    out = [f"vault:   {st['vault']}"]
    d = st["daemon"]
    if d:
        out.append(f"daemon:  running (pid {d['pid']}, up {_ago(time.time() - d['started_at'])},"
                   f" {d['workers']} worker(s), {d['watcher']})")
    else:
        out.append("daemon:  not running")
    out.append(f"backend: {st['backend']} ({st['backend_reason']})")
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
    u = st["usage_today"]
    out.append(f"today:   {u['tokens']:,} tokens, ${u['cost_usd']:.2f}")
    print("\n".join(out))
    return EXIT_OK


# -- retry ---------------------------------------------------------------------------------
def cmd_retry(args: argparse.Namespace) -> int:
    _config, paths = open_vault(args.vault)
    ledger = Ledger(paths.ledger)
    try:
        if not args.jobs:
            moved = ledger.retry()
        else:
            keys = []
            for j in args.jobs:
                refs = find_sources(j)
                if refs:
                    keys.extend(r.key for r in refs)
                elif ":" in j:
                    keys.append(j)
                else:
                    keys.extend([f"youtube:{j}", f"file:{j}"])
            moved = ledger.retry(keys)
            unknown = [j for j in args.jobs if not any(j in m for m in moved)]
            for j in unknown:
                print(f"not a failed job: {j}", file=sys.stderr)
    finally:
        ledger.close()
    for key in moved:
        print(f"queued again: {key}")
    if not moved:
        print("nothing to retry")
    return EXIT_OK


# -- demo ----------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from daemon.demo import run_demo

    return run_demo(args.dir)


# -- service -------------------------------------------------------------------------------
def cmd_service(args: argparse.Namespace) -> int:
    from daemon import service_install as svc

    if args.action == "status":
        st = svc.service_status(args.vault)
        print(json.dumps(st.to_dict(), indent=2) if args.json else st.summary())
        return EXIT_OK
    if args.action == "install":
        report = svc.install(args.vault, dry_run=args.dry_run, sandbox=not args.no_sandbox)
    else:
        report = svc.uninstall(args.vault, dry_run=args.dry_run)
    print(report.format())
    return EXIT_OK if report.ok else EXIT_FAILURE


COMMANDS = {"run": cmd_run, "add": cmd_add, "status": cmd_status, "retry": cmd_retry,
            "demo": cmd_demo, "service": cmd_service}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "run":
        setup_logging("WARNING")
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, VaultMissingError, UsageError, AlreadyRunning,
            ServiceInstallError) as exc:
        print(f"vaultd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except VaultdError as exc:
        print(f"vaultd: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
