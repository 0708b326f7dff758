"""Quality: the harness finds the seed's two bugs, every time, and never
flags the correct stores.  (Hypothesis' "quality" tests: they assert the
engine *finds* a bug within a stated budget.)"""
from __future__ import annotations

import pytest

from sessioncheck.verify import verify

pytestmark = pytest.mark.quality

#: Stated budget per seed.  The median time to catch either bug on the
#: 2-core machine is about a second (README, benchmarks); 60 s leaves room
#: for a loaded CI machine.
BUDGET = 60.0


@pytest.mark.parametrize("seed", range(5))
def test_finds_stale_overwrite_with_threads(seed):
    r = verify("mutant:stale-overwrite", mode="threads", budget=BUDGET, seed=seed, save_report=False)
    assert r.found, r.summary()
    first = r.outcome.violations[0]
    assert first.invariant == "I1"
    assert "is missing" in first.summary


@pytest.mark.parametrize("seed", range(5))
def test_finds_none_skipped_with_threads(seed):
    r = verify("mutant:none-skipped", mode="threads", budget=BUDGET, seed=seed, save_report=False)
    assert r.found, r.summary()
    v = r.outcome.violations[0]
    assert v.invariant == "I3"
    assert "cleared to None" in v.summary


@pytest.mark.parametrize("store", ["json", "sqlite"])
def test_correct_stores_never_flagged_in_1000_examples(store):
    r = verify(store, mode="threads", budget=600, max_examples=1000, seed=0, save_report=False)
    assert not r.found, r.story
    assert r.exploration.examples == 1000
    assert r.exploration.unknown == 0
