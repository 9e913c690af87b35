"""Subtitle files (.srt, .vtt, .txt) -> :class:`~vault_tools.models.Transcript`.

This module owns reading the subtitle formats users drop into their vault, so the
rest of the system only ever sees clean, timed :class:`Segment` objects. It is pure
(no threads, no network, no ``daemon`` imports) and forgiving: a BOM, CRLF line ends,
markup, HTML entities, cue settings, NOTE/STYLE blocks, malformed cues and YouTube's
rolling auto-captions are all handled. When nothing usable is left it raises
:class:`SubtitleParseError` with a sentence a user can act on.

Segment starts are always non-decreasing.
"""

from __future__ import annotations

import html
import re
from pathlib import PurePath

from vault_tools.models import Segment, Transcript

__all__ = ["SubtitleParseError", "parse_subtitles", "SUBTITLE_EXTENSIONS"]

SUBTITLE_EXTENSIONS = (".srt", ".vtt", ".txt")
WORDS_PER_SECOND = 150 / 60  # speaking rate used when a text file has no timings


class SubtitleParseError(ValueError):
    """Nothing usable could be read from a subtitle file; the message says why."""


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufeff\u200b]")
_TIME = r"(?:([0-9]{1,6}):)?([0-9]{1,2}):([0-9]{1,2})(?:[.,]([0-9]{1,3}))?"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-+>\s*(?:{_TIME})?", re.ASCII)
_INLINE_TIME = re.compile(r"<\d+(?::\d+){1,2}(?:[.,]\d+)?>", re.ASCII)
_TAG = re.compile(r"</?[A-Za-z][^<>]{0,200}>|\{\\[^{}]*\}")
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+", re.UNICODE)
_BLOCK_HEADERS = ("NOTE", "STYLE", "REGION")
_TXT_STAMP = re.compile(
    r"^\s*[\[(]?\s*(?:([0-9]{1,2}):)?([0-9]{1,3}):([0-9]{2})(?:[.,]([0-9]{1,3}))?(?![0-9])"
    r"\s*[\])]?\s*(?:[-–—|:>]+\s*)?(.*)$",
    re.ASCII,
)


def parse_subtitles(text: str, filename: str) -> Transcript:
    """Parse subtitle ``text``; the extension of ``filename`` picks the format.

    Unknown extensions are sniffed (a WEBVTT header or ``-->`` timings, else plain text).
    Raises :class:`SubtitleParseError` when the file holds no usable words.
    """
    name = filename or "the file"  # the vault path, as every other reason names a file
    clean = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    if not _WORD.search(clean):
        raise SubtitleParseError(f"{name} is empty or holds no readable words.")
    suffix = PurePath(filename).suffix.lower()
    if suffix not in SUBTITLE_EXTENSIONS:
        stripped = clean.lstrip()
        if stripped.startswith("WEBVTT"):
            suffix = ".vtt"
        elif any(_TIMING.match(line) for line in clean.split("\n")):
            suffix = ".srt"
        else:
            suffix = ".txt"
    if suffix == ".txt":
        segments = _parse_txt(clean)
        if not segments:
            raise SubtitleParseError(f"{name} holds no readable words.")
        return Transcript(segments=segments, language="en")
    segments, generated = _parse_cues(clean)
    if not segments:
        example = "00:00:01.000 --> 00:00:04.000" if suffix == ".vtt" else (
            "00:00:01,000 --> 00:00:04,000")
        raise SubtitleParseError(
            f"{name} has no subtitle cues with text (expected timing lines like "
            f"'{example}' followed by the words)."
        )
    return Transcript(segments=segments, language=_vtt_language(clean), is_generated=generated)


# --- SRT / WebVTT ------------------------------------------------------------------


def _seconds(hours: str | None, minutes: str, secs: str, millis: str | None) -> float:
    value = int(hours or 0) * 3600 + int(minutes) * 60 + int(secs)
    if millis:
        value += int(millis.ljust(3, "0")) / 1000
    return float(value)


def clean_cue_text(raw: str) -> str:
    """Markup-free, entity-decoded, whitespace-collapsed text of one caption line."""
    text = _INLINE_TIME.sub(" ", raw)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    # Decoded entities may spell tags (&lt;b&gt;); they are markup, not speech.
    text = _TAG.sub("", text)
    return _SPACE.sub(" ", text).strip()


def _parse_cues(text: str) -> tuple[list[Segment], bool]:
    """Cues from SRT or WebVTT text; rolling duplicate lines removed."""
    cues: list[tuple[float, float, list[str]]] = []
    current: list[str] | None = None
    skipping_block = False
    generated = bool(_INLINE_TIME.search(text))
    lines = text.split("\n")
    for index, line in enumerate(lines):
        timing = _TIMING.match(line)
        if timing:
            skipping_block = False
            groups = timing.groups()
            start = _seconds(*groups[:4])
            end = _seconds(*groups[4:]) if groups[5] is not None else start
            current = []
            cues.append((start, max(end - start, 0.0), current))
            continue
        stripped = line.strip()
        if not stripped:
            # YouTube cues open with a line holding one space; only a truly empty line,
            # or a blank one after text, ends a cue.
            if not line or current:
                current = None
                skipping_block = False
            continue
        if current is None:
            if stripped.split(" ", 1)[0] in _BLOCK_HEADERS:
                skipping_block = True
            continue  # header, cue identifier, NOTE/STYLE body or stray text
        if skipping_block:
            continue
        next_line = lines[index + 1] if index + 1 < len(lines) else ""
        if stripped.isdigit() and _TIMING.match(next_line):
            continue  # SRT index of the next cue, missing blank line before it
        current.append(stripped)
    cues.sort(key=lambda cue: cue[0])
    return _dedupe_rolling(cues), generated


def _norm_words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _dedupe_rolling(cues: list[tuple[float, float, list[str]]]) -> list[Segment]:
    """Drop text repeated from the previous cue (auto-captions roll lines upward)."""
    segments: list[Segment] = []
    previous_lines: set[str] = set()
    previous_words: list[str] = []
    for index, (start, duration, raw_lines) in enumerate(cues):
        lines = [clean_cue_text(line) for line in raw_lines]
        lines = [line for line in lines if line]
        keys = [" ".join(_norm_words(line)) for line in lines]
        fresh = [line for line, key in zip(lines, keys, strict=True)
                 if key and key not in previous_lines]
        if keys:
            previous_lines = {k for k in keys if k}
        text = " ".join(fresh)
        words = _norm_words(text)
        overlap = _overlap(previous_words, words)
        if overlap:
            text = _drop_words(text, overlap)
        if keys:
            previous_words = _norm_words(" ".join(lines))[-30:]
        if not _WORD.search(text):
            continue
        if duration <= 0:
            following = next((c[0] for c in cues[index + 1:] if c[0] > start), None)
            duration = (following - start) if following is not None else 2.0
        segments.append(Segment(start=start, duration=round(duration, 3), text=text))
    return segments


def _overlap(previous: list[str], words: list[str]) -> int:
    """Length of the longest suffix of ``previous`` that starts ``words`` (>= 4 words)."""
    for size in range(min(len(previous), len(words)), 3, -1):
        if previous[-size:] == words[:size]:
            return size
    return 0


def _drop_words(text: str, count: int) -> str:
    matches = list(_WORD.finditer(text))
    if count >= len(matches):
        return ""
    return text[matches[count].start():].strip()


def _vtt_language(text: str) -> str:
    head = text[:2000].split("\n\n", 1)[0]
    match = re.search(r"^Language:\s*([A-Za-z]{2,3}(?:-[A-Za-z0-9]+)?)\s*$", head, re.M)
    return match.group(1).lower() if match and text.lstrip().startswith("WEBVTT") else "en"


# --- plain text ---------------------------------------------------------------------


def _parse_txt(text: str) -> list[Segment]:
    lines = [line.strip() for line in text.split("\n")]
    lines = [line for line in lines if line]
    stamped = [_txt_stamp(line) for line in lines]
    hits = sum(1 for s in stamped if s is not None)
    if hits >= 2 and hits * 2 >= len(lines):
        segments = _timed_txt(lines, stamped)
    else:
        segments = _estimated_txt(lines)
    return segments


def _txt_stamp(line: str) -> tuple[float, str] | None:
    match = _TXT_STAMP.match(line)
    if not match:
        return None
    hours, minutes, secs, millis, rest = match.groups()
    if int(secs) >= 60 or (hours is not None and int(minutes) >= 60):
        return None
    return _seconds(hours, minutes, secs, millis), rest


def _timed_txt(lines: list[str], stamped: list[tuple[float, str] | None]) -> list[Segment]:
    entries: list[tuple[float, list[str]]] = []
    for line, stamp in zip(lines, stamped, strict=True):
        if stamp is not None:
            floor = entries[-1][0] if entries else 0.0
            entries.append((max(stamp[0], floor), [stamp[1]]))
        elif entries:
            entries[-1][1].append(line)
        else:
            entries.append((0.0, [line]))
    segments: list[Segment] = []
    for index, (start, parts) in enumerate(entries):
        text = clean_cue_text(" ".join(parts))
        if not _WORD.search(text):
            continue
        following = next((e[0] for e in entries[index + 1:] if e[0] > start), None)
        spoken = len(text.split()) / WORDS_PER_SECOND
        duration = following - start if following is not None else spoken
        segments.append(Segment(start=start, duration=round(duration, 3), text=text))
    return segments


_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+")


def _estimated_txt(lines: list[str], max_words: int = 40) -> list[Segment]:
    """Chunks of up to ``max_words`` words, timed at ~150 words per minute."""
    text = clean_cue_text(" ".join(lines))
    chunks: list[list[str]] = []
    current: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        words = sentence.split()
        for offset in range(0, len(words), max_words):
            piece = words[offset:offset + max_words]
            if current and len(current) + len(piece) > max_words:
                chunks.append(current)
                current = []
            current.extend(piece)
    if current:
        chunks.append(current)
    segments: list[Segment] = []
    elapsed = 0.0
    for chunk in chunks:
        duration = len(chunk) / WORDS_PER_SECOND
        body = " ".join(chunk)
        if _WORD.search(body):
            segments.append(Segment(start=round(elapsed, 3), duration=round(duration, 3),
                                    text=body))
        elapsed += duration
    return segments
