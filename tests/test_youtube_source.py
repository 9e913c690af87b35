"""YouTube source: the real youtube-transcript-api driven through `responses`.

Two kinds of inputs: small hand-made fixtures in tests/fixtures/youtube/ (always
present) and the recorded YouTube captures in ../shared/fixtures/youtube/ (skipped
with a reason when absent). No test touches the network.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import types
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
import youtube_transcript_api as yta

from daemon.config import Config
from daemon.errors import (
    EmptyTranscriptError,
    InvalidSourceError,
    IpBlockedError,
    JobError,
    NetworkError,
    OfflineError,
    RateLimitedError,
    TranscriptUnavailableError,
)
from daemon.sources import cache
from daemon.sources.youtube import (
    expand_playlist,
    fetch_youtube,
    map_error,
    parse_chapters,
    pick_language,
)
from vault_tools.models import Chapter

OWN = Path(__file__).resolve().parent / "fixtures" / "youtube"
# The captures live beside the project (never copied into it): ../shared, or one
# level further up for a git worktree in a subfolder; VAULTD_YOUTUBE_CAPTURES overrides.
SHARED = Path(os.environ.get("VAULTD_YOUTUBE_CAPTURES") or next(
    (p / "shared" / "fixtures" / "youtube" for p in Path(__file__).resolve().parents[2:4]
     if (p / "shared" / "fixtures" / "youtube").is_dir()),
    Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "youtube"))
VID = "dQw4w9WgXcQ"
SHARED_VID = "GJLlxj_dtq8"
WATCH = "https://www.youtube.com/watch"
PLAYER = "https://www.youtube.com/youtubei/v1/player"
TIMEDTEXT = "https://www.youtube.com/api/timedtext"
OEMBED = "https://www.youtube.com/oembed"
PLAYLIST = "https://www.youtube.com/playlist"
BROWSE = "https://www.youtube.com/youtubei/v1/browse"


def config(**youtube: Any) -> dict[str, dict[str, Any]]:
    cfg = Config.defaults().to_dict()
    language = youtube.pop("note_language", None)
    if language:
        cfg["generate"]["language"] = language
    cfg["youtube"].update(youtube)
    return cfg


def own(name: str) -> str:
    return (OWN / name).read_text(encoding="utf-8")


@pytest.fixture
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared YouTube captures not found at {SHARED}")
    return SHARED


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def _timedtext(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
    """Answer with the fixture transcript, tagged with the track asked for."""
    query = parse_qs(urlsplit(request.url).query)
    tag = query["lang"][0] + ("+asr" if "kind" in query else "")
    if "tlang" in query:
        tag += "->" + query["tlang"][0]
    body = own("transcript.xml").replace("Welcome", f"[{tag}] Welcome")
    return 200, {}, body


def serve_own(rsps: responses.RequestsMock, player: dict[str, Any] | None = None) -> None:
    rsps.get(WATCH, body=own("watch.html"))
    rsps.post(PLAYER, json=player or json.loads(own("player.json")))
    rsps.add_callback(responses.GET, TIMEDTEXT, callback=_timedtext)


def serve_shared(rsps: responses.RequestsMock, folder: Path, *, player: str | None = None,
                 watch: str = "youtube.html.static") -> None:
    rsps.get(WATCH, body=(folder / watch).read_bytes())
    rsps.post(PLAYER, body=(folder / (player or "youtube.innertube.json.static")).read_bytes(),
              content_type="application/json")
    rsps.get(TIMEDTEXT, body=(folder / "transcript.xml.static").read_bytes())


# --------------------------------------------------------------------------- own fixtures


def test_fetch_builds_transcript_and_metadata(rsps, tmp_path):
    serve_own(rsps)
    transcript, meta = fetch_youtube(VID, config(), tmp_path, session=requests.Session())

    texts = [s.text for s in transcript.segments]
    assert texts == [
        "[en+asr] Welcome to this lecture on entropy and information.",
        "We start with the definition: it's the expected surprise of a source.",
        "Then we compute it for a fair coin & a loaded die.",
        "Finally, we connect entropy to compression limits.",
    ]
    assert transcript.segments[2].start == 61.0
    assert (transcript.language, transcript.is_generated) == ("en", True)
    assert meta.key == f"youtube:{VID}" and meta.kind == "youtube"
    assert meta.url == f"https://www.youtube.com/watch?v={VID}" and meta.video_id == VID
    assert (meta.title, meta.channel, meta.duration) == ("Entropy in 10 Minutes",
                                                         "Test Lectures", 600.0)
    assert meta.published == "2021-03-04"
    assert meta.description.startswith("A short lecture.")
    assert meta.chapters == [Chapter(0.0, "Intro"), Chapter(61.0, "Fair coin"),
                             Chapter(125.0, "Compression")]
    assert [urlsplit(c.request.url).path for c in rsps.calls] == [
        "/watch", "/youtubei/v1/player", "/api/timedtext"]


def test_cache_prevents_a_second_fetch(rsps, tmp_path):
    serve_own(rsps)
    first = fetch_youtube(VID, config(), tmp_path, session=requests.Session())
    assert len(rsps.calls) == 3
    again = fetch_youtube(VID, config(), tmp_path, session=requests.Session())
    assert len(rsps.calls) == 3
    assert again[0].segments == first[0].segments and again[1] == first[1]
    entry = json.loads(cache.cache_path(tmp_path, VID).read_text(encoding="utf-8"))
    assert entry["extra"]["keywords"] == ["entropy", "information theory"]
    # a different language preference is a different request: fetched again
    fetch_youtube(VID, config(languages=["de"]), tmp_path, session=requests.Session())
    assert len(rsps.calls) == 6


def test_corrupt_cache_entry_is_a_miss(rsps, tmp_path):
    serve_own(rsps)
    path = cache.cache_path(tmp_path, VID)
    path.parent.mkdir(parents=True)
    path.write_text("{not json", encoding="utf-8")
    transcript, _ = fetch_youtube(VID, config(), tmp_path, session=requests.Session())
    assert len(rsps.calls) == 3 and transcript.segments
    assert json.loads(path.read_text(encoding="utf-8"))["video_id"] == VID


@pytest.mark.parametrize(
    ("settings", "tag", "generated"),
    [
        ({"languages": ["en", "de"], "prefer_manual": True}, "[de]", False),
        ({"languages": ["en", "de"], "prefer_manual": False}, "[en+asr]", True),
        ({"languages": ["ja"], "any_language": True}, "[de]", False),
        ({"languages": ["en"], "translate": True, "note_language": "fr"}, "[en+asr->fr]", True),
        # a track already in the note language is not translated
        ({"languages": ["es"], "translate": True, "note_language": "es"}, "[es]", False),
    ],
)
def test_track_choice(rsps, tmp_path, settings, tag, generated):
    serve_own(rsps)
    transcript, meta = fetch_youtube(VID, config(**settings), tmp_path,
                                     session=requests.Session())
    assert transcript.segments[0].text.startswith(tag + " ")
    assert transcript.is_generated is generated
    assert meta.language == transcript.language == tag.strip("[]").split("->")[-1][:2]


def test_no_preferred_language_fails_with_what_exists(rsps, tmp_path):
    serve_own(rsps)
    with pytest.raises(TranscriptUnavailableError) as err:
        fetch_youtube(VID, config(languages=["ja"], any_language=False), tmp_path,
                      session=requests.Session())
    assert err.value.reason == "This video has no subtitles in ja (it has: de, en, es)."


def test_pick_language_orders():
    kw = {"any_language": False}
    assert pick_language(["en", "de"], ["de"], ["en"], prefer_manual=True, **kw) == ("de", False)
    assert pick_language(["en", "de"], ["de"], ["en"], prefer_manual=False, **kw) == ("en", True)
    assert pick_language(["ja"], ["de"], ["en"], prefer_manual=True, **kw) is None
    assert pick_language(["ja"], [], ["en"], prefer_manual=True, any_language=True) == (
        "en", True)


def test_oembed_fills_missing_title(rsps, tmp_path):
    player = json.loads(own("player.json"))
    del player["videoDetails"]
    serve_own(rsps, player)
    rsps.get(OEMBED, json={"title": "From oEmbed", "author_name": "Channel X"})
    _, meta = fetch_youtube(VID, config(), tmp_path, session=requests.Session())
    assert (meta.title, meta.channel, meta.duration) == ("From oEmbed", "Channel X", None)
    assert parse_qs(urlsplit(rsps.calls[-1].request.url).query)["url"] == [
        f"https://www.youtube.com/watch?v={VID}"]


def test_oembed_failure_falls_back_to_the_id(rsps, tmp_path):
    player = json.loads(own("player.json"))
    del player["videoDetails"]
    serve_own(rsps, player)
    rsps.get(OEMBED, status=404)
    _, meta = fetch_youtube(VID, config(), tmp_path, session=requests.Session())
    assert meta.title == f"YouTube video {VID}"


@pytest.mark.parametrize(
    ("body", "reason_start"),
    [
        ("", "The subtitles of this video are empty"),
        ('<?xml version="1.0"?><transcript><text start="0" dur="1"></text></transcript>',
         "The subtitles of this video are empty"),
        ('<transcript><text start="0" dur="1">just three words</text></transcript>',
         "The subtitles of this video are almost empty (3 words)"),
    ],
)
def test_empty_transcripts_are_permanent(rsps, tmp_path, body, reason_start):
    rsps.get(WATCH, body=own("watch.html"))
    rsps.post(PLAYER, json=json.loads(own("player.json")))
    rsps.get(TIMEDTEXT, body=body)
    with pytest.raises(EmptyTranscriptError) as err:
        fetch_youtube(VID, config(), tmp_path, session=requests.Session())
    assert err.value.reason.startswith(reason_start) and not err.value.transient
    assert not cache.cache_path(tmp_path, VID).exists()


def test_invalid_id_fails_before_any_request(rsps, tmp_path):
    with pytest.raises(InvalidSourceError):
        fetch_youtube("https://www.youtube.com/watch?v=" + VID, config(), tmp_path,
                      session=requests.Session())
    assert len(rsps.calls) == 0


@pytest.mark.parametrize(
    ("answer", "error", "reason_part"),
    [
        (requests.ConnectionError("refused"), OfflineError, "no network?"),
        (requests.ReadTimeout("slow"), NetworkError, "did not answer in time"),
        (requests.exceptions.ProxyError("no proxy"), OfflineError, "proxy"),
        (500, NetworkError, "HTTP 500"),
        (403, IpBlockedError, "blocking"),
        (404, TranscriptUnavailableError, "HTTP 404"),
    ],
)
def test_network_failures(rsps, tmp_path, answer, error, reason_part):
    rsps.get(WATCH, body=own("watch.html"))
    if isinstance(answer, Exception):
        rsps.post(PLAYER, body=answer)
    else:
        rsps.post(PLAYER, status=answer)
    with pytest.raises(error) as err:
        fetch_youtube(VID, config(), tmp_path, session=requests.Session())
    assert reason_part in err.value.reason
    assert err.value.transient is issubclass(error, NetworkError | IpBlockedError)
    # Only "no connection at all" waits for the network without using up attempts.
    assert isinstance(err.value, OfflineError) is (error is OfflineError)


def test_http_429_is_rate_limited_with_retry_after(rsps, tmp_path):
    rsps.get(WATCH, status=429, headers={"Retry-After": "120"}, body="slow down")
    with pytest.raises(RateLimitedError) as err:
        fetch_youtube(VID, config(), tmp_path, session=requests.Session())
    assert err.value.retry_after == 120.0 and err.value.transient


def test_every_library_error_maps_to_a_plain_reason():
    def leaves(cls: type) -> list[type]:
        subs = cls.__subclasses__()
        return [cls] + [leaf for sub in subs for leaf in leaves(sub)]

    special = {
        yta.YouTubeRequestFailed: lambda c: c("x", requests.HTTPError("418 Client Error")),
        yta.VideoUnplayable: lambda c: c("x", "Members only", []),
        yta.NoTranscriptFound: lambda c: c("x", ["en"], "none"),
    }
    for cls in leaves(yta.CouldNotRetrieveTranscript):
        exc = special.get(cls, lambda c: c("x"))(cls)
        mapped = map_error(exc)
        assert isinstance(mapped, JobError), cls
        assert mapped.reason and "github" not in mapped.reason.lower(), cls
        assert pickle.loads(pickle.dumps(mapped)).reason == mapped.reason
    assert isinstance(map_error(yta.InvalidVideoId("x")), InvalidSourceError)
    assert "Members only" in map_error(yta.VideoUnplayable("x", "Members only", [])).reason


# --------------------------------------------------------------------------- chapters


def test_parse_chapters_formats():
    text = "\n".join([
        "Intro text 2021",
        "00:00 — Welcome",
        "• 0:45 | Setup",
        "[1:02:03] Deep dive",
        "Wrap-up - 1:10:00",
        "1:75 broken",
        "0:30 out of order",
        "Links: https://example.org 1:20:00",
    ])
    assert parse_chapters(text) == [
        Chapter(0.0, "Welcome"), Chapter(45.0, "Setup"),
        Chapter(3723.0, "Deep dive"), Chapter(4200.0, "Wrap-up"),
    ]
    assert parse_chapters(text, duration=4000) == parse_chapters(text)[:3]
    assert parse_chapters("Recorded at 10:30 pm") == []
    assert parse_chapters("") == []


# --------------------------------------------------------------------------- shared captures


def test_shared_capture_metadata_and_transcript(rsps, tmp_path, shared):
    serve_shared(rsps, shared)
    transcript, meta = fetch_youtube(SHARED_VID, config(), tmp_path,
                                     session=requests.Session())
    assert [s.text for s in transcript.segments] == [
        "Hey, this is just a test",
        "this is not the original transcript",
        "just something shorter, I made up for testing",
    ]
    assert (transcript.language, transcript.is_generated) == ("en", False)
    assert meta.title == "Surface Go Review - It’s Awesome"
    assert (meta.channel, meta.duration, meta.published) == ("Dave2D", 316.0, "2018-08-02")
    assert meta.description.startswith("Dave2D review of the Microsoft Surface Go.")
    assert meta.chapters == []  # this description has no timestamps
    entry = json.loads(cache.cache_path(tmp_path, SHARED_VID).read_text(encoding="utf-8"))
    assert "Surface Go" in entry["extra"]["keywords"]


def test_shared_capture_with_altered_user_agent(rsps, tmp_path, shared):
    serve_shared(rsps, shared, player="youtube_altered_user_agent.innertube.json.static")
    _, meta = fetch_youtube(SHARED_VID, config(), tmp_path, session=requests.Session())
    assert meta.channel == "Dave2D"


def test_shared_consent_page_is_passed(rsps, tmp_path, shared):
    rsps.get(WATCH, body=(shared / "youtube_consent_page.html.static").read_bytes())
    serve_shared(rsps, shared)
    transcript, _ = fetch_youtube(SHARED_VID, config(), tmp_path, session=requests.Session())
    assert len(transcript.segments) == 3
    assert "CONSENT=YES+" in rsps.calls[1].request.headers["Cookie"]


def test_shared_translation_track(rsps, tmp_path, shared):
    serve_shared(rsps, shared, player="youtube_ww1_nl_en.innertube.json.static")
    transcript, _ = fetch_youtube("F1xioXWb8CY", config(translate=True, note_language="nl"),
                                  tmp_path, session=requests.Session())
    assert transcript.language == "nl"
    assert parse_qs(urlsplit(rsps.calls[-1].request.url).query)["tlang"] == ["nl"]


SHARED_ERRORS = [
    ("watch", "youtube_too_many_requests.html.static", IpBlockedError, "blocking requests"),
    ("watch", "youtube_consent_page_invalid.html.static", TranscriptUnavailableError,
     "cookie-consent"),
    ("player", "youtube_request_blocked.innertube.json.static", IpBlockedError, "not a bot"),
    ("player", "youtube_age_restricted.innertube.json.static", TranscriptUnavailableError,
     "age-restricted"),
    ("player", "youtube_unplayable.innertube.json.static", TranscriptUnavailableError,
     "will not play this video here (Custom Reason)"),
    ("player", "youtube_video_unavailable.innertube.json.static", TranscriptUnavailableError,
     "This video is unavailable"),
    ("player", "youtube_transcripts_disabled.innertube.json.static",
     TranscriptUnavailableError, "subtitles turned off"),
    ("player", "youtube_transcripts_disabled2.innertube.json.static",
     TranscriptUnavailableError, "subtitles turned off"),
    ("player", "youtube_po_token_required.innertube.json.static",
     TranscriptUnavailableError, "browser token"),
]


@pytest.mark.parametrize(("where", "capture", "error", "reason_part"), SHARED_ERRORS,
                         ids=[c[1].split(".")[0] for c in SHARED_ERRORS])
def test_shared_error_captures(rsps, tmp_path, shared, where, capture, error, reason_part):
    if where == "watch":
        serve_shared(rsps, shared, watch=capture)
    else:
        serve_shared(rsps, shared, player=capture)
    with pytest.raises(error) as err:
        fetch_youtube(SHARED_VID, config(), tmp_path, session=requests.Session())
    assert reason_part in err.value.reason
    assert err.value.transient is (error is IpBlockedError)
    assert not cache.cache_path(tmp_path, SHARED_VID).exists()


def test_shared_empty_timedtext_body(rsps, tmp_path, shared):
    rsps.get(WATCH, body=(shared / "youtube.html.static").read_bytes())
    rsps.post(PLAYER, body=(shared / "youtube.innertube.json.static").read_bytes(),
              content_type="application/json")
    rsps.get(TIMEDTEXT, body="")
    with pytest.raises(EmptyTranscriptError):
        fetch_youtube(SHARED_VID, config(), tmp_path, session=requests.Session())


# --------------------------------------------------------------------------- yt-dlp


class FakeYoutubeDL:
    """Stands in for the third-party yt_dlp.YoutubeDL (not installed here)."""

    opts_seen: list[dict[str, Any]] = []
    info: dict[str, Any] = {}

    def __init__(self, opts: dict[str, Any]) -> None:
        FakeYoutubeDL.opts_seen.append(opts)

    def __enter__(self) -> FakeYoutubeDL:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def extract_info(self, url: str, download: bool = True) -> dict[str, Any]:
        return {**self.info, "url_asked": url}


@pytest.fixture
def fake_ytdlp(monkeypatch):
    module = types.ModuleType("yt_dlp")
    module.YoutubeDL = FakeYoutubeDL  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "yt_dlp", module)
    FakeYoutubeDL.opts_seen = []
    return FakeYoutubeDL


def test_ytdlp_caption_fallback_after_a_block(rsps, tmp_path, fake_ytdlp):
    caption_url = "https://www.youtube.com/api/timedtext?v=dQw4w9WgXcQ&lang=en&fmt=json3"
    fake_ytdlp.info = {
        "title": "Via yt-dlp", "channel": "Chan", "duration": 600, "upload_date": "20240131",
        "description": "d", "tags": ["t"], "subtitles": {},
        "chapters": [{"start_time": 0.0, "title": "Start"}, {"start_time": 30.0, "title": "B"}],
        "automatic_captions": {
            "en": [{"ext": "json3", "url": caption_url + "&tlang=en"}],
            "en-orig": [{"ext": "vtt", "url": "x"}, {"ext": "json3", "url": caption_url}],
        },
    }
    rsps.get(WATCH, status=429)
    rsps.get(TIMEDTEXT, body=own("captions.json3"))
    cfg = config(yt_dlp_fallback=True, proxy="http://127.0.0.1:3128", min_transcript_words=3)
    transcript, meta = fetch_youtube(VID, cfg, tmp_path, session=requests.Session())
    assert [s.text for s in transcript.segments] == [
        "Entropy measures surprise", "of a random source, in bits per symbol on average."]
    assert transcript.segments[1].start == 3.5 and transcript.is_generated
    assert rsps.calls[-1].request.url == caption_url  # the -orig track, not a translation
    assert (meta.title, meta.channel, meta.published) == ("Via yt-dlp", "Chan", "2024-01-31")
    assert meta.chapters == [Chapter(0.0, "Start"), Chapter(30.0, "B")]
    assert fake_ytdlp.opts_seen[0]["proxy"] == "http://127.0.0.1:3128"


def test_ytdlp_failure_reports_the_original_error(rsps, tmp_path, fake_ytdlp):
    fake_ytdlp.info = {"subtitles": {}, "automatic_captions": {}}
    rsps.get(WATCH, status=429, headers={"Retry-After": "30"})
    with pytest.raises(RateLimitedError) as err:
        fetch_youtube(VID, config(yt_dlp_fallback=True), tmp_path, session=requests.Session())
    assert err.value.retry_after == 30.0


# --------------------------------------------------------------------------- playlists


def test_playlist_page_with_continuation(rsps, tmp_path):
    rsps.get(PLAYLIST, body=own("playlist.html"))
    rsps.post(BROWSE, json=json.loads(own("browse.json")))
    videos = expand_playlist("PLtest0123456789", config(), tmp_path,
                             session=requests.Session())
    assert videos == [("aaaaaaaaaa1", "Lecture 1"), ("ccccccccc_3", "Lecture 2"),
                      ("ddddddddd-4", "Lecture 3")]
    sent = json.loads(rsps.calls[1].request.body)
    assert sent["continuation"] == "TOKEN-PAGE-2"
    assert sent["context"]["client"]["clientVersion"] == "2.20250601.00.00"
    assert parse_qs(urlsplit(rsps.calls[1].request.url).query)["key"] == [
        "AIzaTestKey_0123456789"]


def test_playlist_continuation_failure_keeps_first_page(rsps, tmp_path):
    rsps.get(PLAYLIST, body=own("playlist.html"))
    rsps.post(BROWSE, status=500)
    videos = expand_playlist("PLtest0123456789", config(), tmp_path,
                             session=requests.Session())
    assert [v for v, _ in videos] == ["aaaaaaaaaa1", "ccccccccc_3"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ('<html><div class="g-recaptcha"></div></html>', IpBlockedError),
        ("<html>no data here</html>", InvalidSourceError),
        ('<script>var ytInitialData = {"alerts": []};</script>', InvalidSourceError),
    ],
)
def test_playlist_page_failures(rsps, tmp_path, body, error):
    rsps.get(PLAYLIST, body=body)
    with pytest.raises(error):
        expand_playlist("PLtest0123456789", config(), tmp_path, session=requests.Session())


def test_playlist_prefers_ytdlp_flat_extraction(rsps, tmp_path, fake_ytdlp):
    fake_ytdlp.info = {"entries": [{"id": "aaaaaaaaaa1", "title": "One"}, None,
                                   {"id": "aaaaaaaaaa1", "title": "One again"},
                                   {"id": "bbbbbbbbbb2", "title": "Two"}]}
    videos = expand_playlist("PLtest0123456789", config(), tmp_path,
                             session=requests.Session())
    assert videos == [("aaaaaaaaaa1", "One"), ("bbbbbbbbbb2", "Two")]
    assert fake_ytdlp.opts_seen[0]["extract_flat"] == "in_playlist"
    assert len(rsps.calls) == 0


def test_playlist_id_is_validated(tmp_path):
    with pytest.raises(InvalidSourceError):
        expand_playlist("../etc", config(), tmp_path, session=requests.Session())
