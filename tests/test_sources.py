"""URL forms and non-URLs: what counts as a source in a line of the inbox."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault_tools.sources import find_sources, parse_youtube_url

VID = "dQw4w9WgXcQ"

VIDEO_FORMS = [
    f"https://www.youtube.com/watch?v={VID}",
    f"http://youtube.com/watch?v={VID}",
    f"www.youtube.com/watch?v={VID}",
    f"youtube.com/watch?v={VID}",
    f"https://youtu.be/{VID}",
    f"youtu.be/{VID}",
    f"https://youtu.be/{VID}?si=Xy12_ab&t=42",
    f"https://www.youtube.com/shorts/{VID}",
    f"https://youtube.com/live/{VID}?feature=share",
    f"https://www.youtube.com/embed/{VID}?start=30",
    f"https://www.youtube-nocookie.com/embed/{VID}",
    f"https://www.youtube.com/v/{VID}",
    f"https://m.youtube.com/watch?v={VID}&feature=youtu.be",
    f"https://music.youtube.com/watch?v={VID}&list=RDAMVM{VID}",
    f"https://www.youtube.com/watch?v={VID}&t=1h2m3s",
    f"https://www.youtube.com/watch?v={VID}&list=PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf&index=3",
    f"https://www.youtube.com/watch?app=desktop&v={VID}",
    f"HTTPS://WWW.YOUTUBE.COM/watch?v={VID}",
]


@pytest.mark.parametrize("url", VIDEO_FORMS)
@pytest.mark.parametrize("wrap", [
    "{u}", "- {u}", "- [ ] {u}", "* [x] {u}", "[My talk]({u})", "<{u}>", "see {u}, thanks",
    "1. {u}.", "> {u}", "Watch this: {u} (great)",
])
def test_every_video_form_in_every_wrapping(url: str, wrap: str) -> None:
    refs = find_sources(wrap.format(u=url))
    assert [(r.kind, r.key) for r in refs] == [("youtube", f"youtube:{VID}")]
    assert refs[0].canonical_url == f"https://www.youtube.com/watch?v={VID}"
    assert refs[0].text in wrap.format(u=url)


def test_playlist_url_is_a_playlist_source() -> None:
    refs = find_sources("https://www.youtube.com/playlist?list=PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf")
    assert [(r.kind, r.key) for r in refs] == [
        ("playlist", "playlist:PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf")]


@pytest.mark.parametrize("line", [
    "https://www.youtube.com/watch?v=abc",
    "https://youtu.be/toolongvideoid123",
    "https://www.youtube.com/shorts/bad$id!!!!!",
])
def test_malformed_video_ids_are_sources_with_a_plain_error(line: str) -> None:
    refs = find_sources(line)
    assert len(refs) == 1
    assert refs[0].error and "not a valid YouTube video id" in refs[0].error
    assert refs[0].key.startswith("invalid:")


@pytest.mark.parametrize("line", ["https://www.youtube.com/watch?v=", "https://youtu.be/",
                                  "- [ ] youtu.be/", "https://www.youtube.com/watch?v=&t=3"])
def test_an_empty_video_id_is_one_failed_source_in_every_form(line: str) -> None:
    """``watch?v=`` and ``youtu.be/`` with nothing after: the same failed line, saying so
    plainly (``youtu.be/`` was left as user text with no annotation)."""
    refs = find_sources(line)
    assert len(refs) == 1 and refs[0].key == "invalid:(empty)", refs
    assert refs[0].error == "this YouTube link has no video id"


@pytest.mark.parametrize("line", [
    "", "just some notes about biology", "links from youtu.be are short", "https://example.com/watch?v=dQw4w9WgXcQ",
    "https://www.youtube.com/@somechannel", "https://www.youtube.com/channel/UCabc",
    "https://www.youtube.com/results?search_query=cats", "https://vimeo.com/12345",
    "https://notyoutube.com/watch?v=dQw4w9WgXcQ", "https://example.com/notes.txt",
    "https://www.youtube.com/", "youtube is great", "# Heading",
])
def test_non_sources_are_left_alone(line: str) -> None:
    assert find_sources(line) == []


@pytest.mark.parametrize("line,target,bare", [
    ("[[Lectures/intro.srt]]", "Lectures/intro.srt", False),
    ("![[Lectures/intro.srt]]", "Lectures/intro.srt", False),
    ("- [ ] [[intro.vtt|the intro]]", "intro.vtt", False),
    ("[[talk.TXT#part]]", "talk.TXT", False),
    ("[Intro](Lectures/intro%20one.srt)", "Lectures/intro one.srt", False),
    ("[Intro](<Lectures/intro one.srt>)", "Lectures/intro one.srt", False),
    ("Lectures/intro.srt", "Lectures/intro.srt", True),
    ("./talk.vtt", "talk.vtt", True),
    # A Templater-looking name keeps its '<' (it was read as '% tp.file.title %>.srt').
    ("[[<% tp.file.title %>.srt]]", "<% tp.file.title %>.srt", False),
])
def test_subtitle_file_links(line: str, target: str, bare: bool) -> None:
    refs = find_sources(line)
    assert [(r.kind, r.ident, r.bare) for r in refs] == [("file", target, bare)]


def test_several_sources_on_one_line_in_order_without_duplicates() -> None:
    line = f"https://youtu.be/{VID} and [[a.srt]] and youtube.com/watch?v={VID} and " \
           "https://youtu.be/aaaaaaaaaaa"
    assert [r.key for r in find_sources(line)] == [
        f"youtube:{VID}", "file:a.srt", "youtube:aaaaaaaaaaa"]


def test_trailing_punctuation_is_not_part_of_the_id() -> None:
    assert parse_youtube_url(f"https://youtu.be/{VID}.") is not None
    assert find_sources(f"Look: https://youtu.be/{VID}!")[0].key == f"youtube:{VID}"


@given(st.text(max_size=300))
def test_any_text_parses_without_error_and_refs_come_from_the_line(line: str) -> None:
    for ref in find_sources(line):
        assert ref.text in line
        assert ref.kind in ("youtube", "playlist", "file")


@given(st.from_regex(r"[A-Za-z0-9_-]{11}", fullmatch=True),
       st.sampled_from(VIDEO_FORMS), st.text(alphabet=" \t-*[]>", max_size=6))
def test_any_valid_id_in_any_form_maps_to_its_key(vid: str, form: str, prefix: str) -> None:
    url = form.replace(VID, vid)
    refs = find_sources(prefix + " " + url)
    assert refs and refs[0].key == f"youtube:{vid}"
