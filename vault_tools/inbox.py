"""The inbox file: find source lines, annotate them with their state, edit safely.

Annotation grammar (always at the end of a source line, after the user's text)::

    <user text with the URL> — ⏳ queued
    <user text with the URL> — ⚙️ working            (or "⚙️ working: 3 of 12 done")
    <user text with the URL> — ⚙️ transcribing 12:30 of 58:00
    <user text with the URL> — 🔁 waiting: <reason>
    <user text with the URL> — ✅ [[Study Notes/Title|Title]]
    <user text with the URL> — ❌ failed: <reason>
    <user text with the URL> — 🗑 note deleted — vaultd regenerate <key> makes it again
    <channel page URL> — ➕ a channel, not a video; to follow it, add "UC…" to …

The annotation is recognised by `` — `` followed by one of those marks and runs to the
end of the line; rendering then re-parsing gives the same line (idempotent). Everything
else, including line endings, other lines and invalid UTF-8, is kept byte-for-byte.

Edits are compare-and-swap (:func:`edit_inbox`): read, transform, and swap the new
content in only if the file still holds what was read; otherwise read again and redo.
On Linux the swap is an atomic exchange, so an edit that lands in the instant between
check and swap is found in the swapped-out file and merged on the next round. Each round
opens the file's folder through the path gate and does everything relative to that open
folder, so the gate's check holds at the moment of use. A file over ``MAX_INBOX_BYTES``
is not read and never rewritten (:class:`InboxTooLarge` says why).
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import stat
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vault_tools.atomic import exchange, write_temp
from vault_tools.pathgate import PathGate, _size, file_kind, read_limited
from vault_tools.sources import FILE_KINDS, SourceRef, find_sources

SEP = " — "
MARKS = {"queued": "⏳", "working": "⚙️", "waiting": "🔁", "done": "✅", "failed": "❌",
         "deleted": "🗑", "follow": "➕"}
# Exactly the separator we write (" — "), so a user's trailing blanks (a markdown hard
# break) stay theirs.
_ANNOTATION = re.compile(r" —[ \t]+(?:⏳|⚙️|⚙|🔁|✅|❌|🗑️|🗑|➕)(?:[ \t].*)?$")
MAX_REASON = 160


@dataclass(frozen=True)
class Status:
    """What an inbox line should say about its sources."""

    state: str  # queued | working | waiting | done | failed
    detail: str = ""  # reason, link(s), or progress

    def render(self) -> str:
        mark = MARKS[self.state]
        if self.state == "queued":
            return f"{SEP}{mark} queued"
        if self.state == "working":
            if self.detail.startswith("transcribing"):  # "⚙️ transcribing 12:30 of 58:00"
                return f"{SEP}{mark} {clean_reason(self.detail)}"
            return f"{SEP}{mark} working" + (f": {self.detail}" if self.detail else "")
        if self.state == "done":
            return f"{SEP}{mark} {self.detail}".rstrip()
        if self.state == "follow":  # a channel page: detail says how to follow it
            return f"{SEP}{mark} a channel, not a video; to follow it, {clean_reason(self.detail)}"
        if self.state == "deleted":  # detail: the job key, for the command that remakes it
            key = shlex.quote(clean_reason(self.detail))
            return f"{SEP}{mark} note deleted{SEP}vaultd regenerate {key} makes it again"
        return f"{SEP}{mark} {self.state}: {clean_reason(self.detail)}"


_ZWSP = "\u200b"


def clean_reason(reason: str) -> str:
    """One line, no markup that could break the line or the link syntax.

    Angle brackets stay readable (a subtitle error quotes ``00:00:01,000 --> ...``) but
    inert: a zero-width space after ``<`` and before ``>`` means no HTML tag or comment
    can open, and no ``-->`` can close a comment the user's text opened above the line.
    """
    text = re.sub(r"[\r\n\t]+", " ", reason or "unknown error").replace(_ZWSP, "")
    text = re.sub(r"[\[\]`|]", "'", text).replace("%%", "%")
    text = text.replace("<", "<" + _ZWSP).replace(">", _ZWSP + ">")
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1].rstrip() + "…"


@dataclass(frozen=True)
class InboxLine:
    index: int  # 0-based line number
    body: str  # the line without its end-of-line and without our annotation
    annotation: str  # our annotation as present now ("" if none)
    sources: tuple[SourceRef, ...]


def _split_eol(line: str) -> tuple[str, str]:
    if line.endswith("\r\n"):
        return line[:-2], "\r\n"
    if line.endswith(("\n", "\r")):
        return line[:-1], line[-1]
    return line, ""


def strip_annotation(line: str) -> tuple[str, str]:
    """(line without annotation, annotation)."""
    m = _ANNOTATION.search(line)
    if not m:
        return line, ""
    return line[: m.start()], line[m.start():]


# A code fence at the start of a line (after LF, CR or CRLF).
_FENCE = re.compile(r"(?:^|(?<=\r))[ \t]*(`{3,}|~{3,})", re.M)
# The line closing the frontmatter ("---" or "..."), with the line end before it.
_FRONTMATTER_END = re.compile(r"(?:\r\n|\r|\n)(?:---|\.\.\.)[^\S\r\n]*(?=\r\n|\r|\n|\Z)")
MAX_SOURCE_LINE = 65_536  # longer lines are never sources (and scanning them is costly)
_CHUNK = 1 << 20


def _breaks(text: str, start: int, end: int) -> int:
    """Line ends in ``text[start:end]`` (neither bound between a CR and its LF).

    Lines end where Obsidian ends them: at LF, CRLF and CR only. (``str.splitlines``
    also splits at a form feed, ``\\x1c``-``\\x1e``, ``\\x85`` and U+2028/U+2029; a
    source line holding one got its annotation in the middle of the line, and one more
    on every pass.)"""
    return (text.count("\n", start, end) + text.count("\r", start, end)
            - text.count("\r\n", start, end))


def _line_end(text: str, at: int) -> tuple[int, int]:
    """(end of the line holding ``at`` without its line end, end with it)."""
    lf = text.find("\n", at)
    cr = text.find("\r", at, lf if lf >= 0 else len(text))
    end = cr if cr >= 0 else lf
    if end < 0:
        return len(text), len(text)
    return end, end + (2 if text.startswith("\r\n", end) else 1)


def _lines_at(text: str, positions: list[int]) -> Iterator[tuple[int, int, int]]:
    """(index, start, end with its line end) of each line holding one of the sorted
    ``positions``, once per line. The text is never split: a forward sweep counts line
    ends in C (``str.count``), so a 20 MB inbox of one-character lines costs no list of
    20 million strings."""
    start, index, end = 0, 0, -1
    for at in positions:
        if at < end:
            continue  # on the line found last
        back = max(text.rfind("\n", start, at), text.rfind("\r", start, at))
        new_start = back + 1 if back >= 0 else start
        index += _breaks(text, start, new_start)
        start = new_start
        end = _line_end(text, at)[1]
        yield index, start, end


def _skipped_spans(text: str) -> tuple[list[int], list[int]]:
    """(starts, ends), sorted and merged, of the frontmatter and of every code fence
    (fence lines included): text that is the user's, never sources. Only fence lines
    are visited."""
    spans: list[tuple[int, int]] = []
    if text.startswith("---") and text[3:4] in ("\n", "\r"):
        close = _FRONTMATTER_END.search(text, 3)
        if close:
            spans.append((0, close.end()))
    open_at, fence = -1, ""
    for mark in _FENCE.finditer(text):
        token = mark.group(1)[:3]
        if open_at < 0:
            open_at, fence = mark.start(), token
        elif token == fence:
            spans.append((open_at, mark.start()))
            open_at = -1
    if open_at >= 0:
        spans.append((open_at, len(text)))
    starts: list[int] = []
    ends: list[int] = []
    for a, b in sorted(spans):
        if ends and a <= ends[-1]:
            ends[-1] = max(ends[-1], b)
        else:
            starts.append(a)
            ends.append(b)
    return starts, ends


def candidate_lines(text: str, hits: list[int]) -> Iterator[tuple[int, str]]:
    """(index, line with its line end) of every line holding one of the positions
    ``hits`` (any order) that is not in the frontmatter or a code fence. Lazy: a caller
    that wants the first N lines pays for N."""
    starts, ends = _skipped_spans(text)
    for i, a, b in _lines_at(text, sorted(hits)):
        k = bisect_right(starts, a) - 1
        if k < 0 or a > ends[k]:
            yield i, text[a:b]


# Every file extension of the link-parsing table (vault_tools.sources.FILE_KINDS).
_NEEDLES = ("youtu.be", "youtube.com", "youtube-nocookie.com", *FILE_KINDS)


_ANYCASE = re.compile(r"youtu(?:\.be|be(?:-nocookie)?\.com)|(?:"
                      + "|".join(re.escape(e) for e in FILE_KINDS) + ")", re.I)


def _hits(text: str) -> list[int]:
    """Where a source may start, found without a Python loop per line (a 20 MB or binary
    inbox must not stall the writer)."""
    if not text.isascii():
        return [m.start() for m in _ANYCASE.finditer(text)]
    low = text.lower()
    hits: list[int] = []
    for needle in _NEEDLES:
        pos = low.find(needle)
        while pos >= 0:
            hits.append(pos)
            pos = low.find(needle, pos + 1)
    return hits


def parse_inbox(text: str, most: int | None = None) -> list[InboxLine]:
    """Every line holding at least one source (the first ``most`` of them). Lines inside
    code fences, in the frontmatter, or in HTML comments are the user's and never sources.

    Fast and small on huge or binary files: only lines that could hold a source are
    looked at, and the text is never split into a list of all its lines.
    """
    out: list[InboxLine] = []
    for i, raw in candidate_lines(text, _hits(text)):
        if len(raw) > MAX_SOURCE_LINE:
            continue
        line, _ = _split_eol(raw)
        if line.lstrip().startswith("<!--"):
            continue
        body, annotation = strip_annotation(line)
        refs = find_sources(body)
        if refs:
            out.append(InboxLine(i, body, annotation, tuple(refs)))
            if most is not None and len(out) >= most:
                break
    return out


def _line_starts(text: str, indexes: list[int]) -> dict[int, int]:
    """Start offset of each line index (sorted) that exists: line ends are counted a
    chunk at a time in C, then one by one only within the last chunk."""
    out: dict[int, int] = {}
    pos, no = 0, 0
    for want in indexes:
        while no < want:
            end = min(pos + _CHUNK, len(text))
            if end < len(text) and text[end - 1] == "\r" and text[end] == "\n":
                end += 1
            n = _breaks(text, pos, end)
            if no + n < want and end < len(text):
                pos, no = end, no + n
                continue
            for m in _LINE_END.finditer(text, pos, end):
                no += 1
                pos = m.end()
                if no == want:
                    break
            else:
                pos = end
            if end >= len(text):
                break
        if no == want and pos < len(text):
            out[want] = pos
    return out


_LINE_END = re.compile(r"\r\n|\r|\n")


def lines_by_index(text: str, indexes: list[int]) -> dict[int, str]:
    """The lines (without line ends) at these indexes, found without splitting the text."""
    return {i: text[start:_line_end(text, start)[0]]
            for i, start in _line_starts(text, sorted(indexes)).items()}


def annotate(text: str, statuses: dict[int, Status | None],
             expected: dict[int, str] | None = None) -> str:
    """Apply statuses to lines by index. ``None`` removes our annotation.

    ``expected`` maps a line index to its body as parsed; a line whose body changed since
    (the user edited it) is left alone, the caller will re-parse and try again. Only the
    annotated lines are cut out of the text; the rest is copied once, in slices.
    """
    parts: list[str] = []
    done = 0
    starts = _line_starts(text, sorted(statuses))
    for index, start in starts.items():
        status = statuses[index]
        stop, end = _line_end(text, start)
        body, _ = strip_annotation(text[start:stop])
        if expected is not None and expected.get(index) != body:
            continue
        parts += [text[done:start], body, status.render() if status else ""]
        done = stop
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def append_lines(text: str, new_lines: list[str]) -> str:
    """Append lines at the end, adding a newline first if the file lacks one."""
    if not new_lines:
        return text
    eol = "\r\n" if "\r\n" in text else "\n"
    if text and not text.endswith(("\n", "\r")):
        text += eol
    return text + "".join(line + eol for line in new_lines)


class InboxBusy(RuntimeError):
    """The inbox kept changing under us; try again later."""


# Source lines the daemon takes from one inbox: each costs a ledger row and some work on
# every pass (600,000 links in a 19 MB inbox took the daemon to 2.3 GB and minutes a pass).
# Lines past this are left as they are and wait; the daemon says why.
MAX_SOURCE_LINES = 10_000


# What the editor reads of a file. A real inbox is well under 1 MB; the parse and the
# rewrite cost a few copies of the text, so a file above this is not read at all (the
# daemon says why in the log and in ``vaultd status``) and is never rewritten.
MAX_INBOX_BYTES = 20_000_000


class InboxTooLarge(OSError):
    """The file is larger than the editor reads; it is left exactly as it is."""

    def __init__(self, shown: str, size: int, limit: int) -> None:
        super().__init__(errno.EFBIG, f"{shown} is {_size(size)}; vaultd reads inboxes up to "
                                      f"{_size(limit)}: move old lines to another note", shown)


def _open_read(name: str, dir_fd: int | None) -> int:
    """A descriptor of the regular file ``name``: the open follows no symlink
    (``O_NOFOLLOW``) and never blocks (``O_NONBLOCK``: a FIFO put in the inbox's place).
    Anything else raises ``OSError(EINVAL)`` whose strerror says what it is, in words."""
    fd = os.open(name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                 | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0), dir_fd=dir_fd)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise OSError(errno.EINVAL, f"{file_kind(mode)}, not a file", name)
    os.set_blocking(fd, True)
    return fd


def read_text(path: Path, *, dir_fd: int | None = None, limit: int = MAX_INBOX_BYTES,
              shown: str | None = None) -> tuple[bytes, str]:
    """The file's bytes and text (invalid UTF-8 kept as surrogate escapes, so it is
    written back byte-for-byte). ``path`` is the real path the path gate returned, or with
    ``dir_fd`` a name in the folder the gate opened."""
    fd = _open_read(os.fspath(path), dir_fd)
    try:
        raw = read_limited(fd, limit)
        if raw is None:
            raise InboxTooLarge(shown or Path(path).name,
                                max(os.fstat(fd).st_size, limit + 1), limit)
    finally:
        os.close(fd)
    return raw, raw.decode("utf-8", "surrogateescape")


def _same_bytes(name: str, dir_fd: int, raw: bytes) -> bool:
    """Does the file still hold exactly ``raw``? Compared a chunk at a time (no copy of
    the whole file)."""
    try:
        fd = _open_read(name, dir_fd)
    except OSError:
        return False
    try:
        if os.fstat(fd).st_size != len(raw):
            return False
        view, at = memoryview(raw), 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return at == len(raw)
            if view[at:at + len(chunk)] != chunk:
                return False
            at += len(chunk)
    finally:
        os.close(fd)


@dataclass
class _Replaced:
    """The inode we swapped out, kept open a while: an editor that opened the file just
    before our swap may still write into it. Its bytes at swap time were ``base``."""

    fd: int
    base: bytes
    at: float
    gate: PathGate
    limit: int


_replaced: dict[Path, list[_Replaced]] = {}
LATE_WRITE_WINDOW = 5.0  # seconds we watch a swapped-out inode for late writes


def _late_writes(path: Path, now: float) -> list[tuple[_Replaced, bytes]]:
    """(watched inode, late content) for swapped-out inodes someone wrote into after the
    swap."""
    found: list[tuple[_Replaced, bytes]] = []
    keep: list[_Replaced] = []
    for old in _replaced.get(path, []):
        size = os.fstat(old.fd).st_size
        data = os.pread(old.fd, min(max(size, len(old.base)), old.limit) + 1, 0)
        if data != old.base:
            found.append((old, data))
            os.close(old.fd)
        elif now - old.at > LATE_WRITE_WINDOW:
            os.close(old.fd)
        else:
            keep.append(old)
    _replaced[path] = keep
    return found


def _fold_late_writes(path: Path) -> None:
    """Merge text that landed in a swapped-out inode back into the live file."""
    from vault_tools.merge import merge3_text

    for old, late in _late_writes(path, time.monotonic()):
        # The late write is older than what the file holds now: where both added lines
        # at the same place, its lines come first.
        def merge(current: str, base: bytes = old.base, late: bytes = late) -> str:
            return merge3_text(base.decode("utf-8", "surrogateescape"),
                               late.decode("utf-8", "surrogateescape"), current)

        _swap_in(old.gate, path, merge, rounds=200, limit=old.limit)


def _sweep_expired(now: float) -> None:
    """Fold and close every watched inode whose window has passed, for every path.

    Without this an inode is looked at again only at the next edit of the same path, and
    a note edited once (a Related back-link) would hold its swapped-out file open for
    the life of the daemon: a descriptor per edited note, until the process hits its
    limit after days."""
    expired = [p for p, olds in _replaced.items()
               if olds and all(now - o.at > LATE_WRITE_WINDOW for o in olds)]
    for p in expired:
        _fold_late_writes(p)
        if not _replaced.get(p):
            _replaced.pop(p, None)


def release_replaced(path: Path | None = None) -> None:
    """Check and forget watched inodes (call at shutdown)."""
    for p in [path] if path else list(_replaced):
        _fold_late_writes(p)
        for old in _replaced.pop(p, []):
            os.close(old.fd)


def edit_inbox(path: Path | str, transform: Callable[[str], str], *, rounds: int = 200,
               create: bool = False, gate: PathGate | None = None,
               limit: int = MAX_INBOX_BYTES) -> bool:
    """Compare-and-swap edit. Returns True when the file was changed.

    ``transform`` gets the current text and returns the wanted text; it may be called
    several times (it must be a pure function of its input).

    Every round goes through ``gate`` (the vault's path gate; without one, a gate on the
    file's own folder) at the moment of use: the folder is opened by the gate's rule and
    the read, the temp file, the check and the exchange are all relative to that open
    folder, so a folder swapped for a symlink meanwhile cannot send the write out of the
    vault. A file larger than ``limit`` raises :class:`InboxTooLarge` and is not touched.
    """
    if gate is None:
        path = Path(path).absolute()
        gate, path = PathGate(path.parent), path.name
    key = gate.resolve(path)
    if _replaced.get(key):
        _fold_late_writes(key)
    _sweep_expired(time.monotonic())
    if create and not gate.exists(path):
        try:  # create-only (a link from a complete temp file): never over a file
            gate.write(path, transform("").encode("utf-8", "surrogateescape"),
                       create_only=True, make_parents=False)
        except FileExistsError:
            pass
        else:
            return True
    return _swap_in(gate, path, transform, rounds=rounds, limit=limit)


def _swap_in(gate: PathGate, path: Path | str, transform: Callable[[str], str], *,
             rounds: int, limit: int) -> bool:
    for _ in range(rounds):
        with gate.folder(path) as (dfd, name, where):
            raw, text = read_text(Path(name), dir_fd=dfd, limit=limit,
                                  shown=gate.shown(where, name))
            new_text = transform(text)
            if new_text == text:
                return False
            data = new_text.encode("utf-8", "surrogateescape")
            del text, new_text
            mode = os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mode & 0o7777
            tmp = write_temp(Path(name), data, mode=mode, dir_fd=dfd).name
            del data
            try:
                # Writing the temp file (fsync) takes a while: look again right before
                # the swap.
                if not _same_bytes(name, dfd, raw):
                    continue
                if exchange(tmp, name, dir_fd=dfd):
                    old_fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0),
                                     dir_fd=dfd)
                    if os.pread(old_fd, len(raw) + 1, 0) != raw:
                        # A write landed between the check and the swap; its text is in
                        # the swapped-out file. Swap it back and go round again on top.
                        os.close(old_fd)
                        exchange(tmp, name, dir_fd=dfd)
                        continue
                    key = Path(where, name)
                    _replaced.setdefault(key, []).append(
                        _Replaced(old_fd, raw, time.monotonic(), gate, limit))
                else:
                    os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
                os.fsync(dfd)
                return True
            finally:
                try:
                    os.unlink(tmp, dir_fd=dfd)
                except FileNotFoundError:
                    pass
    raise InboxBusy(f"{Path(path).name} kept changing; will try again")
