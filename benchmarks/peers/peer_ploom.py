"""ploom 0.1.1: the README's recommended test for every target.

A scenario is a zero-argument function that builds its state, starts
``ploom.Thread``s, joins them and asserts; ``ploom.check(scenario)`` (or the
``ploom_check`` pytest fixture) runs it once per schedule, each in a fresh
Python process, by depth-first search over *ploom operations*.  ploom sees
no ``threading`` locks, no file I/O and no code without ploom operations,
so each store call runs as one atomic step: only the orders of whole calls
are explored.

Needs Python >= 3.13; runs here in a 3.13 venv::

    pytest benchmarks/peers/peer_ploom.py
    python benchmarks/peers/peer_ploom.py stale-overwrite threads-dfs

There is no process mode (its processes isolate schedules; the scenario's
tasks are threads).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ploom  # noqa: E402
from timing import Measurement, Probe, cli, first_line  # noqa: E402
from targets import TARGETS, Case, preload  # noqa: E402


def run_writers(name: str) -> None:
    """The scenario body: two writers as ploom threads, then the invariant."""
    case = Case(TARGETS[name])
    a = ploom.Thread(target=case.writer, args=(0,))
    b = ploom.Thread(target=case.writer, args=(1,))
    a.start()
    b.start()
    a.join()
    b.join()
    assert case.holds(), f"{name}: invariant broken"


# Scenarios are module-level functions so that a fresh process can import them.
def stale_overwrite() -> None:
    run_writers("stale-overwrite")


def none_skipped() -> None:
    run_writers("none-skipped")


def thread_lock_only() -> None:
    run_writers("thread-lock-only")


def json_store() -> None:
    run_writers("json")


def praisonai_prefix() -> None:
    run_writers("praisonai-prefix")


def praisonai() -> None:
    run_writers("praisonai")


SCENARIOS = {"stale-overwrite": stale_overwrite, "none-skipped": none_skipped, "thread-lock-only": thread_lock_only,
             "json": json_store, "praisonai-prefix": praisonai_prefix, "praisonai": praisonai}


# -- the tests, one per target, as the README writes them --------------------

def test_stale_overwrite(ploom_check):
    ploom_check(stale_overwrite)


def test_none_skipped(ploom_check):
    ploom_check(none_skipped)


def test_thread_lock_only(ploom_check):
    ploom_check(thread_lock_only)


def test_json_store(ploom_check):
    ploom_check(json_store)


def test_praisonai_prefix(ploom_check):
    ploom_check(praisonai_prefix)


def test_praisonai_update_session_metadata(ploom_check):
    ploom_check(praisonai)


# -- measurement entry point for run.py --------------------------------------

def measure(target_name: str, mode: str, seed: int | None, opts: dict) -> Measurement:
    """``mode``: threads-dfs (ploom's only strategy; deterministic, no seed)."""
    m = Measurement("ploom", target_name, mode, seed)
    if mode != "threads-dfs":
        m.error = f"no mode {mode!r}: ploom explores threads by depth-first search only"
        return m
    preload(TARGETS[target_name])
    probe = Probe(m)
    found_at: list[float] = []
    config = ploom.Config(max_executions=int(opts.get("max_executions", 200)), timeout=float(opts.get("timeout", 30)))
    with tempfile.TemporaryDirectory(prefix="ploom-traces-") as traces:
        try:
            stats = ploom.check(SCENARIOS[target_name], config=config, trace_dir=Path(traces),
                                on_failure=lambda trace, path: found_at.append(time.perf_counter()))
            m.schedules = stats.executions
            m.verdict = f"pass ({stats.executions} schedules, exhaustive)"
        except ploom.ModelCheckError as e:
            stats = getattr(e, "statistics", None)
            m.schedules = getattr(stats, "executions", 0) or 0
            m.verdict = first_line(e)
            m.found = "invariant broken" in str(e)
            if m.found and found_at:
                m.first_failure_seconds = found_at[0] - probe.t0
                m.schedules_to_first_failure = m.schedules
            elif not m.found:
                m.extra["false_alarm"] = True
        except ploom.IncompleteExplorationError as e:
            stats = getattr(e, "statistics", None)
            m.schedules = getattr(stats, "executions", 0) or 0
            m.verdict = "incomplete: " + first_line(e)
        except Exception as e:
            m.error = f"{type(e).__name__}: {first_line(e)}"
    probe.done()
    return m


if __name__ == "__main__":
    cli("ploom", measure)
