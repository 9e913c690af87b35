"""Linker edge cases: markdown regions, overlaps, Unicode, aliases, the note itself."""

from __future__ import annotations

import pytest

from vault_tools.links import Linker, fold

NOTES = [
    ("Memory", (), "Memory"),
    ("Working Memory", ("WM", "short-term memory"), "Working Memory"),
    ("Long-Term Potentiation", ("LTP",), "Long-Term Potentiation"),
    ("Ökonomie", ("Volkswirtschaft",), "Ökonomie"),
    ("Теория вероятностей", ("теория",), "Теория вероятностей"),
    ("C++", (), "C++"),
    ("Node.js", (), "Node.js"),
    ("AI", (), "AI"),
    ("Spaced Repetition", (), "Spaced Repetition"),
]


@pytest.fixture()
def linker() -> Linker:
    return Linker(NOTES)


def test_plain_mention_and_surface_text(linker: Linker) -> None:
    assert linker.link("We study memory today.") == "We study [[Memory|memory]] today."
    assert linker.link("Memory matters.") == "[[Memory]] matters."


def test_longest_match_wins(linker: Linker) -> None:
    assert linker.link("Working memory is small.") == (
        "[[Working Memory|Working memory]] is small."
    )
    # "Memory" alone later is a different note and still gets its first mention linked.
    assert linker.link("Working Memory and memory.") == "[[Working Memory]] and [[Memory|memory]]."


def test_first_mention_only_and_aliases_share_the_target(linker: Linker) -> None:
    text = "WM is working memory. Working memory again. Memory, memory."
    assert linker.link(text) == (
        "[[Working Memory|WM]] is working memory. Working memory again. [[Memory]], memory."
    )


def test_existing_links_count_as_mentioned(linker: Linker) -> None:
    text = "See [[Memory]] first; memory later. Also [[Working Memory#Capacity|cap]], WM."
    assert linker.link(text) == text


def test_never_the_note_itself(linker: Linker) -> None:
    assert linker.link("Memory and working memory.", self_title="Memory") == (
        "Memory and [[Working Memory|working memory]]."
    )
    assert linker.link("WM: working memory.", self_title="working memory") == (
        "WM: working memory."
    )


def test_whole_words_only(linker: Linker) -> None:
    text = "Memoryless, memorybank, AIs, said, Node.json, C++x? no: cmemory"
    assert "[[" not in linker.link(text).replace("[[C++]]", "")
    assert linker.link("pre-memory state") == "pre-[[Memory|memory]] state"
    assert linker.link("snake_memory_case") == "snake_memory_case"


def test_case_insensitive_and_unicode(linker: Linker) -> None:
    assert linker.link("Die ÖKONOMIE wächst.") == "Die [[Ökonomie|ÖKONOMIE]] wächst."
    assert linker.link("Die VOLKSWIRTSCHAFT.") == "Die [[Ökonomie|VOLKSWIRTSCHAFT]]."
    assert linker.link("ТЕОРИЯ ВЕРОЯТНОСТЕЙ и теория.") == (
        "[[Теория вероятностей|ТЕОРИЯ ВЕРОЯТНОСТЕЙ]] и теория."
    )
    decomposed = "Die O\u0308konomie."  # NFD text still matches an NFC title
    assert linker.link(decomposed) == "Die [[Ökonomie|O\u0308konomie]]."
    assert fold("Straße") == "straße" and len(fold("İstanbul ẞ")) == len("İstanbul ẞ")


def test_punctuation_in_titles_and_around_mentions(linker: Linker) -> None:
    assert linker.link("I like C++ and Node.js.") == "I like [[C++]] and [[Node.js]]."
    assert linker.link('(memory), "memory"') == '([[Memory|memory]]), "memory"'
    assert linker.link("long-term potentiation (LTP)") == (
        "[[Long-Term Potentiation|long-term potentiation]] (LTP)"
    )
    # Blanks between words may differ, a line break may not.
    assert linker.link("spaced   repetition") == "[[Spaced Repetition|spaced   repetition]]"
    assert linker.link("spaced\nrepetition") == "spaced\nrepetition"


def test_short_acronyms_need_exact_case(linker: Linker) -> None:
    assert linker.link("ai is not AI.") == "ai is not [[AI]]."


@pytest.mark.parametrize(
    "text",
    [
        "---\ntitle: Memory\naliases: [memory]\n---\n",
        "```\nmemory in fenced code\n```\n",
        "> ```python\n> memory = 1\n> ```\n",
        "~~~\nmemory\n~~~\n",
        "Para.\n\n    memory in indented code\n",
        "Inline `memory` code and ``a ` memory`` too.",
        "[memory](https://example.com/memory) and [text](Memory.md)",
        "![memory](memory.png)",
        "[[Other|memory]] and ![[memory]]",
        "https://example.com/memory and www.memory.org",
        '<https://memory.example> <span title="memory">',
        '<a href="x">memory</a>',
        "# Memory heading\n## working memory\n",
        "Memory setext\n===\n",
        "> [!note] Memory callout title\n",
        "$memory$ and $$memory$$\n$$\nmemory\n$$\n",
        "#memory tag and #topic/memory",
        "text ^memory",
        "Footnote[^memory].",
        "<!--SR:memory-->",
        "%% memory %%",
        "[ref]: https://memory.example",
        "Memory:: value\n[memory:: x] (memory:: y)",
    ],
)
def test_protected_regions_are_not_linked(linker: Linker, text: str) -> None:
    assert linker.link(text) == text


def test_regions_do_not_leak(linker: Linker) -> None:
    text = (
        "# Memory\n\n```\nmemory\n```\n\n> [!tip] Memory\n> memory inside callout body\n\n"
        "`memory` then memory in prose."
    )
    assert linker.link(text) == text.replace("memory inside", "[[Memory|memory]] inside")


def test_flashcards_link_around_the_separator(linker: Linker) -> None:
    out = linker.link("What is working memory?::A store of memory.")
    assert out == "What is [[Working Memory|working memory]]?::A store of [[Memory|memory]]."
    assert linker.link("Q:::working memory") == "Q:::[[Working Memory|working memory]]"


def test_table_cells_escape_the_pipe(linker: Linker) -> None:
    text = "| Term | Note |\n|---|---|\n| memory | x |\n"
    assert linker.link(text) == "| Term | Note |\n|---|---|\n| [[Memory\\|memory]] | x |\n"


def test_ambiguous_surface_prefers_titles_then_gives_up() -> None:
    linker = Linker(
        [
            ("Memory", (), "Memory"),
            ("Recall", ("memory",), "Recall"),
            ("A", ("retrieval",), "A/Notes"),
            ("B", ("retrieval",), "B/Notes"),
        ]
    )
    assert linker.link("memory and retrieval") == "[[Memory|memory]] and retrieval"


def test_add_and_remove_incrementally() -> None:
    linker = Linker()
    assert linker.link("memory") == "memory"
    linker.add("Memory", ["recall"])
    assert linker.link("recall") == "[[Memory|recall]]"
    linker.add("Memory", [])  # re-adding replaces the aliases
    assert linker.link("recall") == "recall"
    linker.remove("Memory")
    assert linker.link("memory") == "memory" and len(linker) == 0


def test_targets_with_folders_and_bad_characters() -> None:
    linker = Linker(
        [
            ("Memory", (), "Psych/Memory"),
            ("Bad|Name", (), "Bad|Name"),
            ("ok", ["x[y]"], "Fine Name"),
        ]
    )
    assert linker.link("memory, bad|name, x[y]") == "[[Psych/Memory|memory]], bad|name, x[y]"
    assert linker.link("memory", self_title="Memory") == "memory"


def test_candidates_rank_by_mentions(linker: Linker) -> None:
    text = "memory memory memory. WM, working memory. C++ `memory`"
    assert linker.candidates(text, 2) == [("Memory", 3), ("Working Memory", 2)]
    assert linker.candidates(text, 10, self_title="Memory")[0] == ("Working Memory", 2)
    assert linker.candidates("nothing here", 5) == []


def test_text_without_any_mentions_is_returned_unchanged(linker: Linker) -> None:
    text = "Nothing to see [here](http://x) `y` *z*\n"
    assert linker.link(text) == text
