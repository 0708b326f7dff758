"""Benchmark of task actors (``--actors tasks``), measured in one run.

    python benchmarks/bench_tasks.py [--seeds 10] [--examples 1000]

1. Median (and max) time to catch ``mutant:async-stale-write`` with task
   actors over N seeds, shrinking included (target <= 1 s).
2. Examples per second on the correct ``async-json`` store, task actors
   against thread actors, the same number of examples in the same run
   (target: tasks >= threads); no violation may be found.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

from sessioncheck.verify import verify


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--examples", type=int, default=1000)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    times = []
    for seed in range(args.seeds):
        t0 = time.monotonic()
        r = verify("mutant:async-stale-write", mode="tasks", budget=60, seed=seed, save_report=False)
        times.append(time.monotonic() - t0)
        assert r.exploration.outcome is not None, f"seed {seed}: missed"
    print(f"async-stale-write, tasks: median {statistics.median(times):.2f} s, max {max(times):.2f} s "
          f"to catch (shrinking included) over {args.seeds} seeds")
    for mode in ("tasks", "threads"):
        t0 = time.monotonic()
        r = verify("async-json", mode=mode, budget=600, max_examples=args.examples, seed=1, save_report=False)
        dt = time.monotonic() - t0
        assert r.exploration.outcome is None, f"async-json flagged with {mode}"
        print(f"async-json, {mode}: {r.exploration.examples} examples in {dt:.1f} s "
              f"= {r.exploration.examples / dt:.0f} examples/s, no violation")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
