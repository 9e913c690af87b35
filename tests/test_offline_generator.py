"""The offline backend, judged the way a user reads its notes in Obsidian."""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from daemon.errors import EmptyTranscriptError, PermanentError
from daemon.generate.base import Backend, GenerationContext
from daemon.generate.extractive import MAX_NODES, Analysis, build_sentences, rank
from daemon.generate.offline import OfflineBackend, clean, slug
from vault_tools.models import Chapter, Segment, SourceMeta, Transcript, VideoContent
from vault_tools.subtitles import parse_subtitles

SAMPLES = Path(__file__).resolve().parent.parent / "daemon" / "samples"
SAMPLE_NAMES = ["photosynthesis.srt", "TCP-congestion-control.vtt", "spaced-repetition.txt"]
KINDS = ["Gap check", "Application", "One step further", "Synthesis"]
CTX = GenerationContext(config={"generate": {"language": "en", "backend": "offline"}},
                        state_dir="/nonexistent-state-dir")
_CODE_STAMP = re.compile(r"`((?:\d+:)?\d+:\d{2})`")
_URL_STAMP = re.compile(r"\]\(https://youtu\.be/(\w+)\?t=(\d+)\)")
_HEADING_RANGE = re.compile(r"^### ((?:\d+:)?\d+:\d{2})–((?:\d+:)?\d+:\d{2}) · (.+)$", re.M)


def sample(name: str) -> Transcript:
    return parse_subtitles((SAMPLES / name).read_text(encoding="utf-8"), name)


def file_meta(title: str, **extra: object) -> SourceMeta:
    return SourceMeta(key=f"file:Subs/{title}.srt", kind="file", title=title,
                      file_path=f"Subs/{title}.srt", **extra)  # type: ignore[arg-type]


def video_meta(title: str, **extra: object) -> SourceMeta:
    return SourceMeta(key="youtube:dQw4w9WgXcQ", kind="youtube", title=title,
                      url="https://www.youtube.com/watch?v=dQw4w9WgXcQ",
                      video_id="dQw4w9WgXcQ", **extra)  # type: ignore[arg-type]


def seconds(label: str) -> int:
    total = 0
    for part in label.split(":"):
        total = total * 60 + int(part)
    return total


def timestamps(markdown: str) -> list[int]:
    found = [seconds(m) for m in _CODE_STAMP.findall(markdown)]
    found += [int(t) for _vid, t in _URL_STAMP.findall(markdown)]
    return found


def flashcards(assessment: str) -> tuple[str, list[str]]:
    section = assessment.split("## Flashcards", 1)[1].strip()
    tag_line, _, rest = section.partition("\n")
    return tag_line, [card for card in rest.strip().split("\n\n") if card.strip()]


def card_kind(card: str) -> str:
    """Classify one Spaced Repetition card, failing on anything the plugin would misread."""
    lines = card.split("\n")
    if len(lines) == 1 and "::" in card:
        assert card.count("::") == 1 and ":::" not in card, card
        question, answer = card.split("::")
        assert question.strip() and answer.strip(), card
        assert "==" not in card, card
        return "single"
    if "?" in lines:
        at = lines.index("?")
        assert lines.count("?") == 1 and 0 < at < len(lines) - 1, card
        assert "::" not in card and "==" not in card and "??" not in lines, card
        return "multi"
    assert len(lines) == 1 and card.count("==") >= 2 and card.count("==") % 2 == 0, card
    assert re.search(r"==[^=]+==", card) and "::" not in card, card
    return "cloze"


def long_lecture(hours: float, *, punctuated: bool = True, seed: int = 7) -> Transcript:
    """A synthetic lecture built from the sample sentences, ~150 words per minute."""
    words = " ".join(sample(n).text for n in SAMPLE_NAMES).split()
    rng = random.Random(seed)
    segments: list[Segment] = []
    at = 0.0
    while at < hours * 3600:
        first = rng.randrange(len(words) - 10)
        text = " ".join(words[first:first + 10])
        if not punctuated:
            text = re.sub(r"[^\w\s'-]", "", text).lower()
        segments.append(Segment(at, 4.0, text))
        at += 4.0
    return Transcript(segments)


@pytest.fixture(scope="module", params=SAMPLE_NAMES)
def generated(request: pytest.FixtureRequest) -> tuple[Transcript, SourceMeta, VideoContent]:
    transcript = sample(request.param)
    meta = file_meta(Path(request.param).stem.replace("-", " ").title())
    return transcript, meta, OfflineBackend().generate(transcript, meta, CTX)


def test_backend_satisfies_the_protocol() -> None:
    backend: Backend = OfflineBackend({"generate": {"language": "en"}})
    assert backend.name == "offline"


def test_sample_notes_have_every_part(generated: tuple[Transcript, SourceMeta, VideoContent]
                                      ) -> None:
    transcript, meta, content = generated
    note = content.note_markdown
    assert note.startswith(f"# {meta.title}\n")
    assert "\n> [!summary] TL;DR\n" in note
    for heading in ("## Key points", "## Sections", "## Key terms"):
        assert f"\n{heading}\n" in note
    points = note.split("## Key points", 1)[1].split("## Sections", 1)[0]
    point_times = [seconds(m) for m in _CODE_STAMP.findall(points)]
    assert len(point_times) >= 5 and point_times == sorted(point_times)
    terms = note.split("## Key terms", 1)[1]
    assert len(re.findall(r"^- \*\*.+?\*\* — .+`\d+:\d{2}`\)$", terms, re.M)) >= 8
    assert content.model == "offline-extractive"
    assert content.usage.input_tokens == content.usage.output_tokens == 0
    assert len(content.key_terms) >= 5
    assert VideoContent.from_json(content.to_json()) == content


def test_every_timestamp_points_inside_the_transcript(
        generated: tuple[Transcript, SourceMeta, VideoContent]) -> None:
    transcript, _meta, content = generated
    stamps = timestamps(content.note_markdown + content.assessment_markdown)
    assert len(stamps) >= 20
    assert all(0 <= t <= transcript.end for t in stamps)
    ranges = _HEADING_RANGE.findall(content.note_markdown)
    assert len(ranges) >= 2
    assert all(seconds(a) < seconds(b) <= transcript.end for a, b, _label in ranges)
    assert [seconds(a) for a, _b, _l in ranges] == sorted(seconds(a) for a, _b, _l in ranges)


def test_assessment_has_four_question_kinds_with_cited_answers(
        generated: tuple[Transcript, SourceMeta, VideoContent]) -> None:
    _transcript, meta, content = generated
    text = content.assessment_markdown
    assert text.startswith(f"# {meta.title} — Assessment\n")
    questions = text.split("## Questions", 1)[1].split("## Flashcards", 1)[0]
    blocks = re.split(r"^### \d+\. ", questions, flags=re.M)[1:]
    assert {b.split("\n", 1)[0] for b in blocks} == set(KINDS)
    for block in blocks:
        _question, _, answer = block.partition("> [!answer]- Answer\n")
        assert answer, block
        answer_lines = [line for line in answer.strip().split("\n") if line]
        assert all(line.startswith(">") for line in answer_lines), block
        assert timestamps(answer), block


def test_flashcards_are_valid_spaced_repetition_cards(
        generated: tuple[Transcript, SourceMeta, VideoContent]) -> None:
    _transcript, meta, content = generated
    tag_line, cards = flashcards(content.assessment_markdown)
    assert tag_line == f"#flashcards/{slug(meta.title)}"
    assert re.fullmatch(r"#flashcards/[a-z0-9-]+", tag_line)
    kinds = [card_kind(card) for card in cards]
    assert kinds.count("single") >= 3 and kinds.count("multi") >= 2
    assert kinds.count("cloze") >= 2


def test_tags_are_obsidian_valid(generated: tuple[Transcript, SourceMeta, VideoContent]
                                 ) -> None:
    tags = generated[2].tags
    assert tags[0] == "video-notes" and len(tags) >= 3 and len(set(tags)) == len(tags)
    for tag in tags:
        assert re.fullmatch(r"[^\W_A-Z][\w/-]*", tag) and not tag.isdigit(), tag
        assert tag == tag.lower()


def test_video_timestamps_link_to_the_video() -> None:
    transcript = sample("photosynthesis.srt")
    content = OfflineBackend().generate(transcript, video_meta("Photosynthesis"), CTX)
    links = _URL_STAMP.findall(content.note_markdown)
    assert links and {vid for vid, _t in links} == {"dQw4w9WgXcQ"}
    assert all(0 <= int(t) <= transcript.end for _vid, t in links)
    assert "`" not in content.note_markdown  # no code spans once timestamps are links


@pytest.mark.parametrize("transcript", [
    Transcript([]),
    Transcript([Segment(0, 2, ""), Segment(2, 2, "   ")]),
    # 9 words: under youtube.min_transcript_words (10), the one limit for every source
    Transcript([Segment(0, 5, "Hello and welcome, today we talk about energy again.")]),
    Transcript([Segment(i, 1, "um, uh, so, you know, like the") for i in range(20)]),
])
def test_near_empty_transcript_is_a_permanent_failure(transcript: Transcript) -> None:
    with pytest.raises(EmptyTranscriptError) as caught:
        OfflineBackend().generate(transcript, file_meta("Short"), CTX)
    assert isinstance(caught.value, PermanentError)
    assert "words" in caught.value.reason and "study" in caught.value.reason


@pytest.mark.parametrize(("seconds", "said"), [(24, "about 24 seconds"),
                                               (75, "about 1 minute"),
                                               (600, "about 10 minutes")])
def test_tldr_says_the_length_in_the_right_unit(seconds: int, said: str) -> None:
    """A 24 s recording is "about 24 seconds", not "about 1 minute"."""
    words = ("Enzymes lower the activation energy of reactions in the cell, and "
             "temperature changes how fast they work.")
    n = max(3, seconds // 8)
    transcript = Transcript([Segment(i * seconds / n, seconds / n, words) for i in range(n)])
    content = OfflineBackend().generate(transcript, file_meta("Clip"), CTX)
    tldr = content.note_markdown.split("> [!summary] TL;DR\n> ", 1)[1].split("\n", 1)[0]
    assert tldr.startswith(f"In {said}, this talk covers"), tldr


def test_chapters_become_the_sections() -> None:
    transcript = sample("TCP-congestion-control.vtt")
    chapters = [Chapter(60, "Why congestion happens"), Chapter(200, "Slow start and AIMD"),
                Chapter(350, "Bufferbloat <b>and</b> BBR"), Chapter(9999, "After the end")]
    content = OfflineBackend().generate(transcript, video_meta("TCP", chapters=chapters), CTX)
    labels = [label for _a, _b, label in _HEADING_RANGE.findall(content.note_markdown)]
    assert labels == ["Opening", "Why congestion happens", "Slow start and AIMD",
                      "Bufferbloat and BBR"]


def test_three_hour_transcript_gives_bounded_correct_notes() -> None:
    transcript = long_lecture(3)
    content = OfflineBackend().generate(transcript, video_meta("Marathon lecture"), CTX)
    stamps = timestamps(content.note_markdown + content.assessment_markdown)
    assert stamps and all(0 <= t <= transcript.end for t in stamps)
    ranges = _HEADING_RANGE.findall(content.note_markdown)
    assert 8 <= len(ranges) <= 12
    assert seconds(ranges[-1][1]) == int(transcript.end)
    points = content.note_markdown.split("## Key points", 1)[1].split("## Sections", 1)[0]
    assert len(points.strip().split("\n")) == 15
    assert [card_kind(c) for c in flashcards(content.assessment_markdown)[1]]


def test_rank_merges_sentences_beyond_the_graph_cap() -> None:
    n = MAX_NODES * 2 + 7
    rng = np.random.default_rng(3)
    matrix = sparse.random(n, 400, density=0.02, random_state=rng, format="lil")
    matrix[:50, 0] = 5.0  # the first sentences share one strong topic word
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1
    scores = rank(sparse.csr_matrix(sparse.diags(1 / norms) @ matrix.tocsr()))
    assert scores.shape == (n,) and np.isfinite(scores).all() and (scores >= 0).all()
    assert scores[:50].mean() > np.median(scores)


def test_auto_captions_without_punctuation_become_short_sentences() -> None:
    transcript = long_lecture(0.25, punctuated=False)
    sentences = build_sentences(transcript.segments)
    assert all(s.words <= 20 for s in sentences)
    assert [s.start for s in sentences] == sorted(s.start for s in sentences)
    content = OfflineBackend().generate(transcript, file_meta("Auto captions"), CTX)
    assert all(t <= transcript.end for t in timestamps(content.note_markdown))


def test_sentences_keep_the_start_of_their_first_cue() -> None:
    segments = [Segment(0, 3, "Energy flows one way."), Segment(3, 3, "Carbon cycles"),
                Segment(6, 3, "round and round. Memory"), Segment(9, 3, "fades fast.")]
    assert [(s.start, s.text) for s in build_sentences(segments)] == [
        (0, "Energy flows one way."), (3, "Carbon cycles round and round."),
        (6, "Memory fades fast.")]


def test_key_terms_prefer_defined_phrases() -> None:
    terms = [t.term for t in Analysis(sample("spaced-repetition.txt").segments).key_terms(10)]
    for expected in ("forgetting curve", "spacing effect", "retrieval practice"):
        assert expected in terms


def test_hostile_transcript_text_is_not_quoted_as_obsidian_code() -> None:
    evil = ("The feedback loop is <script>alert(1)</script> a loop. ```dataviewjs "
            "dv.el('b', 1)``` Energy is %% hidden %% kept {{date}} and <% tp.file.title %>. "
            "Memory is [[Secret note]] and ![[embed.png]] plus ==marked== and a::b #tag. ")
    transcript = Transcript([Segment(i * 6.0, 6.0, evil) for i in range(12)])
    content = OfflineBackend().generate(transcript, video_meta("Hostile <i>title</i>"), CTX)
    body = content.note_markdown + content.assessment_markdown
    for bad in ("<script", "`", "%%", "<%", "{{", "[[", "]]", "<i>"):
        assert bad not in body, bad
    assert "\\#tag" in body and not re.search(r"(?<!\\)#tag", body)
    assert body.startswith("# Hostile title\n")
    cards = flashcards(content.assessment_markdown)[1]
    assert all(card_kind(card) for card in cards)


def test_other_languages_and_determinism() -> None:
    text = ("La memoria humana olvida rápido lo que aprende. El repaso espaciado fortalece "
            "la memoria cada vez que recordamos algo. La energía del cerebro es limitada durante "
            "el estudio. El sueño ayuda a consolidar la memoria después de cada sesión. Ebbinghaus "
            "midió la curva del olvido con sílabas sin sentido. Las tarjetas de repaso combinan "
            "recuperación y espaciado. Un bucle de retroalimentación decide qué tarjeta vuelve "
            "mañana. La memoria mejora cuando el repaso llega justo antes del olvido. Estudiar "
            "veinte minutos cada día es mejor que tres horas el domingo. La curva del olvido se "
            "aplana con cada repaso exitoso de la memoria.")
    transcript = Transcript([Segment(i * 5.0, 5.0, chunk) for i, chunk in
                             enumerate(re.findall(r"(?:\S+\s+){1,12}", text))])
    first = OfflineBackend().generate(transcript, file_meta("Memoria"), CTX)
    second = OfflineBackend().generate(transcript, file_meta("Memoria"), CTX)
    assert first == second
    assert "memoria" in [t.lower() for t in first.key_terms]


_VOCAB = ("energy memory feedback loop is the a of and TCP window Calvin cycle review card "
          "because for example means called. ? ! , <b> `x` %% {{ [[ == :: # ü 記憶 1:02").split()


@settings(max_examples=60, deadline=None)
@given(cues=st.lists(st.tuples(st.floats(0, 20000, allow_nan=False),
                               st.floats(0, 30, allow_nan=False),
                               st.lists(st.sampled_from(_VOCAB), max_size=15)), max_size=60))
def test_any_transcript_gives_notes_or_an_empty_error(
        cues: list[tuple[float, float, list[str]]]) -> None:
    segments = sorted((Segment(at, dur, " ".join(ws)) for at, dur, ws in cues),
                      key=lambda s: s.start)
    transcript = Transcript(segments)
    try:
        content = OfflineBackend().generate(transcript, file_meta("Fuzz"), CTX)
    except EmptyTranscriptError:
        return
    body = content.note_markdown + content.assessment_markdown
    assert all(0 <= t <= transcript.end for t in timestamps(body))
    assert [card_kind(card) for card in flashcards(content.assessment_markdown)[1]]
    questions = content.assessment_markdown.split("## Flashcards", 1)[0]
    assert all(f". {kind}\n" in questions for kind in KINDS)


@pytest.mark.parametrize(("raw", "want"), [
    ("a `code` b", "a code b"),
    ("x <b>y</b> z", "x y z"),
    ("keep a < b > c", "keep a < b > c"),
    ("<<b>%", ""),
    ("go to #home", "go to \\#home"),
    ("C# and 100%", "C# and 100%"),
    ("a:::b and c::d", "a:b and c:d"),
])
def test_clean(raw: str, want: str) -> None:
    assert clean(raw) == want
