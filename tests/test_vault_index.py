"""VaultIndex: what it reads, what it ignores, and how it follows edits, renames and moves."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from vault_tools.links import Linker
from vault_tools.vault_index import VaultIndex, _parse_keys, is_ignored_path, read_head


def _note(root: Path, rel: str, frontmatter: str | None = None, body: str = "Body.\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    head = f"---\n{frontmatter}\n---\n" if frontmatter is not None else ""
    path.write_text(head + body, encoding="utf-8")
    return path


def test_build_reads_titles_aliases_and_video_ids(tmp_path: Path) -> None:
    _note(
        tmp_path,
        "Study Notes/Working Memory.md",
        "type: study-note\nvideo_id: dQw4w9WgXcQ\naliases:\n  - WM\n  - short-term store",
    )
    _note(tmp_path, "Ökonomie.md", "aliases: [Wirtschaft, 'Volks, wirtschaft']")
    _note(tmp_path, "Plain.md", None)
    _note(tmp_path, "Scalar.md", "alias: Single Name\ntags: [x]")
    index = VaultIndex.build(tmp_path)
    by_path = {e.path: e for e in index.entries()}
    assert set(by_path) == {"Study Notes/Working Memory.md", "Ökonomie.md", "Plain.md", "Scalar.md"}
    wm = by_path["Study Notes/Working Memory.md"]
    assert (wm.title, wm.aliases, wm.video_id) == (
        "Working Memory",
        ("WM", "short-term store"),
        "dQw4w9WgXcQ",
    )
    assert by_path["Ökonomie.md"].aliases == ("Wirtschaft", "Volks, wirtschaft")
    assert by_path["Plain.md"].aliases == () and by_path["Plain.md"].video_id is None
    assert by_path["Scalar.md"].aliases == ("Single Name",)
    assert index.find_by_video_id("dQw4w9WgXcQ") == "Study Notes/Working Memory.md"
    assert index.find_by_video_id("missing") is None


def test_yaml_values_stay_the_strings_the_user_typed(tmp_path: Path) -> None:
    _note(tmp_path, "N.md", "video_id: 00012345678\naliases: [no, 10:30, yes]")
    entry = VaultIndex.build(tmp_path).entries()[0]
    assert entry.video_id == "00012345678"
    assert entry.aliases == ("no", "10:30", "yes")


def test_broken_or_unusual_frontmatter_is_tolerated(tmp_path: Path) -> None:
    _note(tmp_path, "Broken.md", "aliases: [unclosed\nvideo_id: abc")
    _note(tmp_path, "Unclosed.md", None, body="---\naliases: [x]\nno closing line\n")
    _note(tmp_path, "Bom.md", None, body="\ufeff---\nvideo_id: bom12345678\n---\ntext\n")
    (tmp_path / "Crlf.md").write_bytes(b"---\r\nvideo_id: crlf1234567\r\n---\r\nx\r\n")
    _note(tmp_path, "Later.md", None, body="text\n---\nvideo_id: nope\n---\n")
    index = VaultIndex.build(tmp_path)
    assert index.get("Broken.md") is not None and index.get("Broken.md").aliases == ()
    assert index.get("Unclosed.md").aliases == ()
    assert index.find_by_video_id("bom12345678") == "Bom.md"
    assert index.find_by_video_id("crlf1234567") == "Crlf.md"
    assert index.find_by_video_id("nope") is None


def test_large_frontmatter_beyond_first_chunk(tmp_path: Path) -> None:
    filler = "\n".join(f"key{i}: {'x' * 50}" for i in range(200))
    _note(tmp_path, "Big.md", f"{filler}\nvideo_id: late1234567")
    assert VaultIndex.build(tmp_path).find_by_video_id("late1234567") == "Big.md"
    assert read_head(tmp_path / "Big.md").endswith("video_id: late1234567")


def test_ignored_folders_and_files(tmp_path: Path) -> None:
    for rel in [
        ".obsidian/workspace.md",
        ".trash/Old.md",
        ".vaultd/config.md",
        ".git/x.md",
        ".hidden/Note.md",
        "Notes/.Hidden.md",
        "Notes/Note.sync-conflict-2024.md",
        "Notes/Note (conflicted copy).md",
        "Notes/.~lock.Note.md",
        "Notes/~$Note.md",
        "Notes/Note.md.icloud",
        "Notes/Note.md.vaultd-tmp-123",
        "Notes/x.vaultd-tmp.md",
        "Notes/data.txt",
        "Notes/canvas.canvas",
    ]:
        _note(tmp_path, rel, "video_id: ignored0000")
    _note(tmp_path, "Notes/Real.md", "video_id: real0000000")
    index = VaultIndex.build(tmp_path)
    assert [e.path for e in index.entries()] == ["Notes/Real.md"]
    assert index.find_by_video_id("ignored0000") is None
    assert is_ignored_path(".obsidian/app.md") and not is_ignored_path("a/b.md")
    assert not is_ignored_path("Notes/UPPER.MD")


def test_update_remove_and_recreate(tmp_path: Path) -> None:
    index = VaultIndex.build(tmp_path)
    assert len(index) == 0
    path = _note(tmp_path, "A.md", "video_id: aaaaaaaaaaa")
    index.update_file(tmp_path, "A.md")
    assert index.find_by_video_id("aaaaaaaaaaa") == "A.md"
    path.write_text("---\nvideo_id: bbbbbbbbbbb\naliases: [Alpha]\n---\n", encoding="utf-8")
    index.update_file(tmp_path, "A.md")
    assert index.find_by_video_id("aaaaaaaaaaa") is None
    assert index.find_by_video_id("bbbbbbbbbbb") == "A.md"
    assert index.get("A.md").aliases == ("Alpha",)
    path.unlink()
    assert index.update_file(tmp_path, "A.md") is None  # vanished before the event arrived
    assert len(index) == 0 and index.find_by_video_id("bbbbbbbbbbb") is None
    assert index.update_file(tmp_path, ".trash/A.md") is None


def test_rename_and_move_keep_identity(tmp_path: Path) -> None:
    _note(tmp_path, "Study Notes/Old Title.md", "video_id: vvvvvvvvvvv\naliases: [OT]")
    index = VaultIndex.build(tmp_path)
    moved = index.move("Study Notes/Old Title.md", "Archive/New Title.md")
    assert moved is not None and moved.title == "New Title" and moved.aliases == ("OT",)
    assert index.find_by_video_id("vvvvvvvvvvv") == "Archive/New Title.md"
    assert "Study Notes/Old Title.md" not in index
    # Moving into the trash is a deletion for the index.
    assert index.move("Archive/New Title.md", ".trash/New Title.md") is None
    assert index.find_by_video_id("vvvvvvvvvvv") is None


def test_temp_file_renamed_into_place_is_read(tmp_path: Path) -> None:
    index = VaultIndex.build(tmp_path)
    _note(tmp_path, "Note.md", "video_id: tmp00000000")
    assert index.move("Note.md.vaultd-tmp-1", "Note.md") is None  # without root: cannot read
    assert index.move("Note.md.vaultd-tmp-1", "Note.md", vault_root=tmp_path) is not None
    assert index.find_by_video_id("tmp00000000") == "Note.md"


def test_folder_moves_and_deletes(tmp_path: Path) -> None:
    _note(tmp_path, "A/One.md", "video_id: one00000000")
    _note(tmp_path, "A/Sub/Two.md", "video_id: two00000000")
    _note(tmp_path, "AB/Three.md", "video_id: three000000")
    index = VaultIndex.build(tmp_path)
    assert index.move_dir("A", "Z") == 2
    assert index.find_by_video_id("two00000000") == "Z/Sub/Two.md"
    assert index.find_by_video_id("three000000") == "AB/Three.md"
    assert index.remove_dir("Z") == 2
    assert [e.path for e in index.entries()] == ["AB/Three.md"]


def test_duplicate_video_id_and_duplicate_titles(tmp_path: Path) -> None:
    _note(tmp_path, "b/Memory.md", "video_id: dupdupdupdu")
    _note(tmp_path, "a/Memory.md", "video_id: dupdupdupdu")
    _note(tmp_path, "Unique.md")
    index = VaultIndex.build(tmp_path)
    assert index.find_by_video_id("dupdupdupdu") == "a/Memory.md"
    assert index.paths_for_video_id("dupdupdupdu") == ["a/Memory.md", "b/Memory.md"]
    targets = {t for _title, _aliases, t in index.titles_and_aliases()}
    assert targets == {"a/Memory", "b/Memory", "Unique"}
    index.remove("b/Memory.md")
    assert index.link_target("a/Memory.md") == "Memory"


def test_index_feeds_the_linker(tmp_path: Path) -> None:
    _note(tmp_path, "Working Memory.md", "aliases: [WM]")
    _note(tmp_path, "Теория.md")
    linker = Linker(VaultIndex.build(tmp_path).titles_and_aliases())
    assert linker.link("Our WM and the теория.") == (
        "Our [[Working Memory|WM]] and the [[Теория|теория]]."
    )


_yaml_text = st.text(alphabet="ab Ö:#,'\"[]{}-&*!|>%@`\\\t", max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_yaml_text, max_size=4),
    _yaml_text,
    st.sampled_from(["flow", "block", "plain-flow", "plain-block", "scalar"]),
)
def test_fast_frontmatter_reading_agrees_with_yaml(
    aliases: list[str], video_id: str, style: str
) -> None:
    if style == "flow":
        body = "aliases: " + yaml.safe_dump(aliases, default_flow_style=True, width=10**6)
    elif style == "block":
        body = "aliases:\n" + (yaml.safe_dump(aliases, default_flow_style=False) if aliases else "")
    elif style == "plain-flow":
        body = "aliases: [" + ", ".join(aliases) + "]\n"
    elif style == "plain-block":
        body = "aliases:\n" + "".join(f"  - {a}\n" for a in aliases)
    else:
        body = f"aliases: {aliases[0] if aliases else ''}\n"
    head = f"{body}video_id: {video_id}"
    try:
        data = yaml.load(head, Loader=getattr(yaml, "CBaseLoader", yaml.BaseLoader))
    except yaml.YAMLError:
        data = None
    got = _parse_keys(head)
    if not isinstance(data, dict):
        assert got == ((), None)
        return
    want_aliases: list[str] = []
    value = data.get("aliases")
    for item in value if isinstance(value, list) else [value] if isinstance(value, str) else []:
        if isinstance(item, str) and item.strip() and item.strip() not in want_aliases:
            want_aliases.append(item.strip())
    vid = data.get("video_id")
    want_vid = vid.strip() if isinstance(vid, str) and vid.strip() else None
    assert got == (tuple(want_aliases), want_vid)
