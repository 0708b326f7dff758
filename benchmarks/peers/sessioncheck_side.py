"""sessioncheck on the same targets: ``sessioncheck.verify.verify`` as the CLI runs it.

``python benchmarks/peers/sessioncheck_side.py TARGET MODE [--seed N] [--opt budget=S]``
is ``sessioncheck run --store SPEC --actors MODE --budget S --seed N``,
timed the same way as the peers (:mod:`timing`): the store's code is
imported first (as every peer's runner does), then the clock starts when
``verify`` is called (so it includes probing the store's capabilities and
starting the actors) and stops at the end of the first example whose
checked history violates an invariant.

Where the time goes is measured, not guessed: ``Executor.run`` (one example
run under the controlled scheduler, history checked) is timed from outside,
so setup, store execution, and everything else in the search (Hypothesis
generating and deciding, per-example bookkeeping) are reported apart, and
shrinking is the time after the first failure.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

from timing import Measurement, Probe, cli, first_line  # noqa: E402
from targets import TARGETS  # noqa: E402

from sessioncheck.controlled import engine  # noqa: E402
from sessioncheck.controlled.program import ModelConfig  # noqa: E402
from sessioncheck.specs import resolve  # noqa: E402
from sessioncheck.verify import verify  # noqa: E402


class RunTimer:
    """Times every ``Executor.run`` (one example under the scheduler, plus its check)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.runs = 0
        self.first_start: float | None = None
        original = engine.Executor.run

        def timed(ex, program, *a, **k):
            t = time.perf_counter()
            if self.first_start is None:
                self.first_start = t
            try:
                return original(ex, program, *a, **k)
            finally:
                self.seconds += time.perf_counter() - t
                self.runs += 1
        engine.Executor.run = timed  # type: ignore[method-assign]


def measure(target_name: str, mode: str, seed: int | None, opts: dict) -> Measurement:
    """``mode``: threads or processes."""
    target = TARGETS[target_name]
    m = Measurement("sessioncheck", target_name, mode, seed)
    # The store's code is imported before the clock starts, as every peer
    # does (``targets.preload``); sessioncheck's own loader installs its
    # interception first, then imports the store (a bad spec still fails
    # inside ``verify`` below, with the same error).
    try:
        resolve(target.spec)
    except Exception:  # noqa: BLE001
        pass
    timer = RunTimer()
    probe = Probe(m)
    at_first: dict = {}

    def on_example(x: engine.Exploration) -> None:
        ok = not (x.last is not None and x.last.failed)
        probe.record(ok)
        if not ok and "run_seconds" not in at_first:
            at_first.update(run_seconds=timer.seconds, runs=timer.runs)

    # The model's size: the defaults, or (``scope=peer``) the peer tests'
    # scope: two writers on one session, short programs, and the peers'
    # operations (they never delete); the CLI's ``--actor-count 2
    # --sessions 1 --max-steps N --without delete``.
    cfg = None
    if opts.get("scope") == "peer":
        cfg = ModelConfig(actors=2, sessions=1, max_steps=int(opts.get("max_steps", 8)), without=("delete",))
        m.extra["model"] = f"actors=2 sessions=1 max_steps={cfg.max_steps} without=delete"
    try:
        result = verify(target.spec, mode=mode, cfg=cfg, budget=float(opts.get("budget", 30)), seed=seed,
                        save_report=False, on_example=on_example,
                        shrink_budget=float(opts.get("shrink_budget", 10)))
    except Exception as e:
        probe.done()
        m.error = f"{type(e).__name__}: {first_line(e)}"
        return m
    probe.done()
    x = result.exploration
    m.schedules = x.examples
    m.extra.update(
        distinct_interleavings=len(x.interleavings), unknown=x.unknown,
        search_first_failure_seconds=x.first_failure_seconds,
        setup_seconds=(timer.first_start - probe.t0) if timer.first_start else None,
        run_seconds_to_first_failure=at_first.get("run_seconds"),
        runs_to_first_failure=at_first.get("runs"),
        run_seconds_total=timer.seconds, runs_total=timer.runs,
        shrink_seconds=(m.seconds - m.first_failure_seconds) if m.first_failure_seconds is not None else None,
    )
    if result.found:
        first = result.outcome.violations[0]
        m.verdict = f"{first.invariant}: {first_line(first.summary)}"
        m.extra["invariant"] = first.invariant
        m.extra["story_steps"] = len(result.outcome.program)
    else:
        m.verdict = first_line(result.summary())
    m.found = result.found
    return m


if __name__ == "__main__":
    cli("sessioncheck", measure)
