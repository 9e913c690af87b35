"""The tasks vaultd asks a model to do, independent of which model answers.

Owns, per task (``notes``, ``assessment``, ``chunk``): the prompt templates it uses and
the one JSON schema every backend is given, so Claude, an OpenAI-compatible server and
any future transport are asked the same thing and answer in the same shape. A transport
(:mod:`.claude_transport`, :mod:`.openai_transport`) only decides how the request
travels; :mod:`.reader` turns the reply into content.

Three reply modes, best first: ``json_schema`` (the server constrains decoding to the
schema), ``json_object`` (the server guarantees JSON, the prompt describes the shape) and
``text`` (the tagged text format of the packaged ``*-text.md`` prompts, for servers and
models with neither). Schemas are kept to what every server's constrained decoding
accepts: objects with ``required`` and ``additionalProperties: false``, strings and
arrays, no numeric or length constraints. Chunk summaries are plain Markdown in every
mode: a schema would only add escaping to a long text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from .prompts import render_prompt

MODES = ("json_schema", "json_object", "text")


def _obj(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props),
            "additionalProperties": False}


_STR = {"type": "string"}
_STRS = {"type": "array", "items": _STR}
_QUESTIONS = {"type": "array", "items": _obj({"question": _STR, "answer": _STR})}

NOTES_SCHEMA = _obj({
    "tldr": {"type": "string", "description": "two to four sentences"},
    "tags": _STRS,
    "aliases": _STRS,
    "key_terms": _STRS,
    "note": {"type": "string", "description": "the note body in Markdown, ## headings"},
})
ASSESSMENT_SCHEMA = _obj({
    "gap": _QUESTIONS,
    "application": _QUESTIONS,
    "further": _QUESTIONS,
    "synthesis": _QUESTIONS,
    "flashcards": {"type": "array", "items": _obj({"front": _STR, "back": _STR})},
})

# Claude's prompt cache keys on the output format too: a different schema in the notes
# and the assessment call would forfeit the cached transcript prefix (measured on
# Bedrock, exploration.grjus.eu/posts/prompt-caching-structured-output-bedrock). Both
# calls therefore carry this one schema; the reader unwraps ``reply``.
SHARED_SCHEMA = _obj({"reply": {"anyOf": [NOTES_SCHEMA, ASSESSMENT_SCHEMA]}})

# Short examples of the shape, for json_object mode (no schema enforced) and as a hint
# to small models in json_schema mode. They show the form, not the content.
_EXAMPLES = {
    "notes": {"tldr": "Two to four sentences [0:42].", "tags": ["topic-one", "topic-two"],
              "aliases": [], "key_terms": ["term"],
              "note": "## Key concepts\n- **Idea**: one line [1:15]\n\n## Chapter name\n"
                      "- Key point [2:03]"},
    "assessment": {"gap": [{"question": "What did the video say about X?",
                            "answer": "It said ... [1:15]"}],
                   "application": [{"question": "...", "answer": "... [2:03]"}],
                   "further": [{"question": "...", "answer": "... [3:10]"}],
                   "synthesis": [{"question": "...", "answer": "... [4:00]"}],
                   "flashcards": [{"front": "What is X?", "back": "Y"}]},
}


@dataclass(frozen=True)
class Task:
    name: str  # "notes" | "assessment" | "chunk"
    schema: dict[str, Any] | None

    @property
    def what(self) -> str:
        return {"notes": "study note", "assessment": "assessment"}.get(self.name, "notes")


NOTES = Task("notes", NOTES_SCHEMA)
ASSESSMENT = Task("assessment", ASSESSMENT_SCHEMA)
CHUNK = Task("chunk", None)


@dataclass(frozen=True)
class Request:
    """One model call, transport-neutral.

    ``system`` is the system prompt followed by the source block; when ``cache_prefix``
    is set, the transport marks all of it as one cacheable prefix (Claude's prompt cache;
    local servers reuse their KV cache for a byte-identical prefix on their own).
    ``partial`` is a reply that was cut at the output limit: it is sent back as the
    assistant's turn so the model continues it instead of starting over.
    """

    task: Task
    model: str
    max_tokens: int
    system: tuple[str, ...]
    prompt: str
    formats: dict[str, str] = field(default_factory=dict)  # mode -> how-to-reply text
    mode: str = "json_schema"
    cache_prefix: bool = True
    partial: str = ""

    @property
    def schema(self) -> dict[str, Any] | None:
        return self.task.schema if self.mode == "json_schema" else None

    @property
    def user_text(self) -> str:
        """The user turn: the task, then how to reply in the current mode."""
        suffix = self.formats.get(self.mode, "")
        return f"{self.prompt}\n\n{suffix}" if suffix else self.prompt

    def in_mode(self, mode: str) -> Request:
        return replace(self, mode=mode if self.task.schema is not None else "text")

    def continued(self, partial: str) -> Request:
        return replace(self, partial=partial)


def task_formats(task: Task, prompts_dir: str | None, **values: object) -> dict[str, str]:
    """How to reply to ``task``, per mode: the JSON shape, or the tagged text format."""
    if task.schema is None:
        return {}
    example = json.dumps(_EXAMPLES[task.name], ensure_ascii=False)
    shape = f"Reply with one JSON object only, shaped like this example:\n{example}"
    return {"json_schema": shape, "json_object": shape,
            "text": render_prompt(f"{task.name}-text", prompts_dir, **values)}


def build_request(task: Task, *, model: str, max_tokens: int, system: tuple[str, ...],
                  mode: str, prompts_dir: str | None, cache_prefix: bool = True,
                  **values: object) -> Request:
    """The request for ``task``; ``values`` fill the prompt's ``$placeholders``."""
    return Request(task=task, model=model, max_tokens=max_tokens, system=system,
                   prompt=render_prompt(task.name, prompts_dir, **values),
                   formats=task_formats(task, prompts_dir, **values),
                   cache_prefix=cache_prefix).in_mode(mode)
