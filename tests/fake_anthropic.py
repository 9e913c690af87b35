"""A loopback stand-in for the Anthropic Messages API, driven by the real ``anthropic`` SDK.

Owns: an ``http.server`` on 127.0.0.1 (ephemeral port, own thread) that speaks enough of
``/v1/messages`` (JSON and SSE streaming in the real event order), ``/v1/messages/batches``
(create, retrieve, results as JSONL) to exercise vaultd's Claude backend without any
network. It records every request (time, path, headers, JSON body), replays scripted
replies (text, HTTP errors with ``retry-after``, raw/malformed bodies), and computes usage
the way the API reports it: a prefix ending at the last ``cache_control`` block is a cache
write the first time it is seen (if at least ``min_cache_tokens`` long) and a cache read
afterwards. Tokens are estimated as characters / 4.

This is a test double for a third-party service, not for project code.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# tests/ is on sys.path wherever stand-ins load
from loopback import Recorded, ScriptedHandler, ScriptedServer


def count_tokens(text: str) -> int:
    return max(len(text) // 4, 0)


@dataclass
class Reply:
    """One scripted answer. ``text`` replies become a message (JSON or SSE as requested)."""

    text: str | None = None
    status: int = 200
    error_type: str = "api_error"
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: bytes | None = None  # sent verbatim (malformed bodies)
    stop_reason: str = "end_turn"
    stream_error: str | None = None  # SSE: send an `error` event of this type mid-stream


def text(body: str, **kw: Any) -> Reply:
    return Reply(text=body, **kw)


def error(status: int, error_type: str, retry_after: float | None = None) -> Reply:
    headers = {} if retry_after is None else {"retry-after": str(retry_after)}
    return Reply(status=status, error_type=error_type, headers=headers)


def raw(body: bytes, status: int = 200) -> Reply:
    return Reply(status=status, raw_body=body)


Responder = Callable[[dict[str, Any]], Reply]


class FakeAnthropic(ScriptedServer[Reply]):
    """Start with ``with FakeAnthropic() as fake:``; point the SDK at ``fake.base_url``."""

    def __init__(self, responder: Responder | None = None, *, min_cache_tokens: int = 1024,
                 batch_polls: int = 1) -> None:
        self.min_cache_tokens = min_cache_tokens
        self.batch_polls = batch_polls  # retrieves answering in_progress before "ended"
        self.batches: dict[str, dict[str, Any]] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self._cache: set[str] = set()
        ScriptedServer.__init__(self, _make_handler(self),
                                responder or (lambda body: text("ok")))

    @property
    def base_url(self) -> str:
        return self.url

    def message_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path == "/v1/messages"]

    # -- API behaviour ---------------------------------------------------------------

    def usage_for(self, body: dict[str, Any], out_text: str) -> dict[str, int]:
        blocks = _flatten(body)
        total = sum(count_tokens(b) for b, _ in blocks)
        last_cached = max((i for i, (_, cached) in enumerate(blocks) if cached), default=-1)
        cache_read = cache_write = 0
        if last_cached >= 0:
            prefix = [b for b, _ in blocks[: last_cached + 1]]
            prefix_tokens = sum(count_tokens(b) for b in prefix)
            if prefix_tokens >= self.min_cache_tokens:
                key = hashlib.sha256(
                    json.dumps([body.get("model"), prefix]).encode()).hexdigest()
                with self._lock:
                    seen = key in self._cache
                    self._cache.add(key)
                if seen:
                    cache_read = prefix_tokens
                else:
                    cache_write = prefix_tokens
        return {
            "input_tokens": total - cache_read - cache_write,
            "output_tokens": max(count_tokens(out_text), 1),
            "cache_creation_input_tokens": cache_write,
            "cache_read_input_tokens": cache_read,
        }

    def message(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        out = reply.text or ""
        return {
            "id": f"msg_{uuid.uuid4().hex[:20]}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "claude-test"),
            "content": [{"type": "text", "text": out}] if out else [],
            "stop_reason": reply.stop_reason,
            "stop_sequence": None,
            "usage": self.usage_for(body, out),
        }


def _flatten(body: dict[str, Any]) -> list[tuple[str, bool]]:
    """Prompt pieces in API order (system, then messages) with their cache_control flag."""
    out: list[tuple[str, bool]] = []
    system = body.get("system")
    if isinstance(system, str):
        out.append((system, False))
    elif isinstance(system, list):
        out.extend((b.get("text", ""), bool(b.get("cache_control"))) for b in system)
    for msg in body.get("messages", []):
        content = msg.get("content")
        if isinstance(content, str):
            out.append((content, False))
        else:
            out.extend((b.get("text", ""), bool(b.get("cache_control"))) for b in content)
    return out


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def _make_handler(fake: FakeAnthropic) -> type[ScriptedHandler]:
    class Handler(ScriptedHandler):
        service = fake

        def base_headers(self) -> dict[str, str]:
            return {"request-id": f"req_{uuid.uuid4().hex[:12]}"}

        def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(data).encode(), headers=headers)

        def do_POST(self) -> None:  # noqa: N802
            body = self._read_json()
            path = self.path.split("?")[0]
            self._record(body)
            if path == "/v1/messages":
                with fake._lock:
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    self._messages(body)
                finally:
                    with fake._lock:
                        fake.in_flight -= 1
            elif path == "/v1/messages/batches":
                self._create_batch(body)
            else:
                self._json(404, {"type": "error", "error": {"type": "not_found_error",
                                                            "message": path}})

        def do_GET(self) -> None:  # noqa: N802
            self._record(None)
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts[:3] == ["v1", "messages", "batches"] and len(parts) >= 4:
                batch = fake.batches.get(parts[3])
                if batch is None:
                    return self._json(404, {"type": "error", "error": {
                        "type": "not_found_error", "message": "no such batch"}})
                if len(parts) == 5 and parts[4] == "results":
                    return self._send(200, batch["results"], "application/binary")
                batch["polls"] += 1
                return self._json(200, self._batch_view(batch))
            self._json(404, {"type": "error", "error": {"type": "not_found_error",
                                                        "message": self.path}})

        def _messages(self, body: dict[str, Any]) -> None:
            reply = fake.next_reply(body)
            if reply.raw_body is not None:
                return self._send(reply.status, reply.raw_body)
            if reply.status != 200:
                return self._json(reply.status, {"type": "error", "error": {
                    "type": reply.error_type, "message": f"fake {reply.status}"}},
                    headers=reply.headers)
            msg = fake.message(body, reply)
            if not body.get("stream"):
                return self._json(200, msg)
            self._stream(msg, reply)

        def _stream(self, msg: dict[str, Any], reply: Reply) -> None:
            usage = msg["usage"]
            start = dict(msg, content=[], stop_reason=None,
                         usage=dict(usage, output_tokens=1))
            out = [_sse("message_start", {"type": "message_start", "message": start}),
                   _sse("ping", {"type": "ping"})]
            full = reply.text or ""
            if full:
                out.append(_sse("content_block_start", {"type": "content_block_start",
                                                        "index": 0, "content_block": {
                                                            "type": "text", "text": ""}}))
                for i in range(0, len(full), 40):
                    out.append(_sse("content_block_delta", {
                        "type": "content_block_delta", "index": 0,
                        "delta": {"type": "text_delta", "text": full[i:i + 40]}}))
                    if reply.stream_error and i >= len(full) // 2:
                        out.append(_sse("error", {"type": "error", "error": {
                            "type": reply.stream_error, "message": "fake mid-stream"}}))
                        break
                else:
                    out.append(_sse("content_block_stop", {"type": "content_block_stop",
                                                           "index": 0}))
            if not reply.stream_error:
                out.append(_sse("message_delta", {
                    "type": "message_delta",
                    "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
                    "usage": usage}))
                out.append(_sse("message_stop", {"type": "message_stop"}))
            self._send(200, b"".join(out), "text/event-stream")

        def _create_batch(self, body: dict[str, Any]) -> None:
            batch_id = f"msgbatch_{uuid.uuid4().hex[:16]}"
            lines = []
            for req in body["requests"]:
                params = req["params"]
                reply = fake.next_reply(params)
                if reply.status == 200 and reply.raw_body is None:
                    msg = fake.message(params, reply)
                    result: dict[str, Any] = {"type": "succeeded", "message": msg}
                else:
                    result = {"type": "errored", "error": {"type": "error", "error": {
                        "type": reply.error_type, "message": "fake batch error"}}}
                lines.append(json.dumps({"custom_id": req["custom_id"], "result": result}))
            batch = {"id": batch_id, "polls": 0, "count": len(lines),
                     "results": ("\n".join(lines) + "\n").encode(),
                     "created_at": "2026-01-01T00:00:00Z"}
            fake.batches[batch_id] = batch
            self._json(200, self._batch_view(batch))

        def _batch_view(self, batch: dict[str, Any]) -> dict[str, Any]:
            ended = batch["polls"] > fake.batch_polls
            n = batch["count"]
            return {
                "id": batch["id"], "type": "message_batch",
                "processing_status": "ended" if ended else "in_progress",
                "request_counts": {"processing": 0 if ended else n,
                                   "succeeded": n if ended else 0,
                                   "errored": 0, "canceled": 0, "expired": 0},
                "created_at": batch["created_at"], "expires_at": "2026-01-02T00:00:00Z",
                "ended_at": "2026-01-01T01:00:00Z" if ended else None,
                "results_url": (f"{fake.base_url}/v1/messages/batches/{batch['id']}/results"
                                if ended else None),
            }

    return Handler
