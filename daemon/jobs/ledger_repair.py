"""A damaged or lost ledger: detect it, move it aside, rebuild the jobs, never crash-loop.

The ledger is a cache of what the vault and the inbox already say, plus the memory of
paid work not yet written. So a damaged file (a bad disk page, a cut-off copy) is not a
reason to stop: :func:`damage` runs SQLite's ``PRAGMA quick_check``; :func:`repair`
moves the file (and its ``-wal``/``-shm``) to ``ledger.corrupt-<time>.sqlite3`` (kept for
a bug report), salvages every row still readable from it, and :func:`restore` rebuilds:

* salvaged rows come back as they were (``running`` → ``ready``), so generated but
  unwritten content is not paid for again;
* every study note and assessment in the vault names its job in its ``source_key``
  frontmatter (:func:`vault_tools.notes.owner_key`): those jobs are ``done`` and point at
  the notes, so nothing already in the vault is generated twice;
* the inbox is read again by the writer's next pass, which queues what is left.

What happened is recorded in ``ledger-repaired.json`` next to the ledger (shown by
``vaultd status`` and ``vaultd doctor``) and logged once.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.jobs.ledger import Ledger
from vault_tools import frontmatter, notes

log = logging.getLogger("vaultd.ledger")

RECORD = "ledger-repaired.json"
MAX_NOTE_BYTES = 2 * 1024 * 1024
_NOT_DAMAGE = ("locked", "busy", "unable to open", "readonly", "read-only", "full")


def damage(path: Path) -> str | None:
    """What ``quick_check`` finds wrong with the ledger at ``path``; None when it is fine,
    missing, or cannot be judged now (locked, folder unreadable)."""
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(path, timeout=10)
        try:
            rows = [str(r[0]) for r in db.execute("PRAGMA quick_check(5)")]
            db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and \
                any(m in text.lower() for m in _NOT_DAMAGE):
            return None
        return text
    if rows == ["ok"]:
        return None
    return "; ".join(rows)[:300]


def move_aside(path: Path) -> Path:
    """Rename the ledger and its WAL/shm files to ``ledger.corrupt-<UTC time>.sqlite3``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"ledger.corrupt-{stamp}.sqlite3")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"ledger.corrupt-{stamp}-{n}.sqlite3")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            os.replace(src, f"{target}{suffix}")
    return target


def salvage(db: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
    """Every row still readable, per table. A damaged page ends a scan, so each table
    is read from both ends (by rowid up, then down): rows on either side survive."""
    db.row_factory = sqlite3.Row
    out: dict[str, list[dict[str, Any]]] = {}
    for table, key in (("jobs", "key"), ("pdf_exports", "note_path"),
                       ("usage_daily", "day")):
        rows: dict[Any, dict[str, Any]] = {}
        for order in ("ASC", "DESC"):
            try:
                for row in db.execute(f"SELECT * FROM {table} ORDER BY rowid {order}"):
                    rows.setdefault(row[key], dict(row))
            except sqlite3.Error:
                continue
        out[table] = list(rows.values())
    return out


def _salvage_file(path: Path) -> dict[str, list[dict[str, Any]]]:
    try:
        db = sqlite3.connect(path, timeout=5)
    except sqlite3.Error:
        return {}
    try:
        return salvage(db)
    finally:
        db.close()


def vault_notes(vault: Path) -> dict[str, dict[str, Any]]:
    """``{job key: {note_path, assessment_path, title, note_text}}`` from the notes'
    frontmatter (study notes and assessments vaultd wrote; user notes have no key)."""
    found: dict[str, dict[str, Any]] = {}
    for root, dirs, files in os.walk(vault):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.endswith(".md"):
                continue
            path = Path(root) / name
            try:
                if not path.is_file() or path.is_symlink() or \
                        path.stat().st_size > MAX_NOTE_BYTES:
                    continue
                text = path.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            key = notes.owner_key(text)
            if not key:
                continue
            data, _ = frontmatter.split(text)
            kind = (data or {}).get("type")
            rel = path.relative_to(vault).as_posix()
            entry = found.setdefault(key, {})
            if kind == "study-note":
                entry.update(note_path=rel, note_text=text,
                             title=str((data or {}).get("title") or path.stem))
            elif kind == "assessment":
                entry["assessment_path"] = rel
    return {k: v for k, v in found.items() if "note_path" in v}


def _kind_url(key: str) -> tuple[str, str | None]:
    kind = key.split(":", 1)[0]
    if kind == "youtube":
        return kind, f"https://www.youtube.com/watch?v={key[8:]}"
    return kind, None


def restore(ledger: Ledger, salvaged: dict[str, list[dict[str, Any]]], vault: Path
            ) -> tuple[int, int]:
    """Fill a fresh ledger from salvaged rows and the vault's notes.

    Returns (rows salvaged, jobs found as notes)."""
    db = ledger._db()
    now = time.time()
    cols = {r[1] for r in db.execute("PRAGMA table_info(jobs)")}
    db.execute("BEGIN IMMEDIATE")
    try:
        for row in salvaged.get("jobs", []):
            data = {k: v for k, v in row.items() if k in cols}
            if data.get("state") == "running" and data.get("claim_owner") != "batch":
                data["state"] = "ready"
            names = ",".join(data)
            db.execute(f"INSERT OR IGNORE INTO jobs ({names}) VALUES "
                       f"({','.join('?' * len(data))})", tuple(data.values()))
        for row in salvaged.get("pdf_exports", []):
            db.execute("INSERT OR IGNORE INTO pdf_exports(note_path, digest, exported_at)"
                       " VALUES (?,?,?)", (row["note_path"], row["digest"], row["exported_at"]))
        for row in salvaged.get("usage_daily", []):
            db.execute("INSERT OR IGNORE INTO usage_daily(day, tokens, cost_usd) VALUES"
                       " (?,?,?)", (row["day"], row["tokens"], row["cost_usd"]))
        found = vault_notes(vault)
        for key, entry in found.items():
            kind, url = _kind_url(key)
            db.execute("INSERT OR IGNORE INTO jobs (key, kind, url, state, created_at,"
                       " updated_at) VALUES (?,?,?,'ready',?,?)", (key, kind, url, now, now))
            db.execute("UPDATE jobs SET state='done', note_path=?, assessment_path=?,"
                       " title=COALESCE(title, ?), note_text=COALESCE(note_text, ?),"
                       " last_error=NULL, waiting=0, finished_at=?, updated_at=? WHERE key=?"
                       " AND state IN ('ready','running','failed','done')",
                       (entry["note_path"], entry.get("assessment_path"), entry["title"],
                        entry["note_text"], now, now, key))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return len(salvaged.get("jobs", [])), len(found)


def repair(path: Path, vault: Path, problem: str, ledger: Ledger | None = None) -> Ledger:
    """Move the damaged ledger aside and rebuild it (see the module docstring)."""
    if ledger is not None:
        ledger.close()
    moved = move_aside(path)
    salvaged = _salvage_file(moved)
    if ledger is None:
        ledger = Ledger(path)
    else:
        ledger.reopen()
    rows, found = restore(ledger, salvaged, vault)
    message = (f"the ledger was damaged ({problem}); moved aside to {moved.name} and rebuilt:"
               f" {rows} row(s) salvaged, {found} note(s) found in the vault")
    log.error("%s", message)
    write_record(path.parent, message, moved=str(moved))
    return ledger


def rebuild_lost(ledger: Ledger, old: sqlite3.Connection | None, vault: Path,
                 why: str) -> None:
    """The state folder vanished under a running daemon: rows still readable through a
    connection opened before (the deleted file lives on while it is open) plus the
    vault's notes go into a fresh ledger."""
    salvaged: dict[str, list[dict[str, Any]]] = {}
    if old is not None:
        try:
            salvaged = salvage(old)
        except sqlite3.Error:
            salvaged = {}
    ledger.reopen()
    rows, found = restore(ledger, salvaged, vault)
    message = (f"{why}; the ledger was rebuilt: {rows} row(s) kept, {found} note(s) found"
               " in the vault")
    log.warning("%s", message)
    write_record(ledger.path.parent, message)


def open_ledger(path: Path, vault: Path) -> Ledger:
    """Open the ledger at start, repairing it first when it is damaged (never a crash
    loop: a damaged file is moved aside, not opened again)."""
    problem = damage(path)
    if problem is None:
        try:
            return Ledger(path)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and \
                    any(m in str(exc).lower() for m in _NOT_DAMAGE):
                raise
            problem = str(exc)
    return repair(path, vault, problem)


def write_record(state: Path, message: str, **extra: str) -> None:
    try:
        (state / RECORD).write_text(json.dumps({"at": time.time(), "message": message,
                                                **extra}), encoding="utf-8")
    except OSError as exc:
        log.warning("could not record the ledger repair: %s", exc)


def read_record(state: Path) -> dict[str, Any] | None:
    """The last repair (for ``status`` and ``doctor``), or None."""
    try:
        data = json.loads((state / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
