"""Three-way merge: both sides' changes survive, nothing either side added is lost."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vault_tools.merge import merge3, merge3_text


def test_disjoint_changes_are_both_applied() -> None:
    base = ["a", "b", "c"]
    assert merge3(base, ["a", "b — ok", "c"], ["a", "b", "c", "new"]) == \
        ["a", "b — ok", "c", "new"]


def test_both_appending_keeps_both() -> None:
    assert merge3(["a"], ["a", "ours"], ["a", "theirs"]) == ["a", "ours", "theirs"]


def test_same_line_changed_both_ways_keeps_both_versions() -> None:
    assert merge3(["a", "b", "c"], ["a", "B1", "c"], ["a", "B2", "c"]) == ["a", "B1", "B2", "c"]


def test_text_merge_handles_missing_final_newline() -> None:
    assert merge3_text("a", "a — x", "a\nL1\n") == "a — x\nL1\n"


lines = st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f"]), max_size=8)


@given(lines, st.data())
def test_property_lines_added_by_either_side_survive(base: list[str], data: st.DataObject
                                                     ) -> None:
    def edit(seed_lines: list[str], tag: str) -> list[str]:
        out = list(seed_lines)
        for _ in range(data.draw(st.integers(0, 3))):
            if out and data.draw(st.booleans()):
                i = data.draw(st.integers(0, len(out) - 1))
                out[i] = f"{out[i]}-{tag}"
            else:
                out.insert(data.draw(st.integers(0, len(out))), f"new-{tag}-{len(out)}")
        return out

    ours, theirs = edit(base, "o"), edit(base, "t")
    merged = merge3(base, ours, theirs)
    for line in ours + theirs:
        if line not in base:
            assert line in merged
