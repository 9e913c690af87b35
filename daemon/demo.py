"""``vaultd demo [DIR]``: a sample vault processed end to end, offline.

Copies the lecture subtitle files shipped in ``daemon/samples/`` into ``DIR/Lectures``,
adds a few notes of "your own" (``My notes/``) for the new notes to link to, writes an
inbox linking them (plus a malformed link, to show how failures look), forces
the offline backend in the vault's config, runs the daemon with ``--once`` and says where
to look. Safe to run again on the same folder: known sources are not regenerated.
"""

from __future__ import annotations

import logging
import shutil
from importlib import resources
from pathlib import Path

from daemon.config import CONFIG_RELPATH, render_default_config
from daemon.errors import VaultdError
from daemon.ledger import Ledger
from daemon.logs import setup_logging
from daemon.paths import state_dir_for
from daemon.runner import Daemon, RunOptions
from vault_tools.inbox import edit_inbox

SAMPLE_EXTS = (".srt", ".vtt", ".txt")

# A few notes "the person already wrote", so the demo shows what vaultd does with a real
# vault: mentions become [[links]] (aliases too), Related lists them, the graph has hubs.
# They are never modified; the demo test checks that.
YOUR_NOTES = {
    "My notes/Chlorophyll.md": "---\ntags: [biology]\n---\n# Chlorophyll\n\n"
    "The green pigment in chloroplasts. Absorbs red and blue light, reflects green.\n",
    "My notes/ATP.md": "---\naliases: [adenosine triphosphate]\ntags: [biology]\n---\n"
    "# ATP\n\nThe cell's energy currency; made by ATP synthase.\n",
    "My notes/Forgetting curve.md": "---\naliases: [Ebbinghaus curve]\n---\n"
    "# Forgetting curve\n\nMemory fades fast at first, then slowly. Reviews reset it.\n",
    "My notes/Packet loss.md": "# Packet loss\n\nWhat TCP reads as congestion.\n",
}


class DemoFolderError(VaultdError):
    pass


def sample_files() -> list[tuple[str, bytes]]:
    root = resources.files("daemon") / "samples"
    return sorted((p.name, p.read_bytes()) for p in root.iterdir()
                  if p.name.lower().endswith(SAMPLE_EXTS))


def build_demo_vault(folder: Path) -> list[str]:
    """Create (or top up) the demo vault; returns the inbox lines it holds.

    Not through the path gate: this builds the demo's own new folder (refused above when
    it holds anything else) before any daemon runs on it; the daemon then uses the gate."""
    if folder.exists() and any(folder.iterdir()) and not (folder / CONFIG_RELPATH).exists():
        raise DemoFolderError(f"{folder} exists and is not a vaultd demo vault; "
                              "choose an empty or new folder")
    if not (folder / CONFIG_RELPATH).exists():
        # A new demo vault at a path used before: forget the old run's ledger, or its
        # "done" jobs would link notes that no longer exist.
        shutil.rmtree(state_dir_for(folder.resolve()), ignore_errors=True)
    lectures = folder / "Lectures"
    lectures.mkdir(parents=True, exist_ok=True)
    config = folder / CONFIG_RELPATH
    if not config.exists():
        config.parent.mkdir(parents=True, exist_ok=True)
        text = render_default_config().replace('# backend = "auto"', 'backend = "offline"')
        config.write_text(text, encoding="utf-8")
    for rel, text in YOUR_NOTES.items():
        mine = folder / rel
        if not mine.exists():
            mine.parent.mkdir(parents=True, exist_ok=True)
            mine.write_text(text, encoding="utf-8")
    lines = []
    for name, data in sample_files():
        (lectures / name).write_bytes(data)
        lines.append(f"- [[Lectures/{name}]]")
    lines.append("- [[Lectures/missing-lecture.srt]]")

    def transform(text: str) -> str:
        if text.strip():
            return text
        return ("# Inbox\n\nPaste YouTube links or links to subtitle files here, one per "
                "line.\n\n" + "\n".join(lines) + "\n")

    edit_inbox(folder / "inbox.md", transform, create=True)
    return lines


def run_demo(folder: Path) -> int:
    setup_logging("WARNING")
    folder = folder.expanduser().resolve()
    build_demo_vault(folder)
    print(f"Demo vault: {folder}")
    print("Processing the inbox with the offline generator (no network, no API key)...")
    daemon = Daemon(folder, RunOptions(once=True, backend="offline"))
    daemon.start()
    try:
        daemon.run()
    finally:
        daemon.stop()
    ledger = Ledger(daemon.paths.ledger)
    try:
        jobs = ledger.all_jobs()
    finally:
        ledger.close()
    done = [j for j in jobs if j.state == "done"]
    failed = [j for j in jobs if j.state == "failed"]
    print(f"\n{len(done)} source(s) done, {len(failed)} failed.")
    for j in done:
        print(f"  note:       {folder / (j.note_path or '')}")
        print(f"  assessment: {folder / (j.assessment_path or '')}")
    for j in failed:
        print(f"  failed:     {j.key}: {j.last_error}")
    pdfs = sorted((folder / daemon.config.get("vault", "pdf_folder")).rglob("*.pdf"))
    if pdfs:
        print(f"  PDFs:       {len(pdfs)} in {pdfs[0].parent}")
    graph = daemon.paths.graph_note
    if graph.exists():
        print(f"  graph:      {graph} (and {graph.with_suffix('.canvas').name})")
    print(f"\nInbox with statuses: {folder / 'inbox.md'}")
    print("Open the folder as a vault in Obsidian to browse the notes.")
    logging.shutdown()
    return 0 if done else 1
