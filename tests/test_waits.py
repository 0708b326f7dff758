"""How the scheduler waits: a sleeper yields to the holder, every lock a
store can take is modelled (or reported as unseen, exit 2), and opening and
closing an instance interleave like any operation.

Budgets are example counts of seeded searches (deterministic); time caps
only guard against hangs.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sessioncheck.controlled.engine import Executor
from sessioncheck.controlled.program import ModelConfig, OpSpec, Step
from sessioncheck.controlled.scheduler import Scheduler
from sessioncheck.controlled.actor import Done, Point
from sessioncheck.specs import resolve
from sessioncheck.verify import verify

HERE = Path(__file__).parent
#: Examples per correct store and mode: the systematic pass and random
#: programs after it.
CORRECT_EXAMPLES = 200
#: Every mutant below falls within this many examples with seed 0 (the
#: systematic pass: stale-close at 14, lockf-threads at 19, compact-in-init
#: at 147, in every mode).
MUTANT_EXAMPLES = 300
TIME_CAP = 240.0

CORRECT = [
    "json-excl-lock", "json-lockf", "json-ofd-lock",
    "wait_stores:SoftFileLockStore", "wait_stores:SemaphoreStore", "wait_stores:ProcessLockStore",
]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
    return env


# -- the drain resumes the holder -----------------------------------------------

HOLDER_THEN_WAITER = [Step("start", 0, OpSpec("add", 0)), Step("advance", 0, points=2),
                      Step("start", 1, OpSpec("add", 0))]


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_sleeping_waiter_yields_to_the_holder(mode):
    """A holds the O_EXCL lock file, B polls it with sleep(0.01): the drain
    lets A finish and unlink it, so B takes the lock instead of polling
    alone until its 2 s lock timeout (what it did before)."""
    with Executor(resolve("json-excl-lock"), mode, ModelConfig(actors=2)) as ex:
        out = ex.run(HOLDER_THEN_WAITER)
        again = ex.run(HOLDER_THEN_WAITER)
    assert not out.violations
    assert [(o.process, o.status) for o in out.ops] == [("A", "ok"), ("B", "ok"), ("final", "ok")]
    assert out.ops[-1].output["messages"] == ["m1", "m2"]
    polls = sum(1 for e in out.trace if e["ev"] == "point" and e["kind"] == "sleep")
    assert 1 <= polls <= 3
    # same program, same trace
    assert [(e["actor"], e["ev"], e.get("kind")) for e in out.trace] == \
        [(e["actor"], e["ev"], e.get("kind")) for e in again.trace]


def test_finish_lets_the_holder_run_while_the_actor_sleeps():
    """Starting a second operation on a sleeping actor finishes its first
    one: the other busy actor (the holder) moves meanwhile."""
    program = HOLDER_THEN_WAITER + [Step("advance", 1, points=1), Step("start", 1, OpSpec("add", 0))]
    with Executor(resolve("json-excl-lock"), "threads", ModelConfig(actors=2)) as ex:
        out = ex.run(program)
    assert not out.violations
    assert [o.status for o in out.ops] == ["ok", "ok", "ok", "ok"]
    assert out.ops[-1].output["messages"] == ["m1", "m2", "m3"]


class _Fake:
    """An actor driven by a script of stops (no store, no thread)."""

    can_crash = False

    def __init__(self, name, stops):
        self.name = name
        self.stops = list(stops)

    def begin(self, call, now):
        return self.stops.pop(0)

    def resume(self, now, fault=None):
        return self.stops.pop(0)


def test_semaphore_holds_back_only_when_no_slot_is_left():
    """A semaphore of capacity 2: the third taker waits, and is free again
    as soon as one of the two holders releases (not when both have)."""
    key = ("sem", 1, 99, 2)
    a = _Fake("A", [Point("lock", "", "", [("acquired", key)]), Point("read", "x", ""),
                    Done("ok", events=[("released", key)])])
    b = _Fake("B", [Point("lock", "", "", [("acquired", key)]), Point("read", "x", ""), Done("ok")])
    c = _Fake("C", [Point("lock-wait", "", "", [("blocked", key)]), Done("ok", events=[("acquired", key)])])
    from sessioncheck.controlled.actor import OpCall

    s = Scheduler([a, b, c])
    for n in "ABC":
        s.begin(n, OpCall("add", "s0", n), None)
    assert s.blocked("C") and not s.runnable("C")
    s.resume("A")  # A at read
    s.resume("A")  # A done, released one slot
    assert not s.blocked("C") and s.runnable("C")


# -- correct stores pass, mutants are caught ------------------------------------

@pytest.mark.parametrize("mode", ["threads", "processes"])
@pytest.mark.parametrize("store", CORRECT)
def test_correct_store_passes(store, mode, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    t0 = time.monotonic()
    r = verify(store, mode=mode, budget=TIME_CAP, max_examples=CORRECT_EXAMPLES, seed=0, save_report=False)
    assert not r.found, r.story
    assert r.exploration.examples == CORRECT_EXAMPLES
    assert time.monotonic() - t0 < TIME_CAP


@pytest.mark.parametrize("store,mode", [
    ("mutant:compact-in-init", "threads"), ("mutant:compact-in-init", "processes"),
    ("mutant:stale-close", "threads"), ("mutant:stale-close", "processes"),
    ("mutant:lockf-threads", "threads"),
])
def test_mutant_caught_within_budget(store, mode):
    for seed in (0, 1):
        r = verify(store, mode=mode, budget=TIME_CAP, max_examples=MUTANT_EXAMPLES, seed=seed,
                   save_report=False, shrink_budget=2.0)
        assert r.found, f"{store} ({mode}, seed {seed}) not caught in {MUTANT_EXAMPLES} examples"
        assert r.outcome.violations[0].invariant in ("I1", "I3"), r.story


def test_lockf_alone_is_correct_between_processes():
    """The lockf-threads bug needs two threads of one process."""
    r = verify("mutant:lockf-threads", mode="processes", budget=TIME_CAP, max_examples=CORRECT_EXAMPLES,
               seed=0, save_report=False)
    assert not r.found, r.story


def test_stale_close_loses_a_message_with_one_actor():
    """No concurrency at all: read, add, close; the final read comes after
    every close, so the loss is seen."""
    with Executor(resolve("mutant:stale-close"), "threads", ModelConfig(actors=1)) as ex:
        out = ex.run([Step("start", 0, OpSpec("read", 0)), Step("start", 0, OpSpec("add", 0))])
    assert [v.invariant for v in out.violations] == ["I1"]
    # the close that wrote the stale copy is in the story
    from sessioncheck.controlled.trace import visible

    assert any(e["ev"] == "start" and e.get("call") == "close" for e in visible(out.trace))


def test_compact_in_init_opening_interleaves():
    """B's instance opens inside its first operation: preempted between the
    compaction's read and its replace, A's append in between is lost."""
    program = [Step("start", 0, OpSpec("add", 0)), Step("advance", 0, points=60),  # m1 whole
               Step("start", 1, OpSpec("read", 0)), Step("advance", 1, points=2),  # B read s0 [m1]
               Step("start", 0, OpSpec("add", 0))]  # m2 whole, then B's compaction writes [m1]
    with Executor(resolve("mutant:compact-in-init"), "threads", ModelConfig(actors=2)) as ex:
        out = ex.run(program)
        ref = Executor(resolve("json"), "threads", ModelConfig(actors=2))
        with ref:
            ok = ref.run(program)
    assert [v.invariant for v in out.violations] == ["I1"]
    assert not ok.violations


# -- waits the harness cannot see -----------------------------------------------

@pytest.mark.parametrize("store,mode", [("wait_stores:UnseenLockStore", "threads"),
                                        ("wait_stores:UnseenProcessLockStore", "processes")])
def test_unseen_wait_is_a_configuration_error(store, mode, tmp_path):
    watchdog = 2
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "sessioncheck", "run", "--store", store, "--actors", mode,
                        "--examples", "100", "--seed", "1", "--watchdog", str(watchdog), "--no-db",
                        "--report", str(tmp_path / "r.json")],
                       capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120)
    elapsed = time.monotonic() - t0
    assert p.returncode == 2, p.stdout + p.stderr
    assert "the harness cannot see this wait" in p.stderr
    assert "wait_stores.py" in p.stderr and "in _lock" in p.stderr
    assert "how to fix" in p.stderr
    assert "I5" not in p.stdout
    # the first stuck actor ends the run: one watchdog period, not one per example
    assert elapsed < 60


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_cpu_loop_stays_stuck(mode, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    with Executor(resolve("wait_stores:SpinStore"), mode, ModelConfig(actors=1), watchdog=1.0) as ex:
        out = ex.run([Step("start", 0, OpSpec("add", 0))])
    assert [v.invariant for v in out.violations] == ["I5"]


def test_lock_factories_are_cooperative_for_store_code_only():
    """Semaphores and multiprocessing locks made while a store module is
    imported are cooperative (with their capacity in the key); the same
    factories called by anything else return the real objects, and
    threading.Semaphore stays a class store code can subclass."""
    import multiprocessing
    import threading

    from sessioncheck.controlled import intercept
    from sessioncheck.controlled.intercept.locks import CooperativeProcessLock, CooperativeSemaphore

    intercept.install()
    with intercept.importing_store():
        made = [threading.Semaphore(2), threading.BoundedSemaphore(), multiprocessing.Lock(),
                multiprocessing.Semaphore(), multiprocessing.get_context("fork").BoundedSemaphore(3)]
    assert [type(m) for m in made] == [CooperativeSemaphore, CooperativeSemaphore, CooperativeProcessLock,
                                       CooperativeProcessLock, CooperativeProcessLock]
    assert [m._key()[-1] for m in made] == [2, 1, 1, 1, 3]
    assert not isinstance(threading.Semaphore(), CooperativeSemaphore)
    assert not isinstance(multiprocessing.Lock(), CooperativeProcessLock)

    class Mine(threading.Semaphore):
        pass

    assert isinstance(Mine(1), Mine)
    # outside actors they behave as the real ones
    sem = made[0]
    assert sem.acquire() and sem.acquire() and not sem.acquire(blocking=False)
    sem.release(2)


def _cycle(kind: str):
    """A and B each hold one key and wait for the other's (``kind`` keys)."""
    from sessioncheck.controlled.actor import OpCall

    ka, kb = (kind, 1), (kind, 2)
    a = _Fake("A", [Point("flock-wait", "t", "row lock", [("acquired", ka), ("blocked", kb)]),
                    Done("ok", events=[("acquired", kb), ("released", ka), ("released", kb)])])
    b = _Fake("B", [Point("flock-wait", "t", "row lock", [("acquired", kb), ("blocked", ka)]),
                    Done("info", error="OperationalError: deadlock detected", events=[("released", kb)])])
    s = Scheduler([a, b])
    for n in "AB":
        s.begin(n, OpCall("add", "s0", n), None)
    assert s.blocked("A") and s.blocked("B")
    return s


def test_a_cycle_of_waits_in_a_postgresql_server_is_the_servers_to_break():
    # Every busy actor waits, all inside the server: one goes on and waits
    # for the server (which fails one statement with 40P01), never a
    # deadlock reported by the harness first.
    s = _cycle("pg")
    s.drain()
    done = [(e["actor"], e["status"]) for e in s.trace if e["ev"] == "done"]
    assert done[0] == ("A", "ok") and ("B", "info") in done


def test_a_cycle_of_other_waits_is_a_deadlock():
    from sessioncheck.controlled.scheduler import Deadlock

    for kind in ("flock", "lock"):
        s = _cycle(kind)
        with pytest.raises(Deadlock, match="deadlock"):
            s.drain()


def test_a_waiter_on_a_postgresql_backend_is_free_once_its_key_is_released():
    """B waits for A's backend; A commits (released) and begins its next
    transaction on the same backend (acquired again): B's statement got
    its row when A released, so B is free, not blocked on A's new
    transaction (which made a false cycle once A waited for B)."""
    from sessioncheck.controlled.actor import OpCall

    ka, kb = ("pg", 1), ("pg", 2)
    a = _Fake("A", [Point("await", "t", "SELECT FOR UPDATE", [("acquired", ka)]),
                    Done("ok", events=[("released", ka)]),
                    Point("await", "t", "BEGIN", [("acquired", ka)])])
    b = _Fake("B", [Point("flock-wait", "t", "row lock", [("acquired", kb), ("blocked", ka)])])
    s = Scheduler([a, b])
    s.begin("A", OpCall("add", "s0", "m1"), None)
    s.begin("B", OpCall("add", "s0", "m2"), None)
    assert s.blocked("B") and not s.runnable("B")
    s.resume("A")  # A done: its backend released
    s.begin("A", OpCall("add", "s0", "m3"), None)  # the same backend, a new transaction
    assert not s.blocked("B") and s.runnable("B")


def test_waiters_the_server_still_holds_take_turns():
    """Every busy actor waits inside the server and the one let go first is
    still held (it parks again): the next one goes on, not the same again."""
    from sessioncheck.controlled.actor import OpCall

    ka, kb = ("pg", 1), ("pg", 2)
    again = Point("flock-wait", "t", "row lock", [("blocked", kb)])
    a = _Fake("A", [Point("flock-wait", "t", "row lock", [("acquired", ka), ("blocked", kb)]), again,
                    Done("ok", events=[("released", ka)])])
    b = _Fake("B", [Point("flock-wait", "t", "row lock", [("acquired", kb), ("blocked", ka)]),
                    Done("ok", events=[("released", kb)])])
    s = Scheduler([a, b])
    for n in "AB":
        s.begin(n, OpCall("add", "s0", n), None)
    s.drain()
    order = [e["actor"] for e in s.trace if e["ev"] in ("point", "done")]
    assert order[:3] == ["A", "B", "B"], s.trace  # A, still held, parks; then B goes on and finishes
