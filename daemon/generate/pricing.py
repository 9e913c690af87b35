"""Model choice and cost estimates for the Claude backend.

Owns the per-family price table (USD per million tokens) and the arithmetic that turns an
API ``usage`` block into a :class:`~vault_tools.models.Usage` with ``cost_usd``. Prompt
caching is priced from the input price: a cache write costs 1.25x, a cache read 0.1x.
Batch requests cost half. The numbers are estimates for the user's information (ledger,
frontmatter, ``vaultd status``); Anthropic's invoice is authoritative.

Also owns :func:`newest_model`, which reads the model ids the installed SDK knows and
the ones it marks deprecated, so defaults can follow the SDK instead of going stale.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, get_args

from vault_tools.models import Usage

CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.1
BATCH_FACTOR = 0.5


@dataclass(frozen=True)
class Price:
    input: float  # USD per million input tokens
    output: float  # USD per million output tokens


# Most specific prefix first. Unknown families fall back to FALLBACK (and say so).
PRICES: list[tuple[str, Price]] = [
    ("claude-opus-4-0", Price(15.0, 75.0)),
    ("claude-opus-4-1", Price(15.0, 75.0)),
    ("claude-opus-4-2025", Price(15.0, 75.0)),
    ("claude-opus", Price(5.0, 25.0)),
    ("claude-sonnet", Price(3.0, 15.0)),
    ("claude-3-5-haiku", Price(0.8, 4.0)),
    ("claude-haiku-3", Price(0.8, 4.0)),
    ("claude-haiku", Price(1.0, 5.0)),
]
FALLBACK = Price(3.0, 15.0)


def price_for(model: str) -> tuple[Price, bool]:
    """The price of ``model`` and whether it came from the table (False: a guess)."""
    for prefix, price in PRICES:
        if model.startswith(prefix):
            return price, True
    return FALLBACK, False


def usage_from_api(model: str, usage: Any, *, batch: bool = False) -> Usage:
    """Convert an SDK ``Usage`` (or a dict of the same fields) into our Usage with cost."""

    def field(name: str) -> int:
        value = usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)
        return int(value or 0)

    u = Usage(
        input_tokens=field("input_tokens"),
        output_tokens=field("output_tokens"),
        cache_read_tokens=field("cache_read_input_tokens"),
        cache_write_tokens=field("cache_creation_input_tokens"),
    )
    u.cost_usd = estimate_cost(model, u, batch=batch)
    return u


def estimate_cost(model: str, u: Usage, *, batch: bool = False) -> float:
    price, _ = price_for(model)
    dollars = (
        u.input_tokens * price.input
        + u.cache_write_tokens * price.input * CACHE_WRITE_FACTOR
        + u.cache_read_tokens * price.input * CACHE_READ_FACTOR
        + u.output_tokens * price.output
    ) / 1_000_000
    return round(dollars * (BATCH_FACTOR if batch else 1.0), 6)


def _version(model_id: str, family: str) -> tuple[int, ...] | None:
    m = re.fullmatch(rf"claude-{family}-(\d+)(?:-(\d))?", model_id)
    if not m:
        return None
    return (int(m.group(1)), int(m.group(2) or 0))


def sdk_model_table() -> tuple[tuple[str, ...], dict[str, str]]:
    """The model ids the installed SDK lists and its ``{model: end-of-life}`` table.

    Both change with every SDK release; callers take them as data (tests pass their own).
    """
    from anthropic._data import DEPRECATED_MODELS
    from anthropic.types.model_param import ModelParam

    return tuple(get_args(get_args(ModelParam)[0])), dict(DEPRECATED_MODELS)


def newest_model(
    family: str, table: tuple[Iterable[str], Mapping[str, str]] | None = None
) -> str | None:
    """Newest ``claude-<family>-N[-M]`` alias in ``table`` that is not deprecated.

    ``table`` is ``(model ids, {model: end-of-life})``, by default the installed SDK's
    (:func:`sdk_model_table`). ``newest_model("sonnet")`` is the recommended default for
    ``generate.model``, ``newest_model("haiku")`` for ``generate.small_model``.
    """
    literals, deprecated = table if table is not None else sdk_model_table()
    best: tuple[tuple[int, ...], str] | None = None
    for model_id in literals:
        version = _version(model_id, family)
        if version is None or model_id in deprecated:
            continue
        if best is None or version > best[0]:
            best = (version, model_id)
    return best[1] if best else None


def deprecation_of(model: str, deprecated: Mapping[str, str] | None = None) -> str | None:
    """End-of-life date announced for ``model`` in ``deprecated`` (default: the SDK's)."""
    table = deprecated if deprecated is not None else sdk_model_table()[1]
    return table.get(model)
