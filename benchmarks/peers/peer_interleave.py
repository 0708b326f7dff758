"""interleave-test 0.1.0: the README's recommended test for every target.

A model is a zero-argument function that builds its state, ``it.spawn``s
the writers, joins them and asserts; ``@it.interleave(iterations=...,
seed=...)`` makes it a pytest test (or ``it.explore(model, ...)``).  Setup
and the final check run inside ``it.no_interleave()``, as the README
advises for setup code.  Code under site-packages is not traced unless its
path is passed in ``include=`` (done for the praisonaiagents store).

Needs Python >= 3.12 (``sys.monitoring``); runs here in a 3.13 venv::

    pytest benchmarks/peers/peer_interleave.py
    python benchmarks/peers/peer_interleave.py stale-overwrite threads-random --seed 1

There is no process mode: the tool schedules threads of one interpreter.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import interleave_test as it  # noqa: E402
from timing import Measurement, Probe, cli, first_line  # noqa: E402
from targets import TARGETS, Case, Target, preload  # noqa: E402


def _include() -> list[str]:
    """The store code to trace: this project, plus praisonaiagents' store."""
    paths = [str(Path(__file__).resolve().parents[2] / "store_impl")]
    try:
        import praisonaiagents.session.store as ps
        paths.append(os.path.dirname(ps.__file__))
    except ImportError:
        pass
    return paths


INCLUDE = _include()


def model_for(target: Target, probe: Probe | None = None):
    """The model: two writers with their own store instances, then the invariant."""
    def model() -> None:
        with it.no_interleave():
            case = Case(target)
        t1 = it.spawn(case.writer, 0)
        t2 = it.spawn(case.writer, 1)
        t1.join()
        t2.join()
        with it.no_interleave():
            ok = case.holds()
        if probe is not None:
            probe.record(ok)
        assert ok, f"{target.name}: invariant broken"
    return model


# -- the tests, one per target, as the README writes them --------------------

@it.interleave(iterations=500, seed=0, include=INCLUDE)
def test_stale_overwrite():
    model_for(TARGETS["stale-overwrite"])()


@it.interleave(iterations=500, seed=0, include=INCLUDE)
def test_none_skipped():
    model_for(TARGETS["none-skipped"])()


@it.interleave(iterations=500, seed=0, include=INCLUDE)
def test_thread_lock_only_threads():  # passes: the bug needs processes, which this tool cannot run
    model_for(TARGETS["thread-lock-only"])()


@it.interleave(iterations=500, seed=0, include=INCLUDE)
def test_json_store():
    model_for(TARGETS["json"])()


@it.interleave(iterations=500, seed=0, include=INCLUDE)
def test_praisonai_prefix():
    model_for(TARGETS["praisonai-prefix"])()


@it.interleave(iterations=500, seed=0, include=INCLUDE)
def test_praisonai_update_session_metadata():
    model_for(TARGETS["praisonai"])()


# -- measurement entry point for run.py --------------------------------------

def measure(target_name: str, mode: str, seed: int | None, opts: dict) -> Measurement:
    """``mode``: threads-random, threads-pct or threads-dfs."""
    target = TARGETS[target_name]
    m = Measurement("interleave-test", target_name, mode, seed)
    strategy = {"threads-random": "random", "threads-pct": "pct", "threads-dfs": "dfs"}.get(mode)
    if strategy is None:
        m.error = f"no mode {mode!r}: interleave-test runs threads of one process only"
        return m
    preload(target)
    probe = Probe(m)
    try:
        result = it.explore(model_for(target, probe), iterations=int(opts.get("iterations", 500)), seed=seed,
                            strategy=strategy, include=INCLUDE, timeout=float(opts.get("timeout", 30)),
                            raise_on_failure=False)
    except Exception as e:
        probe.done()
        m.error = f"{type(e).__name__}: {first_line(e)}"
        return m
    probe.done()
    failure = result.failure
    m.extra["schedules_run"] = result.schedules_run
    m.extra["exhausted"] = result.exhausted
    if failure is None:
        m.verdict = f"pass ({result.schedules_run} schedules" + (", exhausted)" if result.exhausted else ")")
        m.found = False
    else:
        exc = failure.exception
        m.verdict = f"{failure.kind}: " + (f"{type(exc).__name__}: {first_line(exc)}" if exc else first_line(failure.details))
        m.extra["failure_kind"] = failure.kind
        # A failure that is not our invariant (hang, deadlock, a crash inside
        # the tool) is the tool's verdict too, but not a find of the bug.
        m.found = m.first_failure_seconds is not None
        if not m.found:
            m.extra["false_alarm"] = True
    return m


if __name__ == "__main__":
    cli("interleave-test", measure)
