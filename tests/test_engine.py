"""The controlled engine: determinism, replay, liveness reports."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings

from sessioncheck.reporting import report as reports
from sessioncheck.controlled.engine import Executor
from sessioncheck.controlled.program import ModelConfig, OpSpec, Step, decode, programs
from sessioncheck.specs import resolve
from sessioncheck.verify import rerun, verify


def _sig(outcome):
    return json.dumps([(e["actor"], e["ev"], e.get("kind"), e.get("status"), e.get("value")) for e in outcome.trace])


@pytest.mark.parametrize("store", ["json", "sqlite", "mutant:stale-overwrite"])
def test_same_program_same_run(store):
    """Shuttle's property: a schedule is data; running it twice gives the same trace."""
    cfg = ModelConfig()
    with Executor(resolve(store), "threads", cfg) as ex:

        @settings(max_examples=40, deadline=None, database=None)
        @given(programs(cfg))
        def same(raw):
            program = decode(raw, cfg)
            assert _sig(ex.run(program)) == _sig(ex.run(program))

        same()


def test_same_seed_same_story(tmp_path):
    a = verify("mutant:stale-overwrite", budget=60, seed=7, report_dir=tmp_path / "a")
    b = verify("mutant:stale-overwrite", budget=60, seed=7, report_dir=tmp_path / "a")
    assert a.found and b.found
    assert a.story == b.story
    assert a.outcome.program == b.outcome.program


def test_replay_round_trip_byte_for_byte(tmp_path):
    found = verify("mutant:stale-overwrite", budget=60, seed=3, report_dir=tmp_path)
    assert found.found and found.report_path.exists()
    data = reports.load(found.report_path)
    outcome, story = rerun("mutant:stale-overwrite", data["mode"], data["_config"], data["_program"],
                           found.report_path)
    assert outcome.failed
    assert story == data["story"] == found.story
    assert story.rstrip().endswith(f"--store mutant:stale-overwrite")
    assert f"sessioncheck replay {found.report_path}" in story


def test_deadlock_is_reported_not_hung():
    program = [Step("start", 0, OpSpec("add", 0)), Step("advance", 0, points=2),
               Step("start", 1, OpSpec("persist", 0, (("model", "fresh"),))), Step("advance", 1, points=2)]
    with Executor(resolve("fixture_stores:DeadlockStore"), "threads", ModelConfig(actors=2)) as ex:
        outcome = ex.run(program)
    assert [v.invariant for v in outcome.violations] == ["I5"]
    assert outcome.violations[0].summary.startswith("deadlock")
    assert "A waits" in outcome.violations[0].summary and "held by B" in outcome.violations[0].summary


def test_deadlock_found_by_search():
    result = verify("fixture_stores:DeadlockStore", budget=60, seed=1, save_report=False,
                    cfg=ModelConfig(actors=2))
    assert result.found and result.outcome.violations[0].invariant == "I5"


def test_stuck_actor_is_reported_within_the_watchdog():
    program = [Step("start", 0, OpSpec("add", 0))]
    with Executor(resolve("fixture_stores:HangingStore"), "threads", ModelConfig(actors=1), watchdog=0.5) as ex:
        outcome = ex.run(program)
    assert outcome.violations[0].invariant == "I5"
    assert "reached no preemption point within 0.5 s" in outcome.violations[0].summary


def test_interception_is_inert_outside_actors(tmp_path):
    """The scheduler's own thread and pytest see the real functions' behaviour."""
    import time

    from sessioncheck.controlled import intercept

    intercept.install()
    t = time.monotonic()
    time.sleep(0.01)
    assert time.monotonic() - t >= 0.01
    (tmp_path / "f").write_text("x")
    assert open(tmp_path / "f").read() == "x"
