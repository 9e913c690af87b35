"""Subtitle parsing: what a user's .srt/.vtt/.txt file turns into, and what it never does."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault_tools.models import Transcript
from vault_tools.subtitles import SubtitleParseError, parse_subtitles

SAMPLES = Path(__file__).resolve().parent.parent / "daemon" / "samples"

SRT_BASIC = """1
00:00:01,000 --> 00:00:03,500
Hello and welcome.

2
00:00:04,000 --> 00:00:06,000
Today we talk about energy.
"""

SRT_MESSY = (
    "\ufeff1\r\n00:00:01,000 --> 00:00:02,000\r\n<i>Tom &amp; Jerry</i> {\\an8}run\r\n\r\n"
    "2\r\n00:00:0X,000 --> broken\r\nthis cue has a bad timing line\r\n\r\n"
    "3\r\n00:00:05,000 --> 00:00:06,000\r\n<font color=\"#ff0000\">red</font> &lt;b&gt;text\r\n"
    "4\r\n00:00:07,000 --> 00:00:08,000\r\nno blank line before this cue\r\n"
)

VTT_FULL = """WEBVTT - Lecture 3
Kind: captions
Language: de

NOTE
This note mentions 00:00:01.000 --> 00:00:02.000 nowhere useful
and spans lines.

STYLE
::cue { color: yellow; }

intro
00:01.000 --> 00:03.000 align:start position:10% line:85%
<v Lecturer>Guten Morgen</v>

00:00:04.250 --> 00:00:06.000
<c.yellow>Zweite</c> <b>Zeile</b>
"""

VTT_ROLLING = """WEBVTT
Kind: captions
Language: en

00:00:00.160 --> 00:00:02.070 align:start position:0%
␠
so<00:00:00.480><c> today</c><00:00:01.000><c> we</c><00:00:01.500><c> look</c>

00:00:02.070 --> 00:00:02.080 align:start position:0%
so today we look
␠

00:00:02.080 --> 00:00:05.000 align:start position:0%
so today we look
at<00:00:02.500><c> the</c><00:00:03.000><c> feedback</c><00:00:03.500><c> loop</c>

00:00:05.000 --> 00:00:05.010 align:start position:0%
at the feedback loop
␠

00:00:05.010 --> 00:00:08.000 align:start position:0%
at the feedback loop
and<00:00:05.500><c> why</c><00:00:06.000><c> it</c><00:00:06.500><c> matters</c>
""".replace("␠", " ")  # YouTube opens cues with a line of one space

SRT_ROLLING_WORDS = """1
00:00:01,000 --> 00:00:03,000
the sender keeps a congestion window

2
00:00:03,000 --> 00:00:05,000
keeps a congestion window that grows
"""


def texts(transcript: Transcript) -> list[str]:
    return [s.text for s in transcript.segments]


def starts(transcript: Transcript) -> list[float]:
    return [s.start for s in transcript.segments]


@pytest.mark.parametrize(
    ("text", "filename", "want_texts", "want_starts"),
    [
        (SRT_BASIC, "a.srt", ["Hello and welcome.", "Today we talk about energy."], [1.0, 4.0]),
        (SRT_MESSY, "messy.SRT",
         ["Tom & Jerry run", "red text", "no blank line before this cue"], [1.0, 5.0, 7.0]),
        (VTT_FULL, "lecture.vtt", ["Guten Morgen", "Zweite Zeile"], [1.0, 4.25]),
        (VTT_ROLLING, "auto.vtt",
         ["so today we look", "at the feedback loop", "and why it matters"], [0.16, 2.08, 5.01]),
        (SRT_ROLLING_WORDS, "roll.srt",
         ["the sender keeps a congestion window", "that grows"], [1.0, 3.0]),
        ("[00:00:05] first line\n[00:01:02] second\ncontinued here\n[1:02:03] third",
         "talk.txt", ["first line", "second continued here", "third"], [5.0, 62.0, 3723.0]),
        ("0:42 alpha beta\n1:10 - gamma\n(1:30) delta", "t.txt",
         ["alpha beta", "gamma", "delta"], [42.0, 70.0, 90.0]),
        ("1:02:03 - late\n0:10 - earlier in the file but out of order", "t.txt",
         ["late", "earlier in the file but out of order"], [3723.0, 3723.0]),
        ("WEBVTT\n\n00:00.500 --> 00:02.000\nsniffed vtt", "captions", ["sniffed vtt"], [0.5]),
    ],
)
def test_parses_formats(text: str, filename: str, want_texts: list[str],
                        want_starts: list[float]) -> None:
    transcript = parse_subtitles(text, filename)
    assert texts(transcript) == want_texts
    assert starts(transcript) == pytest.approx(want_starts)


def test_vtt_header_language_and_generated_flag() -> None:
    assert parse_subtitles(VTT_FULL, "x.vtt").language == "de"
    assert parse_subtitles(VTT_ROLLING, "x.vtt").is_generated is True
    assert parse_subtitles(SRT_BASIC, "x.srt").is_generated is False


def test_durations_come_from_cue_end_or_next_cue() -> None:
    transcript = parse_subtitles("00:00:01,000 -->\nno end\n\n00:00:04,000 --> 00:00:05,000\n"
                                 "second\n", "x.srt")
    assert [s.duration for s in transcript.segments] == pytest.approx([3.0, 1.0])


def test_plain_text_without_timestamps_is_timed_at_150_words_per_minute() -> None:
    sentence = "Memory fades unless we review it at the right moment."  # 10 words
    transcript = parse_subtitles("\n".join([sentence] * 30), "notes.txt")  # 300 words
    assert transcript.text.split() == (" ".join([sentence] * 30)).split()
    assert transcript.segments[0].start == 0.0
    assert transcript.end == pytest.approx(120.0)  # 300 words at 150 wpm
    assert all(len(s.text.split()) <= 40 for s in transcript.segments)


def test_out_of_order_cues_are_sorted() -> None:
    text = ("2\n00:00:09,000 --> 00:00:10,000\nlater\n\n"
            "1\n00:00:01,000 --> 00:00:02,000\nearlier\n")
    assert texts(parse_subtitles(text, "x.srt")) == ["earlier", "later"]


@pytest.mark.parametrize(
    ("text", "filename", "says"),
    [
        ("", "empty.srt", "empty"),
        ("   \n\r\n\ufeff", "blank.txt", "empty"),
        ("\x00\x01\x02 ... !!! ???", "garbage.vtt", "no readable words"),
        ("WEBVTT\n\nNOTE only a note here\n", "note.vtt", "no subtitle cues"),
        ("just some words but no timings at all", "words.srt", "no subtitle cues"),
        ("1\n00:00:01,000 --> 00:00:02,000\n<i></i>\n", "tags.srt", "no subtitle cues"),
    ],
)
def test_nothing_usable_raises_a_plain_error(text: str, filename: str, says: str) -> None:
    with pytest.raises(SubtitleParseError, match=says) as caught:
        parse_subtitles(text, filename)
    assert isinstance(caught.value, ValueError)
    assert filename in str(caught.value)


@pytest.mark.parametrize("name", ["photosynthesis.srt", "TCP-congestion-control.vtt",
                                  "spaced-repetition.txt"])
def test_samples_parse_into_realistic_lectures(name: str) -> None:
    transcript = parse_subtitles((SAMPLES / name).read_text(encoding="utf-8"), name)
    words = len(transcript.text.split())
    assert 900 <= words <= 1500
    assert 6 * 60 <= transcript.end <= 10 * 60
    assert starts(transcript) == sorted(starts(transcript))
    assert "<" not in transcript.text and "NOTE" not in transcript.text


_LINES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "WEBVTT", "NOTE", "STYLE", "1", "-->", "<c>", "&amp;", "\ufeff"]),
    st.builds(lambda a, b, c, d: f"{a:02d}:{b:02d}:{c:02d},{d:03d} --> "
              f"{b:02d}:{a:02d}:{d % 60:02d}.{c:03d} align:start",
              st.integers(0, 99), st.integers(0, 99), st.integers(0, 99), st.integers(0, 999)),
    st.builds(lambda m, s, t: f"[{m}:{s:02d}] {t}", st.integers(0, 200), st.integers(0, 99),
              st.text(max_size=20)),
)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_LINES, max_size=30),
       filename=st.sampled_from(["a.srt", "a.vtt", "a.txt", "a.sub", "noext"]))
def test_never_raises_anything_else_and_starts_never_decrease(lines: list[str],
                                                              filename: str) -> None:
    text = "\n".join(lines)
    try:
        transcript = parse_subtitles(text, filename)
    except SubtitleParseError:
        return
    assert transcript.segments
    assert starts(transcript) == sorted(starts(transcript))
    assert all(s.start >= 0 and s.duration >= 0 and s.text.strip()
               for s in transcript.segments)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=400), filename=st.sampled_from(["x.srt", "x.vtt", "x.txt"]))
def test_arbitrary_text_only_raises_subtitle_parse_error(text: str, filename: str) -> None:
    try:
        transcript = parse_subtitles(text, filename)
    except SubtitleParseError:
        return
    assert starts(transcript) == sorted(starts(transcript))


@pytest.mark.parametrize("text", ["", "\x00\x01 !!!", "just words, no timings"])
def test_the_reason_names_the_file_by_its_vault_path(text: str) -> None:
    """As 'subtitle file not found in the vault: Lectures/...' does (it said 'empty.srt')."""
    with pytest.raises(SubtitleParseError) as caught:
        parse_subtitles(text, "Lectures/week 3/empty.srt")
    assert "Lectures/week 3/empty.srt" in str(caught.value), caught.value
