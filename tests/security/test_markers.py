"""Region markers cannot be forged: generated text never creates a region vaultd edits.

The attack: a model reply, a transcript or a video title carries vaultd's own hidden
region lines (``%% vaultd:related %%`` ... ``%% vaultd:related-end %%``). If they reach
the note and the user deletes the real pair (the documented way to opt out of
back-links), vaultd would edit inside the planted pair. Two layers stop it, and both
are tested: the sanitiser strips marker lines (and an unbalanced ``%%``) from generated
text, and the region vaultd edits is recognised by a tag only the daemon can compute.

The end-to-end cases run the real writer, ledger, watcher and graph keeper on a temp
vault (the harness of tests/test_writer.py); the Claude cases generate through the real
``anthropic`` SDK against the loopback Messages stand-in.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fake_anthropic import FakeAnthropic, Reply, text  # noqa: E402

from daemon.config import Config  # noqa: E402
from daemon.generate.base import GenerationContext  # noqa: E402
from daemon.generate.claude import ClaudeBackend  # noqa: E402
from tests.test_e2e_stand_ins import study_model  # noqa: E402
from tests.test_writer import SAMPLES, Harness, make_content  # noqa: E402
from vault_tools import related, sanitize  # noqa: E402
from vault_tools.models import SourceMeta, VideoContent  # noqa: E402
from vault_tools.sanitize import sanitize_markdown  # noqa: E402
from vault_tools.subtitles import parse_subtitles  # noqa: E402

KEY = "sk-ant-test-markers-0123456789abcdef"
PLANTED = "%% vaultd:related %%\n- [[Planted]]\n%% vaultd:related-end %%"
SPELLINGS = [
    "%% vaultd:related %%", "%%vaultd:related%%", "%%  VAULTD:Related  %%",
    "%% vaultd : related-end %%", "\t%% Vaultd:related-end %%  ",
    "%% vaultd:related 0123456789abcdef0123 %%", "%%\u00a0vaultd:related\u00a0%%",
]
MARKER_LINE = re.compile(r"^\s*%%.*vaultd.*%%\s*$", re.I | re.M)


# --------------------------------------------------------------------------- sanitiser


@pytest.mark.parametrize("marker", SPELLINGS)
def test_the_sanitiser_removes_marker_lines_in_any_spelling(marker: str) -> None:
    body = f"# Notes\n\nIntro.\n{marker}\n- [[Planted]]\nMore text.\n"
    out = sanitize_markdown(body)
    assert "vaultd" not in out.lower()
    assert out == "# Notes\n\nIntro.\n- [[Planted]]\nMore text.\n"
    assert sanitize_markdown(out) == out


def test_a_marker_inside_a_line_goes_and_the_words_stay() -> None:
    out = sanitize_markdown("Before %% vaultd:related %% after.\n")
    assert out == "Before  after.\n"


def test_an_unbalanced_comment_cannot_hide_what_follows() -> None:
    body = "Visible.\n\nA %% comment that never closes\n\n## Key terms\n\n- ATP\n"
    out = sanitize.strip_region_markers(body)
    assert out.count("%%") == 0 and "## Key terms" in out
    balanced = "Keep %%this hidden%% here.\n```matlab\n%% a code cell\n```\n"
    assert sanitize.strip_region_markers(balanced) == balanced  # paired, and code is not a comment


# --------------------------------------------------------------------------- the region


def opt_out(note: str) -> str:
    """What the docs tell a user to do: delete vaultd's (last) pair of marker lines."""
    lines = note.split("\n")
    marks = [i for i, line in enumerate(lines) if MARKER_LINE.match(line)]
    assert len(marks) >= 2, note
    return "\n".join(line for i, line in enumerate(lines) if i not in marks[-2:])


def test_a_planted_pair_is_never_an_edit_target() -> None:
    TAG = related.region_tag(b"k" * 64, "youtube:DDDDDDDDDDD")  # noqa: N806
    guessed = related.region_tag(b"guess" * 8, "youtube:DDDDDDDDDDD")
    for planted in (PLANTED, PLANTED.replace("related %%", f"related {guessed} %%")
                    .replace("related-end %%", f"related-end {guessed} %%")):
        note = related.with_section(f"# A\n\n{planted}\n\nBody.\n", ["X"], TAG)
        assert related.add_link(note, "New", TAG) is not None  # the real region works
        assert related.add_link(opt_out(note), "New", TAG) is None  # opted out: untouched
        assert related.add_link(opt_out(note), "New", TAG, legacy_base=note) is None


def test_a_note_from_before_tags_keeps_its_back_links_and_gets_tagged() -> None:
    TAG = related.region_tag(b"k" * 64, "youtube:DDDDDDDDDDD")  # noqa: N806
    legacy = f"# A\n\nBody.\n\n## Related\n\n{related.START}\n- [[X]]\n{related.END}\n"
    out = related.add_link(legacy, "New", TAG, legacy_base=legacy)
    assert out == related.with_section("# A\n\nBody.", ["X", "New"], TAG)
    assert related.add_link(legacy, "New", TAG) is None  # without the base: not provably ours
    # vaultd once wrote a planted pair too (two pairs in its own text): never trusted.
    planted = legacy.replace("Body.", PLANTED)
    assert related.add_link(opt_out(planted), "New", TAG, legacy_base=planted) is None


# --------------------------------------------------------------------------- end to end


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    v = tmp_path / "vault"
    (v / ".vaultd").mkdir(parents=True)
    (v / ".vaultd" / "config.toml").write_text("[pdf]\nenabled = false\n")
    return v


@pytest.fixture
def h(vault: Path, tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(vault, tmp_path / "state").start()
    yield harness
    harness.stop()


def with_markers(reply: Reply) -> Reply:
    """The stand-in model's study note, with vaultd's marker lines planted inside."""
    assert reply.text is not None
    if "<note>" not in reply.text:
        return reply
    planted = reply.text.replace("\n## Definitions", f"\n{PLANTED}\n\n## Definitions", 1)
    assert planted != reply.text
    return text(planted)


def claude_content(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, title: str,
                   responder: Callable[[dict[str, Any]], Reply]) -> VideoContent:
    srt = (SAMPLES / "photosynthesis.srt").read_text()
    transcript = parse_subtitles(srt, "x.srt")
    meta = SourceMeta(key="youtube:DDDDDDDDDDD", kind="youtube", title=title,
                      url="https://www.youtube.com/watch?v=DDDDDDDDDDD",
                      video_id="DDDDDDDDDDD", duration=transcript.end, channel="Bio Lab")
    cfg = Config.defaults().to_dict()
    cfg["generate"].update({"retry_max_wait_seconds": 0.05, "model": "claude-sonnet-5-5"})
    with FakeAnthropic(responder) as fake:
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
        content = ClaudeBackend(cfg, str(tmp_path)).generate(
            transcript, meta, GenerationContext(config=cfg, state_dir=str(tmp_path)))
    assert content.model == "claude-sonnet-5-5"
    return content


def offline_transcript_content() -> VideoContent:
    srt = (SAMPLES / "photosynthesis.srt").read_text()
    cues = "".join(f"\n\n{900 + i}\n00:09:{i * 5:02d},000 --> 00:09:{i * 5 + 4:02d},000\n"
                   f"{line}\n" for i, line in enumerate(PLANTED.split("\n")))
    return make_content("Cell energy", video_id="DDDDDDDDDDD", text=srt + cues)


SOURCES = ["model reply (Claude)", "video title (Claude)", "transcript (offline)"]


@pytest.mark.parametrize("source", SOURCES)
def test_marker_injection_never_creates_a_region_vaultd_edits(
        source: str, h: Harness, vault: Path, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    if source == "model reply (Claude)":
        content = claude_content(monkeypatch, tmp_path, "Cell energy",
                                 lambda body: with_markers(study_model(body)))
    elif source == "video title (Claude)":
        title = "Cell energy " + "x" * 60 + " %% vaultd:related %% " + "y" * 60
        content = claude_content(monkeypatch, tmp_path, title, study_model)
    else:
        content = offline_transcript_content()
    note_a = vault / h.done(h.generate(content))
    written = note_a.read_text()
    assert len(MARKER_LINE.findall(written)) == 2, written  # only vaultd's own pair

    # The user opts out of back-links on A; C keeps its region (the control).
    opted_out = opt_out(written)
    note_a.write_text(opted_out)
    note_c = vault / h.done(h.generate(make_content("Plant pigments", video_id="FFFFFFFFFFF")))
    assert h.writer.wait_idle(10)
    before_c = note_c.read_text()
    h.done(h.generate(make_content("Light reactions", video_id="EEEEEEEEEEE")))
    assert h.writer.wait_idle(10)
    assert "Light reactions" in related.links_in_region(note_c.read_text()), before_c
    assert note_a.read_text() == opted_out
