"""A threaded HTTP server on 127.0.0.1 with an ephemeral port, used as a context manager.

The stand-ins for external services (YouTube, the Anthropic API) build on it, so tests
drive the real client libraries over real sockets and never leave the machine. The model
API stand-ins (fake_anthropic, fake_openai) share :class:`ScriptedServer` (recorded
requests, scripted replies) and :class:`ScriptedHandler` (sending JSON and SSE).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Self, TypeVar

R = TypeVar("R")


class LoopbackServer:
    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        """``port`` 0 picks a free one; a fixed port lets a test bring a service "back"
        at the address a daemon has been failing to reach."""
        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Recorded:
    """One request a stand-in received."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float  # time.monotonic() when the request arrived


class ScriptedServer(LoopbackServer, Generic[R]):
    """A loopback stand-in that records every request and answers from a script of
    replies (``queue``), then from a ``responder`` (the model API stand-ins)."""

    def __init__(self, handler: type[BaseHTTPRequestHandler],
                 responder: Callable[[dict[str, Any]], R]) -> None:
        self.requests: list[Recorded] = []
        self.script: deque[R] = deque()
        self.responder = responder
        self._lock = threading.Lock()
        LoopbackServer.__init__(self, handler)

    def queue(self, *replies: R) -> None:
        self.script.extend(replies)

    def next_reply(self, body: dict[str, Any]) -> R:
        with self._lock:
            if self.script:
                return self.script.popleft()
        return self.responder(body)

    def record(self, method: str, path: str, headers: dict[str, str], body: Any) -> None:
        with self._lock:
            self.requests.append(Recorded(method, path, headers, body, time.monotonic()))


class ScriptedHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 handler helpers of the model API stand-ins: quiet, records requests on
    ``service``, reads JSON bodies, sends a payload (JSON or SSE) with its length."""

    protocol_version = "HTTP/1.1"
    service: ScriptedServer[Any]  # set by the stand-in's handler class

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return

    def base_headers(self) -> dict[str, str]:
        """Headers every reply carries (after content-type and content-length)."""
        return {}

    def _record(self, body: Any) -> None:
        self.service.record(self.command, self.path.split("?")[0], dict(self.headers), body)

    def _read_json(self) -> Any:
        length = int(self.headers.get("content-length", 0))
        return json.loads(self.rfile.read(length) or b"{}")

    def _send(self, status: int, payload: bytes, ctype: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(payload)))
        for k, v in [*self.base_headers().items(), *(headers or {}).items()]:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)
