"""Running ahead changes nothing a run shows.

An actor that the scheduler would let continue takes its next point by
itself (``Scheduler._run``, ``actor.Ahead``) instead of handing the baton
back at every point.  These tests run the same drawn programs with every
point handed over (the path without run-ahead, ``scheduler._RUN_AHEAD``
off) and with run-ahead, on two executors side by side, and compare the
runs event for event: the trace (every point, its ``busy`` mark, every
result), the history, the verdict and the story.
"""
from __future__ import annotations

import json
import queue
import re
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings

from sessioncheck.controlled import scheduler
from sessioncheck.controlled.engine import Executor
from sessioncheck.controlled.program import ModelConfig, OpSpec, Step, decode, programs
from sessioncheck.controlled.trace import Names
from sessioncheck.reporting.story import render
from sessioncheck.specs import resolve
from sessioncheck.stores.reference.json_store import JsonFileStore
from sessioncheck.verify import model_config


class HangAfterAdd(JsonFileStore):
    """Writes its message (points), then blocks where the harness has no
    point: a run that ends with the watchdog after the actor ran ahead."""

    def add_message(self, session_id, message):
        super().add_message(session_id, message)
        if "warmup" not in str(self.dir):  # a new actor's warm-up must pass
            queue.Queue().get(timeout=3)


def _draw(strategy, n: int, at: int) -> list:
    """``n`` programs drawn by Hypothesis with a fixed seed."""
    out: list = []

    @seed(at)
    @settings(max_examples=n, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(raw):
        out.append(raw)

    collect()
    return out[:n]


def _shown(outcome) -> str:
    """Everything a run shows, with scratch-file names made stable (they
    carry random suffixes, the same in no two runs)."""
    names = Names(outcome.trace)
    data = {
        "trace": outcome.trace,
        "ops": [(o.process, o.f, o.session, o.value, o.start, o.end, o.status, o.output, o.error,
                 o.meta.get("error_kind")) for o in outcome.ops],
        "violations": [(v.invariant, v.summary, v.subject, v.ops) for v in outcome.violations],
        "warnings": outcome.warnings,
        "unknown": outcome.unknown,
        "story": render(header="story", trace=outcome.trace, ops=outcome.ops, violations=outcome.violations,
                        replay_command="replay"),
    }
    text = names.text(json.dumps(data, default=repr, sort_keys=True, indent=0))
    text = re.sub(r"[0-9a-f]{32}", "<uuid>", text)  # a probe file's random name (io faults)
    # a temp file an injected error kept from being opened is in no trace
    # entry, so Names has no stable name for it: only in the error's text
    return re.sub(r"(?<=\.)[a-z0-9_]{8}(?=\.tmp\b)", "<random>", text)


def _run(ex: Executor, program: list, ahead: bool):
    was = scheduler._RUN_AHEAD[0]
    scheduler._RUN_AHEAD[0] = ahead
    try:
        return ex.run(program)
    finally:
        scheduler._RUN_AHEAD[0] = was


def _compare(store: str, mode: str, faults: tuple = (), n: int = 30, at: int = 1, extra: tuple = (),
             **cfg_changes) -> list:
    spec = resolve(store)
    cfg = replace(model_config(spec, mode, faults), **cfg_changes)
    drawn = [decode(raw, cfg) for raw in _draw(programs(cfg), n, at)] + list(extra)
    outcomes = []
    with Executor(spec, mode, cfg) as old, Executor(spec, mode, cfg) as new:
        for program in drawn:
            a = _run(old, program, ahead=False)
            b = _run(new, program, ahead=True)
            assert _shown(b) == _shown(a), f"run-ahead changed the run of {program}"
            outcomes.append(a)
    return outcomes


def _points(outcomes) -> int:
    return sum(1 for o in outcomes for e in o.trace if e["ev"] == "point")


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_json_runs_are_the_same(mode):
    outcomes = _compare("json", mode, n=40)
    assert _points(outcomes) > 200  # the programs did take points


def test_sqlite_runs_are_the_same():
    _compare("sqlite", "threads", n=25)


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_lock_file_store_runs_are_the_same(mode):
    """An ``O_EXCL`` lock file polled with sleeps: waits the scheduler
    cannot see, sleepers that yield, virtual time that jumps."""
    outcomes = _compare("json-excl-lock", mode, n=200, at=3)
    assert any(e["ev"] == "point" and e["kind"] == "sleep" for o in outcomes for e in o.trace)


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_lock_waits_are_the_same(mode):
    """``lockf`` locks: an actor that meets a lock another holds stops at
    its wait, inside an advance and in the drain, as without run-ahead."""
    # A holds the lock after some of its first points; B runs into it
    held = tuple([Step("start", 0, OpSpec("add", 0)), Step("advance", 0, points=k),
                  Step("start", 1, OpSpec("add", 0)), Step("advance", 1, points=12),
                  Step("start", 2, OpSpec("add", 0)), Step("advance", 0, points=1)] for k in range(1, 7))
    outcomes = _compare("json-lockf", mode, n=40, at=4, extra=held)
    # an attempt that found the lock taken (marked busy), then the wait
    assert any(e["ev"] == "point" and e.get("busy") for o in outcomes for e in o.trace)
    assert any(e["ev"] == "point" and e["kind"] in scheduler.WAITS for o in outcomes for e in o.trace)


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_violation_is_the_same(mode):
    outcomes = _compare("mutant:stale-overwrite", mode, n=200, at=2)
    assert any(o.failed for o in outcomes)  # the comparison covered failing runs


def test_crash_faults_are_the_same():
    # a writer killed at each of its first points, then a reader: some of
    # these lose the file (the mutant's bug), besides the drawn programs
    killed = tuple([Step("start", 0, OpSpec("add", 0)), Step("advance", 0, points=k),
                    Step("start", 0, OpSpec("add", 0)), Step("advance", 0, points=k),
                    Step("crash", 0), Step("start", 1, OpSpec("read", 0))] for k in range(1, 9))
    outcomes = _compare("mutant:non-atomic-write", "processes", ("crash",), n=60, at=5, extra=killed)
    assert any(e["ev"] == "crash" for o in outcomes for e in o.trace)
    assert any(o.failed for o in outcomes)


def test_io_faults_are_the_same():
    outcomes = _compare("json", "mixed", ("io-error",), n=25, at=6)
    assert any(e["ev"] == "fault" for o in outcomes for e in o.trace)


def test_long_advances_and_the_drain_limit_are_the_same():
    """Budgets that end inside an operation, and a drain cut off by its
    point limit, end where single hand-overs end."""
    program = [Step("start", 0, OpSpec("add", 0)), Step("advance", 0, points=3),
               Step("start", 1, OpSpec("add", 0)), Step("advance", 1, points=7),
               Step("advance", 0, points=5)]
    cfg = ModelConfig(actors=2, metadata=False)
    spec = resolve("json")
    with Executor(spec, "threads", cfg) as old, Executor(spec, "threads", cfg) as new:
        assert _shown(_run(new, program, True)) == _shown(_run(old, program, False))


def test_run_ahead_is_taken():
    """The comparison is not vacuous: with run-ahead on, a thread actor
    passes most of its points without a hand-over."""
    from sessioncheck.controlled.thread_actor import ThreadActor

    handed = {"n": 0}
    real = ThreadActor._transfer

    def counting(self, *args):
        handed["n"] += 1
        return real(self, *args)

    program = [Step("start", 0, OpSpec("add", 0)), Step("advance", 0, points=16)]
    cfg = ModelConfig(actors=1, metadata=False)
    with Executor(resolve("json"), "threads", cfg) as ex:
        ex.run(program)  # actors started and warmed up
        ThreadActor._transfer = counting
        try:
            outcome = _run(ex, program, True)
        finally:
            ThreadActor._transfer = real
    points = sum(1 for e in outcome.trace if e["ev"] == "point")
    assert points >= 10 and handed["n"] < points / 2


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_stuck_run_tells_the_points_it_took(mode):
    """An actor stuck after running ahead: every point it took before the
    watchdog fired is in the trace, as without run-ahead."""
    program = [Step("start", 0, OpSpec("add", 0)), Step("advance", 0, points=16)]
    cfg = ModelConfig(actors=1, metadata=False)
    spec = resolve(f"{__name__}:HangAfterAdd")
    with Executor(spec, mode, cfg, watchdog=0.5) as old, Executor(spec, mode, cfg, watchdog=0.5) as new:
        a, b = _run(old, program, False), _run(new, program, True)
    assert [v.invariant for v in a.violations] == ["I5"]
    assert sum(1 for e in a.trace if e["ev"] == "point") >= 8
    assert _shown(b) == _shown(a)


def test_a_deadlock_is_the_same():
    program = [Step("start", 0, OpSpec("add", 0)), Step("advance", 0, points=2),
               Step("start", 1, OpSpec("persist", 0, (("model", "fresh"),))), Step("advance", 1, points=6)]
    cfg = ModelConfig(actors=2)
    spec = resolve("fixture_stores:DeadlockStore")
    for mode in ("threads", "processes"):
        with Executor(spec, mode, cfg) as old, Executor(spec, mode, cfg) as new:
            a, b = _run(old, program, False), _run(new, program, True)
        assert [v.invariant for v in a.violations] == ["I5"]
        assert _shown(b) == _shown(a)
