"""In-memory index of the vault's notes: path, title, aliases and video id.

This module owns "what notes exist and what they are called", so the linker and the
writer never rescan the vault. It is built once at start (:meth:`VaultIndex.build`) and
kept current from file events (:meth:`update_file`, :meth:`remove`, :meth:`move`, and the
folder variants). Notes are identified by their ``video_id`` frontmatter key rather than
their path, so :meth:`find_by_video_id` follows a note the user renamed or moved.

Only the frontmatter head of each file is read, and only the ``aliases`` / ``alias`` and
``video_id`` keys are parsed (with the YAML *base* loader, so ``no`` or ``0012`` stay
the strings the user typed); 10,000 notes index in well under a second.

Ignored: ``.obsidian/``, ``.trash/``, ``.vaultd/``, ``.git/`` and every other hidden
folder or file, sync-tool files (``.sync-conflict``, ``conflicted copy``, ``.~``, ``~$``,
``.icloud``), the writer's temp files (``*.vaultd-tmp*``) and regeneration conflict
copies (:mod:`vault_tools.conflicts`: name pattern and frontmatter marker). Pure: no threads, no I/O
beyond reading notes.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from vault_tools.conflicts import has_copy_name, is_conflict_copy
from vault_tools.pathgate import PathGate, PathRefused

__all__ = ["IndexEntry", "VaultIndex", "is_ignored_path", "read_head"]

_SYNC_MARKERS = (".sync-conflict", "conflicted copy", ".vaultd-tmp")
_SYNC_PREFIXES = (".~", "~$")
_HEAD_CHUNK = 4096
_HEAD_LIMIT = 256 * 1024  # frontmatter larger than this is not read for the index
_KEYS = ("aliases", "alias", "video_id")
_KEY_STARTS = ("alias", "video_id", '"', "'")
_TOP_KEY = re.compile(r"^([^\s#:][^:]*?)\s*:(?:\s|$)")
_Loader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)


def _ignored_name(name: str) -> bool:
    return (
        name.startswith(".")
        or name.startswith(_SYNC_PREFIXES)
        or name.endswith(".icloud")
        or any(marker in name for marker in _SYNC_MARKERS)
    )


def is_ignored_path(rel_path: str | PurePosixPath) -> bool:
    """True for paths the index (and the vault watcher) must not treat as notes."""
    parts = PurePosixPath(rel_path).parts
    if not parts or any(_ignored_name(part) for part in parts):
        return True
    return not parts[-1].lower().endswith(".md")


@dataclass(frozen=True)
class IndexEntry:
    """One note: vault-relative POSIX path, title (file stem), aliases and video id."""

    path: str
    title: str
    aliases: tuple[str, ...] = ()
    video_id: str | None = None


def read_head(path: str | Path, gate: PathGate | None = None) -> str | None:
    """The YAML text between the opening and closing ``---`` of a note, or None.

    Opened through ``gate`` when given (a vault path from a watcher event); otherwise
    ``path`` must be a file the scan found without following symlinks, and it is opened
    without following one now (``O_NOFOLLOW``) and without blocking. Only a regular
    file is read (never a FIFO or a device)."""
    if gate is not None:
        fd = gate.open_read(path)
    else:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(f"{path} is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(_HEAD_CHUNK)
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        if not (data.startswith(b"---\n") or data.startswith(b"---\r\n")):
            return None
        while True:
            match = re.search(rb"\r?\n---[ \t]*(?:\r?\n|$)", data)
            if match:
                return data[data.index(b"\n") + 1 : match.start()].decode("utf-8", "replace")
            more = handle.read(_HEAD_CHUNK * 4)
            if not more or len(data) > _HEAD_LIMIT:
                return None
            data += more


def _parse_keys(head: str) -> tuple[tuple[str, ...], str | None]:
    """Aliases and video id from a frontmatter head, reading only those keys."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in head.splitlines():
        if line[:1] not in ("", " ", "\t", "-", "#"):  # a top-level key starts here
            current = None
            if line.startswith(_KEY_STARTS):
                match = _TOP_KEY.match(line)
                key = match.group(1).strip("'\"") if match else None
                current = blocks.setdefault(key, []) if key in _KEYS else None
        if current is not None:
            current.append(line)
    if not blocks:
        return (), None
    try:
        data = _parse_simple(blocks)
    except _NeedsYaml:
        try:
            data = yaml.load("\n".join(sum(blocks.values(), [])), Loader=_Loader)
        except yaml.YAMLError:
            return (), None
    if not isinstance(data, dict):
        return (), None
    aliases: list[str] = []
    for key in ("aliases", "alias"):
        value = data.get(key)
        values = value if isinstance(value, list) else [value] if isinstance(value, str) else []
        for item in values:
            if isinstance(item, str) and item.strip() and item.strip() not in aliases:
                aliases.append(item.strip())
    video_id = data.get("video_id")
    video_id = video_id.strip() if isinstance(video_id, str) and video_id.strip() else None
    return tuple(aliases), video_id


class _NeedsYaml(Exception):
    """The value uses YAML beyond the simple forms :func:`_parse_simple` reads."""


_PLAIN_START_BAD = frozenset("-?:,[]{}#&*!|>'\"%@`")
_FLOW_BAD = frozenset(",[]{}")
_FLOW_ITEM = re.compile(r"\s*(\"[^\"\\]*\"|'[^']*'|[^,'\"]*?)\s*(?:,|$)")


def _scalar(raw: str, flow: bool = False) -> str | None:
    """A one-line scalar as YAML's base loader reads it, for the common simple forms."""
    value = raw.strip()
    if not value:
        return None
    first = value[0]
    if first in "\"'":
        if len(value) >= 2 and value[-1] == first and first not in value[1:-1]:
            if first == '"' and "\\" in value:
                raise _NeedsYaml
            return value[1:-1]
        raise _NeedsYaml
    if first in _PLAIN_START_BAD or " #" in value or ": " in value or value[-1] == ":":
        raise _NeedsYaml
    if flow and not _FLOW_BAD.isdisjoint(value):
        raise _NeedsYaml
    return value


def _parse_simple(blocks: dict[str, list[str]]) -> dict[str, object]:
    """Parse ``key: scalar``, ``key: [a, "b"]`` and ``key:`` + ``- item`` lines quickly;
    raise :class:`_NeedsYaml` for anything else (the caller then uses the YAML parser)."""
    data: dict[str, object] = {}
    for key, lines in blocks.items():
        if any("\t" in line for line in lines):  # tabs have subtle YAML rules
            raise _NeedsYaml
        rest = lines[0].split(":", 1)[1].strip()
        more = [line for line in lines[1:] if line.strip()]
        if rest.startswith("[") and rest.endswith("]") and not more:
            inner = rest[1:-1]
            items, position = [], 0
            while position < len(inner):
                match = _FLOW_ITEM.match(inner, position)
                if match is None or match.end() == position:
                    raise _NeedsYaml
                item = _scalar(match.group(1), flow=True)
                if item is None:  # "[a, , b]" is an error, "[a, ]" is not: let YAML decide
                    raise _NeedsYaml
                items.append(item)
                position = match.end()
            data[key] = items
        elif not rest:
            items = []
            for line in more:
                item = line.strip()
                if not item.startswith("- ") and item != "-":
                    raise _NeedsYaml
                items.append(_scalar(item[2:]))
            data[key] = [item for item in items if item is not None] if more else None
        elif more:
            raise _NeedsYaml
        else:
            data[key] = _scalar(rest)
    return data


def _stem(rel: str) -> str:
    name = rel.rsplit("/", 1)[-1]
    return name[:-3] if name[-3:].lower() == ".md" else name.rsplit(".", 1)[0]


def _norm(rel_path: str | PurePosixPath) -> str:
    return PurePosixPath(rel_path).as_posix()


class VaultIndex:
    """Notes of one vault by path, with lookups by video id and title."""

    def __init__(self) -> None:
        self._entries: dict[str, IndexEntry] = {}
        self._by_video: dict[str, set[str]] = {}
        self._stem_count: dict[str, int] = {}

    # ------------------------------------------------------------------ building

    @classmethod
    def build(cls, vault_root: Path) -> VaultIndex:
        """Scan ``vault_root`` for notes (skipping ignored folders and files)."""
        index = cls()
        root = os.fspath(vault_root)
        stack = [("", root)]
        while stack:
            prefix, folder = stack.pop()
            try:
                scanner = os.scandir(folder)
            except OSError:
                continue
            with scanner:
                for item in scanner:
                    name = item.name
                    rel = prefix + name
                    try:
                        if item.is_dir(follow_symlinks=False):
                            if not _ignored_name(name):
                                stack.append((rel + "/", item.path))
                        elif (
                            name[-3:].lower() == ".md"
                            and not _ignored_name(name)
                            and item.is_file(follow_symlinks=False)  # no symlink out
                        ):
                            index._load(item.path, rel)
                    except OSError:
                        continue
        return index

    def update_file(self, vault_root: Path, rel_path: str | PurePosixPath,
                    gate: PathGate | None = None) -> IndexEntry | None:
        """Re-read one note after a create/modify event; drops it if gone or ignored.
        Read through ``gate`` (default: the vault's gate with symlinks out refused)."""
        rel = _norm(rel_path)
        if is_ignored_path(rel):
            self.remove(rel)
            return None
        try:  # a path from an event: through the path gate
            return self._load(rel, rel, gate or PathGate(vault_root))
        except (OSError, PathRefused):
            self.remove(rel)
            return None

    def remove(self, rel_path: str | PurePosixPath) -> IndexEntry | None:
        """Forget one note (delete event). Returns the removed entry, if any."""
        entry = self._entries.pop(_norm(rel_path), None)
        if entry is not None:
            self._unlink(entry)
        return entry

    def move(
        self,
        old_rel: str | PurePosixPath,
        new_rel: str | PurePosixPath,
        vault_root: Path | None = None,
    ) -> IndexEntry | None:
        """Follow a rename/move. Content is unchanged, so the file is not re-read unless the
        source was not indexed (e.g. our own temp file renamed into place) and
        ``vault_root`` is given."""
        new = _norm(new_rel)
        entry = self.remove(old_rel)
        if is_ignored_path(new):
            return None
        if entry is None:
            return self.update_file(vault_root, new) if vault_root is not None else None
        moved = IndexEntry(new, _stem(new), entry.aliases, entry.video_id)
        self._store(moved)
        return moved

    def move_dir(self, old_prefix: str | PurePosixPath, new_prefix: str | PurePosixPath) -> int:
        """Follow a folder rename/move; returns how many notes moved."""
        old, new = _norm(old_prefix).rstrip("/") + "/", _norm(new_prefix).rstrip("/") + "/"
        moving = [path for path in self._entries if path.startswith(old)]
        for path in moving:
            self.move(path, new + path[len(old) :])
        return len(moving)

    def remove_dir(self, prefix: str | PurePosixPath) -> int:
        """Forget every note under a deleted folder; returns how many."""
        folder = _norm(prefix).rstrip("/") + "/"
        gone = [path for path in self._entries if path.startswith(folder)]
        for path in gone:
            self.remove(path)
        return len(gone)

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, rel_path: object) -> bool:
        return isinstance(rel_path, str | PurePosixPath) and _norm(rel_path) in self._entries

    def get(self, rel_path: str | PurePosixPath) -> IndexEntry | None:
        return self._entries.get(_norm(rel_path))

    def find_by_video_id(self, video_id: str) -> str | None:
        """Path of the note for ``video_id`` (the first by path if the user copied it)."""
        paths = self._by_video.get(video_id)
        return min(paths) if paths else None

    def paths_for_video_id(self, video_id: str) -> list[str]:
        return sorted(self._by_video.get(video_id, ()))

    def entries(self) -> list[IndexEntry]:
        """All notes, sorted by path."""
        return [self._entries[path] for path in sorted(self._entries)]

    def link_target(self, rel_path: str | PurePosixPath) -> str:
        """What to put in ``[[...]]`` for a note: its title, or its path without ``.md``
        when another note has the same title."""
        path = _norm(rel_path)
        stem = _stem(path)
        return stem if self._stem_count.get(stem.casefold(), 0) <= 1 else path[:-3]

    def titles_and_aliases(self) -> Iterator[tuple[str, tuple[str, ...], str]]:
        """``(title, aliases, link target)`` per note: the input :class:`Linker` takes."""
        for path in sorted(self._entries):
            entry = self._entries[path]
            yield entry.title, entry.aliases, self.link_target(path)

    # ------------------------------------------------------------------ internals

    def _load(self, path: str, rel: str, gate: PathGate | None = None) -> IndexEntry | None:
        head = read_head(path, gate)
        if has_copy_name(rel) and is_conflict_copy(rel, head):
            self.remove(rel)  # a regeneration's conflict copy is not a note to link to
            return None
        aliases, video_id = _parse_keys(head) if head else ((), None)
        entry = IndexEntry(rel, _stem(rel), aliases, video_id)
        old = self._entries.pop(rel, None)
        if old is not None:
            self._unlink(old)
        self._store(entry)
        return entry

    def _store(self, entry: IndexEntry) -> None:
        self._entries[entry.path] = entry
        key = entry.title.casefold()
        self._stem_count[key] = self._stem_count.get(key, 0) + 1
        if entry.video_id:
            self._by_video.setdefault(entry.video_id, set()).add(entry.path)

    def _unlink(self, entry: IndexEntry) -> None:
        key = entry.title.casefold()
        self._stem_count[key] -= 1
        if not self._stem_count[key]:
            del self._stem_count[key]
        if entry.video_id:
            paths = self._by_video.get(entry.video_id, set())
            paths.discard(entry.path)
            if not paths:
                self._by_video.pop(entry.video_id, None)
