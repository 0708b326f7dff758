"""Task actors (``--actors tasks``): asyncio tasks of one event loop.

Budgets are example counts with fixed seeds, so "caught within N" is a
deterministic claim (the time cap only keeps a broken engine from hanging)."""
from __future__ import annotations

import pytest

from sessioncheck.errors import ConfigError
from sessioncheck.verify import verify

BUDGET = 300  # examples; every catch below takes far fewer with these seeds
SEEDS = (0, 1, 2)


def _run(store: str, mode: str = "tasks", faults: tuple = (), examples: int = BUDGET, seed: int = 0):
    return verify(store, mode=mode, faults=faults, budget=60.0, max_examples=examples, seed=seed,
                  save_report=False)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("store,faults,expect", [
    ("mutant:async-stale-write", (), ("I1", "I3")),
    ("mutant:async-none-skipped", (), ("I3",)),
    ("mutant:cancel-torn", ("cancel",), ("I4", "I1")),
])
def test_async_mutant_caught_with_tasks(store: str, faults: tuple, expect: tuple, seed: int) -> None:
    r = _run(store, faults=faults, seed=seed)
    out = r.exploration.outcome
    assert out is not None and out.failed, f"{store} missed with seed {seed}"
    assert out.violations[0].invariant in expect


def test_story_names_the_awaits() -> None:
    out = _run("mutant:async-stale-write").exploration.outcome
    assert out is not None
    awaits = [e for e in out.trace if e["ev"] == "point" and e["kind"] == "await"]
    assert awaits and all("add_message async_stale_write.py:" in e["detail"] or
                          "persist_state async_stale_write.py:" in e["detail"] or
                          "read async_stale_write.py:" in e["detail"] for e in awaits)


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_asyncio_lock_only_fails_across_loops(mode: str) -> None:
    out = _run("mutant:asyncio-lock-only", mode=mode).exploration.outcome
    assert out is not None and out.violations[0].invariant in ("I1", "I3")


def test_asyncio_lock_only_passes_with_tasks_of_one_loop() -> None:
    r = _run("mutant:asyncio-lock-only")
    assert r.exploration.outcome is None and r.exploration.examples == BUDGET


@pytest.mark.parametrize("faults", [(), ("cancel",)])
def test_reference_async_store_passes_with_tasks(faults: tuple) -> None:
    r = _run("async-json", faults=faults)
    assert r.exploration.outcome is None and r.exploration.examples == BUDGET


def test_same_seed_same_story() -> None:
    a = _run("mutant:async-stale-write", seed=3).exploration.outcome
    b = _run("mutant:async-stale-write", seed=3).exploration.outcome
    assert a is not None and b is not None
    strip = lambda tr: [{k: v for k, v in e.items()} for e in tr]  # noqa: E731
    assert strip(a.trace) == strip(b.trace)


def test_cancel_needs_tasks_and_tasks_take_only_cancel() -> None:
    with pytest.raises(ConfigError, match="--actors tasks"):
        _run("async-json", mode="threads", faults=("cancel",))
    with pytest.raises(ConfigError, match="only the cancel fault"):
        _run("async-json", faults=("power-loss",))


def test_cli_exits_1_with_awaits(capsys) -> None:
    from sessioncheck.cli.main import main

    code = main(["run", "--store", "mutant:async-stale-write", "--actors", "tasks", "--budget", "60",
                 "--seed", "0", "--report", "/dev/null"])
    out = capsys.readouterr().out
    assert code == 1 and "await in add_message async_stale_write.py:" in out
