"""A second process that edits ``inbox.md`` like people and their tools do.

Run as ``python -m tests.faults.editor INBOX SCRIPT.json``. The script is a list of
``[line, how]``; every ``pace`` seconds (10 ms) one line is added at the end of the
file, ``how`` being

* ``append``: ``open(path, "a")`` and write (a shell ``>>``, many sync tools);
* ``rewrite``: read the file, then truncate it and write it all again in place (what
  Obsidian and most editors do on save);
* ``rename``: write a temp file beside it and rename it over (vim, some sync tools).

The editor keeps nothing in memory between edits: it always starts from what is on
disk, so whatever the daemon wrote is the base of the next edit, as for a person.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def add_line(path: Path, line: str, how: str) -> None:
    data = (line + "\n").encode("utf-8")
    if how == "append":
        with open(path, "ab") as fh:
            fh.write(data)
        return
    current = path.read_bytes()
    if current and not current.endswith(b"\n"):
        current += b"\n"
    if how == "rewrite":
        with open(path, "wb") as fh:
            fh.write(current + data)
        return
    tmp = path.with_name(f".{path.name}.edit~")
    tmp.write_bytes(current + data)
    os.replace(tmp, path)


def main(argv: list[str]) -> int:
    path, script = Path(argv[1]), json.loads(Path(argv[2]).read_text(encoding="utf-8"))
    pace = float(argv[3]) if len(argv) > 3 else 0.01
    for line, how in script:
        time.sleep(pace)
        add_line(path, line, how)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
