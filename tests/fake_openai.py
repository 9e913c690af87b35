"""A loopback stand-in for an OpenAI-compatible server (Ollama, llama.cpp, LM Studio…),
driven by the real ``openai`` SDK.

Owns: an ``http.server`` on 127.0.0.1 (ephemeral port, own thread) that speaks enough of
``POST /v1/chat/completions`` (JSON, and SSE streaming with ``stream_options.
include_usage`` as the OpenAI API sends it), ``GET /v1/models`` and, when ``ollama`` is
set, Ollama's ``GET /api/tags``. It records every request, serves only the models it
was given (others get Ollama's 404 "model not found, try pulling it first"), refuses
``response_format`` types it was not told to support (HTTP 400, like a server without
constrained decoding), and replays scripted replies (text with a ``finish_reason``, HTTP
errors with ``retry-after``). Usage is characters / 4.

This is a test double for a third-party service, not for project code.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# tests/ is on sys.path wherever stand-ins load
from loopback import Recorded, ScriptedHandler, ScriptedServer


@dataclass
class Reply:
    text: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    finish_reason: str = "stop"
    usage: bool = True  # report usage (some servers do not)
    raw_body: bytes | None = None  # sent verbatim (a garbled body)


def text(body: str, **kw: Any) -> Reply:
    return Reply(text=body, **kw)


def error(status: int, retry_after: float | None = None) -> Reply:
    return Reply(status=status, headers={} if retry_after is None else
                 {"retry-after": str(retry_after)})


Responder = Callable[[dict[str, Any]], Reply]


class FakeOpenAI(ScriptedServer[Reply]):
    """``with FakeOpenAI(responder, models={"llama3.1:8b"}) as fake:``; the SDK's
    ``base_url`` is ``fake.base_url`` (ending in ``/v1``)."""

    def __init__(self, responder: Responder | None = None, *,
                 models: set[str] | None = None, ollama: bool = True,
                 formats: tuple[str, ...] = ("json_schema", "json_object"),
                 refuse_status: int = 400) -> None:
        self.models = set(models or {"llama3.1:8b"})
        self.ollama = ollama
        self.formats = formats
        self.refuse_status = refuse_status  # old llama.cpp servers refuse with 500
        ScriptedServer.__init__(self, _make_handler(self),
                                responder or (lambda body: text("ok")))

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def chat_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/v1/chat/completions"]


def _tokens(text: str) -> int:
    return max(len(text) // 4, 1)


def _make_handler(fake: FakeOpenAI) -> type[ScriptedHandler]:
    class Handler(ScriptedHandler):
        service = fake

        def _error(self, status: int, message: str, kind: str = "invalid_request_error",
                   headers: dict[str, str] | None = None) -> None:
            body = {"error": {"message": message, "type": kind, "param": None,
                              "code": None}}
            self._send(status, json.dumps(body).encode(), headers=headers)

        def do_GET(self) -> None:  # noqa: N802
            self._record(None)
            path = self.path.split("?")[0]
            if path == "/api/tags" and fake.ollama:
                body = {"models": [{"name": m, "model": m} for m in sorted(fake.models)]}
            elif path == "/v1/models":
                body = {"object": "list", "data": [
                    {"id": m, "object": "model", "created": 0, "owned_by": "fake"}
                    for m in sorted(fake.models)]}
            else:
                return self._error(404, f"no route {path}", "not_found_error")
            self._send(200, json.dumps(body).encode())

        def do_POST(self) -> None:  # noqa: N802
            body = self._read_json()
            self._record(body)
            if self.path.split("?")[0] != "/v1/chat/completions":
                return self._error(404, "not found", "not_found_error")
            model = body.get("model")
            if model not in fake.models:
                return self._error(404, f'model "{model}" not found, try pulling it first',
                                   "not_found_error")
            kind = (body.get("response_format") or {}).get("type")
            if kind and kind != "text" and kind not in fake.formats:
                return self._error(fake.refuse_status, "response_format type must be one "
                                   f"of text or json_object, but got: {kind}")
            reply = fake.next_reply(body)
            if reply.raw_body is not None:
                return self._send(reply.status, reply.raw_body)
            if reply.status != 200:
                return self._error(reply.status, f"fake {reply.status}", "server_error",
                                   headers=reply.headers)
            prompt = sum(_tokens(str(m.get("content", ""))) for m in body["messages"])
            out = reply.text or ""
            usage = {"prompt_tokens": prompt, "completion_tokens": _tokens(out),
                     "total_tokens": prompt + _tokens(out)} if reply.usage else None
            cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
            if not body.get("stream"):
                msg = {"id": cid, "object": "chat.completion", "created": 0, "model": model,
                       "choices": [{"index": 0, "finish_reason": reply.finish_reason,
                                    "message": {"role": "assistant", "content": out}}],
                       "usage": usage}
                return self._send(200, json.dumps(msg).encode())
            chunks = []

            def chunk(choices: list[dict[str, Any]], u: Any = None) -> None:
                data = {"id": cid, "object": "chat.completion.chunk", "created": 0,
                        "model": model, "choices": choices, "usage": u}
                chunks.append(f"data: {json.dumps(data)}\n\n".encode())

            chunk([{"index": 0, "delta": {"role": "assistant", "content": ""},
                    "finish_reason": None}])
            for i in range(0, len(out), 50):
                chunk([{"index": 0, "delta": {"content": out[i:i + 50]},
                        "finish_reason": None}])
            chunk([{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}])
            if (body.get("stream_options") or {}).get("include_usage") and usage:
                chunk([], usage)
            chunks.append(b"data: [DONE]\n\n")
            self._send(200, b"".join(chunks), "text/event-stream")

    return Handler
