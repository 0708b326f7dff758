"""``sessioncheck stress --tasks N``: many asyncio tasks per process.

The tasks of one loop issue their operations concurrently, each awaited;
the history is checked as any other.  The stale async write is caught
among tasks of one loop; the per-loop ``asyncio.Lock`` holds among the
tasks of one loop and is caught across two processes."""
from __future__ import annotations

import pytest

from sessioncheck.errors import ConfigError
from sessioncheck.stress.runner import StressConfig, run_stress


def _stress(store: str, tasks: int, processes: int = 0, ops: int = 400):
    return run_stress(StressConfig(store=store, tasks=tasks, processes=processes, sessions=2, ops=ops,
                                   duration=20.0, seed=0))


def test_correct_async_store_passes_with_many_tasks() -> None:
    r = _stress("async-json", tasks=20)
    assert r.verdict == "ok", r.check
    assert len(r.actors) == 20 and r.completed == 400 and not r.lost


def test_stale_async_write_is_caught_among_tasks_of_one_loop() -> None:
    r = _stress("mutant:async-stale-write", tasks=10)
    assert r.verdict == "violation"


def test_asyncio_lock_holds_in_one_loop_and_fails_across_two_processes() -> None:
    assert _stress("mutant:asyncio-lock-only", tasks=10).verdict == "ok"
    r = _stress("mutant:asyncio-lock-only", tasks=5, processes=2)
    assert r.verdict == "violation" and {a.name for a in r.actors} >= {"p0k0", "p1k4"}


def test_negative_tasks_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="--tasks"):
        StressConfig(store="async-json", tasks=-1).validate()
