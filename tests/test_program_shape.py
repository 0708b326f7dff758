"""The shape of drawn programs: the lengths and advance counts the search
was measured best with (``program._long_lists``, ``program.advance_table``).

The average length is set through an attribute of Hypothesis' own list
strategy; if an upgrade renamed it, ``_long_lists`` falls back to plain
``st.lists`` (about 6 steps whatever ``max_steps`` is) and the search would
silently go back to the short programs that met lock-unlinked eight times
later.  These tests fail then instead."""
from __future__ import annotations

from statistics import mean

from hypothesis import Phase, given, settings

from sessioncheck.controlled.program import ModelConfig, decode, programs


def _drawn(cfg: ModelConfig, n: int = 300) -> list[list[tuple]]:
    out: list[list[tuple]] = []

    @settings(max_examples=n, derandomize=True, database=None, phases=[Phase.generate],
              deadline=None)
    @given(programs(cfg))
    def draw(raw: list[tuple]) -> None:
        out.append(raw)

    draw()
    return out


def test_programs_average_about_half_of_max_steps() -> None:
    for max_steps in (24, 40):
        cfg = ModelConfig(max_steps=max_steps)
        lengths = [len(raw) for raw in _drawn(cfg)]
        # Hypothesis' plain lists average 6 steps; half of 24 is 12
        assert mean(lengths) >= 0.35 * max_steps, (max_steps, mean(lengths))
        assert min(lengths) >= 1 and max(lengths) <= max_steps
        # every length is still drawn, short ones included (the shrinker's
        # targets and the quick counterexamples)
        assert min(lengths) <= 3, sorted(lengths)[:10]


def test_advances_favour_one_to_four_points_and_reach_every_count() -> None:
    cfg = ModelConfig()
    points = [s.points for raw in _drawn(cfg) for s in decode(raw, cfg) if s.kind == "advance"]
    short = sum(1 for p in points if p <= 4) / len(points)
    # 1-4 stand five times each in a table of 16 + 16 entries: 20/32
    assert short >= 0.5, short
    assert max(points) >= 12, max(points)
