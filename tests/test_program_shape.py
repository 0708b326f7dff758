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
    return _drawn_from(programs(cfg), n)


def _drawn_from(strategy, n: int = 300) -> list:
    out: list = []

    @settings(max_examples=n, derandomize=True, database=None, phases=[Phase.generate],
              deadline=None)
    @given(strategy)
    def draw(raw) -> None:
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


def test_a_step_is_drawn_flat_with_the_choices_of_nested_integers() -> None:
    """A step's four integers come straight from the choice sequence
    (``program._flat_tuples``), with the constraints ``st.tuples`` of
    ``st.integers`` would use: the same choices decode to the same step,
    so examples saved by either replay alike, and the values keep the
    integers' weights (bounds favoured over 127 values)."""
    import random

    from hypothesis import strategies as st
    from hypothesis.control import BuildContext
    from hypothesis.internal.conjecture.data import ConjectureData

    from sessioncheck.controlled.program import _flat_tuples

    bounds = (3, 2, 31, 4095)
    flat, nested = _flat_tuples(bounds), st.tuples(*(st.integers(0, b) for b in bounds))
    assert type(flat).__name__ == "FlatTuples", "fell back to plain st.tuples: a Hypothesis upgrade?"
    rng = random.Random(7)
    for _ in range(200):
        choices = tuple(rng.randint(0, b) for b in bounds)
        assert ConjectureData.for_choices(choices).draw(flat) == choices
        data = ConjectureData.for_choices(choices)
        with BuildContext(data, wrapped_test=lambda: None):  # nested strategies want one
            assert data.draw(nested) == choices
    cfg = ModelConfig()
    steps = [s for raw in _drawn(cfg) for s in raw]
    for i, b in enumerate((3, cfg.actors - 1)):
        assert {s[i] for s in steps} == set(range(b + 1))
    # over 127 values the top bounds are weighted, as st.integers weights
    # them: 2 in 4096 values drawn uniformly would be 0.05 %
    wide = [v for raw in _drawn_from(st.lists(_flat_tuples((4095,)), min_size=5, max_size=5)) for (v,) in raw]
    assert sum(1 for v in wide if v >= 4094) >= len(wide) // 200, sorted(wide)[-10:]
