"""Threads sharing the vault library: what the daemon's writer and graph keeper do at once.

Found by the SIGKILL test: after a kill the graph keeper rebuilds the graph from the
vault (``iter_vault_notes``) while the writer indexes the same notes
(``VaultKnowledge`` → ``note_from_markdown``). Both parse frontmatter through one
module-level ``ruamel.yaml`` instance, which is not thread-safe: the keeper thread died
with an ``IndexError`` from ruamel's reader. This reproduces it without a daemon.
"""

from __future__ import annotations

import threading
import time

from vault_tools.graph import NoteFacts, note_from_markdown


def _note(i: int) -> tuple[str, str]:
    return (f"Study Notes/Note {i}.md",
            f"---\ntype: study-note\ntitle: \"Note {i}\"\ntags: [topic-{i}, shared]\n"
            f"aliases: [\"N{i}\"]\nsource: \"https://www.youtube.com/watch?v=v{i:010d}\"\n"
            f"---\n# Note {i}\n\nSee [[Note {i + 1}]] and #tag{i}.\n")


def test_note_facts_are_thread_safe() -> None:
    notes = [_note(i) for i in range(150)]
    expected = {path: note_from_markdown(path, text) for path, text in notes}
    problems: list[str] = []
    stop = threading.Event()
    deadline = time.monotonic() + 4.0

    def parse_all() -> None:
        while not stop.is_set() and time.monotonic() < deadline:
            for path, text in notes:
                try:
                    got: NoteFacts = note_from_markdown(path, text)
                except Exception as exc:  # noqa: BLE001 - any exception is the finding
                    problems.append(f"{path}: {type(exc).__name__}: {exc}")
                else:
                    if got != expected[path]:
                        problems.append(f"{path}: facts of another note")
                if problems:
                    stop.set()
                    return

    threads = [threading.Thread(target=parse_all) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert problems == []
