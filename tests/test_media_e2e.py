"""End to end: a recorded lecture linked in the inbox becomes a study note and an
assessment whose timestamps match the audio, with ``vaultd run --once`` as a subprocess
and the real faster-whisper on Whisper tiny.en.

The lecture is espeak-ng speech after five seconds of silence, encoded as m4a. Next to
it in the same inbox: a silent recording and a damaged file (each fails with a plain
reason, the daemon carries on), and later the same lecture renamed (the same source:
linked to the same note, not transcribed again).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_speech import FakeSpeechServer  # noqa: E402
from speech import LECTURE, encode, heard_ratio, need, silence, speak, tiny_model  # noqa: E402

from tests.helpers import start_daemon, vaultd, vaultd_env, wait_for  # noqa: E402
from tests.test_e2e_stand_ins import linked_note  # noqa: E402
from vault_tools.frontmatter import split as read_frontmatter  # noqa: E402
from vault_tools.inbox import parse_inbox  # noqa: E402

CONFIG = """\
[daemon]
debounce_seconds = 0.1
backoff_base_seconds = 0.2

[generate]
backend = "offline"

[pdf]
enabled = false

[transcribe]
engine = "{engine}"
model = "{model}"
device = "cpu"
"""
STAMP = re.compile(r"`(\d+):(\d{2})`")


def settled(path: Path) -> Path:
    """A file copied in a while ago (the daemon waits for files still being copied)."""
    old = time.time() - 60
    os.utime(path, (old, old))
    return path


def make_vault(tmp_path: Path, lines: list[str], *, engine: str, model: str = "small"
               ) -> tuple[Path, dict[str, str]]:
    vault = tmp_path / "vault"
    (vault / ".vaultd").mkdir(parents=True, exist_ok=True)
    (vault / ".vaultd" / "config.toml").write_text(CONFIG.format(engine=engine, model=model))
    (vault / "inbox.md").write_text("# Inbox\n\n" + "\n".join(lines) + "\n")
    return vault, vaultd_env(tmp_path / "state", HF_HUB_OFFLINE="1")


def annotations(vault: Path) -> dict[str, str]:
    return {line.body: line.annotation
            for line in parse_inbox((vault / "inbox.md").read_text()) if line.sources}


def test_a_recorded_lecture_becomes_notes_with_its_timestamps(tmp_path: Path) -> None:
    model = tiny_model()
    lectures = tmp_path / "vault" / "Lectures"
    lectures.mkdir(parents=True)
    wav = speak(LECTURE, tmp_path / "lecture.wav", silence_before=5.0)
    settled(encode(wav, lectures / "week3.m4a"))
    settled(silence(lectures / "quiet.wav", 8.0))
    (lectures / "damaged.mp3").write_bytes(b"ID3\x03" + bytes(range(256)) * 16)
    settled(lectures / "damaged.mp3")
    vault, env = make_vault(tmp_path, ["- ![[Lectures/week3.m4a]]",
                                       "- [[quiet.wav]] (the mic was off)",
                                       "- [broken](Lectures/damaged.mp3)"],
                            engine="faster-whisper", model=str(model))
    proc = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = annotations(vault)
    assert set(lines) == {"- ![[Lectures/week3.m4a]]", "- [[quiet.wav]] (the mic was off)",
                          "- [broken](Lectures/damaged.mp3)"}
    quiet = lines["- [[quiet.wav]] (the mic was off)"]
    assert ("❌ failed: Lectures/quiet.wav: it is silent; nothing was sent to the "
            "transcriber") in quiet
    assert "❌ failed: Lectures/damaged.mp3 could not be read as audio or video" in \
        lines["- [broken](Lectures/damaged.mp3)"]
    assert "Errno" not in lines["- [broken](Lectures/damaged.mp3)"]

    note = linked_note(vault, lines["- ![[Lectures/week3.m4a]]"])
    meta, body = read_frontmatter(note.read_text())
    assert meta["source"] == "Lectures/week3.m4a"
    assert meta["title"] == "Week3"
    duration = meta["duration"]
    assert 15 <= duration <= 40, duration
    assert heard_ratio("photosynthesis chlorophyll glucose oxygen", body) >= 0.75, body
    stamps = [int(m) * 60 + int(s) for m, s in STAMP.findall(body)]
    assert stamps, body
    # Nothing was said before 0:04; every timestamp is inside the recording.
    assert min(stamps) >= 4 and max(stamps) <= duration, stamps
    assessment = vault / f"{meta['assessment'].strip('[]').split('|')[0]}.md"
    assert assessment.is_file() and STAMP.search(assessment.read_text())
    assert proc.stderr.count("transcribing Lectures/week3.m4a") == 1

    # The same recording renamed and linked again: the same source, heard once.
    shutil.copy2(lectures / "week3.m4a", lectures / "Photosynthesis.m4a")
    with open(vault / "inbox.md", "a") as f:
        f.write("- ![[Lectures/Photosynthesis.m4a]] again\n")
    again = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    renamed = annotations(vault)["- ![[Lectures/Photosynthesis.m4a]] again"]
    assert linked_note(vault, renamed) == note
    assert "transcribing" not in again.stderr


def test_run_once_after_a_transcription_leaks_no_semaphore(tmp_path: Path) -> None:
    """The transcription worker (faster-whisper makes a multiprocessing lock through
    tqdm) ends normally at stop: no "leaked semaphore objects" warning at exit."""
    model = tiny_model()
    (tmp_path / "vault").mkdir()
    settled(speak(LECTURE, tmp_path / "vault" / "clip.wav"))
    vault, env = make_vault(tmp_path, ["- [[clip.wav]]"], engine="faster-whisper",
                            model=str(model))
    proc = vaultd("run", "--vault", str(vault), "--once", env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "✅" in annotations(vault)["- [[clip.wav]]"]  # it was heard and written
    assert "leaked" not in proc.stderr, proc.stderr[-1500:]


def test_without_an_engine_the_line_says_how_to_enable_one(tmp_path: Path) -> None:
    lectures = tmp_path / "vault" / "Lectures"
    lectures.mkdir(parents=True)
    settled(silence(lectures / "talk.wav", 1.0))
    vault, env = make_vault(tmp_path, ["- ![[Lectures/talk.wav]]"], engine="off")
    proc = vaultd("run", "--vault", str(vault), "--once", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = annotations(vault)["- ![[Lectures/talk.wav]]"]
    assert "❌ failed:" in line and "pip install faster-whisper" in line, line
    assert 'engine = "faster-whisper" in the transcribe section of .vaultd/config.toml' \
        in line, line
    assert line.startswith(" — ❌ failed: talk.wav: transcription is off"), line


def twelve_minutes(tmp_path: Path, name: str, server: FakeSpeechServer
                   ) -> tuple[Path, dict[str, str]]:
    """A vault whose inbox links a 12-minute recording (a steady tone: every 5-minute
    chunk has sound), heard by ``server`` through the openai engine."""
    lectures = tmp_path / "vault" / "Lectures"
    lectures.mkdir(parents=True)
    wav = tmp_path / "long.wav"
    subprocess.run([need("sox"), "-n", "-r", "8000", "-c", "1", str(wav), "synth", "720",
                    "sine", "220", "vol", "0.3"], check=True)
    settled(encode(wav, lectures / name))
    vault, env = make_vault(tmp_path, [f"- ![[Lectures/{name}]]"], engine="openai",
                            model="whisper-1")
    config = vault / ".vaultd" / "config.toml"
    config.write_text(config.read_text() + f'base_url = "{server.base_url}"\n')
    return vault, env


@pytest.mark.slow
def test_the_inbox_line_shows_how_far_a_long_recording_got(tmp_path: Path) -> None:
    """A 12-minute recording heard by a slow remote server, in 5-minute chunks: while
    the daemon runs, the line says how far it got, then links the note."""
    lines = ["the lecturer explains how congestion windows grow and shrink over time",
             "slow start doubles the window every round trip until a loss happens",
             "after a loss the window halves and grows again one segment at a time"]
    with FakeSpeechServer(lines) as server:
        server.delay = 2.0
        vault, env = twelve_minutes(tmp_path, "seminar.ogg", server)
        proc = start_daemon(vault, env, log=tmp_path / "daemon.log")
        try:
            seen = wait_for(lambda: re.search(r"⚙️ transcribing (\d+:\d\d) of 12:00",
                                              (vault / "inbox.md").read_text()),
                            timeout=60, what="a progress line")
            assert seen.group(1) in ("5:00", "10:00"), seen.group(0)
            done = wait_for(lambda: "✅" in (vault / "inbox.md").read_text(), timeout=90,
                            what="the note link")
            assert done
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    assert proc.returncode == 0
    assert len(server.requests) == 3  # 5 + 5 + 2 minutes, each sent once
    note = linked_note(vault, annotations(vault)["- ![[Lectures/seminar.ogg]]"])
    stamps = [int(m) * 60 + int(s) for m, s in STAMP.findall(note.read_text())]
    assert stamps and max(stamps) <= 720


@pytest.mark.slow
def test_a_daemon_killed_mid_lecture_resumes_where_it_was(tmp_path: Path) -> None:
    """kill -9 while the second of three 5-minute chunks is being heard: after a restart
    the first chunk is not sent again (its result was saved), the note arrives."""
    lines = ["the professor shows how an enzyme lowers the activation energy of a reaction",
             "the substrate binds to the active site and the product is released again",
             "temperature and acidity change the shape of the enzyme and its activity"]
    with FakeSpeechServer(lines) as server:
        server.delay = 3.0
        vault, env = twelve_minutes(tmp_path, "lab.ogg", server)
        inbox = vault / "inbox.md"
        first = start_daemon(vault, env, log=tmp_path / "daemon.log")
        try:
            wait_for(lambda: "⚙️ transcribing 5:00 of 12:00" in inbox.read_text(),
                     timeout=90, what="the first chunk heard")
        finally:
            first.kill()
            first.wait(timeout=30)
        before = len(server.requests)
        assert before in (1, 2)  # chunk 1 answered; chunk 2 maybe sent, never answered
        second = start_daemon(vault, env, log=tmp_path / "daemon.log")
        try:
            wait_for(lambda: "✅" in inbox.read_text(), timeout=120, what="the note link")
        finally:
            second.terminate()
            second.wait(timeout=60)
        after = server.requests[before:]
    assert second.returncode == 0
    # Resumed at 5:00: the 5-minute chunk 2 and the 2-minute chunk 3, not chunk 1 again.
    assert [round(r["seconds"]) for r in after] == [300, 120], after
    log = (tmp_path / "daemon.log").read_text()
    assert "resuming transcription at 300 s of 720 s" in log
