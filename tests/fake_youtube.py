"""A loopback stand-in for the parts of YouTube that youtube-transcript-api talks to.

Owns: an ``http.server`` on 127.0.0.1 (ephemeral port, own thread) that answers the
watch page (``/watch?v=ID``, carrying ``INNERTUBE_API_KEY`` and the publish date), the
innertube player endpoint (``POST /youtubei/v1/player?key=...``: playabilityStatus,
caption tracks, videoDetails, microformat), the timedtext URL the player response
names (``/api/timedtext?v=ID&lang=..``: XML with entity-escaped text, as YouTube sends
it) and oEmbed. Response shapes follow the captures in ``../shared/fixtures/youtube/``;
the videos and their transcripts are our own.

Point a daemon at it with ``VAULTD_YOUTUBE_ORIGIN=fake.origin`` (the testing hook of
:mod:`daemon.sources.http`): caption ``baseUrl``s are real ``www.youtube.com`` URLs that
the hook rewrites, so the whole chain is exercised. Each :class:`Video` is scriptable:
``mode`` ok / disabled (no captions) / unavailable, and ``blocks``: the first watch-page
requests answered as IP-blocked, one kind each (``recaptcha``: the captcha page with 200;
``429``: the same page with 429 and Retry-After), before it behaves. Every request is
recorded (:class:`Hit`).

This is a test double for a third-party service, not for project code.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loopback import LoopbackServer  # tests/ is on sys.path wherever stand-ins load

API_KEY = "AIzaSyFakeVaultdStandIn0123456789abcdEF"


# --------------------------------------------------------------------------- videos


@dataclass
class Cue:
    start: float
    dur: float
    text: str  # as spoken; may hold <i>..</i> markup, escaped when served


@dataclass
class Video:
    video_id: str
    title: str
    author: str
    length_seconds: int
    description: str = ""
    cues: list[Cue] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    published: str = "2024-03-05"
    mode: str = "ok"  # ok | disabled | unavailable
    blocks: list[str] = field(default_factory=list)  # "recaptcha" | "429" per request
    retry_after: int = 1  # Retry-After of a 429


def spread(chapters: list[tuple[int, list[str]]], length: int) -> list[Cue]:
    """Cues for sentences spoken chapter by chapter, evenly inside each chapter."""
    cues: list[Cue] = []
    for i, (start, sentences) in enumerate(chapters):
        end = chapters[i + 1][0] if i + 1 < len(chapters) else length - 4
        step = (end - start) / len(sentences)
        for j, sentence in enumerate(sentences):
            at = round(start + 0.6 + j * step, 2)
            cues.append(Cue(at, round(step - 0.5, 2), sentence))
    return cues


OHM_CHAPTERS: list[tuple[int, str, list[str]]] = [
    (0, "Intro", [
        "Hi everyone, welcome back to the bench.",
        "Today we're going to take the mystery out of <i>simple</i> circuits.",
        "By the end you'll be able to predict what a circuit does before you build it.",
        "All you need is one law, a few definitions, and a bit of patience.",
        "I've got a battery, some resistors and a multimeter here, so let's get going.",
    ]),
    (70, "Voltage, current and resistance", [
        "First, voltage. Voltage is the push that drives charge around a circuit.",
        "We measure it in volts, and it's always a difference between two points.",
        "A nine volt battery means one terminal is nine volts above the other.",
        "Current is how much charge flows past a point every second.",
        "It's measured in amperes, or amps, and one amp is one coulomb per second.",
        "Resistance is how strongly a component opposes that flow.",
        "It's measured in ohms, written with the Greek letter omega.",
        "A good analogy is water in a pipe: pressure, flow rate, and a narrow section.",
        "Pressure is like voltage, flow rate is like current, the narrow bit is resistance.",
        "Like every analogy it breaks down eventually, but it's great for intuition.",
        "One thing that trips people up: current doesn't get \"used up\" in a resistor.",
        "The same current that goes in comes out; it's energy that gets converted.",
    ]),
    (185, "Ohm's law", [
        "Now the star of the show: Ohm's law.",
        "It says the voltage across a resistor equals the current through it times its "
        "resistance.",
        "V equals I times R. That's it. Three quantities, one relationship.",
        "If you know any two, you can always work out the third.",
        "Let's try it. Nine volts across a one kilo-ohm resistor.",
        "Current equals V over R, so nine divided by one thousand.",
        "That's nine milliamps. Let's check with the meter.",
        "And the meter says 8.9 milliamps, close enough given the resistor's tolerance.",
        "Now double the resistance to two kilo-ohms and the current halves.",
        "4.5 milliamps predicted, and we measure 4.4. Ohm's law holds.",
        "Materials where this straight-line relationship holds are called ohmic.",
        "A filament bulb is not ohmic: its resistance rises as it heats up.",
    ]),
    (320, "Series and parallel", [
        "Real circuits have more than one resistor, so how do they combine?",
        "In series, one after another, the resistances simply add.",
        "A one k and a two k in series behave like a single three k resistor.",
        "The same current flows through both, and the voltage splits in proportion.",
        "That's a voltage divider, and it's everywhere in electronics.",
        "In parallel, side by side, the current has two paths to choose from.",
        "Here the reciprocals add: one over R total equals one over R1 plus one over R2.",
        "Two equal resistors in parallel give you half the resistance of one.",
        "So adding a resistor in parallel always lowers the total resistance.",
        "That surprises people, but more paths means more flow for the same push.",
        "Each branch gets the full voltage, and the currents add up at the junction.",
        "That rule, currents in equal currents out, is Kirchhoff's current law.",
    ]),
    (460, "Power & safety", [
        "Last piece: power, the rate at which energy is converted.",
        "Power equals voltage times current, P equals V times I, measured in watts.",
        "Combine it with Ohm's law and you get I squared R, which is why wires heat up.",
        "Our nine milliamp circuit dissipates about eighty milliwatts, barely warm.",
        "But mains voltage across a low resistance can deliver deadly currents.",
        "So please: low voltages only for these experiments, and never work on live mains.",
        "That's Ohm's law & friends. Next time we'll add capacitors. See you then!",
    ]),
]

GLACIER_CHAPTERS: list[tuple[int, str, list[str]]] = [
    (0, "Why glaciers matter", [
        "[Music]",
        "Look at this valley. Its U shape was carved by ice, not by a river.",
        "Glaciers cover about ten percent of the land today, but far more in the past.",
        "To read landscapes like this one, you need to know how ice moves and erodes.",
        "So let's follow a glacier from snowflake to sculptor.",
    ]),
    (60, "From snow to ice", [
        "It starts with snow that survives the summer melt.",
        "Year after year new layers bury the old ones and squeeze out the air.",
        "Compacted snow that has lasted a year is called firn.",
        "Over decades firn turns into dense glacial ice, which looks blue.",
        "The blue comes from ice absorbing red light, not from the sky.",
        "A glacier forms where more snow accumulates than melts, year after year.",
        "The upper zone where it gains mass is the accumulation zone.",
        "The lower zone where it loses mass is the ablation zone.",
        "The line between them is the equilibrium line.",
    ]),
    (170, "How ice flows", [
        "Ice looks solid, but under its own weight it deforms slowly, like very stiff "
        "putty.",
        "This internal deformation is called creep.",
        "Glaciers also slide over their beds, lubricated by meltwater.",
        "Basal sliding can make a glacier move many metres in a single day.",
        "The surface moves fastest in the middle and slowest at the edges.",
        "Where the ice speeds up or bends, it cracks open into crevasses.",
        "Even a retreating glacier still flows forward; its front simply melts faster.",
        "That's a common misconception, so hold on to that one for the exam.",
    ]),
    (290, "Carving the valley", [
        "Now the sculpting. Ice erodes in two main ways.",
        "Plucking: meltwater freezes onto the bedrock and pulls blocks away.",
        "Abrasion: rocks frozen into the base scrape the bed like sandpaper.",
        "Abrasion leaves scratches called striations, which record the flow direction.",
        "Together they widen and deepen the valley into a U shape.",
        "Tributary glaciers erode less, so their valleys end up hanging above the main "
        "one.",
        "That's why we see waterfalls dropping out of hanging valleys today.",
        "At the head of a glacier, plucking carves a bowl called a cirque.",
    ]),
    (400, "What ice leaves behind", [
        "Everything the ice carries is eventually dropped.",
        "Unsorted glacial sediment is called till, a jumble of clay and boulders.",
        "Ridges of till at the glacier's snout are terminal moraines.",
        "They mark the furthest advance of the ice, like a high-water line.",
        "Meltwater sorts finer sediment into outwash plains beyond the moraine.",
        "So next time you hike a U-shaped valley, you'll know the ice's whole story.",
    ]),
]


def _description(chapters: list[tuple[int, str, list[str]]], intro: str) -> str:
    marks = "\n".join(f"{s // 60}:{s % 60:02d} {title}" for s, title, _ in chapters)
    return f"{intro}\n\nChapters:\n{marks}\n\nSubscribe for more! https://example.org/more"


def _cues(chapters: list[tuple[int, str, list[str]]], length: int) -> list[Cue]:
    return spread([(s, sentences) for s, _, sentences in chapters], length)


def catalogue() -> dict[str, Video]:
    """Fresh copies of the stand-in's videos (each test scripts its own)."""
    videos = [
        Video("ohmsLawDemo", "Ohm's Law & Simple Circuits, Explained", "Bench Physics", 552,
              _description(OHM_CHAPTERS, "Voltage, current & resistance with a real "
                           "multimeter. Notes at https://example.org/ohm"),
              _cues(OHM_CHAPTERS, 552), ["physics", "electronics", "ohm's law"]),
        Video("glacierVal1", "How Glaciers Carve U-Shaped Valleys", "Earth Lab", 498,
              _description(GLACIER_CHAPTERS, "From snow to firn to ice, and how ice "
                           "sculpts mountains."),
              _cues(GLACIER_CHAPTERS, 498), ["geology", "glaciers"], published="2023-11-20"),
        Video("noCaptions1", "Live Q&A: Your Physics Questions", "Bench Physics", 3605,
              "Answering your questions live.", mode="disabled"),
        Video("goneForGood", "", "", 0, mode="unavailable"),
    ]
    return {v.video_id: v for v in videos}


# --------------------------------------------------------------------------- rendering


def _entities(text: str) -> str:
    """HTML-escape as YouTube does inside caption text (apostrophe as ``&#39;``)."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def caption_text(text: str) -> str:
    """Caption text as it appears in timedtext XML: markup escaped once (``&lt;i&gt;``),
    the words entity-escaped and then XML-escaped (``&amp;#39;``), as YouTube sends it."""
    parts = re.split(r"(</?[a-z]+>)", text)
    return "".join(_xml(p) if re.fullmatch(r"</?[a-z]+>", p) else _xml(_entities(p))
                   for p in parts)


def timedtext_xml(video: Video, generated: bool) -> str:
    rows = []
    for cue in video.cues:
        words = cue.text
        if generated:  # auto-generated captions: lower case, no punctuation, no markup
            words = re.sub(r"<[^>]+>|[^\w\s']", "", words).lower()
        rows.append(f'    <text start="{cue.start}" dur="{cue.dur}">{caption_text(words)}</text>')
    if len(video.cues) > 3:  # YouTube sends empty cues now and then
        rows.insert(3, f'    <text start="{video.cues[2].start + 0.1:.2f}" dur="0.5"></text>')
    return ('<?xml version="1.0" encoding="utf-8" ?>\n<transcript>\n' + "\n".join(rows)
            + "\n</transcript>\n")


def _track(video: Video, generated: bool) -> dict[str, Any]:
    kind = "&kind=asr" if generated else ""
    base = (f"https://www.youtube.com/api/timedtext?v={video.video_id}&ei=FaKeEi0&caps=asr"
            f"&opi=112496729&xoaf=5&hl=en&ip=0.0.0.0&ipbits=0&expire=1999999999"
            f"&sparams=ip,ipbits,expire,v,ei,caps,opi,xoaf&signature=0A1B2C.3D4E5F&key=yt8"
            f"{kind}&lang=en&fmt=srv3")
    track: dict[str, Any] = {
        "baseUrl": base,
        "name": {"runs": [{"text": "English (auto-generated)" if generated else "English"}]},
        "vssId": "a.en" if generated else ".en",
        "languageCode": "en",
        "isTranslatable": True,
        "trackName": "",
    }
    if generated:
        track["kind"] = "asr"
    return track


def player_json(video: Video) -> dict[str, Any]:
    context = {"responseContext": {"visitorData": "CgtGYWtlVmlzaXRvcg%3D%3D",
                                   "serviceTrackingParams": []}}
    if video.mode == "unavailable":
        return {**context, "playabilityStatus": {
            "status": "ERROR", "reason": "This video is unavailable",
            "errorScreen": {"playerErrorMessageRenderer": {
                "reason": {"runs": [{"text": "This video is unavailable"}]}}}},
            "trackingParams": "CAAQu2kiEwj"}
    data: dict[str, Any] = {
        **context,
        "playabilityStatus": {"status": "OK", "playableInEmbed": True},
        "videoDetails": {
            "videoId": video.video_id, "title": video.title,
            "lengthSeconds": str(video.length_seconds), "keywords": video.keywords,
            "channelId": "UCfakeStandInChannel0000", "isOwnerViewing": False,
            "shortDescription": video.description, "isCrawlable": True,
            "thumbnail": {"thumbnails": [{
                "url": f"https://i.ytimg.com/vi/{video.video_id}/default.jpg",
                "width": 120, "height": 90}]},
            "allowRatings": True, "viewCount": "48213", "author": video.author,
            "isPrivate": False, "isUnpluggedCorpus": False, "isLiveContent": False,
        },
        "microformat": {"playerMicroformatRenderer": {
            "publishDate": f"{video.published}T08:00:00-07:00",
            "uploadDate": f"{video.published}T08:00:00-07:00"}},
        "trackingParams": "CAAQu2kiEwj",
    }
    if video.mode == "ok":
        data["captions"] = {"playerCaptionsTracklistRenderer": {
            "captionTracks": [_track(video, False), _track(video, True)],
            "audioTracks": [{"captionTrackIndices": [0, 1], "defaultCaptionTrackIndex": 0,
                             "visibility": "UNKNOWN", "hasDefaultTrack": True}],
            "translationLanguages": [
                {"languageCode": code, "languageName": {"runs": [{"text": name}]}}
                for code, name in (("de", "German"), ("fr", "French"), ("es", "Spanish"))],
            "defaultAudioTrackIndex": 0}}
    return data


def watch_html(video: Video | None, video_id: str) -> str:
    title = _entities(video.title if video and video.title else "YouTube")
    published = video.published if video else "2020-01-01"
    return f"""<!DOCTYPE html><html lang="en"><head><title>{title} - YouTube</title>
<meta itemprop="datePublished" content="{published}T08:00:00-07:00">
<link rel="canonical" href="https://www.youtube.com/watch?v={video_id}"></head>
<body><script nonce="x">ytcfg.set({{"INNERTUBE_API_KEY":"{API_KEY}",
"INNERTUBE_CONTEXT_CLIENT_NAME":1,"INNERTUBE_CLIENT_VERSION":"2.20240305.01.00"}});
var ytInitialPlayerResponse = {{"videoDetails":{{"videoId":"{video_id}"}}}};</script>
<div id="player"></div></body></html>"""


CAPTCHA_HTML = """<!DOCTYPE html><html><head><title>YouTube</title>
<script src="https://www.google.com/recaptcha/api.js" async defer></script></head>
<body><div id="captcha-page"><p>Our systems have detected unusual traffic from your
computer network. This page checks to see if it's really you sending the requests, and
not a robot.</p><form id="captcha-form" action="/das_captcha" method="post">
<div class="g-recaptcha" data-sitekey="6LfwuyUTAAAAAOAmoS0fdqijC2PbbdH4kjq62Y1b"></div>
</form></div></body></html>"""


# --------------------------------------------------------------------------- server


@dataclass
class Hit:
    method: str
    path: str
    query: dict[str, list[str]]
    video_id: str | None
    status: int
    at: float  # time.monotonic()


class FakeYouTube(LoopbackServer):
    """Start with ``with FakeYouTube() as yt:``; set ``VAULTD_YOUTUBE_ORIGIN=yt.origin``."""

    def __init__(self, videos: dict[str, Video] | None = None, port: int = 0) -> None:
        self.videos = catalogue() if videos is None else videos
        self.hits: list[Hit] = []
        self._watch_counts: dict[str, int] = {}
        self._lock = threading.Lock()
        LoopbackServer.__init__(self, _make_handler(self), port)

    @property
    def origin(self) -> str:
        return self.url

    def hits_for(self, video_id: str, path: str | None = None) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.video_id == video_id
                    and (path is None or h.path == path)]

    def _record(self, hit: Hit) -> None:
        with self._lock:
            self.hits.append(hit)

    def _block_now(self, video: Video | None, video_id: str) -> str | None:
        """How this watch-page request is blocked (None: it is not)."""
        with self._lock:
            n = self._watch_counts.get(video_id, 0) + 1
            self._watch_counts[video_id] = n
        return video.blocks[n - 1] if video is not None and n <= len(video.blocks) else None


Answer = tuple[int, str, bytes, dict[str, str]]  # status, content type, body, headers


def _answer(fake: FakeYouTube, method: str, path: str, query: dict[str, list[str]],
            body: dict[str, Any] | None) -> tuple[str | None, Answer]:
    html = "text/html; charset=utf-8"
    if method == "GET" and path == "/watch":
        vid = (query.get("v") or [""])[0]
        video = fake.videos.get(vid)
        block = fake._block_now(video, vid)
        if block == "429" and video is not None:
            return vid, (429, html, CAPTCHA_HTML.encode(),
                         {"Retry-After": str(video.retry_after)})
        if block == "recaptcha":
            return vid, (200, html, CAPTCHA_HTML.encode(), {})
        return vid, (200, html, watch_html(video, vid).encode(), {})
    if method == "POST" and path == "/youtubei/v1/player":
        vid = str((body or {}).get("videoId", ""))
        if (query.get("key") or [""])[0] != API_KEY:
            return vid, (400, "application/json", json.dumps({"error": {
                "code": 400, "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT"}}).encode(), {})
        video = fake.videos.get(vid) or Video(vid, "", "", 0, mode="unavailable")
        return vid, (200, "application/json; charset=UTF-8",
                     json.dumps(player_json(video)).encode(), {})
    if method == "GET" and path == "/api/timedtext":
        vid = (query.get("v") or [""])[0]
        video = fake.videos.get(vid)
        if video is None or video.mode != "ok" or (query.get("lang") or [""])[0] != "en":
            return vid, (404, "text/html", b"", {})
        generated = (query.get("kind") or [""])[0] == "asr"
        return vid, (200, "text/xml; charset=UTF-8",
                     timedtext_xml(video, generated).encode(), {})
    if method == "GET" and path == "/oembed":
        url = (query.get("url") or [""])[0]
        vid = (parse_qs(urlsplit(url).query).get("v") or [""])[0]
        video = fake.videos.get(vid)
        if video is None or video.mode == "unavailable":
            return vid, (404, "text/html", b"Not Found", {})
        return vid, (200, "application/json", json.dumps({
            "title": video.title, "author_name": video.author, "type": "video",
            "provider_name": "YouTube"}).encode(), {})
    return None, (404, html, b"<html><body>404 Not Found</body></html>", {})


def _make_handler(fake: FakeYouTube) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

        def _handle(self, body: dict[str, Any] | None) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query, keep_blank_values=True)
            vid, (status, ctype, payload, headers) = _answer(
                fake, self.command, parts.path, query, body)
            fake._record(Hit(self.command, parts.path, query, vid, status, time.monotonic()))
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802
            self._handle(None)

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            self._handle(body if isinstance(body, dict) else {})

    return Handler
