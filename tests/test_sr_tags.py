"""Generated tags never trigger the Spaced Repetition plugin, and never pair words
across a function word."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

from daemon.config import CONFIG_RELPATH, render_default_config
from daemon.generate.base import GenerationContext
from daemon.generate.offline import OfflineBackend
from tests import srplugin
from tests.helpers import vaultd, vaultd_env
from vault_tools import frontmatter
from vault_tools.models import Segment, SourceMeta, Transcript
from vault_tools.notes import topic_tags
from vault_tools.sr_settings import DATA_JSON, SrSettings


def test_topic_tags_drop_the_plugins_default_and_configured_tags() -> None:
    tags = ["video-notes", "review", "Flashcards", "flashcards/deck", "memory", "cards/x"]
    assert topic_tags(tags) == ["video-notes", "memory", "cards/x"]
    mine = SrSettings.from_data_json(json.dumps(
        {"settings": {"flashcardTags": ["#cards"], "tagsToReview": ["#memory"]}}))
    assert topic_tags(tags, mine) == ["video-notes", "review", "Flashcards",
                                      "flashcards/deck"]


def test_the_spaced_repetition_lecture_is_neither_a_deck_nor_in_review(tmp_path: Path
                                                                        ) -> None:
    """The demo's spaced-repetition lecture names 'review', 'card' and 'memory' as key
    terms. In a vault whose plugin uses #card and #memory too, the study note carries
    none of them, and the assessment is still a card source with all its cards."""
    vault = tmp_path / "vault"
    (vault / "Lectures").mkdir(parents=True)
    sample = resources.files("daemon") / "samples" / "spaced-repetition.txt"
    (vault / "Lectures" / "spaced-repetition.txt").write_bytes(sample.read_bytes())
    (vault / CONFIG_RELPATH).parent.mkdir(parents=True)
    (vault / CONFIG_RELPATH).write_text(
        render_default_config().replace('# backend = "auto"', 'backend = "offline"'))
    (vault / DATA_JSON).parent.mkdir(parents=True)
    (vault / DATA_JSON).write_text(json.dumps({"settings": {
        "flashcardTags": ["#flashcards", "#memory"], "tagsToReview": ["#review", "#card"]}}))
    (vault / "inbox.md").write_text("- [[Lectures/spaced-repetition.txt]]\n")
    env = vaultd_env(tmp_path / "state")
    run = vaultd("run", "--once", "--vault", str(vault), env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    note = vault / "Study Notes" / "Spaced repetition.md"
    data, body = frontmatter.split(note.read_text(encoding="utf-8"))
    tags = [str(t).casefold() for t in data["tags"]]
    assert tags and not {"review", "card", "memory", "flashcards"} & set(tags), tags
    assert not re.search(r"(?<!\\)#(?:flashcards|review|card|memory)\b", body)
    assert "spaced repetition" in data["concepts"]  # the concepts themselves stay
    assessment = (vault / "Study Notes" / "Spaced repetition (Assessment).md").read_text()
    assert re.search(r"^#flashcards/spaced-repetition$", assessment, re.M)
    assert len(srplugin.parse(srplugin.blank_frontmatter(assessment))) == 16


def test_word_pairs_never_span_a_function_word() -> None:
    text = ("Binary search keeps a low index and a high index. The middle is low plus high "
            "divided by two. If the target is larger, low becomes middle plus one. Otherwise "
            "high becomes middle minus one. We compute low plus high divided by two again at "
            "every step of binary search. Each step halves the interval, so binary search "
            "takes logarithmic time. Remember, the middle is low plus high divided by two, "
            "rounded down. A sorted array is required for binary search on the interval.")
    sentences = [s.strip() + "." for s in text.split(".") if s.strip()]
    segments = [Segment(i * 5.0, 5.0, s) for i, s in enumerate(sentences)]
    meta = SourceMeta(key="file:Subs/search.srt", kind="file", title="Binary search",
                      file_path="Subs/search.srt", duration=len(segments) * 5.0)
    content = OfflineBackend().generate(Transcript(segments), meta,
                                       GenerationContext(config={}, state_dir=""))
    assert "binary-search" in content.tags
    for tag in content.tags:
        words = tag.split("-")
        assert not {"plus", "minus", "divided"} & set(words), content.tags
    assert not [t for t in content.key_terms if re.search(r"\b(?:plus|divided)\b", t)]


def test_the_assessment_deck_line_uses_the_vaults_flashcard_tag() -> None:
    body = "## Flashcards\n\n#flashcards/binary-search\n\nQ::A\n"
    assert SrSettings().deck_body(body) == body
    cards = SrSettings.from_data_json('{"settings": {"flashcardTags": ["#cards", "#x"]}}')
    moved = cards.deck_body(body)
    assert "\n#cards/binary-search\n" in moved and "#flashcards" not in moved
    both = SrSettings.from_data_json('{"settings": {"flashcardTags": ["#x", "#flashcards"]}}')
    assert both.deck_body(body) == body


def test_plugin_settings_are_read_from_the_vault_only(tmp_path: Path) -> None:
    vault, outside = tmp_path / "vault", tmp_path / "elsewhere.json"
    outside.write_text('{"settings": {"tagsToReview": ["#outside"]}}')
    (vault / DATA_JSON).parent.mkdir(parents=True)
    assert SrSettings.load(vault) == SrSettings()  # no file: the plugin's defaults
    (vault / DATA_JSON).symlink_to(outside)
    assert SrSettings.load(vault) == SrSettings()
    (vault / DATA_JSON).unlink()
    (vault / DATA_JSON).write_text('{"settings": {"tagsToReview": ["#later"]}}')
    assert SrSettings.load(vault).review_tags == ("#later",)
