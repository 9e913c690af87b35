"""The ledger: one SQLite row per source, the durable queue and the memory of spend.

State machine (every transition is one UPDATE guarded by the expected old state)::

    ready ──claim_next──▶ running ──mark_generated──▶ generated ──mark_written──▶ written
      ▲                     │                                                     │
      │   transient error   │ permanent error / attempts used up                  ▼
      └──(next_attempt_at)──┤────────────────────────────▶ failed            mark_done ─▶ done
      ▲                     │                                 │
      └── recover() at start (running → ready)                └── retry() ─▶ ready

* Keys are ``youtube:<id>`` or ``file:<vault-relative path>``; adding a key twice is a
  no-op, so the same video pasted twice (any URL form) is one job.
* ``claim_next`` is atomic: ``UPDATE … RETURNING`` inside ``BEGIN IMMEDIATE``.
* Generated content (and its token usage) is committed *before* the writer runs, so a
  crash after generation never pays for generation again: at start ``generated`` and
  ``written`` rows resume at the writer, ``running`` rows go back to ``ready``.
* WAL with ``synchronous=FULL``; one connection per thread. ``reopen()`` makes every
  thread reconnect on its next call (the file was moved aside or its folder recreated,
  see :mod:`daemon.jobs.ledger_repair`); a connection belongs to its thread, so the old one is
  closed there, lazily.
"""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.jobs.job import ACTIVE_STATES, SCHEMA, STATES, Job, migrate
from daemon.secrets import scrub
from vault_tools.models import Usage

__all__ = ["ACTIVE_STATES", "STATES", "Job", "Ledger", "StateConflict", "backoff_delay"]

_RETRY = ("state=CASE WHEN content IS NULL THEN 'ready' ELSE 'generated' END, attempts=0,"
          " write_attempts=0, next_attempt_at=0, waiting=0, last_error=NULL, updated_at=?")


# No retry waits longer than this (the backoff cap's ceiling, with room for a budget
# pause): a due time further ahead was set before the wall clock was stepped back (a
# manual change, NTP after a wrong RTC) and would freeze the job for that long.
MAX_WAIT = 6 * 3600.0


class StateConflict(RuntimeError):
    """A transition found the row in an unexpected state (a bug, or a reaped claim)."""


def backoff_delay(attempts: int, base: float, cap: float, rng: random.Random | None = None
                  ) -> float:
    """Exponential backoff with full jitter in [0.5, 1.0] of the step, capped."""
    step = min(cap, base * (2 ** max(attempts - 1, 0)))
    return step * (0.5 + 0.5 * (rng or random).random())


# A generation's commit (running -> generated): the content, its spend added to the row's,
# the replies salvaged / continued counted. Shared by the first commit and a late one.
_GENERATED_SET = (
    "state='generated', content=?, title=?, input_tokens=input_tokens+?,"
    " output_tokens=output_tokens+?, cache_read_tokens=cache_read_tokens+?,"
    " cache_write_tokens=cache_write_tokens+?, cost_usd=cost_usd+?, generated_at=?,"
    " last_error=NULL, waiting=0, offline_waits=0,"
    " salvaged_replies=salvaged_replies+?, continued_replies=continued_replies+?")


def _generated_params(content_json: str, title: str, usage: Usage, now: float
                      ) -> tuple[Any, ...]:
    return (content_json, title, usage.input_tokens, usage.output_tokens,
            usage.cache_read_tokens, usage.cache_write_tokens, usage.cost_usd, now,
            *_repairs(content_json))


def _repairs(content_json: str) -> tuple[int, int]:
    """(salvaged, continued) replies recorded in a VideoContent JSON (0s if absent)."""
    try:
        data = json.loads(content_json)
        return int(data.get("salvaged") or 0), int(data.get("continued") or 0)
    except (ValueError, TypeError, AttributeError):
        return 0, 0


def today() -> str:
    return datetime.now(UTC).date().isoformat()


_WILL_RETRY = re.compile(r"[;,]?\s*vaultd\s+will\s+(?:wait\s+and\s+)?retry(?:\s+later)?",
                         re.IGNORECASE)


def gave_up(reason: str, attempts: int) -> str:
    """The final reason of a job that used up its attempts. Transient reasons promise a
    retry ("...; vaultd will retry."), true while the job waits; once it has failed that
    promise is dropped and the line says what does try again."""
    reason = _WILL_RETRY.sub("", reason).strip().rstrip(".;,") or "failed"
    return (f"{reason}; gave up after {attempts} attempt{'' if attempts == 1 else 's'} "
            "(vaultd retry tries again)")


NOTE_DELETED = "note deleted"  # last_error of a done job whose study note the user deleted


def make_private(path: Path) -> None:
    """The state folder 0700 and the ledger file 0600, whoever created them first and
    whatever the umask: the ledger holds titles, URLs and spend of the user's study."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with suppress(PermissionError):  # someone else's folder or file: use it as it is
        os.chmod(path.parent, 0o700)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    with suppress(PermissionError):
        os.chmod(path, 0o600)  # SQLite gives its -wal and -shm files the same mode


CACHE_KIB = 1024  # page cache per connection (one connection per thread)


class Ledger:
    """Durable job table. Safe to use from several threads (one connection each)."""

    def __init__(self, path: Path, *, private: bool = True) -> None:
        """``private=False`` (``vaultd status``, which writes nothing): the folder's and
        file's modes are left as they are (a read-only state folder stays read-only)."""
        self.path = path
        if private and str(path) != ":memory:":
            make_private(path)
        self._local = threading.local()
        self._generation = 0
        self._db().executescript(SCHEMA)
        migrate(self._db())

    # -- connections -------------------------------------------------------------
    def reopen(self) -> None:
        """Every thread opens the file anew on its next call (it was replaced)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:  # the tables first: a thread reconnecting at once must find them
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            migrate(db)
        finally:
            db.close()
        self._generation += 1

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is not None and getattr(self._local, "generation", 0) != self._generation:
            try:
                db.close()
            except sqlite3.Error:
                pass
            db = None
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=30000")
            # Each thread's connection keeps its own page cache (SQLite's default: 2 MB),
            # filled by the scans of a ledger that holds every generated content: five
            # threads made 10 MB of the soak's RSS growth. 1 MiB each keeps the hot pages.
            db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._local.db = db
            self._local.generation = self._generation
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.in_transaction:  # SQLITE_FULL and friends roll back by themselves
                db.execute("ROLLBACK")
            raise
        try:
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    # -- intake ------------------------------------------------------------------
    def add(self, key: str, kind: str, url: str | None, *, error: str | None = None,
            parent: str | None = None) -> bool:
        """Insert a job if the key is new. Returns True when it was added.

        With ``error`` the job starts ``failed`` (e.g. a malformed video id), so the
        problem is visible in ``status`` like any other failure.
        """
        return bool(self.add_many([(key, kind, url, error)], parent=parent))

    def add_many(self, items: Iterable[tuple[str, str, str | None, str | None]],
                 *, parent: str | None = None) -> list[str]:
        """Insert many ``(key, kind, url, error)`` in one transaction; returns new keys."""
        now = time.time()
        added: list[str] = []
        items = list(items)
        if not items:
            return added
        with self._tx() as db:
            for key, kind, url, error in items:
                cur = db.execute(
                    "INSERT OR IGNORE INTO jobs (key, kind, url, state, last_error, parent,"
                    " created_at, updated_at, finished_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (key, kind, url, "failed" if error else "ready", error, parent, now, now,
                     now if error else None),
                )
                if cur.rowcount == 1:
                    added.append(key)
        return added

    def children_of(self, parents: Iterable[str]) -> dict[str, list[Job]]:
        """The video jobs of expanded playlists, in playlist order."""
        out: dict[str, list[Job]] = {}
        for parent, playlist in self.get_many(parents).items():
            if playlist.content:
                keys = json.loads(playlist.content)
                jobs = self.get_many(keys)
                out[parent] = [jobs[k] for k in keys if k in jobs]
        return out

    # -- claiming ----------------------------------------------------------------
    def claim_next(self, owner: str, *, now: float | None = None,
                   kinds: Iterable[str] | None = None,
                   exclude: Iterable[str] = (), horizon: float = MAX_WAIT) -> Job | None:
        """Atomically move the oldest due ``ready`` job to ``running`` and return it.

        ``exclude``: keys already being generated or holding an unsaved result (a
        rebuilt ledger may list them ``ready`` again; claiming them would pay twice).
        ``horizon``: no wait is longer (the backoff cap); a due time further away was set
        before the wall clock stepped back, and is due now (see :func:`_due`)."""
        now = time.time() if now is None else now
        kind_filter = ""
        params: list[Any] = [now, owner, now, now, now + horizon]
        if kinds is not None:
            kinds = list(kinds)
            kind_filter = f" AND kind IN ({','.join('?' * len(kinds))})"
            params.extend(kinds)
        exclude = list(exclude)
        if exclude:
            kind_filter += f" AND key NOT IN ({','.join('?' * len(exclude))})"
            params.extend(exclude)
        with self._tx() as db:
            row = db.execute(
                "UPDATE jobs SET state='running', claimed_at=?, claim_owner=?, updated_at=?,"
                " attempts=attempts+1 WHERE key = (SELECT key FROM jobs WHERE state='ready'"
                f" AND (next_attempt_at <= ? OR next_attempt_at > ?){kind_filter}"
                " ORDER BY next_attempt_at, created_at LIMIT 1) RETURNING *",
                params,
            ).fetchone()
        return Job.from_row(row) if row else None

    def next_due_at(self, horizon: float = MAX_WAIT) -> float | None:
        """When the next ready job is due (wall clock); a due time beyond the horizon
        (the clock stepped back) counts as now."""
        now = time.time()
        row = self._db().execute(
            "SELECT MIN(CASE WHEN next_attempt_at > ? THEN ? ELSE next_attempt_at END)"
            " FROM jobs WHERE state='ready'", (now + horizon, now)).fetchone()
        return row[0]

    def _move(self, key: str, old: tuple[str, ...], sets: str, params: tuple[Any, ...]
              ) -> None:
        marks = ",".join("?" * len(old))
        with self._tx() as db:
            cur = db.execute(
                f"UPDATE jobs SET {sets}, updated_at=? WHERE key=? AND state IN ({marks})",
                (*params, time.time(), key, *old),
            )
            if cur.rowcount != 1:
                row = db.execute("SELECT state FROM jobs WHERE key=?", (key,)).fetchone()
                raise StateConflict(f"{key}: expected {'/'.join(old)}, found "
                                    f"{row['state'] if row else 'no row'}")

    # -- transitions -------------------------------------------------------------
    def record_source_requests(self, key: str, requests: int) -> None:
        """How many requests the source (YouTube) answered for this job's last fetch."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET source_requests=? WHERE key=?", (requests, key))

    def source_requests(self, limit: int = 100) -> tuple[int, float, int]:
        """(videos, mean requests per video, of them served from the cache with no
        request) over the last ``limit`` YouTube jobs that recorded a count."""
        rows = self._db().execute("SELECT source_requests FROM jobs WHERE kind='youtube' AND"
                                  " source_requests IS NOT NULL ORDER BY updated_at DESC"
                                  " LIMIT ?", (limit,)).fetchall()
        counts = [int(r[0]) for r in rows]
        return len(counts), (sum(counts) / len(counts) if counts else 0.0), counts.count(0)

    def record_usage(self, key: str, usage: Usage) -> None:
        """Spend of an attempt that failed: counted on the job and in today's total."""
        tokens = usage.input_tokens + usage.output_tokens + usage.cache_read_tokens \
            + usage.cache_write_tokens
        if not tokens and not usage.cost_usd:
            return
        with self._tx() as db:
            db.execute("UPDATE jobs SET input_tokens=input_tokens+?, output_tokens="
                       "output_tokens+?, cache_read_tokens=cache_read_tokens+?,"
                       " cache_write_tokens=cache_write_tokens+?, cost_usd=cost_usd+?"
                       " WHERE key=?", (usage.input_tokens, usage.output_tokens,
                                        usage.cache_read_tokens, usage.cache_write_tokens,
                                        usage.cost_usd, key))
            db.execute("INSERT INTO usage_daily(day, tokens, cost_usd) VALUES (?,?,?) ON"
                       " CONFLICT(day) DO UPDATE SET tokens=tokens+excluded.tokens,"
                       " cost_usd=cost_usd+excluded.cost_usd", (today(), tokens,
                                                                usage.cost_usd))

    def mark_generated(self, key: str, content_json: str, usage: Usage, title: str) -> None:
        """Persist generated content and its spend in one commit (running → generated).
        The replies the content records as salvaged or continued are counted too."""
        self._move(key, ("running",), _GENERATED_SET,
                   _generated_params(content_json, title, usage, time.time()))
        self._add_usage_today(usage)

    def save_generated(self, key: str, kind: str, url: str | None, content_json: str,
                       usage: Usage, title: str) -> bool:
        """A finished generation whose first commit failed (disk full, ledger rebuilt):
        commit it now, whatever became of its row (missing, ``ready`` or still
        ``running``). A row already ``generated`` or beyond is left alone (the note was
        found in the vault). Returns True when the content was stored."""
        now = time.time()
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO jobs (key, kind, url, state, created_at,"
                       " updated_at) VALUES (?,?,?,'running',?,?)", (key, kind, url, now, now))
            stored = db.execute(
                f"UPDATE jobs SET {_GENERATED_SET}, updated_at=?"
                " WHERE key=? AND state IN ('ready','running')",
                (*_generated_params(content_json, title, usage, now), now, key)
            ).rowcount == 1
        if stored:
            self._add_usage_today(usage)
        return stored

    def _add_usage_today(self, usage: Usage) -> None:
        tokens = usage.input_tokens + usage.output_tokens + usage.cache_read_tokens \
            + usage.cache_write_tokens
        if tokens or usage.cost_usd:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO usage_daily(day, tokens, cost_usd) VALUES (?,?,?) ON CONFLICT"
                    "(day) DO UPDATE SET tokens=tokens+excluded.tokens,"
                    " cost_usd=cost_usd+excluded.cost_usd",
                    (today(), tokens, usage.cost_usd),
                )

    def probe_write(self) -> None:
        """A small real write (raises what a real one would: disk full, read-only)."""
        with self._tx() as db:
            db.execute("INSERT INTO meta(name, value) VALUES ('probe', ?) ON CONFLICT(name)"
                       " DO UPDATE SET value=excluded.value", (str(time.time()),))

    def mark_written(self, key: str, note_path: str, assessment_path: str, *,
                     note_text: str | None = None, assessment_text: str | None = None
                     ) -> None:
        """Files are in the vault. The texts we generated are kept (outside the vault)
        as the base for merging a later regeneration with the user's edits."""
        self._move(key, ("generated", "written"), "state='written', note_path=?,"
                   " assessment_path=?, note_text=COALESCE(?, note_text),"
                   " assessment_text=COALESCE(?, assessment_text), force=0",
                   (note_path, assessment_path, note_text, assessment_text))

    def regenerate(self, keys: Iterable[str]) -> list[str]:
        """Done or failed jobs back to ``ready`` with ``force``: generate again and merge
        into the existing note instead of linking it."""
        moved = []
        with self._tx() as db:
            for key in keys:
                rows = db.execute("UPDATE jobs SET state='ready', force=1, attempts=0,"
                                  " write_attempts=0, next_attempt_at=0, waiting=0,"
                                  " last_error=NULL, updated_at=? WHERE key=? AND state IN"
                                  " ('done','failed') AND key NOT LIKE 'invalid:%'"
                                  " RETURNING key", (time.time(), key))
                moved += [r["key"] for r in rows.fetchall()]
        return moved

    def mark_done(self, key: str, *, pdf_hash: str | None = None) -> None:
        self._move(key, ("written", "done"), "state='done', finished_at=?,"
                   " pdf_hash=COALESCE(?, pdf_hash)", (time.time(), pdf_hash))

    def mark_done_direct(self, key: str, *, title: str, note_path: str,
                         assessment_path: str) -> None:
        """A job whose note already exists in the vault (known video): link, don't pay."""
        self._move(key, ("running", "ready"), "state='done', title=?, note_path=?,"
                   " assessment_path=?, finished_at=?, last_error=NULL, waiting=0",
                   (title, note_path, assessment_path, time.time()))

    def mark_expanded(self, key: str, video_keys: list[str]) -> None:
        """A playlist became its videos: it is done; its content lists the video keys
        (a video may be in several playlists, so membership is not a parent column)."""
        self._move(key, ("running",), "state='done', title=?, content=?, finished_at=?,"
                   " last_error=NULL, waiting=0",
                   (f"playlist of {len(video_keys)} videos", json.dumps(video_keys),
                    time.time()))

    def fail(self, key: str, reason: str, *, transient: bool, max_attempts: int,
             backoff_base: float, backoff_max: float, retry_after: float | None = None,
             from_states: tuple[str, ...] = ("running",), offline: bool = False) -> str:
        """Record a failure. Transient ones wait for a retry until attempts run out.

        ``offline`` (no connection at all, in a running daemon): the job waits for the
        network with its own growing backoff and keeps its attempts, so an afternoon
        without Wi-Fi fails nothing. Returns the new state (``ready`` when it will be
        retried, else ``failed``).
        """
        reason = scrub(reason)  # outside text (an API error) may repeat a secret
        job = self.get(key)
        if job is None:
            raise StateConflict(f"{key}: no such job")
        if transient and offline:
            delay = backoff_delay(job.offline_waits + 1, backoff_base, backoff_max)
            # The claim counted an attempt; waiting for the network gives it back.
            self._move(key, from_states, "state='ready', next_attempt_at=?, last_error=?,"
                       " waiting=1, claimed_at=NULL, offline_waits=offline_waits+1,"
                       " attempts=MAX(attempts-1, 0)", (time.time() + delay, reason))
            return "ready"
        if transient and job.attempts < max_attempts:
            delay = backoff_delay(job.attempts, backoff_base, backoff_max)
            if retry_after is not None:
                delay = max(delay, min(retry_after, backoff_max))
            self._move(key, from_states, "state='ready', next_attempt_at=?, last_error=?,"
                       " waiting=1, claimed_at=NULL, offline_waits=0",
                       (time.time() + delay, reason))
            return "ready"
        if transient:
            reason = gave_up(reason, job.attempts)
        self._move(key, from_states, "state='failed', last_error=?, waiting=0,"
                   " finished_at=?, claimed_at=NULL", (reason, time.time()))
        return "failed"

    def write_failed(self, key: str, reason: str, *, max_attempts: int, backoff_base: float,
                     backoff_max: float) -> str:
        """The writer could not write (disk full, permission, vault gone).

        The generated content stays, so a later write costs nothing: the job remains
        ``generated`` and waits, or after ``max_attempts`` becomes ``failed`` (and
        ``retry`` brings it back to ``generated``, not to a paid regeneration).
        """
        reason = scrub(reason)
        job = self.get(key)
        if job is None:
            raise StateConflict(f"{key}: no such job")
        attempts = job.write_attempts + 1
        if attempts < max_attempts:
            delay = backoff_delay(attempts, backoff_base, backoff_max)
            self._move(key, ("generated", "written"), "write_attempts=?, next_attempt_at=?,"
                       " last_error=?, waiting=1", (attempts, time.time() + delay, reason))
            return "generated"
        self._move(key, ("generated", "written"), "state='failed', write_attempts=?,"
                   " last_error=?, waiting=0, finished_at=?",
                   (attempts, gave_up(reason, attempts), time.time()))
        return "failed"

    def due_writes(self, now: float | None = None) -> list[Job]:
        """Generated or written jobs whose write is due (resume after crash or failure)."""
        now = time.time() if now is None else now
        rows = self._db().execute(
            "SELECT * FROM jobs WHERE state IN ('generated','written') AND"
            " (waiting=0 OR next_attempt_at <= ? OR next_attempt_at > ?) ORDER BY"
            " generated_at", (now, now + MAX_WAIT))
        return [Job.from_row(r) for r in rows]

    def note_moved(self, old: str, new: str) -> int:
        """The user moved or renamed a note: follow it (identity is not the path)."""
        with self._tx() as db:
            a = db.execute("UPDATE jobs SET note_path=? WHERE note_path=?", (new, old))
            b = db.execute("UPDATE jobs SET assessment_path=? WHERE assessment_path=?",
                           (new, old))
            return a.rowcount + b.rowcount

    def find_by_note(self, note_path: str) -> Job | None:
        """The job whose study note is at ``note_path`` (moves are followed)."""
        row = self._db().execute("SELECT * FROM jobs WHERE note_path=? LIMIT 1",
                                 (note_path,)).fetchone()
        return Job.from_row(row) if row else None

    def set_urls(self, items: Iterable[tuple[str, str]]) -> None:
        """Record where sources are now, ``(key, url)``: a media file keyed by its content
        keeps its job when renamed or moved, and is read from its new vault path."""
        items = list(items)
        if items:
            with self._tx() as db:
                db.executemany("UPDATE jobs SET url=? WHERE key=? AND url IS NOT ?",
                               [(url, key, url) for key, url in items])

    def set_note_text(self, key: str, note_text: str) -> None:
        """Replace the merge base of a note the daemon edited again after writing it
        (a link added to its Related region), so a later regeneration does not take
        that edit for the user's."""
        with self._tx() as db:
            db.execute("UPDATE jobs SET note_text=? WHERE key=?", (note_text, key))

    def pdf_digest(self, note_path: str) -> str | None:
        row = self._db().execute("SELECT digest FROM pdf_exports WHERE note_path=?",
                                 (note_path,)).fetchone()
        return row[0] if row else None

    def pdf_exports(self) -> list[tuple[str, str]]:
        """(note path, digest) of every note the daemon has exported, oldest first."""
        return [(r[0], r[1]) for r in self._db().execute(
            "SELECT note_path, digest FROM pdf_exports ORDER BY exported_at")]

    def owns_note(self, path: str) -> bool:
        """Is ``path`` the study note or assessment of one of our jobs?"""
        return self._db().execute(
            "SELECT 1 FROM jobs WHERE note_path=? OR assessment_path=? LIMIT 1",
            (path, path)).fetchone() is not None

    def pdf_moved(self, old: str, new: str) -> None:
        """A note with a PDF was moved: its export record follows it."""
        with self._tx() as db:
            db.execute("DELETE FROM pdf_exports WHERE note_path=?", (new,))
            db.execute("UPDATE pdf_exports SET note_path=? WHERE note_path=?", (new, old))

    def pdf_forget(self, note_path: str) -> None:
        """The PDF of a deleted note was removed: forget its export record."""
        with self._tx() as db:
            db.execute("DELETE FROM pdf_exports WHERE note_path=?", (note_path,))

    def note_deleted(self, note_path: str) -> str | None:
        """The user deleted the study note of a done job: remember it (the inbox line says
        so and how to make it again). The key, or None when no done job owns the note."""
        with self._tx() as db:
            row = db.execute("UPDATE jobs SET last_error=?, updated_at=? WHERE note_path=?"
                             " AND state='done' RETURNING key",
                             (NOTE_DELETED, time.time(), note_path)).fetchone()
        return row[0] if row else None

    def note_restored(self, note_path: str) -> bool:
        """The deleted note is back (restored from the trash, or undone)."""
        with self._tx() as db:
            return db.execute("UPDATE jobs SET last_error=NULL WHERE note_path=? AND"
                              " last_error=?", (note_path, NOTE_DELETED)).rowcount > 0
    def pdf_failed(self, note_path: str, reason: str, *, base: float = 30.0,
                   cap: float = 3600.0) -> None:
        """A PDF that could not be made or filed: the durable retry queue, with backoff."""
        with self._tx() as db:
            row = db.execute("SELECT attempts FROM pdf_failures WHERE note_path=?",
                             (note_path,)).fetchone()
            attempts = (row[0] + 1) if row else 1
            now = time.time()
            db.execute("INSERT INTO pdf_failures(note_path, reason, attempts, next_attempt_at,"
                       " failed_at) VALUES (?,?,?,?,?) ON CONFLICT(note_path) DO UPDATE SET"
                       " reason=excluded.reason, attempts=excluded.attempts,"
                       " next_attempt_at=excluded.next_attempt_at, failed_at=excluded.failed_at",
                       (note_path, reason, attempts,
                        now + backoff_delay(attempts, base, cap), now))

    def pdf_failures(self, *, due: bool = False) -> list[dict[str, Any]]:
        """PDFs waiting for a retry (``due``: only those whose wait is over)."""
        sql = "SELECT * FROM pdf_failures"
        params: tuple[Any, ...] = ()
        if due:
            sql += " WHERE next_attempt_at <= ? OR next_attempt_at > ?"
            params = (time.time(), time.time() + MAX_WAIT)
        return [dict(r) for r in self._db().execute(sql + " ORDER BY failed_at", params)]

    def pdf_retry_now(self) -> None:
        """At start: every failed PDF is due (space may have been freed meanwhile)."""
        with self._tx() as db:
            db.execute("UPDATE pdf_failures SET next_attempt_at=0")

    def record_pdf(self, note_path: str, digest: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM pdf_failures WHERE note_path=?", (note_path,))
            db.execute("INSERT INTO pdf_exports(note_path, digest, exported_at) VALUES (?,?,?)"
                       " ON CONFLICT(note_path) DO UPDATE SET digest=excluded.digest,"
                       " exported_at=excluded.exported_at", (note_path, digest, time.time()))

    def release(self, key: str) -> None:
        """Give a claimed job back untouched (shutdown before it finished)."""
        self._move(key, ("running",), "state='ready', attempts=MAX(attempts-1,0),"
                   " claimed_at=NULL", ())

    def recover(self, exclude: Iterable[str] = ()) -> int:
        """At start: jobs a crash left ``running`` go back to ``ready`` — except those
        waiting in a submitted Message Batch (owner ``batch``), which ``--batch``
        resumes, and ``exclude`` (still being generated: after a ledger fault the
        running daemon recovers too); paid work is never thrown away."""
        exclude = list(exclude)
        skip = f" AND key NOT IN ({','.join('?' * len(exclude))})" if exclude else ""
        with self._tx() as db:
            cur = db.execute("UPDATE jobs SET state='ready', claimed_at=NULL,"
                             " attempts=MAX(attempts-1,0), updated_at=? WHERE state='running'"
                             " AND COALESCE(claim_owner, '') != 'batch'" + skip,
                             (time.time(), *exclude))
            return cur.rowcount

    # A failed job that already has content goes back to the writer, not to a paid
    # regeneration; file jobs that never resolved are retried from scratch.
    def retry(self, keys: Iterable[str] | None = None) -> list[str]:
        """failed → ready (all failed jobs when ``keys`` is None). Returns keys moved."""
        with self._tx() as db:
            if keys is None:
                rows = db.execute(f"UPDATE jobs SET {_RETRY} WHERE state='failed' AND"
                                  " key NOT LIKE 'invalid:%' RETURNING key", (time.time(),))
                return [r["key"] for r in rows.fetchall()]
            moved = []
            for key in keys:
                row = db.execute(f"UPDATE jobs SET {_RETRY} WHERE key=? AND state='failed'"
                                 " RETURNING key", (time.time(), key))
                moved += [r["key"] for r in row.fetchall()]
            return moved

    # -- queries -----------------------------------------------------------------
    def get(self, key: str) -> Job | None:
        row = self._db().execute("SELECT * FROM jobs WHERE key=?", (key,)).fetchone()
        return Job.from_row(row) if row else None

    def get_many(self, keys: Iterable[str]) -> dict[str, Job]:
        keys = list(dict.fromkeys(keys))
        out: dict[str, Job] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            rows = self._db().execute(
                f"SELECT * FROM jobs WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            out.update({r["key"]: Job.from_row(r) for r in rows})
        return out

    def in_state(self, *states: str) -> list[Job]:
        rows = self._db().execute(
            f"SELECT * FROM jobs WHERE state IN ({','.join('?' * len(states))})"
            " ORDER BY created_at", states)
        return [Job.from_row(r) for r in rows]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for row in self._db().execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
            counts[row[0]] = row[1]
        counts["waiting"] = self._db().execute(
            "SELECT COUNT(*) FROM jobs WHERE state='ready' AND waiting=1").fetchone()[0]
        return counts

    def recent_failures(self, limit: int = 10) -> list[Job]:
        rows = self._db().execute(
            "SELECT * FROM jobs WHERE state='failed' ORDER BY updated_at DESC LIMIT ?",
            (limit,))
        return [Job.from_row(r) for r in rows]

    def repaired_replies(self) -> dict[str, int]:
        """How many model replies were salvaged / continued instead of paid for again."""
        row = self._db().execute("SELECT COALESCE(SUM(salvaged_replies), 0),"
                                 " COALESCE(SUM(continued_replies), 0) FROM jobs").fetchone()
        return {"salvaged": int(row[0]), "continued": int(row[1])}

    def usage_on(self, day: str | None = None) -> dict[str, Any]:
        row = self._db().execute("SELECT tokens, cost_usd FROM usage_daily WHERE day=?",
                                 (day or today(),)).fetchone()
        return {"tokens": row[0] if row else 0, "cost_usd": row[1] if row else 0.0}

    def all_jobs(self) -> list[Job]:
        return [Job.from_row(r) for r in
                self._db().execute("SELECT * FROM jobs ORDER BY created_at")]
