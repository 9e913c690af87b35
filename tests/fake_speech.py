"""A loopback OpenAI-compatible speech server: ``POST /v1/audio/transcriptions``.

It really listens to the uploaded WAV: every stretch louder than the noise floor
becomes one ``verbose_json`` segment whose start and end are where the sound is in that
upload, and whose text is the next of ``lines``. So a test checks that the client sent
real audio, that chunk offsets were added, and what was (not) sent: ``requests`` records
each upload's length and form fields. ``fail_next`` answers that many requests with
HTTP 500 first (a server that breaks mid-lecture); ``delay`` makes each answer slow.
"""

from __future__ import annotations

import io
import json
import threading
import time
import wave
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np

from tests.loopback import LoopbackServer


def loud_spans(samples: np.ndarray, rate: int, *, window: float = 0.1,
               floor: float = 0.01, gap: float = 0.3) -> list[tuple[float, float]]:
    """(start, end) seconds of the stretches above ``floor`` RMS, joined across gaps."""
    n = max(1, int(rate * window))
    spans: list[tuple[float, float]] = []
    for i in range(0, samples.size, n):
        block = samples[i:i + n]
        if block.size and float(np.sqrt(np.mean(block.astype(np.float64) ** 2))) > floor:
            t0, t1 = i / rate, (i + block.size) / rate
            if spans and t0 - spans[-1][1] <= gap:
                spans[-1] = (spans[-1][0], t1)
            else:
                spans.append((t0, t1))
    return spans


class FakeSpeechServer(LoopbackServer):
    def __init__(self, lines: list[str] | None = None) -> None:
        self.lines = list(lines or ["something was said here"])
        self.requests: list[dict[str, Any]] = []
        self.fail_next = 0
        self.delay = 0.0  # seconds to "think" before each answer (a busy GPU)
        self.floor = 0.01  # RMS above which the stand-in hears something
        self._lock = threading.Lock()
        super().__init__(_handler(self))

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def answer(self, fields: dict[str, str], audio: bytes) -> tuple[int, dict[str, Any]]:
        with wave.open(io.BytesIO(audio)) as w:
            rate = w.getframerate()
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        samples = pcm.astype(np.float32) / 32768
        with self._lock:  # recorded on arrival, answered after the delay
            self.requests.append({"fields": fields, "seconds": samples.size / rate})
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return 500, {"error": {"message": "the GPU fell over"}}
            segments = []
            for i, (start, end) in enumerate(loud_spans(samples, rate, floor=self.floor)):
                text = self.lines[(len(self.requests) + i - 1) % len(self.lines)]
                segments.append({"id": i, "start": round(start, 2), "end": round(end, 2),
                                 "text": f" {text}"})
        return 200, {"task": "transcribe", "language": "english",
                     "duration": samples.size / rate,
                     "text": " ".join(s["text"].strip() for s in segments),
                     "segments": segments}


def _handler(server: FakeSpeechServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.rstrip("/") != "/v1/audio/transcriptions":
                self._send(404, {"error": {"message": "not found"}})
                return
            head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
            message = BytesParser(policy=HTTP).parsebytes(head + body)
            fields: dict[str, str] = {}
            audio = b""
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if part.get_filename():
                    audio = part.get_payload(decode=True) or b""
                elif name:
                    fields[str(name)] = part.get_content().strip()
            status, reply = server.answer(fields, audio)
            self._send(status, reply)

        def _send(self, status: int, data: dict[str, Any]) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    return Handler
