"""The search's memory of runs done: a program predicted to repeat a run
really does repeat it, and generation spends its runs on new ones."""
from __future__ import annotations

import random
import re

import pytest

from sessioncheck.controlled.engine import Executor
from sessioncheck.controlled.program import Step, decode, step_kinds
from sessioncheck.controlled.repeats import Schedules
from sessioncheck.controlled.search import explore
from sessioncheck.specs import resolve
from sessioncheck.verify import model_config


def _trace(outcome) -> list:
    """Everything a run did, values and paths included (a temporary
    file's random name aside)."""
    keep = ("actor", "ev", "kind", "path", "detail", "call", "session", "value", "status")
    return [tuple(re.sub(r"\.[A-Za-z0-9_]{6,}\.tmp$", ".tmp", str(e.get(k))) for k in keep) for e in outcome.trace]


def _raw(rng: random.Random, cfg) -> list:
    n = rng.randint(1, 6)
    return [(rng.randrange(len(step_kinds(cfg))), rng.randrange(cfg.actors), rng.randrange(16), rng.randrange(27))
            for _ in range(n)]


@pytest.mark.parametrize("store", ["json", "mutant:stale-overwrite"])
def test_a_predicted_repeat_is_the_same_run_step_for_step(store: str) -> None:
    spec = resolve(store)
    cfg = model_config(spec, "threads", ())
    schedules = Schedules(cfg.actors)
    rng = random.Random(7)
    runs: dict[int, list] = {}
    checked = 0
    with Executor(spec, "threads", cfg) as ex:
        ex.watch = schedules
        for _ in range(400):
            program = decode(_raw(rng, cfg), cfg)
            node = schedules.predict(program)
            outcome = ex.run(program)
            if node is not None and node in runs:
                assert _trace(outcome) == runs[node], program
                checked += 1
            final = schedules.predict(program)
            assert final is not None and final in schedules.done
            runs.setdefault(final, _trace(outcome))
    assert checked >= 50  # short random programs repeat often


def test_steps_that_cannot_change_a_run_are_known_as_such() -> None:
    spec = resolve("json")
    cfg = model_config(spec, "threads", ())
    schedules = Schedules(cfg.actors)
    base = [Step("start", 0, op=decode([(0, 0, 0, 0)], cfg)[0].op), Step("advance", 0, points=2),
            Step("advance", 0, points=3)]
    with Executor(spec, "threads", cfg) as ex:
        ex.watch = schedules
        ex.run(base)
        ex.run(base[:1] + [Step("advance", 0, points=16)] * 3)
    # advancing an idle actor, merging advances of one actor, running past
    # the end of an operation: the same canonical program
    assert schedules.repeats([Step("advance", 1, points=4)] + base)
    assert schedules.repeats(base[:1] + [Step("advance", 0, points=5)])
    assert schedules.repeats(base[:1] + [Step("advance", 0, points=16)] * 3 + [Step("advance", 0, points=1)])
    assert schedules.predict(base[:1] + [Step("advance", 0, points=6)]) is None  # never run: not assumed


def test_generation_spends_its_runs_on_new_interleavings_and_still_finds_bugs() -> None:
    spec = resolve("json")
    cfg = model_config(spec, "threads", ())
    with Executor(spec, "threads", cfg) as ex:
        stats = explore(ex, budget=60, max_examples=400, seed=1)
    assert stats.outcome is None and stats.examples == 400
    assert stats.repeats > 0
    assert stats.distinct_share >= 0.6, (len(stats.interleavings), stats.examples)
    spec = resolve("mutant:stale-overwrite")
    with Executor(spec, "threads", model_config(spec, "threads", ())) as ex:
        assert explore(ex, budget=60, max_examples=400, seed=1).outcome is not None
