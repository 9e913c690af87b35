"""The daemon-owned Related region of a study note (pure text functions).

What a user relies on: links are only ever added between the two marker lines, never
anywhere else, their own text (inside or outside the region) is kept byte for byte, and
a note whose region they removed or broke is left alone.
"""

from __future__ import annotations

from vault_tools import related
from vault_tools.related import MAX_LINKS, PLACEHOLDER, end_marker, links_in_region, start_marker

BODY = "# Title\n\nSome text about [[Entropy]].\n"
TAG = related.region_tag(b"0" * 64, "youtube:DDDDDDDDDDD")
START, END = start_marker(TAG), end_marker(TAG)


def add_link(text: str, target: str) -> str | None:
    return related.add_link(text, target, TAG)


def test_new_section_lists_targets_or_a_placeholder() -> None:
    text = related.with_section(BODY, ["Gradient descent", "ML/Loss"], TAG)
    assert text.endswith(f"## Related\n\n{START}\n- [[Gradient descent]]\n- [[ML/Loss]]\n{END}\n")
    assert links_in_region(text) == ["Gradient descent", "ML/Loss"]
    empty = related.with_section(BODY, [], TAG)
    assert PLACEHOLDER in empty and links_in_region(empty) == []


def test_add_link_inserts_only_inside_the_region() -> None:
    text = related.with_section(BODY, ["A"], TAG) + "\n## My notes\n\nMine.\n"
    out = add_link(text, "New note")
    assert out is not None
    assert out == text.replace(f"- [[A]]\n{END}", f"- [[A]]\n- [[New note]]\n{END}")
    assert links_in_region(out) == ["A", "New note"]


def test_placeholder_is_replaced_and_crlf_kept() -> None:
    text = related.with_section(BODY, [], TAG).replace("\n", "\r\n")
    out = add_link(text, "B")
    assert out is not None and PLACEHOLDER not in out
    assert f"{START}\r\n- [[B]]\r\n{END}\r\n" in out
    assert out.count("\r\n") == out.count("\n")  # no bare LF introduced


def test_user_text_inside_the_region_is_kept() -> None:
    text = related.with_section(BODY, ["A"], TAG).replace(
        "- [[A]]\n", "- [[A]]\nmy own remark: compare with chapter 3\n")
    out = add_link(text, "B")
    assert out is not None and "my own remark: compare with chapter 3\n- [[B]]\n" in out


def test_nothing_added_when_it_must_not_be() -> None:
    with_region = related.with_section(BODY, ["A"], TAG)
    assert add_link(with_region, "a") is None  # already in the list (any case)
    assert add_link(with_region, "Entropy") is None  # already linked in the text
    assert add_link(with_region.replace("[[Entropy]]", "[[Entropy|heat]]"), "Entropy") is None
    assert add_link(BODY, "B") is None  # no region: the user removed it
    assert add_link(with_region.replace(END, ""), "B") is None  # broken region
    twice = with_region + "\n" + related.section(["C"], TAG)
    assert add_link(twice, "B") is None  # ambiguous: two regions
    swapped = with_region.replace(START, "@@").replace(END, START).replace("@@", END)
    assert add_link(swapped, "B") is None
    full = related.with_section(BODY, [f"N{i}" for i in range(MAX_LINKS)], TAG)
    assert add_link(full, "B") is None


def test_marker_text_quoted_by_the_model_does_not_open_a_second_region() -> None:
    hostile = BODY + f"\n> quoted {START} inline\n"
    text = related.with_section(hostile, ["A"], TAG)
    out = add_link(text, "B")  # the inline mention is not a marker line
    assert out is not None and links_in_region(out) == ["A", "B"]
