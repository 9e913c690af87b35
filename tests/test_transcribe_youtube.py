"""Caption-less YouTube videos: what the source seam does when a video has no captions.

The video comes from the loopback YouTube (:mod:`tests.fake_youtube`, the real
youtube-transcript-api on the client side): ``noCaptions1`` has its subtitles turned off.
With transcription off, the reason says how to turn it on; with it on, the job is sent
to transcription (or says yt-dlp is needed); once its audio is transcribed, the cached
transcript and metadata are used and YouTube is not asked again.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_speech import FakeSpeechServer  # noqa: E402
from fake_youtube import FakeYouTube  # noqa: E402
from speech import SHORT, speak  # noqa: E402

from daemon.config import Config  # noqa: E402
from daemon.errors import NeedsTranscriptionError, TranscriptUnavailableError  # noqa: E402
from daemon.generate.base import GenerationContext, JobSpec  # noqa: E402
from daemon.sources import ytdlp  # noqa: E402
from daemon.sources.base import load_source  # noqa: E402
from daemon.sources.transcribe import EngineSettings, cache_key, transcribe_file  # noqa: E402
from vault_tools.models import SourceMeta  # noqa: E402

VID = "noCaptions1"


def spec(tmp_path: Path, **transcribe: object) -> JobSpec:
    config = Config.defaults().to_dict()
    config["youtube"]["min_request_interval_seconds"] = 0.0
    config["transcribe"].update(transcribe)
    ctx = GenerationContext(config=config, state_dir=str(tmp_path / "state"))
    return JobSpec(key=f"youtube:{VID}", kind="youtube", backend="offline", context=ctx,
                   video_id=VID, url=f"https://www.youtube.com/watch?v={VID}")


@pytest.fixture
def youtube(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    with FakeYouTube() as yt:
        monkeypatch.setenv("VAULTD_YOUTUBE_ORIGIN", yt.origin)
        yield yt


def test_without_transcription_the_reason_says_how_to_enable_it(tmp_path: Path,
                                                                youtube: FakeYouTube) -> None:
    with pytest.raises(TranscriptUnavailableError) as err:
        load_source(spec(tmp_path))
    reason = err.value.reason
    assert reason.startswith("This video has subtitles turned off. To transcribe its audio")
    assert "pip install faster-whisper yt-dlp" in reason and "docs/media.md" in reason
    assert len(reason) <= 160  # the inbox line keeps it whole


def test_with_transcription_on_the_job_goes_to_transcription(tmp_path: Path,
                                                            youtube: FakeYouTube) -> None:
    job = spec(tmp_path, engine="openai", base_url="http://127.0.0.1:9/v1")
    if ytdlp.available():
        with pytest.raises(NeedsTranscriptionError, match="Transcribing its audio"):
            load_source(job)
    else:
        with pytest.raises(TranscriptUnavailableError, match="needs yt-dlp: pip install yt-dlp"):
            load_source(job)


def test_a_transcribed_video_is_not_fetched_again(tmp_path: Path,
                                                  youtube: FakeYouTube) -> None:
    job = spec(tmp_path, engine="openai", model="whisper-1")
    wav = speak(SHORT, tmp_path / "audio.wav", silence_before=3.0)
    with FakeSpeechServer(["the mitochondria is the powerhouse of the cell"]) as server:
        job.context.config["transcribe"]["base_url"] = server.base_url
        settings = EngineSettings.from_config(job.context.config)
        meta = SourceMeta(key=job.key, kind="youtube", title="Live Q&A: Your Physics "
                          "Questions", url=job.url, video_id=VID, channel="Bench Physics",
                          duration=3605.0, published="2024-03-05")
        # What the transcription pool stores after downloading the audio.
        transcribe_file(wav, Path(job.context.state_dir), cache_key(job.key, settings),
                        settings, meta=asdict(meta))
    hits = len(youtube.hits_for(VID))
    transcript, loaded = load_source(job)
    assert len(youtube.hits_for(VID)) == hits  # YouTube was not asked again
    assert transcript.text == "the mitochondria is the powerhouse of the cell"
    assert abs(transcript.segments[0].start - 3.0) < 0.4
    assert loaded.title == meta.title and loaded.channel == "Bench Physics"
    assert loaded.timestamp_url(62) == f"https://youtu.be/{VID}?t=62"


def test_the_youtube_modules_import_without_a_circle() -> None:
    """ytdlp and playlist depend on ytcommon, never on youtube; youtube imports them at
    the top (no import hidden in a function to dodge a circle)."""
    import ast

    folder = Path(__file__).resolve().parents[1] / "daemon" / "sources"

    def imports(name: str, *, top_only: bool) -> set[str]:
        tree = ast.parse((folder / f"{name}.py").read_text())
        nodes = tree.body if top_only else list(ast.walk(tree))
        found = set()
        for node in nodes:
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
        return found

    for name in ("ytcommon", "ytdlp", "playlist"):
        assert not {m for m in imports(name, top_only=False)
                    if m.startswith("daemon.sources.youtube")}, name
    top = imports("youtube", top_only=True)
    assert {"daemon.sources.ytdlp", "daemon.sources.playlist"} <= top
    assert imports("youtube", top_only=False) - top <= set(), "lazy imports left"
