"""What a job is on disk: the ledger's table schema, its upgrades, and the Job record.

Split from :mod:`daemon.ledger` (which owns the transitions) so the shape of a row can
be read in one place. A column added to ``SCHEMA`` is added to existing ledgers at
open (``migrate``): ledgers outlive upgrades, and a new column must therefore be
nullable or have a default.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from typing import Any

STATES = ("ready", "running", "generated", "written", "done", "failed")
ACTIVE_STATES = ("ready", "running", "generated", "written")

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    key              TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    url              TEXT,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    write_attempts   INTEGER NOT NULL DEFAULT 0,
    offline_waits    INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL NOT NULL DEFAULT 0,
    last_error       TEXT,
    waiting          INTEGER NOT NULL DEFAULT 0,
    claimed_at       REAL,
    claim_owner      TEXT,
    title            TEXT,
    content          TEXT,
    note_path        TEXT,
    assessment_path  TEXT,
    input_tokens     INTEGER NOT NULL DEFAULT 0,
    output_tokens    INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens  INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd         REAL NOT NULL DEFAULT 0,
    pdf_hash         TEXT,
    parent           TEXT,
    note_text        TEXT,
    assessment_text  TEXT,
    force            INTEGER NOT NULL DEFAULT 0,
    salvaged_replies  INTEGER NOT NULL DEFAULT 0,
    continued_replies INTEGER NOT NULL DEFAULT 0,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    generated_at     REAL,
    finished_at      REAL,
    source_requests  INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, next_attempt_at, created_at);
CREATE INDEX IF NOT EXISTS jobs_by_note ON jobs(note_path);
CREATE INDEX IF NOT EXISTS jobs_by_assessment ON jobs(assessment_path);
CREATE TABLE IF NOT EXISTS pdf_exports (
    note_path TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    exported_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS usage_daily (
    day TEXT PRIMARY KEY,
    tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True)
class Job:
    key: str
    kind: str
    url: str | None
    state: str
    attempts: int
    write_attempts: int
    offline_waits: int
    next_attempt_at: float
    last_error: str | None
    waiting: bool
    claimed_at: float | None
    title: str | None
    content: str | None
    note_path: str | None
    assessment_path: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_usd: float
    pdf_hash: str | None
    parent: str | None
    note_text: str | None
    assessment_text: str | None
    force: bool
    created_at: float
    updated_at: float
    generated_at: float | None
    finished_at: float | None
    salvaged_replies: int = 0  # model replies used although off the requested format
    continued_replies: int = 0  # model replies cut at the output limit and continued

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        data = {k: row[k] for k in row.keys() if k in cls.__dataclass_fields__}
        data["waiting"] = bool(data["waiting"])
        data["force"] = bool(data["force"])
        return cls(**data)

    def as_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for big in ("content", "note_text", "assessment_text"):
            d.pop(big)
        return d




def migrate(db: sqlite3.Connection) -> None:
    """Add the columns newer versions introduced to an existing ``jobs`` table."""
    have = {r[1] for r in db.execute("PRAGMA table_info(jobs)")}
    wanted = re.findall(r"^\s{4}(\w+)\s+(\w+[^,\n]*),?$", SCHEMA.split(");")[0], re.M)
    for name, decl in wanted:
        if name not in have and ("NOT NULL" not in decl or "DEFAULT" in decl):
            db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {decl}")
