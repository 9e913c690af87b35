"""The reply reader on its own: JSON (exact, wrapped, fenced, cut), the tagged text
format, and salvage of replies that followed neither — and what is not usable."""

from __future__ import annotations

import json

import pytest

from daemon.errors import MalformedReplyError
from daemon.generate.base import RelatedNote
from daemon.generate.reader import close_json, read_assessment, read_chunk, read_note
from vault_tools.models import SourceMeta

META = SourceMeta(key="file:Lectures/a.srt", kind="file", title="Entropy",
                  file_path="Lectures/a.srt", duration=600)
RELATED = [RelatedNote("Thermodynamics")]
NOTE = {"tldr": "Entropy grows [0:30].", "tags": ["physics"], "aliases": [],
        "key_terms": ["entropy"], "note": "## Key concepts\n- Disorder [1:15]"}


def note(text: str):  # noqa: ANN201
    return read_note(text, META, 600, RELATED)


def assessment(text: str):  # noqa: ANN201
    return read_assessment(text, META, 600, RELATED)


def test_close_json_closes_what_a_cut_reply_left_open() -> None:
    cut = '{"tldr": "Entropy [0:30].", "note": "## A\\n- x [1:15]", "tags": ["a", "b'
    assert json.loads(close_json(cut))["tags"] == ["a", "b"]
    assert json.loads(close_json('{"a": [1, 2,')) == {"a": [1, 2]}
    assert json.loads(close_json('{"a": "x\\')) == {"a": "x"}


@pytest.mark.parametrize("text, how", [
    (json.dumps(NOTE), "json"),
    (json.dumps({"reply": NOTE}), "json"),  # Claude's shared wrapper
    ("Sure:\n```json\n" + json.dumps(NOTE) + "\n```", "json"),
    (json.dumps({"tldr": NOTE["tldr"], "note": NOTE["note"],
                 "key_terms": ["entropy", "disorder"]})[:-8], "salvaged"),  # cut, closed
    (json.dumps({"summary": "Entropy grows [0:30].", "body": "## K\n- Disorder [1:15]",
                 "tags": "physics, heat"}), "salvaged"),  # other key names
])
def test_json_notes(text: str, how: str) -> None:
    read = note(text)
    assert read.how == how
    assert read.value.markdown.startswith("> [!tldr] TL;DR\n> Entropy grows `0:30`")
    assert "`1:15`" in read.value.markdown


@pytest.mark.parametrize("text", [
    "**TL;DR:** Entropy grows [0:30].\n\n## Key concepts\n- Disorder [1:15]\n",
    "# Entropy\n\n## TL;DR\nEntropy grows [0:30].\n\n## Key concepts\n- Disorder [1:15]\n",
    "> [!tldr] TL;DR\n> Entropy grows [0:30].\n\n## Key concepts\n- Disorder [1:15]\n",
])
def test_markdown_notes_are_salvaged(text: str) -> None:
    read = note(text)
    assert read.salvaged and "Entropy grows `0:30`" in read.value.markdown
    assert "## Key concepts\n- Disorder `1:15`" in read.value.markdown


@pytest.mark.parametrize("text", [
    "I cannot help with that.",
    "**TL;DR:** no sections and no moment",
    json.dumps({"tldr": "x", "note": "## A\n- no timestamps"}),
    "## A\n- a point [1:15]\n",  # no TL;DR
])
def test_notes_with_nothing_usable_raise(text: str) -> None:
    with pytest.raises(MalformedReplyError):
        note(text)


def test_assessment_json_exact_and_partial() -> None:
    full = {k: [{"question": f"{k}?", "answer": "Because [1:00]."}]
            for k in ("gap", "application", "further", "synthesis")}
    full["flashcards"] = [{"front": "What is entropy?", "back": "Disorder"}]
    read = assessment(json.dumps(full))
    assert read.how == "json" and "What is entropy?::Disorder" in read.value
    assert read.value.count("> [!answer]- Answer") == 4
    partial = {"gap": full["gap"], "flashcards": ["Heat::Energy in transit"]}
    read = assessment(json.dumps(partial))
    assert read.salvaged and "## Gap check" in read.value and "## Synthesis" not in read.value
    assert "Heat::Energy in transit" in read.value


def test_assessment_salvaged_from_markdown() -> None:
    text = ("## Gap check\n1. What grows over time?\n   **Answer:** Entropy [0:30].\n\n"
            "## Synthesis\n2. How do heat and disorder connect?\nBoth rise [2:00].\n\n"
            "## Flashcards\nWhat is entropy?::Disorder\n")
    read = assessment(text)
    assert read.salvaged
    assert "## Gap check" in read.value and "## Synthesis" in read.value
    assert "What grows over time?" in read.value and "Entropy `0:30`" in read.value
    assert "What is entropy?::Disorder" in read.value


def test_tagged_assessment_without_flashcards_is_salvaged() -> None:
    text = ('<section kind="gap" title="Gap"><question><ask>Q?</ask><answer>A [1:00].'
            "</answer></question></section>")
    read = assessment(text)
    assert read.salvaged and "**1.** Q?" in read.value and "#flashcards" not in read.value


def test_assessment_with_no_cited_question_raises() -> None:
    with pytest.raises(MalformedReplyError):
        assessment("1. What is entropy?\nDisorder, uncited.\n")


def test_chunk_needs_a_moment() -> None:
    assert read_chunk("- a point [1:15]", 1).value == "- a point [1:15]"
    with pytest.raises(MalformedReplyError):
        read_chunk("nothing cited", 2)
