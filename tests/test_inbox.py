"""Inbox parsing, annotation round trips, and compare-and-swap edits racing a writer."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault_tools.inbox import (
    Status,
    annotate,
    append_lines,
    edit_inbox,
    parse_inbox,
    strip_annotation,
)

VID = "dQw4w9WgXcQ"

INBOX = (
    "---\ntags: [inbox]\nurl: https://youtu.be/aaaaaaaaaaa\n---\n"
    "# My inbox\r\n"
    f"- [ ] https://youtu.be/{VID}\n"
    "some notes of mine\n"
    "```\nhttps://youtu.be/bbbbbbbbbbb\n```\n"
    "<!-- https://youtu.be/ccccccccccc -->\n"
    "- [[Lectures/intro.srt]]\r\n"
    "bad bytes \udcff\udcfe here\n"
    "last line without newline https://youtu.be/ddddddddddd"
)

STATUSES = [
    Status("queued"), Status("working"), Status("working", "3 of 12 done"),
    Status("waiting", "YouTube asked us to slow down"),
    Status("done", "[[Study Notes/Some Talk|Some Talk]]"),
    Status("failed", "This video has subtitles turned off"),
]


def test_parse_finds_source_lines_but_not_frontmatter_code_or_comments() -> None:
    lines = parse_inbox(INBOX)
    keys = [[r.key for r in line.sources] for line in lines]
    assert keys == [[f"youtube:{VID}"], ["file:Lectures/intro.srt"],
                    ["youtube:ddddddddddd"]]


def test_every_status_round_trips_and_other_bytes_stay() -> None:
    for status in STATUSES:
        lines = parse_inbox(INBOX)
        out = annotate(INBOX, {line.index: status for line in lines})
        again = parse_inbox(out)
        assert [line.body for line in again] == [line.body for line in lines]
        assert all(line.annotation == status.render() for line in again)
        # idempotent: applying the same status again changes nothing
        assert annotate(out, {line.index: status for line in again}) == out
        # removing annotations restores the original text byte for byte
        assert annotate(out, {line.index: None for line in again}) == INBOX


def test_changing_status_replaces_the_old_annotation() -> None:
    text = f"https://youtu.be/{VID}\n"
    text = annotate(text, {0: Status("queued")})
    text = annotate(text, {0: Status("done", "[[Study Notes/X|X]]")})
    assert text == f"https://youtu.be/{VID} — ✅ [[Study Notes/X|X]]\n"


def test_reasons_cannot_break_the_line_or_links() -> None:
    out = annotate("https://youtu.be/dQw4w9WgXcQ\n",
                   {0: Status("failed", "bad\nthing [[evil]] | `x`" + "y" * 500)})
    assert out.count("\n") == 1
    assert "[[evil" not in out and "`" not in out
    assert len(out) < 260


def test_annotate_skips_a_line_the_user_changed_since_parsing() -> None:
    text = f"https://youtu.be/{VID}\n"
    lines = parse_inbox(text)
    edited = f"https://youtu.be/{VID} my comment\n"
    out = annotate(edited, {0: Status("queued")}, {0: lines[0].body})
    assert out == edited


def test_strip_annotation_only_strips_ours() -> None:
    assert strip_annotation("a — b") == ("a — b", "")
    assert strip_annotation("url — ⏳ queued") == ("url", " — ⏳ queued")


def test_append_lines_adds_missing_newline_and_keeps_crlf() -> None:
    assert append_lines("a", ["b"]) == "a\nb\n"
    assert append_lines("a\r\n", ["b"]) == "a\r\nb\r\n"
    assert append_lines("", ["b", "c"]) == "b\nc\n"


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=80)
                .filter(lambda s: "\n" not in s and "\r" not in s), max_size=12),
       st.sampled_from(STATUSES))
@settings(max_examples=150)
def test_property_annotation_never_changes_user_lines(user_lines: list[str],
                                                      status: Status) -> None:
    text = "\n".join([*user_lines, f"- https://youtu.be/{VID}"]) + "\n"
    lines = parse_inbox(text)
    out = annotate(text, {line.index: status for line in lines})
    source_idx = {line.index for line in lines}
    # Lines end at LF only here (no CR in user_lines); str.splitlines would also split
    # at \x85, U+2028 and the like, which are no line ends to Obsidian or to vaultd.
    for i, (a, b) in enumerate(zip(text.split("\n"), out.split("\n"), strict=True)):
        if i not in source_idx:
            assert a == b
        else:
            assert b.startswith(a.split(" — ")[0])


def test_edit_inbox_preserves_mode_and_invalid_utf8(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox.md"
    inbox.write_bytes(b"\xff\xfe junk\nhttps://youtu.be/dQw4w9WgXcQ\n")
    inbox.chmod(0o640)
    changed = edit_inbox(inbox, lambda t: annotate(t, {1: Status("queued")}))
    assert changed
    assert inbox.read_bytes() == b"\xff\xfe junk\nhttps://youtu.be/dQw4w9WgXcQ \xe2\x80\x94 " \
                                b"\xe2\x8f\xb3 queued\n"
    assert inbox.stat().st_mode & 0o777 == 0o640
    assert not edit_inbox(inbox, lambda t: t)
    assert [p.name for p in tmp_path.iterdir()] == ["inbox.md"]


def _typist(path: str, count: int, by_rename: bool) -> None:
    """A person typing: appends one numbered line at a time, as an editor saves."""
    for i in range(count):
        data = Path(path).read_bytes() + f"user line {i}\n".encode()
        if by_rename:
            tmp = path + f".tmp{i}"
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        else:
            with open(path, "r+b") as fh:
                fh.seek(0)
                fh.write(data)
                fh.truncate()
        time.sleep(0.01)  # an editor saving every 10 ms: pace, not synchronisation


def _race(tmp_path: Path, by_rename: bool) -> None:
    inbox = tmp_path / "inbox.md"
    inbox.write_text("".join(f"https://youtu.be/{i:011d}\n" for i in range(40)))
    proc = multiprocessing.get_context("spawn").Process(
        target=_typist, args=(str(inbox), 150, by_rename))
    proc.start()
    states = [Status("queued"), Status("working"), Status("done", "[[N]]")]
    n = 0
    deadline = time.monotonic() + 60
    while proc.is_alive() and time.monotonic() < deadline:
        status = states[n % 3]
        n += 1
        edit_inbox(inbox, lambda t, s=status: annotate(t, {x.index: s for x in parse_inbox(t)}))
        time.sleep(0.003)  # the daemon's own pace; still far faster than the real one
    proc.join(30)
    assert proc.exitcode == 0
    text = inbox.read_text()
    lines = text.splitlines()
    # every line the "user" typed is there exactly once, in order
    typed = [line for line in lines if line.startswith("user line")]
    assert typed == [f"user line {i}" for i in range(150)]
    assert n > 5  # the daemon really raced the typist
    edit_inbox(inbox, lambda t: annotate(t, {x.index: None for x in parse_inbox(t)}))
    assert sum(1 for line in inbox.read_text().splitlines() if "youtu.be" in line) == 40


def test_cas_edits_racing_an_in_place_writer_lose_nothing(tmp_path: Path) -> None:
    _race(tmp_path, by_rename=False)


def test_cas_edits_racing_a_rename_writer_lose_nothing(tmp_path: Path) -> None:
    _race(tmp_path, by_rename=True)


def test_huge_and_binary_inboxes_parse_and_keep_every_byte(tmp_path: Path) -> None:
    """A huge (13 MB here) or binary inbox is read (sources still found), annotated,
    and every other byte is kept. (Speed is measured in benchmarks/, not here.)"""
    filler = "notes about youtube and .srt-less things, nothing to fetch here\n" * 200_000
    text = filler + f"- https://youtu.be/{VID}\n" + "\x00\x01 binary \udcff tail"
    lines = parse_inbox(text)
    assert [(x.index, x.sources[0].key) for x in lines] == [(200_000, f"youtube:{VID}")]
    out = annotate(text, {200_000: Status("queued")})
    assert out == filler + f"- https://youtu.be/{VID} — ⏳ queued\n" + \
        "\x00\x01 binary \udcff tail"
    # Random bytes without "`" and "~": a random line opening a code fence would (rightly,
    # as in Obsidian) make the link below it code, not a source (see the test after this).
    noise = os.urandom(5_000_000).translate(bytes.maketrans(b"`~", b"ab"))
    raw = noise + f"\nhttps://youtu.be/{VID}\n".encode()
    inbox = tmp_path / "inbox.md"
    inbox.write_bytes(raw)
    edit_inbox(inbox, lambda t: annotate(t, {x.index: Status("queued")
                                             for x in parse_inbox(t)}))
    data = inbox.read_bytes()
    assert data.startswith(raw[:-1]) and data.endswith(" — ⏳ queued\n".encode())
    one_line = "x" * 200_000 + f" https://youtu.be/{VID}"
    assert parse_inbox(one_line) == []  # absurdly long lines are text, not sources


def test_links_after_an_unclosed_fence_are_code_not_sources() -> None:
    """Markdown (and Obsidian) run an unclosed fence to the end of the file, so a link
    below one is shown as code; queuing it would surprise the person."""
    text = f"- https://youtu.be/{VID}\n```python\nprint(1)\n- https://youtu.be/bbbbbbbbbbb\n"
    assert [x.sources[0].key for x in parse_inbox(text)] == [f"youtube:{VID}"]
    closed = text.replace("print(1)\n", "print(1)\n```\n")
    assert [x.sources[0].key for x in parse_inbox(closed)] == [
        f"youtube:{VID}", "youtube:bbbbbbbbbbb"]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts /proc/self/fd (Linux)")
def test_edits_of_many_files_do_not_keep_descriptors_open(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # A note edited once (a Related back-link) must not hold its swapped-out inode open
    # until its next edit: over months that is a descriptor per note.
    import vault_tools.inbox as inbox_mod

    monkeypatch.setattr(inbox_mod, "LATE_WRITE_WINDOW", 0.0)
    files = []
    for i in range(40):
        f = tmp_path / f"note-{i}.md"
        f.write_text(f"note {i}\n")
        files.append(f)
    before = len(os.listdir("/proc/self/fd"))
    for f in files:
        edit_inbox(f, lambda t: t + "- a link back\n")
    after = len(os.listdir("/proc/self/fd"))
    inbox_mod.release_replaced()
    assert after - before <= 2, f"{after - before} descriptors left open by 40 edits"
    assert all(f.read_text().endswith("- a link back\n") for f in files)


@pytest.mark.parametrize("odd", ["\x0c", "\x0b", "\x1c", "\x1d", "\x1e", "\x85", "\u2028",
                                 "\u2029"])
def test_a_line_holding_a_character_python_calls_a_line_break_is_one_line(odd: str) -> None:
    """Obsidian breaks lines at LF, CRLF and CR only. A form feed or U+2028 inside a
    source line used to split it for the parser: the annotation went into the middle of
    the line and one more was added on every pass."""
    text = f"# Inbox\n- https://youtu.be/{VID}{odd}my note\nnext line\n"
    once = annotate(text, {1: Status("queued")}, {1: parse_inbox(text)[0].body})
    assert once == f"# Inbox\n- https://youtu.be/{VID}{odd}my note — ⏳ queued\nnext line\n"
    [line] = parse_inbox(once)
    assert (line.index, line.annotation) == (1, " — ⏳ queued")  # the next pass: no change
