"""End to end with both stand-ins: ``vaultd run --once`` as a subprocess, real SDKs.

The daemon talks to a loopback YouTube (:mod:`tests.fake_youtube`, reached through the
``VAULTD_YOUTUBE_ORIGIN`` testing hook of :mod:`daemon.sources.http`, so the real
youtube-transcript-api fetches watch page, player JSON and timedtext XML) and to a
loopback Messages API (:mod:`tests.fake_anthropic`, reached through
``ANTHROPIC_BASE_URL`` by the real ``anthropic`` SDK). The fake model answers like a
careful model would, citing moments from the transcript it was sent, plus one invented
moment past the end and one a little past it, which vaultd must drop or clamp.

Checked as a user would: exit code; one note per video with the frontmatter contract;
every ``[m:ss](https://youtu.be/ID?t=N)`` link inside the video; assessments with the
four question kinds and flashcards; failures with plain reasons on the inbox line; a
duplicated video linking the same note; the transcript sent once per call as an
identical cached prefix (so the second call reads the cache); tokens and cost in
``vaultd status --json``. A second test has YouTube block the first two requests: the
line shows waiting, then the job completes.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_anthropic import FakeAnthropic, Recorded, Reply, count_tokens, text  # noqa: E402
from fake_youtube import FakeYouTube  # noqa: E402

from tests.helpers import start_daemon, status_json, vaultd, vaultd_env, wait_for  # noqa: E402
from vault_tools import frontmatter  # noqa: E402
from vault_tools.inbox import parse_inbox  # noqa: E402

KEY = "sk-ant-test-E2E-0123456789abcdef"
MODEL = "claude-sonnet-5-5"  # current, not deprecated by the installed SDK
INVENTED = "99:59"  # a moment the fake model makes up: far past the end of every video
CONFIG = f"""\
[daemon]
workers = 2
debounce_seconds = 0.1
backoff_base_seconds = {{backoff}}
backoff_max_seconds = 2.0

[generate]
backend = "claude"
model = "{MODEL}"
retry_max_wait_seconds = 0.2

[youtube]
min_request_interval_seconds = 0.02
timeout_seconds = 5.0

[pdf]
enabled = false
"""
USER_TEXT = "# Inbox\n\nLectures to turn into notes before the exam:\n\n"
LINK = re.compile(r"\[(\d+(?::\d{2}){1,2})\]\(https://youtu\.be/([\w-]{11})\?t=(\d+)\)")
BARE_STAMP = re.compile(r"\[\d+:\d{2}(?::\d{2})?\](?!\()")


# --------------------------------------------------------------------------- fake model


def _seconds(stamp: str) -> int:
    total = 0
    for part in stamp.split(":"):
        total = total * 60 + int(part)
    return total


def _stamp(seconds: int) -> str:
    m, s = divmod(seconds, 60)
    return f"{m}:{s:02d}" if m < 60 else f"{m // 60}:{m % 60:02d}:{s:02d}"


def read_prompt(body: dict[str, Any]) -> dict[str, Any]:
    """What a model would take from vaultd's source block: duration, chapters, lines."""
    block = body["system"][-1]["text"]
    duration = re.search(r"^Duration: ([\d:]+)", block, re.M)
    chapters = re.findall(r"^- \[([\d:]+)\] (.+)$", block.split("## Transcript")[0], re.M)
    transcript = block.split("\n## Transcript\n", 1)[1]
    lines = re.findall(r"^\[([\d:]+)\] (.+)$", transcript, re.M)
    return {"duration": _seconds(duration.group(1)) if duration else 0,
            "chapters": [(_seconds(t), title) for t, title in chapters],
            "lines": [(ts, words) for ts, words in lines]}


def _gist(words: str, n: int = 12) -> str:
    return " ".join(words.split()[:n]).rstrip(".,;:!?")


def note_reply(p: dict[str, Any]) -> str:
    lines, chapters = p["lines"], p["chapters"] or [(0, "The video")]
    out = ["## Key concepts"]
    out += [f"- {_gist(w)} [{ts}]" for ts, w in lines[1:: max(len(lines) // 4, 1)]]
    for i, (start, title) in enumerate(chapters):
        end = chapters[i + 1][0] if i + 1 < len(chapters) else 10**9
        out.append(f"\n## {title}")
        out += [f"- {_gist(w)} [{ts}]" for ts, w in lines if start <= _seconds(ts) < end]
    out += ["\n## Definitions", f"- **Key idea**: {_gist(lines[2][1], 8)} [{lines[2][0]}]",
            "\n## Open questions",
            f"- The speaker promises a follow-up video [{INVENTED}].",
            f"- The closing remark [{_stamp(p['duration'] + 3)}]."]
    return (f"<meta>\ntags: study, lecture notes\naliases:\nkey_terms: {_gist(lines[0][1], 3)}"
            f"\n</meta>\n<tldr>\n{_gist(lines[0][1])} [{lines[0][0]}]. "
            f"{_gist(lines[-1][1])} [{lines[-1][0]}].\n</tldr>\n<note>\n"
            + "\n".join(out) + "\n</note>")


def assessment_reply(p: dict[str, Any]) -> str:
    lines = p["lines"]
    kinds = [("gap", "Gap check"), ("application", "Application"),
             ("further", "One step further"), ("synthesis", "Synthesis")]
    sections = []
    for i, (kind, title) in enumerate(kinds):
        a, b = lines[(3 * i + 1) % len(lines)], lines[(5 * i + 7) % len(lines)]
        sections.append(
            f'<section kind="{kind}" title="{title}">\n<question>\n'
            f"<ask>What does the video say about {_gist(a[1], 6)}?</ask>\n"
            f"<answer>{_gist(a[1])} [{a[0]}], and later {_gist(b[1], 8)} [{b[0]}].</answer>\n"
            "</question>\n</section>")
    first, last = lines[0], lines[-1]
    cards = (f"What opens the video?::{_gist(first[1], 8)} [{first[0]}]\n\n"
             f"How does the video end?\n?\n{_gist(last[1], 10)} [{last[0]}]\n\n"
             f"The video runs for =={_stamp(p['duration'])}== minutes.")
    return "\n".join(sections) + f"\n<flashcards>\n{cards}\n</flashcards>"


def study_model(body: dict[str, Any]) -> Reply:
    user = body["messages"][0]["content"]
    prompt = read_prompt(body)
    if user.startswith("Write the study note"):
        return text(note_reply(prompt))
    if user.startswith("Write a learning assessment"):
        return text(assessment_reply(prompt))
    return text("unexpected request")


# --------------------------------------------------------------------------- helpers


def make_vault(tmp_path: Path, lines: list[str], *, backoff: float = 0.2
               ) -> tuple[Path, Path]:
    vault = tmp_path / "vault"
    (vault / ".vaultd").mkdir(parents=True)
    (vault / ".vaultd" / "config.toml").write_text(CONFIG.format(backoff=backoff))
    (vault / "inbox.md").write_text(USER_TEXT + "\n".join(lines) + "\n")
    return vault, tmp_path / "state"


def linked_note(vault: Path, annotation: str) -> Path:
    link = re.search(r"✅ \[\[([^\]|]+)", annotation)
    assert link, annotation
    path = vault / f"{link.group(1)}.md"
    assert path.is_file(), path
    return path


def check_links(text: str, video_id: str, duration: int) -> int:
    """Every timestamp is a link into this video, inside it; returns how many."""
    links = LINK.findall(text)
    for label, vid, t in links:
        assert vid == video_id
        assert 0 <= int(t) <= duration, (label, t, duration)
        assert _seconds(label) == int(t)
    assert not BARE_STAMP.search(text), BARE_STAMP.search(text)
    assert INVENTED not in text
    return len(links)


def calls_by_video(fake: FakeAnthropic) -> dict[str, list[Recorded]]:
    out: dict[str, list[Recorded]] = {}
    for req in fake.message_requests():
        title = re.search(r"^# Video: (.+)$", req.body["system"][-1]["text"], re.M)
        assert title, req.body["system"]
        out.setdefault(title.group(1), []).append(req)
    return out


# --------------------------------------------------------------------------- tests


def test_origin_hook_routes_youtube_hosts_to_the_stand_in(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from daemon.config import Config
    from daemon.errors import ConfigError
    from daemon.sources.http import build_session

    cfg = Config.defaults().to_dict()
    cfg["youtube"]["min_request_interval_seconds"] = 0.0
    with FakeYouTube() as yt:
        monkeypatch.setenv("VAULTD_YOUTUBE_ORIGIN", yt.origin)
        with build_session(cfg, tmp_path) as session:
            page = session.get("https://www.youtube.com/watch?v=ohmsLawDemo&hl=en")
            mobile = session.get("https://m.youtube.com/oembed",
                                 params={"url": "https://www.youtube.com/watch?v=glacierVal1"})
        assert page.status_code == 200 and "INNERTUBE_API_KEY" in page.text
        assert mobile.json()["author_name"] == "Earth Lab"
        hit = yt.hits_for("ohmsLawDemo", "/watch")[0]
        assert hit.query == {"v": ["ohmsLawDemo"], "hl": ["en"]}
        # Pacing still counts YouTube's host, not the stand-in's.
        assert (tmp_path / "pacing" / "www.youtube.com.json").exists()
        assert not list((tmp_path / "pacing").glob("127.0.0.1*"))
    monkeypatch.setenv("VAULTD_YOUTUBE_ORIGIN", "127.0.0.1:80")
    with pytest.raises(ConfigError) as err:
        build_session(cfg, tmp_path)
    assert err.value.setting == "VAULTD_YOUTUBE_ORIGIN"


def test_run_once_with_both_stand_ins(tmp_path: Path) -> None:
    lines = [
        "- https://www.youtube.com/watch?v=ohmsLawDemo&t=42s",
        "- watch this one: youtu.be/glacierVal1?si=Xq12_shareId",
        "- https://m.youtube.com/watch?v=noCaptions1",
        "- https://www.youtube.com/watch?v=goneForGood",
        "- again, embedded: https://www.youtube.com/embed/ohmsLawDemo",
    ]
    vault, state = make_vault(tmp_path, lines)
    with FakeYouTube() as yt, FakeAnthropic(study_model) as fake:
        env = vaultd_env(state, ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=fake.base_url,
                         VAULTD_YOUTUBE_ORIGIN=yt.origin)
        proc = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=90)
        assert proc.returncode == 0, proc.stderr[-3000:]
        st = status_json(vault, env)

    log = proc.stdout + proc.stderr
    assert "Traceback" not in log and KEY not in log
    inbox = (vault / "inbox.md").read_text()
    assert inbox.startswith(USER_TEXT)
    parsed = parse_inbox(inbox)
    assert [p.body for p in parsed] == lines  # the URL text stays as written
    ohm, glacier, disabled, gone, dup = (p.annotation for p in parsed)

    # Failures say why, in plain words; nothing of theirs reached the model.
    assert disabled == (" — ❌ failed: This video has subtitles turned off. To transcribe "
                        "its audio: pip install faster-whisper yt-dlp, set engine = "
                        '"faster-whisper" under transcribe (docs/media.md)')
    assert gone.startswith(" — ❌ failed: This video is unavailable")
    assert dup == ohm and "✅" in ohm  # same video, other URL form: the same note

    videos = yt.videos
    notes = {"ohmsLawDemo": linked_note(vault, ohm), "glacierVal1": linked_note(vault, glacier)}
    study = [p for p in (vault / "Study Notes").glob("*.md") if "(Assessment)" not in p.name]
    assert sorted(study) == sorted(notes.values())
    cached_total = out_total = 0
    for vid, path in notes.items():
        video = videos[vid]
        data, body = frontmatter.split(path.read_text())
        assert data is not None
        assert data["type"] == "study-note"
        assert data["video_id"] == vid
        assert data["source"] == f"https://www.youtube.com/watch?v={vid}"
        assert data["title"] == video.title and data["channel"] == video.author
        assert data["duration"] == video.length_seconds
        assert str(data["published"]) == video.published
        assert data["model"] == MODEL
        tokens = data["tokens"]
        assert tokens["in"] > 0 and tokens["out"] > 0
        # The assessment call read the whole prefix (instructions + transcript) from cache.
        prefix = calls_by_video(fake)[video.title][1].body["system"]
        assert tokens["cached"] == sum(count_tokens(b["text"]) for b in prefix) > 1024
        cached_total += tokens["cached"]
        out_total += tokens["out"]
        assert body.lstrip().startswith("> [!tldr]")
        assert check_links(body, vid, video.length_seconds) >= 20
        # The invented moment just past the end was clamped to the last second.
        assert f"?t={video.length_seconds - 1})" in body

        assessment = vault / (data["assessment"][2:-2].split("|")[0] + ".md")
        adata, abody = frontmatter.split(assessment.read_text())
        assert adata is not None and adata["type"] == "assessment"
        assert adata["video_id"] == vid and adata["source"] == data["source"]
        assert adata["notes"][2:-2].split("|")[0] == str(path.relative_to(vault))[:-3]
        for heading in ("Gap check", "Application", "One step further", "Synthesis"):
            section = abody.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
            assert "> [!answer]- Answer" in section, heading
            assert LINK.search(section), heading
        cards = abody.split("## Flashcards\n", 1)[1]
        assert re.search(r"^#flashcards/[\w-]+$", cards, re.M)
        assert re.search(r"^What opens the video\?::", cards, re.M)
        assert re.search(r"^\?$", cards, re.M) and re.search(r"==[^=\n]+==", cards)
        assert check_links(abody, vid, video.length_seconds) >= 9

    # The model saw each transcript once per call, in an identical cached prefix.
    calls = calls_by_video(fake)
    assert sorted(calls) == sorted(videos[v].title for v in notes)
    for vid in notes:
        video = videos[vid]
        notes_call, assess_call = calls[video.title]  # exactly two calls, in this order
        assert notes_call.body["model"] == MODEL == assess_call.body["model"]
        assert notes_call.body["system"] == assess_call.body["system"]
        assert notes_call.body["system"][-1]["cache_control"] == {"type": "ephemeral"}
        assert notes_call.body["messages"] != assess_call.body["messages"]
        whole = json.dumps(notes_call.body, ensure_ascii=False)
        # Cue text arrives unescaped, from the manual track (not the lower-case ASR one).
        line = "Now double the resistance to two kilo-ohms and the current halves."
        if vid == "glacierVal1":
            line = "Compacted snow that has lasted a year is called firn."
        assert whole.count(line) == 1
        assert "&#39;" not in whole and "&amp;" not in whole and "<i>" not in whole
    ohm_prompt = calls[videos["ohmsLawDemo"].title][0].body["system"][-1]["text"]
    assert "Today we're going to take the mystery out of simple circuits." in ohm_prompt
    assert "That's Ohm's law & friends." in ohm_prompt
    assert len(fake.message_requests()) == 4
    assert not yt.hits_for("noCaptions1", "/api/timedtext")

    # vaultd status --json tells the user what it cost.
    assert st["backend"] == "claude"
    assert st["counts"]["done"] == 2 and st["counts"]["failed"] == 2
    assert {f["key"] for f in st["failures"]} == {"youtube:noCaptions1", "youtube:goneForGood"}
    total = st["usage_total"]
    assert total["cache_read_tokens"] == cached_total
    assert total["output_tokens"] == out_total
    assert total["cost_usd"] > 0
    assert st["usage_today"]["tokens"] > 0 and st["usage_today"]["cost_usd"] > 0


def test_blocked_by_youtube_waits_then_completes(tmp_path: Path) -> None:
    """YouTube answers the first request with a captcha page, the second with 429 and
    Retry-After: 1; the line shows waiting with the reason, then the note arrives."""
    url = "https://www.youtube.com/watch?v=glacierVal1"
    vault, state = make_vault(tmp_path, [f"- {url}"], backoff=0.3)
    inbox = vault / "inbox.md"
    seen: list[str] = []

    def annotation() -> str:
        found = parse_inbox(inbox.read_text())
        note = found[0].annotation if found else ""
        if note and (not seen or seen[-1] != note):
            seen.append(note)
        return note

    def exited() -> bool:
        annotation()  # keep recording what the line says on the way
        return proc.poll() is not None

    with FakeYouTube() as yt, FakeAnthropic(study_model) as fake:
        yt.videos["glacierVal1"].blocks = ["recaptcha", "429"]
        env = vaultd_env(state, ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=fake.base_url,
                         VAULTD_YOUTUBE_ORIGIN=yt.origin)
        log = tmp_path / "daemon.log"
        proc = start_daemon(vault, env, "--once", log=log)
        try:
            wait_for(lambda: "🔁 waiting" in annotation(), timeout=30, interval=0.02,
                     what="the line to show waiting")
            wait_for(exited, timeout=40, interval=0.02, what="vaultd run --once to exit")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        assert proc.returncode == 0, log.read_text()[-3000:]
        watch = yt.hits_for("glacierVal1", "/watch")
        messages = len(fake.message_requests())

    assert [h.status for h in watch] == [200, 429, 200]
    # Retry-After: 1 was honoured (the backoff alone would wait 0.3 to 0.6 s).
    assert watch[2].at - watch[1].at >= 0.95
    reasons = {
        " — 🔁 waiting: YouTube is blocking requests from this computer's internet address",
        " — 🔁 waiting: YouTube says too many requests came from here",
    }
    waits = [s for s in seen if "🔁" in s]
    assert waits and all(any(w.startswith(r) for r in reasons) for w in waits), seen
    final = annotation()
    assert seen[-1] == final
    note = linked_note(vault, final)
    data, body = frontmatter.split(note.read_text())
    assert data is not None and data["video_id"] == "glacierVal1"
    assert check_links(body, "glacierVal1", 498) >= 20
    assert messages == 2  # being blocked cost no model calls
    assert "Traceback" not in log.read_text()
    st = status_json(vault, env)
    assert st["counts"]["done"] == 1 and not st["waiting"] and not st["failures"]
