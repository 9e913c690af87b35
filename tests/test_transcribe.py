"""Speech to timed segments: the real faster-whisper on tiny.en, and the remote engine
against a loopback OpenAI-compatible server, on speech espeak-ng made on this machine.

What a user would check: the words spoken are in the transcript, a sentence that starts
after five seconds of silence starts near 5 s, a silent recording fails plainly without
anything sent to a model, a broken file says why, and a transcription interrupted
half-way resumes where it stopped instead of starting again.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_speech import FakeSpeechServer  # noqa: E402
from speech import LECTURE, SHORT, encode, heard_ratio, silence, speak, tiny_model  # noqa: E402

from daemon.errors import (  # noqa: E402
    EmptyTranscriptError,
    NetworkError,
    OfflineError,
    PermanentError,
)
from daemon.sources.transcribe import (  # noqa: E402
    EngineSettings,
    RemoteEngine,
    cache_key,
    load_cached,
    make_engine,
    progress,
    transcribe_file,
)


def remote(url: str, **kw: object) -> EngineSettings:
    return EngineSettings(engine="openai", model="whisper-1", base_url=url, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- faster-whisper


def test_whisper_hears_the_words_and_when_they_were_said(tmp_path: Path) -> None:
    model = tiny_model()
    wav = speak(SHORT, tmp_path / "late.wav", silence_before=5.0, silence_after=0.5)
    audio = encode(wav, tmp_path / "late.m4a")
    settings = EngineSettings(engine="faster-whisper", model=str(model), device="cpu")
    built: list[str] = []

    def engine(s: EngineSettings):  # the real engine, counted
        built.append(s.engine)
        return make_engine(s)

    transcript = transcribe_file(audio, tmp_path / "state", "k1", settings,
                                 engine_factory=engine)
    assert heard_ratio(SHORT, transcript.text) >= 0.7, transcript.text
    first = transcript.segments[0]
    assert 4.0 <= first.start <= 6.0, first
    assert transcript.end <= 8.0
    # Cached by key: asking again loads no model and hears nothing.
    again = transcribe_file(audio, tmp_path / "state", "k1", settings, engine_factory=engine)
    assert again.text == transcript.text and built == ["faster-whisper"]


@pytest.mark.slow
def test_whisper_on_a_lecture_in_ogg_and_opus(tmp_path: Path) -> None:
    model = tiny_model()
    wav = speak(LECTURE, tmp_path / "lecture.wav", silence_before=2.0)
    settings = EngineSettings(engine="faster-whisper", model=str(model), device="cpu")
    for ext in ("ogg", "opus"):
        audio = encode(wav, tmp_path / f"lecture.{ext}")
        transcript = transcribe_file(audio, tmp_path / "state", ext, settings)
        assert heard_ratio(LECTURE, transcript.text) >= 0.75, (ext, transcript.text)
        starts = [s.start for s in transcript.segments]
        assert starts == sorted(starts) and 1.0 <= starts[0] <= 3.0


# --------------------------------------------------------------------------- remote engine


def test_remote_engine_offsets_every_chunk(tmp_path: Path) -> None:
    """Two sentences 9 s apart, cut in 4-second chunks: each segment's time is where
    the server heard it plus where its chunk starts; the picture track of the mp4 is
    never decoded (only audio reaches the server)."""
    first = speak("Hello there.", tmp_path / "a.wav", silence_before=1.0)
    second = speak("Good bye.", tmp_path / "b.wav", silence_before=9.0)
    import subprocess

    both = tmp_path / "both.wav"
    subprocess.run(["sox", "-m", str(first), str(second), str(both)], check=True)
    video = encode(both, tmp_path / "talk.mp4", with_video=True)
    with FakeSpeechServer(["hello there", "good bye"]) as server:
        transcript = transcribe_file(video, tmp_path / "state", "k", remote(server.base_url),
                                     chunk_seconds=4.0)
        sent = server.requests
    starts = [s.start for s in transcript.segments]
    assert len(starts) == 2, transcript.segments
    assert abs(starts[0] - 1.0) < 0.4 and abs(starts[1] - 9.0) < 0.4, starts
    # Only chunks with sound were sent: 0-4 s (hello) and 8-12 s (good bye).
    assert len(sent) == 2
    assert all(r["fields"]["response_format"] == "verbose_json" for r in sent)


@pytest.mark.parametrize("use_sdk", [True, False], ids=["openai-sdk", "requests"])
def test_both_http_clients_against_the_stand_in(tmp_path: Path, use_sdk: bool) -> None:
    if use_sdk:
        pytest.importorskip("openai", reason="the openai SDK is not installed")
    wav = speak(SHORT, tmp_path / "s.wav", silence_before=2.0)
    with FakeSpeechServer(["the mitochondria is the powerhouse"]) as server:
        transcript = transcribe_file(wav, tmp_path / "state", "k", remote(server.base_url),
                                     engine_factory=lambda s: RemoteEngine(s, use_sdk=use_sdk))
        (sent,) = server.requests
    assert transcript.text == "the mitochondria is the powerhouse"
    assert abs(transcript.segments[0].start - 2.0) < 0.4
    assert sent["fields"]["model"] == "whisper-1"
    assert sent["fields"]["response_format"] == "verbose_json"


def test_a_server_error_is_retried_and_a_refusal_is_not(tmp_path: Path) -> None:
    wav = speak(SHORT, tmp_path / "s.wav")
    with FakeSpeechServer() as server:
        server.fail_next = 1
        with pytest.raises(NetworkError, match="failed .HTTP 500.; vaultd will retry"):
            transcribe_file(wav, tmp_path / "state", "k", remote(server.base_url))
        with pytest.raises(PermanentError, match="refused the audio .HTTP 404.") as err:
            transcribe_file(wav, tmp_path / "state", "k2", remote(server.base_url + "/x"))
    assert not err.value.transient
    with pytest.raises(OfflineError, match="could not be reached"):  # server gone: retried
        transcribe_file(wav, tmp_path / "state", "k3", remote(server.base_url))


def test_silence_sends_nothing_and_says_so(tmp_path: Path) -> None:
    quiet = silence(tmp_path / "quiet.wav", 12.0)
    with FakeSpeechServer() as server:
        with pytest.raises(EmptyTranscriptError, match="silent; nothing was sent"):
            transcribe_file(quiet, tmp_path / "state", "k", remote(server.base_url),
                            chunk_seconds=5.0)
        assert server.requests == []


def test_a_crash_half_way_resumes_at_the_chunk_it_stopped_in(tmp_path: Path) -> None:
    parts = [speak(f"Sentence number {n}.", tmp_path / f"{n}.wav", silence_after=1.5)
             for n in ("one", "two", "three", "four")]
    import subprocess

    lecture = tmp_path / "lecture.wav"
    subprocess.run(["sox", *map(str, parts), str(lecture)], check=True)
    state, key = tmp_path / "state", "lecture"
    with FakeSpeechServer(["first", "second", "third", "fourth", "fifth"]) as server:
        settings = remote(server.base_url)
        server.fail_next = 0
        # The server dies on the third chunk: what was heard before is kept.
        calls: list[int] = []
        original = server.answer

        def breaks_on_third(fields, audio):  # type: ignore[no-untyped-def]
            calls.append(1)
            if len(calls) == 3:
                server.fail_next = 1
            return original(fields, audio)

        server.answer = breaks_on_third  # type: ignore[method-assign]
        with pytest.raises(NetworkError):
            transcribe_file(lecture, state, key, settings, chunk_seconds=2.0)
        done, total = progress(state, key) or (0.0, 0.0)
        assert done == pytest.approx(4.0) and total > 8.0
        before = len(server.requests)
        transcript = transcribe_file(lecture, state, key, settings, chunk_seconds=2.0)
        resumed = len(server.requests) - before
        before = len(server.requests)
        transcribe_file(lecture, state, "fresh", settings, chunk_seconds=2.0)
        fresh = len(server.requests) - before
    # Resumed at 4 s: the two chunks heard before the failure were not sent again.
    assert resumed == fresh - 2, (resumed, fresh)
    assert load_cached(state, key) is not None and progress(state, key) is None
    starts = [s.start for s in transcript.segments]
    assert starts == sorted(starts) and starts[0] < 2.0


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("content,reason", [
    (b"", "is empty \\(0 bytes\\)"),
    (b"ID3\x03\x00garbage" + bytes(range(256)) * 20, "could not be read as audio|no audio"),
])
def test_broken_files_fail_plainly(tmp_path: Path, content: bytes, reason: str) -> None:
    bad = tmp_path / "broken.mp3"
    bad.write_bytes(content)
    with FakeSpeechServer() as server:
        with pytest.raises(PermanentError, match=reason) as err:
            transcribe_file(bad, tmp_path / "state", "k", remote(server.base_url))
        assert server.requests == []
    assert "broken.mp3" in err.value.reason
    assert "Errno" not in err.value.reason, err.value.reason  # PyAV's errno is noise


def test_an_empty_file_says_it_is_empty(tmp_path: Path) -> None:
    """A zero-length recording: '... is empty (0 bytes)', not PyAV's 'Invalid data'."""
    bad = tmp_path / "empty.m4a"
    bad.write_bytes(b"")
    with pytest.raises(PermanentError) as err:
        transcribe_file(bad, tmp_path / "state", "k", remote("http://127.0.0.1:9/v1"),
                        name="Lectures/empty.m4a")
    assert err.value.reason == "Lectures/empty.m4a is empty (0 bytes)", err.value.reason


def test_a_video_without_sound_says_so(tmp_path: Path) -> None:
    import subprocess

    from speech import need

    mute = tmp_path / "mute.mp4"
    subprocess.run([need("ffmpeg"), "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=160x120:rate=5", "-t", "2", "-c:v", "mpeg4", str(mute)],
                   check=True)
    with pytest.raises(PermanentError, match="mute.mp4 has no audio track"):
        transcribe_file(mute, tmp_path / "state", "k", remote("http://127.0.0.1:9/v1"))


def test_a_recording_over_the_length_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    long = silence(tmp_path / "long.wav", 30.0)
    settings = remote("http://127.0.0.1:9/v1", max_hours=0.005)  # 18 s
    with pytest.raises(PermanentError, match=r"over 0.005 hours .*transcribe max_hours"):
        transcribe_file(long, tmp_path / "state", "k", settings)


def test_cache_key_changes_with_engine_and_model() -> None:
    a = EngineSettings(engine="faster-whisper", model="small")
    assert cache_key("media:x", a) == cache_key("media:x", a)
    assert cache_key("media:x", a) != cache_key("media:x", EngineSettings(
        engine="faster-whisper", model="tiny"))
    assert cache_key("media:x", a) != cache_key("media:y", a)


def test_a_quiet_recording_is_not_taken_for_silence(tmp_path: Path) -> None:
    """A far-away microphone: speech at about -40 dBFS is still sent to the engine."""
    import subprocess

    loud = speak(SHORT, tmp_path / "loud.wav", silence_before=1.0, silence_after=20.0)
    quiet = tmp_path / "quiet.wav"
    subprocess.run(["sox", str(loud), str(quiet), "vol", "0.03"], check=True)
    with FakeSpeechServer(["the mitochondria is the powerhouse of the cell"]) as server:
        server.floor = 0.0005  # the stand-in hears quiet speech too
        transcript = transcribe_file(quiet, tmp_path / "state", "k", remote(server.base_url))
        assert len(server.requests) == 1
    assert transcript.text == "the mitochondria is the powerhouse of the cell"
