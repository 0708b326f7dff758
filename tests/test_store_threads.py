"""A store's own threads and async methods get a right verdict.

Stores that do their I/O in a helper thread (a ``ThreadPoolExecutor``,
``asyncio.to_thread``) or are written with ``async def``: correct ones
pass with thread and process actors, their unlocked twins are caught every
time within a stated budget with a story showing the worker's file
points, and what the engine cannot interleave (a background flusher, a
forked child) is a configuration error (exit 2), quickly.

Budgets are example counts: a seeded search draws the same programs in
the same order on any machine.  Time caps only guard against hangs.
"""
from __future__ import annotations

import os
import sys
import time

import pytest

from sessioncheck.cli.main import main as cli
from sessioncheck.controlled.engine import Executor
from sessioncheck.controlled.program import ModelConfig, OpSpec, Step
from sessioncheck.controlled.search import explore
from sessioncheck.errors import UnsupportedStore
from sessioncheck.specs import resolve
from sessioncheck.verify import model_config, verify

sys.path.insert(0, os.path.dirname(__file__))

SEED = 1
#: Examples for each correct store (1000 measured by hand for the report).
CONTROL_EXAMPLES = 200
#: Stated budget for each mutant: both are caught at example 18 with seed
#: 1 (in the systematic pass); the budget leaves room for a slower pick.
MUTANT_EXAMPLES = 200
TIME_CAP = 240.0
MODES = ("threads", "processes")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("store", ["executor", "async-json"])
def test_correct_helper_thread_stores_pass(store: str, mode: str) -> None:
    r = verify(store, mode=mode, budget=TIME_CAP, max_examples=CONTROL_EXAMPLES, seed=SEED, save_report=False)
    assert not r.found, r.story
    assert r.exploration.examples == CONTROL_EXAMPLES
    # The worker's file calls are points: the file lock and the file
    # itself were reached (before, an executor store reached none).
    lines = "\n".join(r.coverage.lines())
    reached = next(line for line in lines.splitlines() if line.startswith("point kinds reached"))
    for kind in ("flock", "open", "replace", "fsync"):
        assert kind in reached, lines


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("mutant", ["executor-rmw", "to-thread-rmw"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_helper_thread_mutants_are_caught(mutant: str, mode: str, seed: int) -> None:
    spec = resolve(f"mutant:{mutant}")
    with Executor(spec, mode, model_config(spec, mode, ())) as ex:
        x = explore(ex, budget=TIME_CAP, max_examples=MUTANT_EXAMPLES, seed=seed, shrink_runs=30)
        assert x.outcome is not None, f"{mutant} ({mode}, seed {seed}) missed in {x.examples} examples"
        first = x.outcome.violations[0]
        assert first.invariant in ("I1", "I3"), first.summary
        # The story shows the helper's file points, attributed to the actors.
        points = [e for e in x.outcome.trace if e["ev"] == "point"]
        kinds = {e["kind"] for e in points}
        assert {"open", "replace"} <= kinds, kinds
        assert {e["actor"] for e in points if e["kind"] == "replace"} >= {"A", "B"} or len(
            {e["actor"] for e in points}) >= 2
        again = ex.run(x.outcome.program)
    assert again.failed and again.violations[0].invariant == first.invariant


def _one_actor_program(n_adds: int) -> list[Step]:
    return [Step("start", 0, OpSpec("add", 0)) for _ in range(n_adds)]


def test_asyncio_sleep_is_one_sleep_point_in_virtual_time() -> None:
    spec = resolve("thread_fixture_stores:SleepyAsyncStore")
    cfg = ModelConfig(actors=1, sessions=1, metadata=False)
    with Executor(spec, "threads", cfg) as ex:
        t0 = time.monotonic()
        out = ex.run(_one_actor_program(3))
        wall = time.monotonic() - t0
    assert not out.failed, out.violations
    sleeps = [e for e in out.trace if e["ev"] == "point" and e["kind"] == "sleep"]
    # One point per asyncio.sleep(5): the loop does not spin on it.
    assert len(sleeps) == 3, sleeps
    assert all(float(e["detail"]) == pytest.approx(5.0, abs=1e-3) for e in sleeps)
    assert wall < 5.0  # hang guard: 15 virtual seconds are not waited out


def test_a_timer_does_not_fire_while_helper_work_is_outstanding() -> None:
    spec = resolve("thread_fixture_stores:TimedHelperStore")
    cfg = ModelConfig(actors=2, sessions=1, metadata=False)
    program = [Step("start", 0, OpSpec("add", 0)), Step("advance", 0, points=2),
               Step("start", 1, OpSpec("add", 0)), Step("advance", 1, points=3), Step("advance", 0, points=10)]
    with Executor(spec, "threads", cfg) as ex:
        out = ex.run(program)
    assert not out.failed, out.violations
    adds = [op for op in out.ops if op.f == "add"]
    assert adds and all(op.status == "ok" for op in adds), [(op.f, op.status, op.error) for op in adds]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("store,message", [
    ("FlusherStore", "does I/O in a background thread outside any operation; unsupported"),
    ("ForkingStore", "starts a child process (multiprocessing.Process.start)"),
    ("OsForkStore", "starts a child process (os.fork)"),
])
def test_unsupported_stores_exit_2_quickly(store: str, message: str, mode: str, capsys) -> None:
    t0 = time.monotonic()
    code = cli(["run", "--store", f"thread_fixture_stores:{store}", "--actors", mode, "--seed", "1",
                "--budget", "60", "--watchdog", "30"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err, err
    # No watchdog wait: refused at the point, not after 30 s of silence.
    assert time.monotonic() - t0 < 25.0


def test_refusal_is_a_config_error() -> None:
    spec = resolve("thread_fixture_stores:OsForkStore")
    with Executor(spec, "threads", ModelConfig(actors=1, sessions=1, metadata=False)) as ex:
        with pytest.raises(UnsupportedStore, match="os.fork"):
            ex.run(_one_actor_program(1))
        # sticky: the same program says so again at once
        with pytest.raises(UnsupportedStore, match="os.fork"):
            ex.run(_one_actor_program(1))


# -- real async stores: openai-agents' async extensions ---------------------------


@pytest.mark.parametrize("mode", MODES)
def test_openai_agents_async_sqlite_session_passes(mode: str) -> None:
    """AsyncSQLiteSession, driven through its async API: aiosqlite's own
    connection thread makes the actor's SQL points."""
    pytest.importorskip("agents.extensions.memory.async_sqlite_session")
    r = verify("openai-agents-async-sqlite", mode=mode, budget=TIME_CAP, max_examples=100, seed=SEED,
               save_report=False)
    assert not r.found, r.story
    reached = next(line for line in r.coverage.lines() if line.startswith("point kinds reached"))
    assert "sql" in reached, reached


def test_a_one_worker_pool_shared_by_actors_is_not_stuck() -> None:
    """A's pool work parked in the only worker must not make B's submission
    wait for real (that would be reported I5 on a correct store)."""
    r = verify("thread_fixture_stores:OneWorkerPoolStore", mode="threads", budget=TIME_CAP,
               max_examples=CONTROL_EXAMPLES, seed=SEED, save_report=False, watchdog=5.0)
    assert not r.found, r.story
    assert r.exploration.examples == CONTROL_EXAMPLES
