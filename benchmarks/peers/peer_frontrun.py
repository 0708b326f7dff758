"""frontrun 0.7.0: the README's recommended test for every target.

``frontrun.explore(setup, workers, invariant)`` then ``result.assert_holds()``,
with DPOR (the default), with ``strategy="random"`` (the README's choice
when shared state lives where DPOR cannot see it), and with
``execution="process"`` (its cross-process mode).  Run under the
``frontrun`` CLI, as the README requires (plain pytest skips these tests)::

    frontrun pytest benchmarks/peers/peer_frontrun.py
    frontrun python benchmarks/peers/peer_frontrun.py stale-overwrite threads-random --seed 1

Code inside installed packages is traced only when named in
``trace_packages`` (the README's advice), so the praisonaiagents store is.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import frontrun  # noqa: E402
from timing import Measurement, Probe, cli, first_line  # noqa: E402
from targets import TARGETS, Case, Target, preload, holds_at, open_store, WORKLOADS, workload_of  # noqa: E402

TRACE = ["sessioncheck.stores.*", "praisonaiagents.session.*"]


def explore_threads(target: Target, strategy: str = "dpor", seed: int | None = None, invariant=None, **kw):
    """Two writers in two threads, each with its own store instance."""
    return frontrun.explore(
        setup=lambda: Case(target),
        workers=[lambda c: c.writer(0), lambda c: c.writer(1)],
        invariant=invariant or Case.holds,
        strategy=strategy, seed=seed, trace_packages=TRACE, **kw,
    )


# -- process mode: workers must be module level (serialised with dill) -------

def _setup_process(target_name: str) -> tuple[str, str]:
    case = Case(TARGETS[target_name], instances=False)
    return target_name, case.dir


def _process_writer(i: int):
    def writer(state: tuple[str, str]) -> None:
        name, directory = state
        WORKLOADS[workload_of(TARGETS[name])].writers[i](open_store(TARGETS[name].spec, directory))
    return writer


def _process_holds(state: tuple[str, str]) -> bool:
    return holds_at(TARGETS[state[0]], state[1])


def explore_processes(target: Target, invariant=None, **kw):
    """Two writers in two OS processes (frontrun's ``execution="process"``)."""
    return frontrun.explore(
        setup=lambda: _setup_process(target.name),
        workers=[_process_writer(0), _process_writer(1)],
        invariant=invariant or _process_holds,
        execution="process", **kw,
    )


# -- the tests, one per target, as the README writes them --------------------

def test_stale_overwrite():
    explore_threads(TARGETS["stale-overwrite"]).assert_holds()


def test_stale_overwrite_random():
    explore_threads(TARGETS["stale-overwrite"], strategy="random", seed=42).assert_holds()


def test_none_skipped():
    explore_threads(TARGETS["none-skipped"]).assert_holds()


def test_thread_lock_only_processes():
    explore_processes(TARGETS["thread-lock-only"]).assert_holds()


def test_json_store():
    explore_threads(TARGETS["json"], strategy="random", seed=42).assert_holds()


def test_praisonai_prefix():
    explore_threads(TARGETS["praisonai-prefix"]).assert_holds()


def test_praisonai_update_session_metadata():
    explore_threads(TARGETS["praisonai"], strategy="random", seed=42).assert_holds()


# -- measurement entry point for run.py --------------------------------------

def measure(target_name: str, mode: str, seed: int | None, opts: dict) -> Measurement:
    """``mode``: threads-dpor, threads-random or processes-dpor."""
    target = TARGETS[target_name]
    m = Measurement("frontrun", target_name, mode, seed)
    preload(target)
    probe = Probe(m)
    attempts = int(opts.get("max_attempts", 200))
    try:
        if mode == "threads-dpor":
            result = explore_threads(target, invariant=probe.wrap(Case.holds), total_timeout=float(opts.get("timeout", 60)))
        elif mode == "threads-random":
            result = explore_threads(target, strategy="random", seed=seed, invariant=probe.wrap(Case.holds),
                                     max_attempts=attempts, total_timeout=float(opts.get("timeout", 60)))
        elif mode == "processes-dpor":
            result = explore_processes(target, invariant=probe.wrap(_process_holds),
                                       total_timeout=float(opts.get("timeout", 60)))
        else:
            raise ValueError(f"unknown frontrun mode {mode!r}")
    except Exception as e:  # a tool error is a result to report, not a crash of the benchmark
        probe.done()
        m.error = f"{type(e).__name__}: {first_line(e)}"
        return m
    probe.done()
    explanation = result.explanation or ""
    if result.property_holds is True:
        m.verdict = f"pass ({result.num_explored} interleavings explored)"
    elif result.property_holds is None:
        m.verdict = "inconclusive: " + first_line(getattr(result, "inconclusive_reason", "") or explanation)
    else:
        m.verdict = first_line(explanation)
    m.extra["num_explored"] = result.num_explored
    m.extra["replay"] = f"{result.reproduction_successes}/{result.reproduction_attempts}"
    # The tool's own verdict decides "found" (False = counterexample); the
    # probe only times it.  Inconclusive (None) is not a find.
    m.found = result.property_holds is False
    return m


if __name__ == "__main__":
    cli("frontrun", measure)
