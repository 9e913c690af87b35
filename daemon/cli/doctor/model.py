"""The types every doctor check shares: the verdict, the result and the context.

A check is a function ``(Context) -> Check``. :class:`Check` is also the public result
(``dataclasses.asdict`` gives the ``--json`` form, so its fields are part of the CLI
contract). :class:`Context` is how checks talk to each other: the runner fills in the
inputs, and a check records what later checks need (``vault_ok`` from the vault check,
``config`` and ``paths`` from config/state, ``key_problem`` from api-key) plus every
secret it saw, which the runner scrubs from the whole report. That is why the run
order (see ``runner``) differs from the report order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from daemon.config import Config
from daemon.paths import VaultPaths

Verdict = Literal["ok", "warn", "fail", "skip"]


@dataclass
class Check:
    """One verdict; ``dataclasses.asdict`` gives its JSON form."""

    name: str
    verdict: Verdict
    detail: str
    fix: str = ""


@dataclass
class Context:
    """Inputs of one doctor run, and what earlier checks found for later ones."""

    vault: Path
    network: bool
    timeout: float
    youtube_url: str
    anthropic_url: str
    font_dirs: Sequence[Path] | None
    vault_ok: bool = False
    config: Config | None = None
    paths: VaultPaths | None = None
    key_problem: str = ""
    secrets: set[str] = field(default_factory=set)
