"""The daemon-owned Related region of a study note (pure text functions).

What a user relies on: links are only ever added between the two marker lines, never
anywhere else, their own text (inside or outside the region) is kept byte for byte, and
a note whose region they removed or broke is left alone.
"""

from __future__ import annotations

from vault_tools import related
from vault_tools.related import END, MAX_LINKS, PLACEHOLDER, START, add_link, links_in_region

BODY = "# Title\n\nSome text about [[Entropy]].\n"


def test_new_section_lists_targets_or_a_placeholder() -> None:
    text = related.with_section(BODY, ["Gradient descent", "ML/Loss"])
    assert text.endswith(f"## Related\n\n{START}\n- [[Gradient descent]]\n- [[ML/Loss]]\n{END}\n")
    assert links_in_region(text) == ["Gradient descent", "ML/Loss"]
    empty = related.with_section(BODY, [])
    assert PLACEHOLDER in empty and links_in_region(empty) == []


def test_add_link_inserts_only_inside_the_region() -> None:
    text = related.with_section(BODY, ["A"]) + "\n## My notes\n\nMine.\n"
    out = add_link(text, "New note")
    assert out is not None
    assert out == text.replace(f"- [[A]]\n{END}", f"- [[A]]\n- [[New note]]\n{END}")
    assert links_in_region(out) == ["A", "New note"]


def test_placeholder_is_replaced_and_crlf_kept() -> None:
    text = related.with_section(BODY, []).replace("\n", "\r\n")
    out = add_link(text, "B")
    assert out is not None and PLACEHOLDER not in out
    assert f"{START}\r\n- [[B]]\r\n{END}\r\n" in out
    assert out.count("\r\n") == out.count("\n")  # no bare LF introduced


def test_user_text_inside_the_region_is_kept() -> None:
    text = related.with_section(BODY, ["A"]).replace(
        "- [[A]]\n", "- [[A]]\nmy own remark: compare with chapter 3\n")
    out = add_link(text, "B")
    assert out is not None and "my own remark: compare with chapter 3\n- [[B]]\n" in out


def test_nothing_added_when_it_must_not_be() -> None:
    with_region = related.with_section(BODY, ["A"])
    assert add_link(with_region, "a") is None  # already in the list (any case)
    assert add_link(with_region, "Entropy") is None  # already linked in the text
    assert add_link(with_region.replace("[[Entropy]]", "[[Entropy|heat]]"), "Entropy") is None
    assert add_link(BODY, "B") is None  # no region: the user removed it
    assert add_link(with_region.replace(END, ""), "B") is None  # broken region
    twice = with_region + "\n" + related.section(["C"])
    assert add_link(twice, "B") is None  # ambiguous: two regions
    swapped = with_region.replace(START, "@@").replace(END, START).replace("@@", END)
    assert add_link(swapped, "B") is None
    full = related.with_section(BODY, [f"N{i}" for i in range(MAX_LINKS)])
    assert add_link(full, "B") is None


def test_marker_text_quoted_by_the_model_does_not_open_a_second_region() -> None:
    hostile = BODY + f"\n> quoted {START} inline\n"
    text = related.with_section(hostile, ["A"])
    out = add_link(text, "B")  # the inline mention is not a marker line
    assert out is not None and links_in_region(out) == ["A", "B"]
