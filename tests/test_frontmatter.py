"""Frontmatter keeps key order, user keys and comments, and means what it says."""

from __future__ import annotations

import yaml  # PyYAML reads YAML 1.1, like many Obsidian plugins: the strict reader here
from hypothesis import given
from hypothesis import strategies as st

from vault_tools import frontmatter
from vault_tools.models import SourceMeta, Usage, VideoContent
from vault_tools.notes import compose_note, note_frontmatter, owner_key

CONTRACT_KEYS = ["type", "title", "source", "video_id", "channel", "duration", "published",
                 "created", "tags", "aliases", "assessment", "model", "tokens"]


def content(title: str = "Talk: 10:30 | no") -> VideoContent:
    meta = SourceMeta(key="youtube:dQw4w9WgXcQ", kind="youtube", title=title,
                      url="https://www.youtube.com/watch?v=dQw4w9WgXcQ",
                      video_id="dQw4w9WgXcQ", channel="no", duration=630.4,
                      published="2024-01-02")
    return VideoContent(meta=meta, note_markdown="# T\n", assessment_markdown="# A\n",
                        model="offline-extractive", tags=["video-notes", "on"],
                        aliases=["yes"], usage=Usage(1, 2, 3))


def test_contract_keys_in_order_and_yaml11_safe() -> None:
    fm = note_frontmatter(content(), created="2026-11-28T10:30:00+00:00",
                          assessment_link="[[Study Notes/T (Assessment)|T (Assessment)]]")
    text = compose_note(fm, "# T\n")
    data, body = frontmatter.split(text)
    assert list(data)[: len(CONTRACT_KEYS)] == CONTRACT_KEYS
    loaded = yaml.safe_load(text.split("---\n")[1])  # YAML 1.1 reader sees strings
    assert loaded["title"] == "Talk: 10:30 | no"
    assert loaded["channel"] == "no"
    assert loaded["tags"] == ["video-notes", "on"]
    assert loaded["aliases"] == ["yes"]
    assert loaded["duration"] == 630
    assert loaded["assessment"] == "[[Study Notes/T (Assessment)|T (Assessment)]]"
    assert loaded["tokens"] == {"in": 1, "out": 2, "cached": 3}
    assert body.strip() == "# T"
    assert owner_key(text) == "youtube:dQw4w9WgXcQ"


def test_regeneration_keeps_user_keys_order_and_comments() -> None:
    user = ("---\nrating: 5 # my score\ntype: study-note\ntitle: Old\nmeeting: 10:30\n"
            "---\nMy own text\n")
    fm = note_frontmatter(content("New"), created="now", assessment_link="[[A]]")
    text = compose_note(fm, "body\n", existing_text=user)
    data, _ = frontmatter.split(text)
    keys = list(data)
    assert keys[:3] == ["rating", "type", "title"]
    assert "# my score" in text
    assert data["meeting"] == "10:30"  # YAML 1.2 round trip, no sexagesimal surprise
    assert data["title"] == "New"


def test_bad_yaml_is_treated_as_body_and_nothing_is_lost() -> None:
    text = "---\n: : :\n  - [\n---\nbody\n"
    data, body = frontmatter.split(text)
    assert data is None and body == text


@given(st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,10}", fullmatch=True),
                       st.one_of(st.text(max_size=30), st.integers(), st.booleans(),
                                 st.lists(st.text(max_size=10), max_size=3)), max_size=8))
def test_property_round_trip_keeps_values(values: dict) -> None:  # type: ignore[type-arg]
    text = frontmatter.compose(frontmatter.merge(None, values), "body")
    data, _ = frontmatter.split(text)
    assert frontmatter.plain(data) == values
    assert list(data) == list(values)


def test_split_and_read_agree_on_where_frontmatter_ends() -> None:
    """One fence for both readers: the graph's fast reader and the round-trip reader
    (which used to miss a BOM or a YAML ``...`` end, and then kept the old block as body
    text under a new one)."""
    for text in ("---\ntitle: A\n---\nbody\n", "\ufeff---\ntitle: A\n---\nbody\n",
                 "---\r\ntitle: A\r\n...\r\nbody\r\n", "---\n---\nbody\n"):
        data, body = frontmatter.split(text)
        plain, plain_body = frontmatter.read(text)
        assert data is not None, repr(text)
        assert frontmatter.plain(data) == plain
        assert body == plain_body and body.lstrip("\r\n") == body and "body" in body
    assert frontmatter.split("no frontmatter\n---\n") == (None, "no frontmatter\n---\n")
    assert frontmatter.read("no frontmatter\n") == ({}, "no frontmatter\n")
