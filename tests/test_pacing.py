"""YouTube pacing per video: burst then sustained rate, the hourly cap, host-wide blocks.

The gate's arithmetic is checked with a fake clock shared by several gate objects (one
per simulated worker, all on the same state files, as worker processes are). The
request pattern is checked with the real youtube-transcript-api against the loopback
YouTube stand-in (tests/fake_youtube.py): a video's requests go back to back, the next
video waits, a cached video costs no request, and a block seen by one worker makes the
others wait.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_youtube import FakeYouTube, catalogue  # noqa: E402

from daemon.config import Config  # noqa: E402
from daemon.errors import RateLimitedError  # noqa: E402
from daemon.sources.http import PacedSession, PacingGate, RequestBudgetExceeded  # noqa: E402
from daemon.sources.youtube import fetch_youtube  # noqa: E402
from tests.helpers import FakeClock  # noqa: E402

HOST = "www.youtube.com"


def test_a_burst_of_videos_then_the_sustained_rate(tmp_path: Path) -> None:
    clock = FakeClock()
    gate = PacingGate(tmp_path, 2.0, burst=3, jitter=0.0, clock=clock, sleep=clock.sleep)
    t0 = clock.now
    starts = [gate.wait(HOST, expect=3) - t0 for _ in range(6)]
    assert starts == [0.0, 0.0, 0.0, 2.0, 4.0, 6.0]
    clock.now += 10.0  # idle: the bucket refills (to at most 3)
    before = clock.now
    starts = [gate.wait(HOST) - before for _ in range(5)]
    assert starts == [0.0, 0.0, 0.0, 2.0, 4.0]


def test_sustained_rate_never_exceeds_the_hourly_budget(tmp_path: Path) -> None:
    """Eight workers want videos as fast as they can for five hours; in no 60-minute
    window do more than ``budget`` requests leave, and the budget error's retry_after is
    honoured (the worker sleeps it, as the job's backoff would)."""
    clock = FakeClock()
    budget = 60
    workers = [PacingGate(tmp_path, 0.5, budget_per_hour=budget, burst=3, clock=clock,
                          sleep=clock.sleep, rng=random.Random(i).random) for i in range(8)]
    sent: list[float] = []
    end = clock.now + 5 * 3600
    refused = 0
    while clock.now < end:
        for gate in workers:
            try:
                sent.append(gate.wait(HOST, expect=3))
                for _ in range(2):  # the player and caption requests, back to back
                    gate.count(HOST)
                    sent.append(clock.now)
            except RequestBudgetExceeded as exc:
                assert isinstance(exc, RateLimitedError) and exc.retry_after
                refused += 1
                clock.sleep(exc.retry_after)
    sent.sort()
    j = 0
    most = 0
    for i, t in enumerate(sent):  # sliding window: requests in (t - 3600, t]
        while sent[j] <= t - 3600:
            j += 1
        most = max(most, i - j + 1)
    assert most <= budget
    assert len(sent) >= 4 * budget  # and the budget is used, not starved
    assert refused


def test_a_block_slows_every_worker(tmp_path: Path) -> None:
    """Worker A is blocked; worker B's next video waits out the pause, and the pace
    after it is slower than before for everyone until the block is forgotten."""
    clock = FakeClock()
    a, b = (PacingGate(tmp_path, 2.0, burst=1, jitter=0.0, clock=clock, sleep=clock.sleep)
            for _ in range(2))
    a.wait(HOST)
    b.wait(HOST)
    assert clock.sleeps == [2.0]
    pause = a.blocked(HOST, retry_after=None)
    assert pause >= 8.0
    blocked_at = clock.now
    b.wait(HOST)  # the other worker, not the one that saw the block
    assert clock.now == pytest.approx(blocked_at + pause)
    t = clock.now
    a.wait(HOST)
    assert clock.now - t == pytest.approx(4.0)  # interval doubled after one block
    # A 429 with a longer Retry-After wins over the computed pause.
    assert b.blocked(HOST, retry_after=5000.0) == 5000.0
    t = clock.now
    a.wait(HOST)
    assert clock.now - t == pytest.approx(5000.0)
    clock.now += 3600.0  # an hour without a block: the pace is back to normal
    a.wait(HOST)
    t = clock.now
    b.wait(HOST)
    assert clock.now - t == pytest.approx(2.0)


# --------------------------------------------------------------------------- real library


def youtube_config(**youtube: Any) -> dict[str, dict[str, Any]]:
    cfg = Config.defaults().to_dict()
    cfg["youtube"].update(youtube)
    return cfg


@pytest.fixture
def fake_yt(monkeypatch: pytest.MonkeyPatch) -> Any:
    with FakeYouTube() as yt:
        monkeypatch.setenv("VAULTD_YOUTUBE_ORIGIN", yt.origin)
        yield yt


def paced(tmp_path: Path, clock: FakeClock, **kw: Any) -> PacedSession:
    from daemon.sources.http import mount_test_origin

    gate = PacingGate(tmp_path, 2.0, jitter=0.0, clock=clock, sleep=clock.sleep, **kw)
    session = PacedSession(gate)
    mount_test_origin(session)
    return session


def test_each_video_is_paced_as_one_unit(tmp_path: Path, fake_yt: FakeYouTube) -> None:
    clock = FakeClock()
    session = paced(tmp_path, clock, burst=1)
    ids = [v for v, video in catalogue().items() if video.mode == "ok"][:2]
    counts = []
    for vid in ids:
        stats: dict[str, int] = {}
        _, meta = fetch_youtube(vid, youtube_config(), tmp_path, session=session,
                                stats=stats)
        counts.append(stats["requests"])
        assert meta.title and meta.channel and meta.duration  # from the same responses
    # watch page, player, captions: what the library itself needs, nothing more
    assert counts == [3, 3]
    assert [h.path for h in fake_yt.hits] == ["/watch", "/youtubei/v1/player",
                                              "/api/timedtext"] * 2
    assert clock.sleeps == [2.0]  # only the second video's first request waited
    stats = {}
    fetch_youtube(ids[0], youtube_config(), tmp_path, session=session, stats=stats)
    assert stats["requests"] == 0 and len(fake_yt.hits) == 6  # cached: no request at all


def test_a_block_seen_by_one_worker_pauses_the_others(tmp_path: Path,
                                                      fake_yt: FakeYouTube) -> None:
    from daemon.errors import IpBlockedError

    clock = FakeClock()
    ids = [v for v, video in catalogue().items() if video.mode == "ok"][:2]
    fake_yt.videos[ids[0]].blocks = ["429"]
    fake_yt.videos[ids[0]].retry_after = 120
    worker_a, worker_b = paced(tmp_path, clock), paced(tmp_path, clock)
    with pytest.raises(RateLimitedError) as err:
        fetch_youtube(ids[0], youtube_config(), tmp_path, session=worker_a)
    assert not isinstance(err.value, IpBlockedError) and err.value.retry_after == 120
    assert clock.sleeps == []
    stats: dict[str, int] = {}
    fetch_youtube(ids[1], youtube_config(), tmp_path, session=worker_b, stats=stats)
    assert clock.sleeps == [pytest.approx(120.0)] and stats["requests"] == 3


def test_requests_per_video_reach_the_ledger_and_status(
        tmp_path: Path, fake_yt: FakeYouTube, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatcher records what each fetch cost; `vaultd status` shows it (0 from the
    transcript cache when the same video is generated again)."""
    from daemon.config import load_config
    from daemon.ledger import Ledger
    from daemon.paths import VaultPaths
    from daemon.pipeline import Dispatcher
    from daemon.status import format_status, gather_status

    monkeypatch.setenv("VAULTD_STATE_DIR", str(tmp_path / "state"))
    vault = tmp_path / "v"
    (vault / ".vaultd").mkdir(parents=True)
    (vault / "inbox.md").write_text("# Inbox\n")
    config = load_config(vault)
    paths = VaultPaths.from_config(vault, config)
    ledger = Ledger(paths.state / "ledger.sqlite3")
    ledger.add("youtube:ohmsLawDemo", "youtube", "https://www.youtube.com/watch?v=ohmsLawDemo")
    ledger.add("youtube:glacierVal1", "youtube", "https://www.youtube.com/watch?v=glacierVal1")
    d = Dispatcher(paths, ledger, config, backend="offline", on_generated=lambda _k: None,
                   on_changed=lambda: None, workers=1, sequential=True)
    d._fill()
    assert [ledger.get(k).state for k in ("youtube:ohmsLawDemo", "youtube:glacierVal1")] \
        == ["generated", "generated"]
    assert ledger.source_requests() == (2, 3.0, 0)
    ledger.mark_written("youtube:ohmsLawDemo", "Study Notes/Ohm.md", "Assessments/Ohm.md")
    ledger.mark_done("youtube:ohmsLawDemo")
    assert ledger.regenerate(["youtube:ohmsLawDemo"]) == ["youtube:ohmsLawDemo"]
    d._fill()  # generated again, from the transcript cache
    assert ledger.get("youtube:ohmsLawDemo").state == "generated"
    assert len(fake_yt.hits) == 6  # no new request
    assert ledger.source_requests() == (2, 1.5, 1)
    st = gather_status(vault)
    assert st["youtube_requests"] == {"videos": 2, "per_video": 1.5, "cached": 1}
    text = format_status(st)
    assert "youtube: 1.5 requests per video (last 2 videos, 1 from the cache with none)" \
        in text
