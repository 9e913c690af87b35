"""Speech to a timed :class:`Transcript`: audio decoding, engines, resumable chunks.

Runs inside the transcription pool's process (:mod:`daemon.jobs.transcription_pool`), never in a
generation worker or on the writer. The contract:

* Only the audio track is decoded (PyAV), resampled to 16 kHz mono, in chunks of
  ``CHUNK_SECONDS``; a video's picture is demuxed and dropped, never decoded.
* A chunk whose loudness is below ``SILENCE_RMS`` is skipped without calling the engine,
  so a silent file sends nothing to a model and fails with a plain reason.
* After every chunk the segments so far are persisted in
  ``<state>/transcripts/speech/<cache key>.partial.json``; a crash or a stop at minute 50
  of 60 resumes at the chunk that was running. The finished transcript is
  ``<cache key>.json``; while it exists nothing is transcribed again.
* Engines: ``faster-whisper`` (local, optional extra ``vaultd[whisper]``) and ``openai``
  (any OpenAI-compatible ``/v1/audio/transcriptions`` endpoint with ``verbose_json``).
  Both return segments with times relative to the chunk; the offset is added here.

Errors leave as :mod:`daemon.errors` types with a reason a user can act on.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import logging
import os
import re
import tempfile
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from daemon.errors import (
    EmptyTranscriptError,
    NetworkError,
    OfflineError,
    PermanentError,
    RateLimitedError,
)
from vault_tools.models import Segment, Transcript

if TYPE_CHECKING:  # numpy (and its BLAS threads) only where samples are handled
    import numpy as np

log = logging.getLogger("vaultd.transcribe")

SAMPLE_RATE = 16000
CHUNK_SECONDS = 300.0
SILENCE_RMS = 0.003  # about -50 dBFS on average: room noise, not speech
SILENCE_PEAK = 0.01  # -40 dBFS: what the loudest 0.1 % of a silent chunk stays under
CACHE_VERSION = 1
# Said on an inbox line (160 characters at most, brackets are not kept there).
ENABLE_HINT = ('pip install faster-whisper and set engine = "faster-whisper" in the '
               "transcribe section of .vaultd/config.toml")


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class EngineSettings:
    """The ``[transcribe]`` section, as the engines need it."""

    engine: str = "off"
    model: str = "small"
    base_url: str = ""
    device: str = "auto"
    compute_type: str = "auto"
    language: str = "auto"
    vad: bool = True
    max_hours: float = 12.0
    timeout_seconds: float = 600.0

    @classmethod
    def from_config(cls, config: dict[str, dict[str, Any]]) -> EngineSettings:
        t = config.get("transcribe", {})
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in t.items() if k in known})

    @property
    def enabled(self) -> bool:
        return self.engine != "off"

    def identity(self) -> str:
        """What makes two transcripts of the same audio differ (part of the cache key)."""
        return f"{self.engine}|{self.model}|{self.language}"


def whisper_available() -> bool:
    return importlib.util.find_spec("faster_whisper") is not None


def unavailable_reason(settings: EngineSettings) -> str | None:
    """Why transcription cannot run with these settings, or None when it can."""
    if not settings.enabled:
        return f"transcription is off; {ENABLE_HINT}"
    if settings.engine == "faster-whisper" and not whisper_available():
        return ("the transcription engine faster-whisper is not installed; "
                "pip install faster-whisper (the whisper extra of vaultd)")
    if settings.engine == "openai" and not settings.base_url:
        return ("the openai transcription engine needs base_url in the transcribe section "
                "(e.g. http://host:8000/v1)")
    return None


def cache_key(source_id: str, settings: EngineSettings) -> str:
    """File-name-safe key of one transcription: source identity + engine settings."""
    digest = hashlib.sha256(f"{source_id}|{settings.identity()}".encode()).hexdigest()
    return digest[:32]


# --------------------------------------------------------------------------- decoding


Media = Path | BinaryIO  # a path, or a file opened through the vault's path gate


def _open(source: Media) -> Any:
    import av

    if isinstance(source, Path):
        return av.open(str(source))
    source.seek(0)
    return av.open(source)


def probe_duration(source: Media, name: str) -> float:
    """Length of the audio track in seconds; a file without one is a permanent error."""
    import av

    try:
        with _open(source) as container:
            if not container.streams.audio:
                raise PermanentError(f"{name} has no audio track")
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            if container.duration is not None:
                return container.duration / 1_000_000
    except PermanentError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise PermanentError(f"{name} could not be read as audio or video (empty, "
                             f"damaged or not a media file: {_av_reason(exc)})") from None
    return 0.0  # unknown (some streams do not say); decoding finds the real length


def _av_reason(exc: BaseException) -> str:
    """PyAV's message without its errno ('[Errno 1094995529] Invalid data ...') or path."""
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc))
    return text.split(": '", 1)[0][:120] if text else type(exc).__name__


def _size(source: Media) -> int | None:
    """Bytes in the recording (None when the stream cannot say)."""
    try:
        if isinstance(source, Path):
            return source.stat().st_size
        return os.fstat(source.fileno()).st_size
    except (OSError, AttributeError, ValueError):
        return None


def decode_chunks(source: Media, name: str, chunk_seconds: float = CHUNK_SECONDS
                  ) -> Iterator[tuple[float, np.ndarray]]:
    """``(start seconds, float32 mono 16 kHz samples)`` per chunk of the audio track.

    Times come from the sample count, so they are exact for the decoded audio. Only the
    first audio stream is decoded.
    """
    import av
    import numpy as np

    per_chunk = int(chunk_seconds * SAMPLE_RATE)
    try:
        container = _open(source)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise PermanentError(f"{name} could not be read as audio or video (empty, "
                             f"damaged or not a media file: {_av_reason(exc)})") from None
    with container:
        if not container.streams.audio:
            raise PermanentError(f"{name} has no audio track")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        pending: list[np.ndarray] = []
        have = 0
        emitted = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    pending.append(out.to_ndarray().reshape(-1))
                    have += pending[-1].size
                while have >= per_chunk:
                    block = np.concatenate(pending)
                    yield emitted / SAMPLE_RATE, block[:per_chunk].astype(np.float32) / 32768
                    emitted += per_chunk
                    rest = block[per_chunk:]
                    pending, have = [rest], rest.size
            for out in resampler.resample(None):
                pending.append(out.to_ndarray().reshape(-1))
        except av.FFmpegError as exc:
            codec = getattr(stream.codec_context, "name", "?")
            raise PermanentError(f"{name}: the audio ({codec}) could not be decoded "
                                 f"({_av_reason(exc)})") from None
        if pending and (block := np.concatenate(pending)).size:
            yield emitted / SAMPLE_RATE, block.astype(np.float32) / 32768


def is_silent(samples: np.ndarray) -> bool:
    """No sound worth a model's time: quiet on average *and* without peaks. Speech from a
    far-away microphone is quiet on average but still peaks well above ``SILENCE_PEAK``."""
    import numpy as np

    if samples.size == 0:
        return True
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return rms < SILENCE_RMS and float(np.percentile(np.abs(samples), 99.9)) < SILENCE_PEAK


# --------------------------------------------------------------------------- engines


class Engine(Protocol):
    name: str

    def transcribe(self, samples: np.ndarray) -> tuple[list[Segment], str | None]:
        """Segments (times relative to the chunk) and the detected language."""
        ...


class WhisperEngine:
    """faster-whisper (CTranslate2). ``model`` is a size name or a local model folder."""

    name = "faster-whisper"

    def __init__(self, settings: EngineSettings) -> None:
        if not whisper_available():
            raise PermanentError(unavailable_reason(settings) or "faster-whisper missing")
        from faster_whisper import WhisperModel

        compute = settings.compute_type
        device = settings.device
        if compute == "auto":
            compute = "int8" if device in ("cpu", "auto") else "default"
        local = Path(settings.model).expanduser()
        try:
            self.model = WhisperModel(str(local) if local.is_dir() else settings.model,
                                      device=device, compute_type=compute,
                                      cpu_threads=max(1, (os.cpu_count() or 2) // 2))
        except Exception as exc:  # noqa: BLE001 - hub/CTranslate2 errors vary by version
            raise PermanentError(f"the whisper model {settings.model!r} could not be loaded "
                                 f"({type(exc).__name__}: {str(exc)[:160]})") from None
        self.settings = settings

    def transcribe(self, samples: np.ndarray) -> tuple[list[Segment], str | None]:
        language = None if self.settings.language == "auto" else self.settings.language
        segments, info = self.model.transcribe(
            samples, language=language, vad_filter=self.settings.vad,
            condition_on_previous_text=False)
        out = [Segment(round(s.start, 2), round(max(s.end - s.start, 0.0), 2),
                       " ".join(s.text.split())) for s in segments if s.text.strip()]
        return out, info.language


def wav_bytes(samples: np.ndarray) -> bytes:
    """16-bit PCM WAV of float samples (what every transcription server accepts)."""
    import numpy as np

    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm)
    return buf.getvalue()


class RemoteEngine:
    """An OpenAI-compatible ``/audio/transcriptions`` endpoint (``verbose_json``).

    Uses the ``openai`` SDK when installed (retries off: the daemon's backoff decides),
    else ``requests``. The API key comes from ``VAULTD_TRANSCRIBE_API_KEY`` or
    ``OPENAI_API_KEY``; local servers ignore it.
    """

    name = "openai"

    def __init__(self, settings: EngineSettings, *, use_sdk: bool | None = None) -> None:
        if not settings.base_url:
            raise PermanentError(unavailable_reason(settings) or "base_url missing")
        self.use_sdk = (importlib.util.find_spec("openai") is not None if use_sdk is None
                        else use_sdk)
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.api_key = (os.environ.get("VAULTD_TRANSCRIBE_API_KEY")
                        or os.environ.get("OPENAI_API_KEY") or "none")
        self.model = settings.model

    def transcribe(self, samples: np.ndarray) -> tuple[list[Segment], str | None]:
        fields: dict[str, Any] = {"model": self.model, "response_format": "verbose_json",
                                  "timestamp_granularities[]": "segment"}
        if self.settings.language != "auto":
            fields["language"] = self.settings.language
        audio = wav_bytes(samples)
        if self.use_sdk:
            data = self._with_sdk(audio, fields)
        else:
            data = self._with_requests(audio, fields)
        return segments_from_verbose_json(data), data.get("language")

    def _with_sdk(self, audio: bytes, fields: dict[str, Any]) -> dict[str, Any]:
        import openai

        client = openai.OpenAI(base_url=self.base_url, api_key=self.api_key, max_retries=0,
                               timeout=self.settings.timeout_seconds)
        extra = {k: v for k, v in fields.items() if k not in ("model", "response_format",
                                                              "timestamp_granularities[]")}
        try:
            reply = client.audio.transcriptions.create(
                file=("chunk.wav", audio, "audio/wav"), model=self.model,
                response_format="verbose_json", timestamp_granularities=["segment"],
                **extra)
        except openai.APIConnectionError as exc:
            raise OfflineError(f"the transcription server at {self.base_url} could not be "
                               f"reached ({type(exc).__name__}); vaultd will retry") from None
        except openai.APIStatusError as exc:
            raise _status_error(exc.status_code, self.base_url) from None
        return reply.model_dump() if hasattr(reply, "model_dump") else dict(reply)

    def _with_requests(self, audio: bytes, fields: dict[str, Any]) -> dict[str, Any]:
        import requests

        try:
            resp = requests.post(f"{self.base_url}/audio/transcriptions",
                                 headers={"Authorization": f"Bearer {self.api_key}"},
                                 data=fields, files={"file": ("chunk.wav", audio, "audio/wav")},
                                 timeout=self.settings.timeout_seconds)
        except requests.RequestException as exc:
            raise OfflineError(f"the transcription server at {self.base_url} could not be "
                               f"reached ({type(exc).__name__}); vaultd will retry") from None
        if resp.status_code >= 400:
            raise _status_error(resp.status_code, self.base_url)
        try:
            return dict(resp.json())
        except ValueError:
            raise NetworkError("the transcription server sent an unreadable answer; vaultd "
                               "will retry") from None


def _status_error(status: int, where: str) -> Exception:
    if status == 429:
        return RateLimitedError(f"the transcription server at {where} says too many "
                                "requests; vaultd will wait and retry")
    if status >= 500:
        return NetworkError(f"the transcription server at {where} failed (HTTP {status}); "
                            "vaultd will retry")
    return PermanentError(f"the transcription server at {where} refused the audio "
                          f"(HTTP {status}); check model and base_url in the transcribe section")


def segments_from_verbose_json(data: dict[str, Any]) -> list[Segment]:
    """Segments of a ``verbose_json`` reply; a reply without any is a plain error."""
    raw = data.get("segments")
    if raw is None:
        text = str(data.get("text") or "").strip()
        if not text:
            return []
        raise PermanentError("the transcription server returned no segment timings; it "
                             "must support response_format=verbose_json")
    out = []
    for s in raw:
        start, end = float(s.get("start", 0.0)), float(s.get("end", 0.0))
        text = " ".join(str(s.get("text", "")).split())
        if text:
            out.append(Segment(round(start, 2), round(max(end - start, 0.0), 2), text))
    return out


def make_engine(settings: EngineSettings) -> Engine:
    if settings.engine == "faster-whisper":
        return WhisperEngine(settings)
    if settings.engine == "openai":
        return RemoteEngine(settings)
    raise PermanentError(unavailable_reason(settings) or "transcription is off")


# --------------------------------------------------------------------------- cache


def speech_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "transcripts" / "speech"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("version") == CACHE_VERSION else None


def _segments(raw: list[list[Any]]) -> list[Segment]:
    return [Segment(float(a), float(b), str(c)) for a, b, c in raw]


def load_cached(state_dir: Path, key: str) -> tuple[Transcript, dict[str, Any]] | None:
    """The finished transcript and the metadata stored with it (``duration`` at least:
    the audio's length), or None."""
    data = _read_json(speech_dir(state_dir) / f"{key}.json")
    if data is None:
        return None
    meta = dict(data.get("meta") or {})
    if meta.get("duration") is None:
        meta["duration"] = data.get("duration")
    return (Transcript(_segments(data["segments"]), language=data.get("language") or "en",
                       is_generated=True), meta)


def progress(state_dir: Path, key: str) -> tuple[float, float] | None:
    """(seconds transcribed, total seconds) of a running transcription, if known."""
    data = _read_json(speech_dir(state_dir) / f"{key}.partial.json")
    if data is None:
        return None
    return float(data.get("done", 0.0)), float(data.get("duration", 0.0))


def transcribe_file(source: Media, state_dir: Path, key: str, settings: EngineSettings, *,
                    name: str | None = None, meta: dict[str, Any] | None = None,
                    engine_factory: Callable[[EngineSettings], Engine] = make_engine,
                    chunk_seconds: float = CHUNK_SECONDS) -> Transcript:
    """Transcribe ``path`` into the cache under ``key``, resuming a partial run.

    The engine is built only when a chunk has sound, so a silent file never loads a
    model or calls a server.
    """
    if cached := load_cached(state_dir, key):
        return cached[0]
    name = name or (source.name if isinstance(source, Path) else "the recording")
    if _size(source) == 0:
        raise PermanentError(f"{name} is empty (0 bytes)")
    duration = probe_duration(source, name)
    if settings.max_hours and duration > settings.max_hours * 3600:
        raise PermanentError(
            f"{name} is {duration / 3600:.1f} hours long; files over "
            f"{settings.max_hours:g} hours are not transcribed (transcribe max_hours)")
    partial_path = speech_dir(state_dir) / f"{key}.partial.json"
    partial = _read_json(partial_path) or {}
    if partial.get("chunk") != chunk_seconds:
        partial = {}
    segments = _segments(partial.get("segments", []))
    done = float(partial.get("done", 0.0))
    language: str | None = partial.get("language")
    if done:
        log.info("%s: resuming transcription at %.0f s of %.0f s", name, done, duration)
    engine: Engine | None = None
    heard = bool(partial.get("heard"))
    end = done
    for start, samples in decode_chunks(source, name, chunk_seconds):
        end = start + samples.size / SAMPLE_RATE
        if start + 1e-6 < done:
            continue  # transcribed before a stop or crash
        if not is_silent(samples):
            heard = True
            if engine is None:
                engine = engine_factory(settings)
            found, lang = engine.transcribe(samples)
            language = language or lang
            segments.extend(Segment(round(s.start + start, 2), s.duration, s.text)
                            for s in found)
        done = end
        _write_json(partial_path, {
            "version": CACHE_VERSION, "chunk": chunk_seconds, "done": done,
            "duration": max(duration, done), "language": language, "heard": heard,
            "segments": [[s.start, s.duration, s.text] for s in segments]})
    if end <= 0.0:
        raise PermanentError(f"{name} contains no audio (empty or damaged file)")
    if not segments:
        reason = ("no speech was heard in it" if heard else
                  "it is silent; nothing was sent to the transcriber")
        raise EmptyTranscriptError(f"{name}: {reason}")
    final = {"version": CACHE_VERSION, "language": language or "en", "duration": end,
             "segments": [[s.start, s.duration, s.text] for s in segments],
             "meta": meta or {}}
    _write_json(speech_dir(state_dir) / f"{key}.json", final)
    partial_path.unlink(missing_ok=True)
    return Transcript(segments, language=language or "en", is_generated=True)
