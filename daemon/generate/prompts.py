"""Prompt templates: packaged defaults in ``daemon/prompts/*.md``, overridable per vault.

A vault overrides a prompt by putting a file of the same name (``system.md``,
``notes.md``, ``assessment.md``, ``chunk.md``) in ``<vault>/.vaultd/prompts/``
(``GenerationContext.prompts_dir``). Templates use ``$name`` placeholders
(:class:`string.Template`, unknown ones are left as they are), so braces and JSON in a
prompt need no escaping. The output format each prompt asks for is what
:mod:`daemon.generate.content` parses: an override must keep it.
"""

from __future__ import annotations

import logging
import string
from importlib import resources
from pathlib import Path

from vault_tools.pathgate import PathGate, PathRefused

log = logging.getLogger(__name__)

PROMPT_NAMES = ("system", "notes", "assessment", "chunk", "notes-text", "assessment-text")


def load_prompt(name: str, prompts_dir: str | None = None) -> str:
    """The template text of ``name``: the vault's override if present, else packaged."""
    if name not in PROMPT_NAMES:
        raise ValueError(f"unknown prompt {name!r}")
    if prompts_dir:
        override = Path(prompts_dir) / f"{name}.md"
        try:  # <vault>/.vaultd/prompts: read through the vault's path gate
            gate = PathGate(Path(prompts_dir).parents[1])
            text = gate.read_bytes(override, 1 << 20).decode("utf-8")
        except FileNotFoundError:
            pass
        except PathRefused as exc:
            log.warning("prompt override not used: %s", exc.reason)
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("prompt override %s unreadable (%s); using the packaged one",
                        override, exc)
        else:
            if text.strip():
                return text
    return resources.files("daemon").joinpath(f"prompts/{name}.md").read_text(encoding="utf-8")


def render_prompt(name: str, prompts_dir: str | None = None, **values: object) -> str:
    template = string.Template(load_prompt(name, prompts_dir))
    return template.safe_substitute({k: str(v) for k, v in values.items()}).strip()
