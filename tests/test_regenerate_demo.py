"""The issue's scenario, end to end: the demo's assessments, every card reviewed by the
Spaced Repetition plugin (its parser and writer ported in :mod:`tests.srplugin`), then
``vaultd regenerate`` on the four sources and ``vaultd run --once``. In the plugin's
default layout (comment on the next line) and with "save scheduling comment on the same
line", all 16 cards of each assessment keep their own schedule."""

from __future__ import annotations

import re
from pathlib import Path

from tests import srplugin
from tests.helpers import vaultd, vaultd_env

SOURCES = ["file:Lectures/cellular-respiration.txt", "file:Lectures/photosynthesis.srt",
           "file:Lectures/spaced-repetition.txt",
           "file:Lectures/TCP-congestion-control.vtt"]


def review(path: Path, same_line: bool, salt: int) -> dict[tuple[str, int], str]:
    """Review every card of the assessment (as the plugin writes it); its schedules."""
    text = re.sub(r"\n?<!--SR:[^>]*-->", "", path.read_text(encoding="utf-8"))

    def entry(question: str, k: int) -> str:
        n = sum(map(ord, question)) + salt
        return f"2027-{1 + n % 12:02d}-{1 + n % 28:02d},{1 + n % 90},{230 + 10 * k}"

    path.write_text(srplugin.review_all(text, same_line, entry), encoding="utf-8")
    return srplugin.schedule_map(path.read_text(encoding="utf-8"))


def test_demo_regeneration_keeps_all_sixteen_schedules_in_both_layouts(tmp_path: Path
                                                                      ) -> None:
    env = vaultd_env(tmp_path / "state")
    demo = tmp_path / "demo"
    assert vaultd("demo", str(demo), env=env, timeout=300).returncode == 0
    assessments = sorted((demo / "Study Notes").glob("* (Assessment).md"))
    assert len(assessments) == len(SOURCES) == 4
    for salt, same_line in enumerate((False, True)):
        before = {p: review(p, same_line, salt) for p in assessments}
        for p, scheduled in before.items():  # 8 '::', 4 multi-line, 4 cloze cards
            assert len(scheduled) == 16, (p.name, len(scheduled))
        regen = vaultd("regenerate", "--vault", str(demo), *SOURCES, env=env)
        assert regen.returncode == 0, regen.stderr
        run = vaultd("run", "--once", "--vault", str(demo), env=env, timeout=300)
        assert run.returncode == 0, run.stderr
        assert not list(demo.rglob("*regenerated*"))  # merged in place, no conflict copy
        for p, scheduled in before.items():
            after = p.read_text(encoding="utf-8")
            kept = srplugin.schedule_map(after)
            own = sum(kept.get(card) == schedule for card, schedule in scheduled.items())
            assert kept == scheduled, f"{p.name}: {own} of 16 kept their own schedule"
            assert "Retired cards" not in after
            comments = re.findall(r"^.*<!--SR:", after, re.M)
            assert all(bool(c.strip() != "<!--SR:") == same_line for c in comments)
