"""Links in the inbox that make no note (issue 17, item 7): a Vimeo link stays the
user's text but ``status`` and ``doctor`` say why there is no note; a YouTube channel page
gets a line annotation saying how to follow it. Through the real CLI on a temp vault."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import lecture_srt, vaultd, vaultd_env
from vault_tools.unhandled import unhandled_links

UC = "UCHnyfMqiRRG1u-2MsSQLbXA"
INBOX = ("# Inbox\n\n"
         "- https://vimeo.com/76979871 the talk from class\n"
         "- https://www.youtube.com/@veritasium\n"
         f"- https://www.youtube.com/channel/{UC}\n"
         "- [[Lectures/gravity.srt]]\n"
         "```\nhttps://vimeo.com/1 in a code block: not listed\n```\n")


def test_unhandled_links_are_explained_and_channels_offer_to_follow(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    (vault / "Lectures").mkdir(parents=True)
    (vault / "Lectures" / "gravity.srt").write_text(lecture_srt("gravity", 60))
    (vault / "inbox.md").write_text(INBOX)
    env = vaultd_env(tmp_path / "state")
    assert vaultd("run", "--vault", str(vault), "--once", env=env).returncode == 0
    lines = (vault / "inbox.md").read_text().splitlines()
    assert lines[2] == "- https://vimeo.com/76979871 the talk from class"  # untouched
    assert lines[3].startswith("- https://www.youtube.com/@veritasium — ➕ a channel, not "
                               "a video; to follow it, add its channel id")
    assert "subscriptions.channels in .vaultd/config.toml" in lines[3]
    assert lines[4] == (f"- https://www.youtube.com/channel/{UC} — ➕ a channel, not a "
                        f'video; to follow it, add "{UC}" to subscriptions.channels in '
                        ".vaultd/config.toml")
    assert "✅" in lines[5]
    assert lines[7] == "https://vimeo.com/1 in a code block: not listed"
    before = (vault / "inbox.md").read_bytes()
    assert vaultd("run", "--vault", str(vault), "--once", env=env).returncode == 0
    assert (vault / "inbox.md").read_bytes() == before  # annotations are stable

    st = json.loads(vaultd("status", "--vault", str(vault), "--json", env=env).stdout)
    listed = {u["link"]: u for u in st["unhandled"]}
    assert set(listed) == {"https://vimeo.com/76979871", "https://www.youtube.com/@veritasium",
                           f"https://www.youtube.com/channel/{UC}"}
    assert "vimeo.com is not supported" in listed["https://vimeo.com/76979871"]["reason"]
    assert listed["https://vimeo.com/76979871"]["line"] == 3
    human = vaultd("status", "--vault", str(vault), env=env).stdout
    assert "no note  line 3: https://vimeo.com/76979871: vimeo.com is not supported" in human
    doctor = json.loads(vaultd("doctor", "--vault", str(vault), "--no-network", "--json",
                               env=env).stdout)
    inbox = next(c for c in doctor if c["name"] == "inbox")
    assert inbox["verdict"] == "warn" and "vimeo.com/76979871" in inbox["detail"]
    assert "a YouTube channel page" in inbox["detail"]


def test_a_link_inside_a_source_line_is_not_listed() -> None:
    text = ("- https://youtu.be/dQw4w9WgXcQ (see also https://youtu.be/dQw4w9WgXcQ?t=5)\n"
            "- https://www.youtube.com/playlist?list=PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf\n"
            "- https://www.youtube.com/results?search_query=entropy\n")
    found = unhandled_links(text)
    assert [(u.line, u.follow) for u in found] == [(2, None)]
    assert "no video or playlist" in found[0].reason


def test_a_youtube_link_without_a_video_id_is_not_called_unsupported() -> None:
    """``https://youtu.be/`` pasted without its id: the reason must not claim that
    youtu.be links are unsupported (the README lists them), but say what is missing."""
    found = unhandled_links("- https://youtu.be/\n- https://youtu.be\n")
    # ``youtu.be/`` is a source now: a failed line saying the id is missing
    # (tests/test_sources.py); a bare ``youtu.be`` stays the user's text, listed here.
    assert [u.line for u in found] == [1]
    for u in found:
        assert "not supported" not in u.reason and "no video id" in u.reason, u.reason
