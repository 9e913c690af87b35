"""Review history through regeneration, checked with the plugin's own parser.

Every check reads the files the way the Spaced Repetition plugin does
(:mod:`tests.srplugin`, a port of its parser), never through the code under test.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests import srplugin
from vault_tools.regenerate import regenerate
from vault_tools.sr_schedule import RETIRED_HEADING, SrSchedule
from vault_tools.sr_settings import SrSettings

WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
         "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
         "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu"]
FRESH = ["mercury", "venus", "earth", "mars", "jupiter", "saturn", "uranus", "neptune",
         "pluto", "ceres", "eris", "io", "europa", "titan", "triton", "phobos"]
KINDS = ["single", "reversed", "multi", "multi-reversed", "cloze"]
FATES = ["same", "answer", "reword", "gone"]


@dataclass
class Card:
    kind: str
    question: list[str]
    answer: list[str]

    def text(self) -> str:
        q, a = " ".join(self.question), " ".join(self.answer)
        if self.kind == "single":
            return f"{q}::{a}"
        if self.kind == "reversed":
            return f"{q}:::{a}"
        if self.kind == "multi":
            return f"{q}\n?\n{a}\nand more about {self.answer[0]}"
        if self.kind == "multi-reversed":
            return f"{q}\n??\n{a}"
        clozed = [f"=={w}==" if n in (1, len(self.question) - 1) else w
                  for n, w in enumerate(self.question)]
        return " ".join(clozed) + f" ({a})"


def assessment(cards: list[Card], extra: str = "") -> str:
    body = "\n\n".join(c.text() for c in cards)
    return ("---\ntype: assessment\ntags: [assessment]\n---\n\n# Topic — Assessment\n\n"
            f"## Flashcards\n\n{extra}#flashcards/topic\n\n{body}\n")


def words(pool: list[str], low: int, high: int) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(pool), min_size=low, max_size=high)


cards_st = st.lists(st.builds(Card, st.sampled_from(KINDS), words(WORDS, 6, 9),
                              words(WORDS, 2, 5)),
                    min_size=1, max_size=8, unique_by=lambda c: " ".join(c.question))


def entry(rng: random.Random) -> Callable[[str, int], str]:
    def make(question: str, k: int) -> str:
        if rng.randrange(6) == 0:
            return "2000-01-01,1,250"  # a sibling the student has not reviewed yet
        month, day = rng.randint(1, 12), rng.randint(1, 28)
        return f"2027-{month:02d}-{day:02d},{rng.randint(1, 400)},{230 + k}"
    return make


def live_and_retired(note: str) -> tuple[dict[tuple[str, int], str], dict[tuple[str, int], str]]:
    return srplugin.schedule_map(note), srplugin.schedule_map(srplugin.retired_inner(note))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cards=cards_st, data=st.data(), layout=st.sampled_from(["next", "same", "mixed"]))
def test_every_schedule_survives_regeneration_exactly(cards: list[Card], data: st.DataObject,
                                                      layout: str) -> None:
    base = assessment(cards)
    fates = [data.draw(st.sampled_from(FATES)) for _ in cards]
    own = data.draw(st.booleans())  # the student wrote a card of their own
    edit = data.draw(st.sampled_from([None, *range(len(cards))]))  # and reworded an answer
    rng = data.draw(st.randoms(use_true_random=False))
    same_line = {"next": False, "same": True}.get(layout, lambda q: rng.random() < 0.5)
    shown = [c.text() for c in cards]  # each card's text as the student has it
    if edit is not None and fates[edit] == "same":
        c = cards[edit]
        shown[edit] = Card(c.kind, c.question, [*c.answer, "mine"]).text()
    current = assessment([Card("single", ["x"], ["y"])], extra="my own card::my answer\n\n"
                         if own else "")
    current = current.replace("x::y", "\n\n".join(shown))
    current = srplugin.review_all(current, same_line, entry(rng))
    before = srplugin.schedule_map(current)

    new_cards: list[Card] = []
    origin: dict[str, str] = {}  # text of a card after regeneration -> its text before
    exact: set[str] = set()
    for card, fate, was in zip(cards, fates, shown, strict=True):
        if fate == "gone":
            continue
        if fate == "answer":
            card = Card(card.kind, card.question, [*card.answer, "revised"])
        elif fate == "reword":
            card = Card(card.kind, [*card.question[:-1], card.question[-1] + "s",
                                    card.question[-1]], card.answer)
        new_cards.append(card)
        after = was if fate == "same" else card.text()
        origin[after] = was
        if fate == "same" or (fate == "answer" and card.kind != "cloze"):
            exact.add(after)
    new_cards += data.draw(st.lists(st.builds(Card, st.sampled_from(KINDS),
                                              words(FRESH, 6, 8), words(FRESH, 2, 3)),
                                    max_size=2))
    new = assessment(new_cards)
    base_with_own = assessment([Card("single", ["x"], ["y"])]).replace(
        "x::y", "\n\n".join(c.text() for c in cards))
    assert base_with_own == base

    result = regenerate(base, current, new)
    assert result is not None
    live, retired = live_and_retired(result)
    own_card = "my own card::my answer"
    for (text, k), schedule in live.items():  # never someone else's schedule
        if text == own_card:
            assert before[(text, k)] == schedule
            continue
        assert text in origin, f"a schedule on a card that had none: {text!r}"
        assert before.get((origin[text], k)) == schedule
    for (text, k), schedule in retired.items():
        assert before.get((text, k)) == schedule
    kept = {(origin[t], k) for t, k in live if t in origin} | set(retired) | (
        {(own_card, 0)} & set(before))
    assert kept == set(before), "a schedule was lost"
    for text in exact:  # the same card: its schedule stays on it, not retired
        for (t, k), schedule in before.items():
            if t == origin[text]:
                assert live.get((text, k)) == schedule
    assert (RETIRED_HEADING in result) == bool(retired)
    assert not set(retired) & {(t, k) for t, k in live}

    # The next regeneration (base: what was generated last time) brings every card back:
    # the retired ones get their schedules again; no schedule appears or disappears.
    again = regenerate(new, result, base)
    assert again is not None
    live2, retired2 = live_and_retired(again)
    for key, schedule in retired.items():
        assert live2.get(key) == schedule
    assert sorted([*live2.values(), *retired2.values()]) == sorted(before.values())
    for (text, k), schedule in live2.items():
        assert schedule in (before.get((text, k)), before.get((origin.get(text, ""), k)))


def test_the_issues_layouts_multi_line_card_never_takes_the_cloze_schedule() -> None:
    """The reported case: a multi-line card followed by a cloze card, next-line layout."""
    base = assessment([Card("multi", "what does the talk say here".split(), ["it", "says"]),
                       Card("cloze", "the window grows by one segment".split(), ["x"])])
    current = srplugin.review_all(base, False, lambda q, k: f"2027-01-0{1 + len(q) % 8},3,250")
    merged = regenerate(base, current, base)
    assert merged is not None
    assert srplugin.schedule_map(merged) == srplugin.schedule_map(current)
    assert len(srplugin.schedule_map(merged)) == 3  # multi + two cloze deletions


def test_a_reworded_card_between_two_similar_ones_gets_no_schedule() -> None:
    one = Card("single", "alpha bravo charlie delta echo one".split(), ["a"])
    two = Card("single", "alpha bravo charlie delta echo two".split(), ["b"])
    base = assessment([one, two])
    current = srplugin.review_all(base, True, lambda q, k: f"2027-02-0{1 + len(q) % 8},9,250")
    new = assessment([Card("single", "alpha bravo charlie delta echo".split(), ["c"])])
    merged = regenerate(base, current, new)
    assert merged is not None
    live, retired = live_and_retired(merged)
    assert live == {}  # ambiguous: attached to neither
    assert retired == srplugin.schedule_map(current)


def test_retired_cards_sit_in_a_code_block_the_plugin_skips_and_come_back() -> None:
    keep = Card("single", "what is kept in the note".split(), ["this"])
    gone = Card("multi-reversed", "which card leaves the deck".split(), ["that", "one"])
    base = assessment([keep, gone])
    current = srplugin.review_all(base, False, lambda q, k: f"2027-03-1{k},{len(q)},250")
    without = assessment([keep])
    merged = regenerate(base, current, without)
    assert merged is not None
    assert merged.rstrip().endswith("```")
    assert "## Retired cards" in merged and "which card leaves the deck\n??" in merged
    assert [c.question for c in srplugin.cards(merged)] == ["what is kept in the note::this"]
    back = regenerate(merged, merged, base)
    assert back is not None
    assert srplugin.schedule_map(back) == srplugin.schedule_map(current)
    assert "Retired cards" not in back


def test_take_then_put_is_the_identity_on_a_scheduled_note() -> None:
    text = assessment([Card(k, f"{k} question words here now".split(), ["ans"]) for k in KINDS])
    for same in (False, True):
        scheduled = srplugin.review_all(text, same, lambda q, k: f"2027-04-0{k + 1},2,250")
        _, body = scheduled.split("---\n", 2)[1:]
        stripped, sched = SrSchedule.take(body)
        assert "<!--SR:" not in stripped
        assert sched.put(stripped) == body


def test_settings_come_from_the_plugins_data_json() -> None:
    s = SrSettings.from_data_json('{"settings": {"flashcardTags": ["#cards", "#deck"], '
                                  '"tagsToReview": ["#later"], "clozePatterns": '
                                  '["==[123;;]answer[;;hint]==", "**[123;;]answer[;;hint]**"]}}')
    assert s.flashcard_tags == ("#cards", "#deck") and s.review_tags == ("#later",)
    assert s.is_plugin_tag("deck/biology") and s.is_plugin_tag("Later")
    assert not s.is_plugin_tag("review")  # not this user's review tag
    assert SrSettings.from_data_json(None) == SrSettings()
    assert SrSettings.from_data_json("{not json") == SrSettings()
    assert SrSettings().is_plugin_tag("review") and SrSettings().is_plugin_tag("flashcards/x")
    bold = s.cloze_patterns
    body = "Plain line\n\nThe **bold** word is a cloze here\n<!--SR:!2027-05-01,4,250-->\n"
    stripped, sched = SrSchedule.take(body, s)
    assert "SR:" not in stripped and len(sched.live) == 1 and len(bold) == 2
    opts = srplugin.Options(cloze_patterns=list(bold))
    assert srplugin.schedule_map(sched.put(stripped), opts) == srplugin.schedule_map(body, opts)


def test_a_users_own_retired_cards_heading_is_their_text() -> None:
    mine = "## Retired cards\n\nMy list of cards I stopped using:\n\n```\nold::card\n```\n"
    card = Card("single", "what stays in this deck".split(), ["yes"])
    base = assessment([card])
    current = srplugin.review_all(base, False, lambda q, k: "2027-06-01,5,250") + "\n" + mine
    merged = regenerate(base, current, assessment([Card("single", card.question, ["yes!"])]))
    assert merged is not None and merged.count("## Retired cards") == 1
    assert merged.endswith(mine)
    assert srplugin.schedule_map(merged) == {("what stays in this deck::yes!", 0):
                                             "2027-06-01,5,250"}


LINE = st.one_of(
    st.sampled_from(["", "", "", "?", "??", "## Heading", "> [!answer]- Answer", "```", "~~~",
                     "<!-- a comment -->", "`code :: span` here", "> quoted::callout card",
                     "#flashcards/deck", "text with ==a cloze== in it", "==one== and ==two==",
                     "plain words here", "more plain words"]),
    st.builds(lambda a, b: f"{a}::{b}", st.sampled_from(WORDS), st.sampled_from(WORDS)),
    st.builds(lambda a, b: f"{a} {b}:::{a}", st.sampled_from(WORDS), st.sampled_from(WORDS)),
    st.builds(lambda a, b: f"{a} {b} words", st.sampled_from(WORDS), st.sampled_from(WORDS)),
)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(LINE, min_size=1, max_size=30), data=st.data())
def test_cards_are_found_as_the_plugin_finds_them(lines: list[str], data: st.DataObject
                                                  ) -> None:
    """Any text the plugin has scheduled: taking the schedules out and putting them back
    gives every card, as the plugin reads it, the schedule it had."""
    questions = [q.text for q in srplugin.parse("\n".join(lines))]
    assume(len(set(questions)) == len(questions))  # the plugin mixes up identical cards
    rng = data.draw(st.randoms(use_true_random=False))
    body = srplugin.review_all("\n".join(lines), lambda q: rng.random() < 0.5,
                               lambda q, k: f"2027-0{1 + k % 9}-1{rng.randrange(10)},3,250")
    stripped, sched = SrSchedule.take(body)
    assert "<!--SR:" not in "\n".join(
        ln for q in srplugin.parse(stripped) for ln in q.text.split("\n"))
    out = sched.put(stripped)
    assert srplugin.schedule_map(out) == srplugin.schedule_map(body)
    assert sorted(srplugin.schedule_map(srplugin.retired_inner(out)).values()) == []
