"""Command line: every `vaultd` command of the contract (see README and docs/architecture.md).

Exit codes: 0 ok, 1 runtime failure, 2 usage or config error (the message names the
bad setting). Errors are one plain line on stderr, never a traceback for bad input.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from daemon.cli.demo import DemoFolderError
from daemon.cli.status import format_status, gather_status
from daemon.config import Config
from daemon.errors import ConfigError, VaultdError, VaultMissingError
from daemon.jobs.ledger import Ledger
from daemon.logs import setup_logging
from daemon.paths import VaultPaths
from daemon.secrets import scrub
from daemon.service.daemon import (
    AlreadyRunning,
    Daemon,
    RunOptions,
    VaultLock,
    open_vault,
    read_status_file,
)
from daemon.service.install import ServiceInstallError
from daemon.writer.maintained_notes import MaintainedNotes
from daemon.writer.note_files import NoteFiles
from vault_tools.inbox import InboxBusy, append_lines, edit_inbox, parse_inbox
from vault_tools.pathgate import PathRefused, clean_typed
from vault_tools.sources import SourceRef, find_sources

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(VaultdError):
    pass


def _vault_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vault", required=True, type=Path, help="path to the Obsidian vault")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vaultd")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vaultd", description="Turn videos pasted into "
                                     "inbox.md into study notes in an Obsidian vault.")
    parser.add_argument("--version", action="version", version=f"vaultd {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run the daemon")
    _vault_arg(run)
    run.add_argument("--once", action="store_true", help="drain the inbox and exit")
    run.add_argument("--workers", type=int, help="worker processes (default: config)")
    run.add_argument("--sequential", action="store_true", help=argparse.SUPPRESS)
    run.add_argument("--batch", action="store_true",
                     help="generate queued videos through the Message Batches API (half "
                          "price, slower), then write them and exit")
    add = sub.add_parser("add", help="append URLs or subtitle-file links to the inbox")
    _vault_arg(add)
    add.add_argument("urls", nargs="+", metavar="URL",
                     help="YouTube video or playlist URLs, or paths of subtitle files "
                          "in the vault (one inbox line each; already present: skipped)")
    status = sub.add_parser("status", help="jobs by state, work in progress, failures")
    _vault_arg(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    retry = sub.add_parser("retry", help="put failed jobs back in the queue")
    _vault_arg(retry)
    retry.add_argument("jobs", nargs="*", metavar="JOB",
                       help="job keys, video ids or URLs (default: every failed job)")
    regen = sub.add_parser("regenerate", help="generate known videos again and merge the "
                           "result into their notes, keeping your edits")
    _vault_arg(regen)
    regen.add_argument("jobs", nargs="+", metavar="JOB",
                       help="job keys, video ids, URLs or subtitle-file paths")
    demo = sub.add_parser("demo", help="build and process an offline sample vault")
    demo.add_argument("dir", nargs="?", type=Path, default=Path("vaultd-demo"),
                      help="folder for the sample vault, created if missing; must be "
                           "empty or an earlier demo (default: ./vaultd-demo)")
    graph = sub.add_parser("graph", help="refresh the knowledge graph note and canvas")
    _vault_arg(graph)
    graph.add_argument("--rebuild", action="store_true",
                       help="recompute the graph from the vault alone")
    topics = sub.add_parser("topics", help="refresh the topic notes now")
    _vault_arg(topics)
    topics.add_argument("--restore", action="store_true",
                        help="also recreate topic notes you deleted")
    review = sub.add_parser("review", help="write this ISO week's review note now")
    _vault_arg(review)
    pdf = sub.add_parser("pdf", help="export chosen notes to PDF")
    _vault_arg(pdf)
    pdf.add_argument("notes", nargs="+", metavar="NOTE",
                     help="note paths (relative to the vault or absolute) or titles")
    pdf.add_argument("--theme", choices=["default", "print"], help="default: config pdf.theme")
    doctor = sub.add_parser("doctor", help="check the setup; plain verdicts and fixes")
    _vault_arg(doctor)
    doctor.add_argument("--no-network", action="store_true", help="skip network checks")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
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
    if args.batch:
        return cmd_run_batch(args)
    daemon = Daemon(args.vault, RunOptions(workers=args.workers, once=args.once,
                                           sequential=args.sequential))
    setup_logging(daemon.config.get("daemon", "log_level"))

    def on_signal(signum: int, _frame: object) -> None:
        daemon.on_signal(signum)  # a repeat within 2 s is the same stop (see runner)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, lambda _s, _f: daemon.reload_requested.set())
    daemon.start()
    try:
        daemon.run()
    finally:
        daemon.stop()
    reason = daemon.exit_reason or daemon.gave_up  # --once could not finish: why
    if reason:
        print(f"vaultd: {reason}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_FAILURE if daemon.supervisor.failure else EXIT_OK  # a thread died


def cmd_run_batch(args: argparse.Namespace) -> int:
    import threading

    from daemon.service.batch_run import BatchRun, check_batch_backend

    config, paths = open_vault(args.vault)
    setup_logging(config.get("daemon", "log_level"))
    check_batch_backend(config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _s, _f: stop.set())
    signal.signal(signal.SIGINT, lambda _s, _f: stop.set())
    lock = VaultLock(paths)
    lock.acquire()  # one process per vault, batch included
    ledger = Ledger(paths.ledger)
    try:
        counts = BatchRun(paths, config, ledger,
                          poll_seconds=config.get("generate", "batch_poll_seconds")
                          ).run(stop)
    finally:
        ledger.close()
        lock.release()
    print(f"batch: {counts['submitted']} submitted, {counts['generated']} generated, "
          f"{counts['failed']} failed")
    if stop.is_set():
        print("stopped while the batch was processing; run --batch again to collect it")
        return EXIT_OK
    args.batch = False
    args.once = True
    return cmd_run(args)


# -- add -----------------------------------------------------------------------------------
def _outside_vault(paths: VaultPaths, ref: SourceRef) -> str | None:
    """The path gate's reason when a file link can only name a file outside the vault
    (taken from the vault root or the inbox's folder, as the daemon takes it), else None.
    Lexical only: the daemon checks the file itself when it reads it."""
    if ref.kind not in ("file", "media"):
        return None
    reason = None
    for base in ("", posixpath.dirname(paths.gate.relative(paths.inbox))):
        try:
            paths.gate.relative(clean_typed(ref.ident, base))
            return None
        except PathRefused as exc:
            reason = reason or exc.reason
    return reason


def cmd_add(args: argparse.Namespace) -> int:
    _config, paths = open_vault(args.vault)
    bad = [u for u in args.urls if not find_sources(u)]
    if bad:
        raise UsageError("not a supported video URL or subtitle-file link: "
                         + ", ".join(repr(b) for b in bad))
    if refused := [why for u in args.urls for ref in find_sources(u)
                   if (why := _outside_vault(paths, ref))]:
        raise UsageError("; ".join(refused) + "; nothing added")
    added: list[str] = []

    def as_line(arg: str) -> str:
        refs = find_sources(arg)
        # A bare path is only a source when the file exists; as a link it is explicit,
        # so a missing file is reported instead of ignored.
        return f"[[{arg}]]" if len(refs) == 1 and refs[0].bare else arg

    def transform(text: str) -> str:
        present = {ref.key for line in parse_inbox(text) for ref in line.sources}
        fresh = []
        for url in args.urls:
            keys = {r.key for r in find_sources(as_line(url))}
            if not keys <= present:
                fresh.append(as_line(url))
                present |= keys
        added[:] = fresh
        return append_lines(text, fresh)

    try:  # through the path gate: an inbox (or its folder) linked out is refused
        paths.gate.make_folder(paths.inbox.parent)
        edit_inbox(paths.inbox, transform, create=True, gate=paths.gate)
    except PathRefused as exc:
        raise UsageError(f"config: vault.inbox: {exc.reason}") from None
    except (OSError, InboxBusy) as exc:  # a FIFO or folder named inbox.md, no permission
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"vaultd: cannot edit the inbox {paths.rel_any(paths.inbox) or paths.inbox}: "
              f"{why}; nothing added", file=sys.stderr)
        return EXIT_FAILURE
    for url in args.urls:
        print(f"{'added' if as_line(url) in added else 'already in the inbox'}: {url}")
    return EXIT_OK


# -- status --------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    st = gather_status(args.vault)
    print(json.dumps(st, indent=2) if args.json else format_status(st))
    return EXIT_OK


# -- retry / regenerate --------------------------------------------------------------------
def _is_file_path(word: str) -> bool:
    """A vault path of a subtitle or media file (no URL scheme), spaces allowed."""
    from vault_tools.sources import SUBTITLE_EXTS

    return "://" not in word and word.lower().endswith(SUBTITLE_EXTS)


def job_keys(words: list[str]) -> list[str]:
    """Ledger keys named by keys, video ids, URLs or vault paths of subtitle files."""
    keys = []
    for word in words:
        if word.startswith(("youtube:", "file:", "playlist:", "invalid:")):
            keys.append(word)
            continue
        if _is_file_path(word):  # "Lectures/two words.srt": the whole word is the path
            keys.append("file:" + word.removeprefix("./"))
            continue
        refs = find_sources(word)
        if refs:
            keys.extend(r.key.replace("file:./", "file:") for r in refs)
        elif ":" in word:
            keys.append(word)
        else:
            keys.extend([f"youtube:{word}", f"file:{word}"])
    return keys


def _refresh_inbox_lines(paths: VaultPaths, ledger: Ledger) -> None:
    """Show re-queued jobs as queued in the inbox now, not when a daemon next runs: the
    daemon's own transform, applied with the same compare-and-swap edit as ``add``."""
    from daemon.writer.inbox_sync import InboxSync

    try:  # through the path gate, as every vault write: an inbox linked out is refused
        if not paths.gate.resolve(paths.inbox).is_file():  # refused: said below
            return
        edit_inbox(paths.inbox, InboxSync(paths.vault, paths.inbox, ledger).transform,
                   gate=paths.gate)
    except PathRefused as exc:
        print(f"(the inbox is not updated: {exc.reason})", file=sys.stderr)
    except (OSError, InboxBusy) as exc:  # the daemon updates it later; the retry stands
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"(the inbox will show it when the daemon runs: {why})", file=sys.stderr)


def _requeue(args: argparse.Namespace, regenerate: bool) -> int:
    """Exit 2 when a named job does not exist (a typo should not look like success)."""
    _config, paths = open_vault(args.vault)
    ledger = Ledger(paths.ledger)
    try:
        known = ledger.get_many(job_keys(args.jobs))
        if regenerate:
            moved = ledger.regenerate(job_keys(args.jobs))
        elif not args.jobs:
            moved = ledger.retry()
        else:
            moved = ledger.retry(job_keys(args.jobs))
        if moved:
            _refresh_inbox_lines(paths, ledger)
        # Failed lines with no valid video id are never retried: trying again cannot help.
        invalid = 0 if (moved or args.jobs or regenerate) else sum(
            1 for j in ledger.all_jobs() if j.state == "failed" and j.key.startswith("invalid:"))
    finally:
        ledger.close()
    unknown = False
    for word in args.jobs:
        keys = job_keys([word])
        if any(k in moved for k in keys):
            continue
        jobs = [known[k] for k in keys if k in known]
        if not jobs:
            unknown = True
            print(f"no such job: {word} (vaultd status lists them)", file=sys.stderr)
        elif regenerate:
            print(f"{word} is {jobs[0].state}; only done or failed jobs can be regenerated",
                  file=sys.stderr)
        else:
            hint = "; use vaultd regenerate to make it again" if jobs[0].state == "done" else ""
            print(f"{word} is {jobs[0].state}, not failed{hint}", file=sys.stderr)
    for key in moved:
        print(f"queued {'for regeneration' if regenerate else 'again'}: {key}")
    if not moved:
        print(f"nothing to do: {invalid} failed line(s) hold no valid video id; correct the "
              "link in the inbox and it is picked up" if invalid else "nothing to do")
    if moved and not read_status_file(paths):
        print(f"start the daemon to process: vaultd run --vault {paths.vault}")
    return EXIT_USAGE if unknown else EXIT_OK


def cmd_retry(args: argparse.Namespace) -> int:
    return _requeue(args, regenerate=False)


def cmd_regenerate(args: argparse.Namespace) -> int:
    return _requeue(args, regenerate=True)


# -- demo ----------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from daemon.cli.demo import run_demo

    return run_demo(args.dir)


# -- graph -------------------------------------------------------------------------------
def cmd_graph(args: argparse.Namespace) -> int:
    from daemon.writer.graph_keeper import load_or_rebuild, render_outputs, write_graph_files
    from vault_tools.atomic import write_atomic
    from vault_tools.pathgate import PathRefused

    _config, paths = open_vault(args.vault)
    exclude = sorted(p for p in (paths.rel_any(paths.inbox), paths.rel_any(paths.graph_note),
                                 paths.rel_any(paths.graph_note.with_suffix(".canvas"))) if p)
    graph, rebuilt = load_or_rebuild(paths.vault, paths.state / "graph.json", exclude,
                                     rebuild=args.rebuild)
    note, canvas, _analysis = render_outputs(graph)
    paths.state.mkdir(parents=True, exist_ok=True)
    write_atomic(paths.state / "graph.json", graph.to_json())  # state dir, not the vault
    try:  # through the path gate; a user's own file at either name is kept
        for line in write_graph_files(paths.gate, paths.graph_note, note, canvas):
            print(line)
    except PathRefused as exc:
        raise UsageError(exc.reason) from None
    notes = graph.notes()
    print(f"{'rebuilt from the vault' if rebuilt else 'refreshed'}: {len(notes)} notes")
    print(f"wrote {paths.graph_note} and {paths.graph_note.with_suffix('.canvas').name}")
    return EXIT_OK


# -- topics and review ---------------------------------------------------------------------
def _maintained(paths: VaultPaths, config: Config) -> MaintainedNotes:
    return MaintainedNotes(paths, NoteFiles(paths, lambda: None),
                           config.get("topics", "folder"))


def cmd_topics(args: argparse.Namespace) -> int:
    """Topic notes from the saved graph (or the vault when there is none), written with
    the daemon's rules: merged with your edits, a deleted one only with --restore."""
    from daemon.service.daemon import resolve_backend
    from daemon.writer.graph_keeper import load_or_rebuild
    from daemon.writer.topic_keeper import clusters_for, plan_topics
    from daemon.writer.topic_synthesizer import synthesizer_for
    from vault_tools.topic_clusters import topic_inputs

    config, paths = open_vault(args.vault)
    exclude = sorted(p for p in (paths.rel_any(paths.inbox), paths.rel_any(paths.graph_note),
                                 paths.rel_any(paths.graph_note.with_suffix(".canvas"))) if p)
    graph, _ = load_or_rebuild(paths.vault, paths.state / "graph.json", exclude)
    registry = _maintained(paths, config)
    backend, _why = resolve_backend(config)
    synth = synthesizer_for(config, backend, paths.state, registry.tokens_today)
    clusters = clusters_for(topic_inputs(graph), registry)
    writes = plan_topics(paths.vault, registry, clusters, synth)
    try:
        lines = registry.apply_topics(writes, restore=args.restore, report_deleted=True)
    except OSError as exc:
        raise VaultdError(f"could not write the topic notes: {exc}") from exc
    print(f"{len(writes)} topic(s) with at least two study notes from different sources")
    for line in lines:
        print(f"  {line}")
    return EXIT_OK


def cmd_review(args: argparse.Namespace) -> int:
    from datetime import date

    from daemon.writer.weekly_review import plan_review

    config, paths = open_vault(args.vault)
    registry = _maintained(paths, config)
    rel, text = plan_review(paths.vault, registry, config.get("review", "folder"),
                            date.today())
    try:
        outcome = registry.write(rel, text, restore=True)
    except OSError as exc:
        raise VaultdError(f"could not write the review note: {exc}") from exc
    if outcome == "foreign":
        print(f"vaultd: {paths.vault / rel} is not a note vaultd wrote; left it alone",
              file=sys.stderr)
        return EXIT_FAILURE
    print(f"{outcome}: {paths.vault / rel}")
    return EXIT_OK


# -- pdf ---------------------------------------------------------------------------------
def _find_note(vault: Path, name: str) -> Path | None:
    # A lookup only: the note found is read through the path gate (cmd_pdf).
    for cand in (Path(name), vault / name, vault / f"{name}.md"):
        if cand.is_file() and cand.suffix == ".md":
            return cand.resolve()
    matches = [p for p in vault.rglob(f"{Path(name).stem}.md") if ".vaultd" not in p.parts]
    return matches[0].resolve() if len(matches) == 1 else None


def cmd_pdf(args: argparse.Namespace) -> int:
    import tempfile

    from daemon.writer.pdf.filing import put_pdf
    from daemon.writer.pdf.render_pool import pdf_path_for
    from vault_tools.pathgate import PathRefused
    from vault_tools.pdf import export_pdf

    config, paths = open_vault(args.vault)
    theme = args.theme or config.get("pdf", "theme")
    missing = failed = 0
    for name in args.notes:
        note = _find_note(paths.vault, name)
        rel = paths.rel_any(note) if note else None
        if note is None or rel is None:
            print(f"vaultd: not found in the vault: {name}", file=sys.stderr)
            missing += 1
            continue
        out = pdf_path_for(rel, config.get("vault", "pdf_folder"))
        try:  # read and written through the path gate; a user's own PDF is kept
            text = paths.gate.read_text(rel)
            with tempfile.TemporaryDirectory(prefix="vaultd-pdf-") as tmp:
                report = export_pdf(text, Path(tmp) / "out.pdf", vault_root=paths.vault,
                                    note_path=Path(rel), theme=theme)
                data = (Path(tmp) / "out.pdf").read_bytes()
            out = put_pdf(paths.gate, out, data, print) or out
        except PathRefused as exc:
            print(f"{name}: {exc.reason}", file=sys.stderr)
            failed += 1
            continue
        print(f"{rel} -> {out} ({report.pages} page(s))")
        for w in report.warnings:
            print(f"  warning: {w}")
    if missing:  # a name that is no note: a usage error
        return EXIT_USAGE
    return EXIT_FAILURE if failed else EXIT_OK


# -- doctor --------------------------------------------------------------------------------
def cmd_doctor(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from daemon.cli.doctor import exit_code, format_report, run_checks

    checks = run_checks(args.vault, network=not args.no_network)
    if args.json:
        print(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        print(format_report(checks))
    return exit_code(checks)


# -- service -------------------------------------------------------------------------------
def cmd_service(args: argparse.Namespace) -> int:
    from daemon.service import install as svc

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
            "regenerate": cmd_regenerate, "demo": cmd_demo, "graph": cmd_graph, "pdf": cmd_pdf,
            "topics": cmd_topics, "review": cmd_review,
            "doctor": cmd_doctor, "service": cmd_service}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "run":
        setup_logging("WARNING")
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, VaultMissingError, UsageError, AlreadyRunning,
            ServiceInstallError, DemoFolderError) as exc:
        print(f"vaultd: {scrub(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except VaultdError as exc:
        print(f"vaultd: {scrub(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
