"""When the graph keeper re-renders the graph note (a pure schedule, no threads).

A user adding notes one by one sees the note refreshed a few seconds after they stop; a
long batch refreshes it at least every ``max_interval``; and on a vault so large that a
render takes seconds, refreshes are spaced so rendering takes at most ~10 % of a core.
"""

from __future__ import annotations

from daemon.writer.graph_keeper import RENDER_SHARE, next_render_at


def test_debounce_then_ceiling_then_render_cost() -> None:
    # One change at t=100: render 5 s later.
    assert next_render_at(100, 100, debounce=5, max_interval=60, earliest=0) == 105
    # Changes keep coming (last at t=158): the ceiling, 60 s after the first, wins.
    assert next_render_at(100, 158, debounce=5, max_interval=60, earliest=0) == 160
    # The previous render took 5 s and ended at t=99: the next waits until 99 + 45.
    earliest = 99 + 5 * (1 / RENDER_SHARE - 1)
    assert next_render_at(100, 100, debounce=5, max_interval=60, earliest=earliest) == 144
    # A fast render (50 ms) never delays the debounce.
    quick = 99 + 0.05 * (1 / RENDER_SHARE - 1)
    assert next_render_at(100, 100, debounce=5, max_interval=60, earliest=quick) == 105
