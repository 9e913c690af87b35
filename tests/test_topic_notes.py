"""Topic notes: planted clusters end to end, identity across refreshes, user edits kept.

The e2e test runs the real daemon (``vaultd run --once``, offline backend) on two
planted topics of five lectures each, written here as small subtitle files, and reads
the vault as a user would: one topic note per topic listing each member video, every
link pointing at an existing note, heading and moment. The split test drives the same
planning and writing code the daemon uses (no stand-ins) on hand-written study notes
whose shared concepts are chosen so the cluster splits 3/2.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from daemon.config import Config
from daemon.paths import VaultPaths
from daemon.writer.maintained_notes import MaintainedNotes
from daemon.writer.note_files import NoteFiles
from daemon.writer.topic_keeper import clusters_for, plan_topics
from tests.helpers import vaultd, vaultd_env
from vault_tools import frontmatter
from vault_tools.graph import KnowledgeGraph
from vault_tools.topic_clusters import topic_inputs
from vault_tools.topic_note import YOUR_NOTES_HINT, TopicRecord, match_topics, seconds_of

BANK = {
    "enzymes": [
        "An enzyme is a protein that speeds up a chemical reaction without being used up.",
        "The substrate binds to the active site of the enzyme.",
        "Every enzyme lowers the activation energy of the reaction it catalyses.",
        "The active site has a shape that fits only certain substrate molecules.",
        "Because the activation energy is lower, the reaction runs thousands of times faster.",
        "A catalyst is recovered unchanged at the end, and an enzyme is a biological catalyst.",
        "When the substrate leaves the active site as product, the enzyme is free again.",
        "Temperature changes how often substrate molecules reach the active site.",
        "Without the enzyme, the activation energy barrier would be too high in the body.",
        "Each enzyme works best at one pH, where the active site keeps its shape.",
        "The substrate concentration limits the rate until every active site is busy.",
        "So an enzyme is a catalyst that lowers activation energy by holding the substrate.",
    ],
    "markets": [
        "The demand curve shows how much buyers want at each market price.",
        "The supply curve shows how much sellers offer at each market price.",
        "Where the supply curve crosses the demand curve, the market reaches equilibrium.",
        "At equilibrium, the market price clears the market and nothing is left unsold.",
        "Elasticity measures how strongly quantity reacts when the market price moves.",
        "If demand has low elasticity, buyers keep buying even when the market price rises.",
        "A shift of the demand curve to the right raises the equilibrium market price.",
        "A shift of the supply curve to the left also raises the equilibrium market price.",
        "Sellers read the market price as a signal, and the supply curve slopes upward.",
        "Elasticity of supply tells us how fast sellers respond to a new equilibrium.",
        "The equilibrium is stable: a gap between the supply curve and demand curve closes.",
        "So supply curve, demand curve and elasticity together set the market price.",
    ],
}
OWN = {"enzymes": ["lock and key model", "induced fit", "cofactor", "denaturation",
                   "competitive inhibitor", "allosteric site"],
       "markets": ["price ceiling", "consumer surplus", "tax incidence", "black market",
                   "substitute goods", "marginal cost"]}
WIKILINK = re.compile(r"\[\[([^\]|]+)(?:\|[^\]]*)?\]\]")


def lecture(topic: str, i: int) -> str:
    """A small SRT lecture: ten sentences of the topic's shared ideas, four on its own."""
    rng = random.Random(f"{topic}{i}")
    own = OWN[topic][i]
    lines = rng.sample(BANK[topic], 10)
    for k, extra in enumerate([f"Today's special subject is the {own}.",
                               f"The {own} changes the picture in an important way.",
                               f"Many students confuse the {own} with something simpler.",
                               f"What would happen without the {own}?"]):
        lines.insert(2 + 3 * k, extra)

    def ts(s: int) -> str:
        return f"00:{s // 60:02d}:{s % 60:02d},000"

    return "\n".join(f"{n + 1}\n{ts(n * 12)} --> {ts(n * 12 + 10)}\n{t}\n"
                     for n, t in enumerate(lines))


def make_vault(root: Path, per_topic: int) -> Path:
    vault = root / "vault"
    (vault / ".vaultd").mkdir(parents=True)
    (vault / ".vaultd" / "config.toml").write_text(
        '[generate]\nbackend = "offline"\n[pdf]\nenabled = false\n'
        "[topics]\ndebounce_seconds = 0\n", encoding="utf-8")
    lines = []
    for topic in BANK:
        for i in range(per_topic):
            add_lecture(vault, topic, i, lines)
    (vault / "inbox.md").write_text("# Inbox\n\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return vault


def add_lecture(vault: Path, topic: str, i: int, lines: list[str]) -> None:
    (vault / "Lectures").mkdir(exist_ok=True)
    (vault / "Lectures" / f"{topic}-{i}.srt").write_text(lecture(topic, i), encoding="utf-8")
    lines.append(f"- [[Lectures/{topic}-{i}.srt]]")


def topic_notes(vault: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in (vault / "Topics").glob("*.md")}


def members(text: str) -> set[str]:
    """The videos a topic note lists in its overview."""
    overview = text.split("## Overview", 1)[1].split("## Key ideas", 1)[0]
    return {m.group(1) for m in WIKILINK.finditer(overview)}


def check_links(vault: Path, text: str) -> None:
    """Every wikilink resolves to a note; a #heading exists in it; a cited moment
    (`m:ss` after the link) is one the note itself shows."""
    for m in re.finditer(r"\[\[([^\]|#]+)(?:#([^\]|]+))?(?:\|[^\]]*)?\]\]( at `([\d:]+)`)?",
                         text):
        target = vault / f"{m.group(1)}.md"
        assert target.is_file(), f"link to a missing note: {m.group(0)}"
        note = target.read_text(encoding="utf-8")
        if m.group(2):
            assert re.search(rf"^#+ {re.escape(m.group(2))}\s*$", note, re.MULTILINE), \
                f"no heading {m.group(2)!r} in {target.name}"
        if m.group(4):
            assert f"`{m.group(4)}`" in note, f"moment {m.group(4)} not in {target.name}"
            data, _ = frontmatter.split(note)
            assert seconds_of(m.group(4)) <= int(data["duration"])


def test_planted_topics_end_to_end(tmp_path: Path) -> None:
    env = vaultd_env(tmp_path / "state")
    vault = make_vault(tmp_path, 5)
    proc = vaultd("run", "--once", "--vault", str(vault), env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    notes = topic_notes(vault)
    assert len(notes) == 2, sorted(notes)
    by_topic = {}
    for name, text in notes.items():
        data, _ = frontmatter.split(text)
        assert data["type"] == "topic-note"
        listed = members(text)
        topic = "enzymes" if any("Enzymes" in m for m in listed) else "markets"
        assert listed == {f"Study Notes/{topic.capitalize()} {i}" for i in range(5)}, listed
        assert "```mermaid" in text and "## Order to watch" in text
        assert " at `" in text  # key ideas cite moments
        check_links(vault, text)
        by_topic[topic] = name
    assert (vault / "Study Notes.base").is_file()
    # Your paragraph in the enzymes topic note, then a sixth enzymes lecture.
    enz = vault / "Topics" / by_topic["enzymes"]
    mkt = vault / "Topics" / by_topic["markets"]
    mine = "My own summary: enzymes are catalysts; check the pH question with the tutor."
    enz.write_text(enz.read_text(encoding="utf-8").replace(YOUR_NOTES_HINT, mine),
                   encoding="utf-8")
    markets_before = mkt.read_text(encoding="utf-8")
    lines: list[str] = []
    add_lecture(vault, "enzymes", 5, lines)
    with open(vault / "inbox.md", "a", encoding="utf-8") as fh:
        fh.write(lines[0] + "\n")
    proc = vaultd("run", "--once", "--vault", str(vault), env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(topic_notes(vault)) == sorted(notes)  # same notes, no new topic
    text = enz.read_text(encoding="utf-8")
    assert mine in text
    assert members(text) == {f"Study Notes/Enzymes {i}" for i in range(6)}
    check_links(vault, text)
    assert mkt.read_text(encoding="utf-8") == markets_before
    # A topic note you delete stays deleted, until you ask for it back.
    mkt.unlink()
    proc = vaultd("topics", "--vault", str(vault), env=env)
    assert proc.returncode == 0, proc.stderr
    assert not mkt.exists()
    # ...and the command says so, with the way back (it printed only a count).
    rel = f"Topics/{mkt.name}"
    assert f"not made again (you deleted it): {rel}; --restore brings it back" in proc.stdout
    assert enz.read_text(encoding="utf-8") == text  # the others are left as they were
    proc = vaultd("topics", "--vault", str(vault), "--restore", env=env)
    assert proc.returncode == 0, proc.stderr
    assert mkt.read_text(encoding="utf-8") == markets_before
    st = vaultd("status", "--vault", str(vault), env=env)
    assert "topics:  2 topic note(s); synthesis 0 tokens today" in st.stdout


def study_note(vault: Path, name: str, concepts: list[str]) -> None:
    """A study note as vaultd writes it, reduced to what topics read."""
    body = [f"# {name}", "", "## Key terms", ""]
    body += [f"- **{c}** — {name} explains {c} with an example. (`{i}:0{i}`)"
             for i, c in enumerate(concepts, 1)]
    text = frontmatter.compose({"type": "study-note", "title": name,
                                "source": f"Lectures/{name}.srt", "duration": 600,
                                "created": "2026-12-01T10:00:00+00:00",
                                "concepts": concepts}, "\n".join(body) + "\n")
    (vault / "Study Notes").mkdir(parents=True, exist_ok=True)
    (vault / "Study Notes" / f"{name}.md").write_text(text, encoding="utf-8")


def refresh(vault: Path, registry: MaintainedNotes) -> None:
    graph = KnowledgeGraph.rebuild(vault, exclude=[])
    registry.apply_topics(plan_topics(vault, registry, clusters_for(topic_inputs(graph), registry)))


def test_a_split_keeps_the_note_for_the_larger_part(tmp_path: Path,
                                                      monkeypatch: object) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    monkeypatch.setenv("VAULTD_STATE_DIR", str(tmp_path / "state"))  # type: ignore[attr-defined]
    paths = VaultPaths.from_config(vault, Config.defaults())
    registry = MaintainedNotes(paths, NoteFiles(paths, lambda: None), "Topics")
    left = ["alpha wave", "beta wave", "gamma wave"]
    right = ["delta sleep", "theta rhythm", "rem sleep"]
    names = ["A1", "A2", "A3", "B1", "B2"]
    for n in names:  # one topic: all five share both concept groups
        study_note(vault, n, left + right)
    refresh(vault, registry)
    (only,) = list((vault / "Topics").glob("*.md"))
    first = only.read_text(encoding="utf-8")
    assert members(first) == {f"Study Notes/{n}" for n in names}
    only.write_text(first.replace(YOUR_NOTES_HINT, "My note on this topic."),
                    encoding="utf-8")
    for n in names[:3]:  # the cluster splits: A1-A3 keep one group, B1-B2 the other
        study_note(vault, n, left)
    for n in names[3:]:
        study_note(vault, n, right)
    refresh(vault, registry)
    notes = {p.name: p.read_text(encoding="utf-8") for p in (vault / "Topics").glob("*.md")}
    assert len(notes) == 2
    kept = notes.pop(only.name)  # the old note stays with the larger part
    assert members(kept) == {"Study Notes/A1", "Study Notes/A2", "Study Notes/A3"}
    assert "My note on this topic." in kept
    (new,) = notes.values()
    assert members(new) == {"Study Notes/B1", "Study Notes/B2"}


def test_matching_renames_only_when_overlap_is_lost() -> None:
    old = [TopicRecord("t1", "Waves", ["a", "b", "c", "d"]),
           TopicRecord("t2", "Sleep", ["x", "y"])]
    # t1 loses "d" and gains "e": same topic. t2's members are all gone: a new topic.
    got = match_topics(old, [["a", "b", "c", "e"], ["p", "q"]])
    assert got == [("t1", ["a", "b", "c", "e"]), (None, ["p", "q"])]
    # Two old topics merged: the one sharing more keeps its id.
    got = match_topics(old, [["a", "b", "x"]])
    assert got == [("t1", ["a", "b", "x"])]


def test_a_topics_folder_that_leaves_the_vault_gets_nothing(tmp_path: Path,
                                                            monkeypatch: object) -> None:
    vault = tmp_path / "vault"
    outside = tmp_path / "outside"
    outside.mkdir()
    vault.mkdir()
    (vault / "Topics").symlink_to(outside)
    monkeypatch.setenv("VAULTD_STATE_DIR", str(tmp_path / "state"))  # type: ignore[attr-defined]
    paths = VaultPaths.from_config(vault, Config.defaults())
    registry = MaintainedNotes(paths, NoteFiles(paths, lambda: None), "Topics")
    for n in ("A1", "A2"):
        study_note(vault, n, ["alpha wave", "beta wave"])
    refresh(vault, registry)
    assert list(outside.iterdir()) == []
    assert registry.write("Topics/x.md", "---\ntype: topic-note\n---\n") == "foreign"


def test_youtube_moments_and_hostile_titles() -> None:
    """A YouTube study note cites moments as [m:ss](https://youtu.be/ID?t=N): the topic
    note links the same moment; a title full of markup stays inert text."""
    from vault_tools.topic_note import read_study_note, render_topic_note

    def note(path: str, title: str, vid: str) -> str:
        return frontmatter.compose(
            {"type": "study-note", "title": title, "source": f"https://youtu.be/{vid}",
             "video_id": vid, "created": "2026-12-01", "concepts": ["gravity well"]},
            "## Key points\n\n"
            f"- [1:15](https://youtu.be/{vid}?t=75) A gravity well bends the path.\n")

    a = read_study_note("S/A.md", note("S/A.md", "A ]] <script>x</script> %%", "abcdefghijk"))
    b = read_study_note("S/B.md", note("S/B.md", "B", "bcdefghijkl"))
    assert a is not None and b is not None
    assert [(m.stamp, m.seconds, m.heading) for m in a.moments] == [("1:15", 75, "Key points")]
    assert a.moments[0].text == "A gravity well bends the path."
    text = render_topic_note("t1", "Gravity well", [a, b])
    assert "[[S/A#Key points|A )) ‹script›x‹/script› ％％]] at `1:15`" in text
    assert "(https://youtu.be/abcdefghijk?t=75)" in text
    assert "<script>" not in text and "%%" not in text


def test_daemon_and_command_share_the_registry(tmp_path: Path, monkeypatch: object) -> None:
    """The daemon's registry and a ``vaultd topics``/``review`` command's, both open:
    a change by one is never lost by the other's next write."""
    vault = tmp_path / "vault"
    vault.mkdir()
    monkeypatch.setenv("VAULTD_STATE_DIR", str(tmp_path / "state"))  # type: ignore[attr-defined]
    paths = VaultPaths.from_config(vault, Config.defaults())
    daemon_side = MaintainedNotes(paths, NoteFiles(paths, lambda: None), "Topics")
    command = MaintainedNotes(paths, NoteFiles(paths, lambda: None), "Topics")
    for n in ("A1", "A2"):
        study_note(vault, n, ["alpha wave", "beta wave"])
    refresh(vault, command)  # the command writes a topic note
    assert daemon_side.write("Review/2026-W50.md", "---\ntype: weekly-review\n---\n") \
        == "created"
    fresh = MaintainedNotes(paths, NoteFiles(paths, lambda: None), "Topics")
    assert [r.members for r in fresh.topic_records()] == [["Study Notes/A1.md",
                                                           "Study Notes/A2.md"]]
    (topic,) = (vault / "Topics").glob("*.md")
    # The topic note is still known as ours: a change merges into it, not beside it.
    study_note(vault, "A2", ["alpha wave", "beta wave", "gamma wave"])
    refresh(vault, daemon_side)
    assert "gamma wave" in topic.read_text(encoding="utf-8")
    assert len(list((vault / "Topics").glob("*.md"))) == 1


def test_a_moved_topic_note_is_followed(tmp_path: Path, monkeypatch: object) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    monkeypatch.setenv("VAULTD_STATE_DIR", str(tmp_path / "state"))  # type: ignore[attr-defined]
    paths = VaultPaths.from_config(vault, Config.defaults())
    registry = MaintainedNotes(paths, NoteFiles(paths, lambda: None), "Topics")
    for n in ("A1", "A2"):
        study_note(vault, n, ["alpha wave", "beta wave"])
    refresh(vault, registry)
    (topic,) = (vault / "Topics").glob("*.md")
    (vault / "Biology").mkdir()
    moved = vault / "Biology" / "Waves.md"
    topic.rename(moved)
    # what the writer does on the watcher's move event
    registry.moved(f"Topics/{topic.name}", "Biology/Waves.md")
    study_note(vault, "A2", ["alpha wave", "beta wave", "gamma wave"])
    refresh(vault, registry)
    assert not list((vault / "Topics").glob("*.md"))  # not made again at the old place
    assert "gamma wave" in moved.read_text(encoding="utf-8")


def test_the_running_daemon_keeps_topic_notes_current(tmp_path: Path) -> None:
    """``vaultd run`` (no --once): lectures pasted into the inbox while it runs become
    topic notes after the debounce, and a later lecture updates its topic's note."""
    import signal

    from tests.helpers import append_in_place, start_daemon, tracebacks, wait_for

    env = vaultd_env(tmp_path / "state")
    vault = make_vault(tmp_path, 0)
    (vault / ".vaultd" / "config.toml").write_text(
        '[generate]\nbackend = "offline"\n[pdf]\nenabled = false\n'
        "[topics]\ndebounce_seconds = 0.5\n", encoding="utf-8")
    lines: list[str] = []
    for topic in BANK:
        for i in range(3):
            add_lecture(vault, topic, i, lines)
    log = tmp_path / "daemon.log"
    proc = start_daemon(vault, env, log=log)
    try:
        wait_for(lambda: (vault / "Study Notes.base").exists(), what="daemon start")
        append_in_place(vault / "inbox.md", "\n".join(lines) + "\n")
        notes = wait_for(lambda: len(topic_notes(vault)) == 2 and topic_notes(vault),
                         timeout=90, what="two topic notes")
        enz = next(name for name, text in notes.items() if "Enzymes 0" in text)
        more: list[str] = []
        add_lecture(vault, "enzymes", 3, more)
        append_in_place(vault / "inbox.md", more[0] + "\n")
        wait_for(lambda: "Study Notes/Enzymes 3" in members(
            (vault / "Topics" / enz).read_text(encoding="utf-8")), timeout=90,
            what="the enzymes topic note updated")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    assert not tracebacks(log.read_text(encoding="utf-8"))
    assert len(topic_notes(vault)) == 2
