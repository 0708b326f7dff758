"""Task actors in processes (``--actors tasks --processes M``).

Each of M forked processes runs an event loop with its task actors, as M
app-server workers serving concurrent requests; the scheduler sees one
actor per task (``p0.t0``, ``p1.t0``, ...).  Budgets are example counts
with fixed seeds, so "caught within N" is a deterministic claim (the time
cap only keeps a broken engine from hanging)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sessioncheck.controlled.program import ModelConfig
from sessioncheck.errors import ConfigError
from sessioncheck.verify import verify

BUDGET = 300  # examples; the catches below take 70-140 with these seeds
SEEDS = (0, 1, 2, 3)


def _run(store: str, processes: int = 2, actors: int = 3, faults: tuple = (), examples: int = BUDGET,
         seed: int = 0, mode: str = "tasks"):
    return verify(store, mode=mode, faults=faults, budget=60.0, max_examples=examples, seed=seed,
                  save_report=False, cfg=ModelConfig(actors=actors, task_processes=processes))


def _process(actor: str) -> str:
    return actor.split(".")[0]


@pytest.mark.parametrize("seed", SEEDS)
def test_asyncio_lock_only_fails_with_tasks_in_two_processes(seed: int) -> None:
    r = _run("mutant:asyncio-lock-only", seed=seed)
    out = r.exploration.outcome
    assert out is not None, f"missed with seed {seed} in {BUDGET} examples"
    assert out.violations[0].invariant == "I1"
    # the lost update is between two workers: tasks of two processes wrote
    writers = {_process(o.process) for o in out.ops if o.f == "add"}
    assert writers == {"p0", "p1"}, out.ops


def test_asyncio_lock_only_passes_with_tasks_of_one_loop_in_a_process() -> None:
    # the control: every task in one hosted loop (contending for the
    # asyncio.Lock inside the host, so the lock waits are decided through
    # the proxy's ready()) is as safe as tasks of the harness's own loop
    r = _run("mutant:asyncio-lock-only", processes=1, actors=3)
    assert r.exploration.outcome is None and r.exploration.examples == BUDGET
    assert "lock-wait" in r.coverage.kinds, r.coverage.kinds


def test_two_processes_of_two_tasks_each() -> None:
    caught = _run("mutant:asyncio-lock-only", actors=4)
    assert caught.exploration.outcome is not None
    assert caught.exploration.outcome.violations[0].invariant == "I1"
    names = {e["actor"] for e in caught.exploration.outcome.trace} - {"final"}
    assert names <= {"p0.t0", "p1.t0", "p0.t1", "p1.t1"}, names
    clean = _run("async-json", actors=4)
    assert clean.exploration.outcome is None and clean.exploration.examples == BUDGET


@pytest.mark.parametrize("faults", [(), ("cancel",)])
def test_reference_async_store_passes_with_tasks_in_two_processes(faults: tuple) -> None:
    r = _run("async-json", faults=faults)
    assert r.exploration.outcome is None and r.exploration.examples == BUDGET
    # its helper threads' file calls are points of the tasks in the hosts
    assert {"flock", "replace"} <= r.coverage.kinds, r.coverage.kinds


@pytest.mark.parametrize("store,faults,expect", [
    ("mutant:async-stale-write", (), ("I1", "I3")),
    ("mutant:to-thread-rmw", (), ("I1", "I3")),
    ("mutant:cancel-torn", ("cancel",), ("I4", "I1", "E1")),
])
def test_async_mutants_caught_with_tasks_in_two_processes(store: str, faults: tuple, expect: tuple) -> None:
    out = _run(store, faults=faults).exploration.outcome
    assert out is not None and out.violations[0].invariant in expect


def test_same_seed_same_story_with_tasks_in_processes() -> None:
    a = _run("mutant:asyncio-lock-only", seed=5)
    b = _run("mutant:asyncio-lock-only", seed=5)
    assert a.found and b.found
    assert a.story == b.story
    assert a.outcome.trace == b.outcome.trace
    assert "asyncio tasks in 2 processes (an event loop each)" in a.story
    assert "p0.t0" in a.story and "p1.t0" in a.story and "await in _mutate asyncio_lock_only.py:" in a.story


def test_summary_and_report_say_tasks_in_processes(tmp_path) -> None:
    from sessioncheck.reporting import report as reports
    from sessioncheck.verify import rerun

    path = tmp_path / "r.json"
    r = verify("mutant:asyncio-lock-only", mode="tasks", budget=60.0, max_examples=BUDGET, seed=0,
               report_path=path, cfg=ModelConfig(task_processes=2))
    assert "(tasks in 2 processes)" in r.summary()
    data = reports.load(path)
    assert data["mode"] == "tasks" and data["_config"].task_processes == 2
    outcome, story = rerun("mutant:asyncio-lock-only", data["mode"], data["_config"], data["_program"], path)
    assert story == data["story"]


def test_processes_need_tasks_and_refuse_crash() -> None:
    with pytest.raises(ConfigError, match="--faults crash"):
        _run("async-json", faults=("crash",))
    with pytest.raises(ConfigError, match="add --actors tasks"):
        _run("async-json", mode="threads")


def _children() -> set[int]:
    me = str(os.getpid())
    out = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[1] == me and fields[0] != "Z":
                out.add(int(pid))
    return out


def _running_with(text: str) -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if text.encode() in f.read():
                        out.append(int(pid))
            except OSError:
                continue
    return out


def test_cli_exits_1_names_the_awaits_and_leaves_no_process(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "sessioncheck", "run", "--store", "mutant:async-stale-write",
                           "--actors", "tasks", "--processes", "2", "--budget", "60", "--seed", "0",
                           "--report", str(tmp_path / "r.json")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "(tasks in 2 processes)" in proc.stdout
    assert "await in add_message async_stale_write.py:" in proc.stdout or \
        "await in read async_stale_write.py:" in proc.stdout, proc.stdout
    # the hosts were forked from that command: they carry its command line
    assert not _running_with(str(tmp_path / "r.json")), "a task process outlived the run"
    bad = subprocess.run([sys.executable, "-m", "sessioncheck", "run", "--store", "async-json",
                          "--actors", "threads", "--processes", "2", "--budget", "5"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert bad.returncode == 2 and "add --actors tasks" in bad.stderr, bad.stderr


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_executor_reaps_its_task_processes() -> None:
    from sessioncheck.controlled.engine import Executor
    from sessioncheck.controlled.program import OpSpec, Step
    from sessioncheck.specs import resolve

    before = _children()
    with Executor(resolve("async-json"), "tasks", ModelConfig(task_processes=2)) as ex:
        ex.run([Step("start", 0, OpSpec("add")), Step("start", 1, OpSpec("add"))])
        hosts = _children() - before
        assert len(hosts) == 2  # one process per host, no more
    assert not (_children() - before)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_a_stuck_task_is_I5_and_its_process_is_replaced() -> None:
    from sessioncheck.controlled.engine import Executor
    from sessioncheck.controlled.program import OpSpec, Step
    from sessioncheck.specs import resolve

    before = _children()
    program = [Step("start", 0, OpSpec("add", 0))]
    with Executor(resolve("fixture_stores:HangingStore"), "tasks", ModelConfig(actors=1, task_processes=1),
                  watchdog=0.5) as ex:
        for _ in range(2):  # the second run on a new process, not on the abandoned one
            outcome = ex.run(program)
            assert [v.invariant for v in outcome.violations] == ["I5"], outcome.violations
            assert "p0.t0 reached no preemption point within 0.5 s" in outcome.violations[0].summary
            assert len(_children() - before) <= 1  # the abandoned process was reaped
    assert not (_children() - before)


def test_a_store_ending_its_task_is_a_configuration_error(tmp_path) -> None:
    tests = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=tests, SESSIONCHECK_TMPDIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "sessioncheck", "run", "--store", "misbehaving_stores:OsExitStore",
                        "--actors", "tasks", "--processes", "2", "--examples", "50", "--seed", "1"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "actor_vanished" in r.stderr and "actor p0.t0" in r.stderr and "os._exit(0)" in r.stderr, r.stderr
