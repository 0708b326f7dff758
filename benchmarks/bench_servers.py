"""Server-backed stores, measured in one run: Redis start-up and per-run
reset, examples per second against the JSON store, and the time to catch
``redis-get-set``.

Usage::

    python benchmarks/bench_servers.py [--seeds 10] [--examples 300] [--out benchmarks/RESULTS-servers.md]

- *start-up*: a private ``redis-server`` started and answering (``PING``)
  and stopped again, ``--starts`` times, after the imports are paid;
- *reset*: one ``FLUSHDB`` of a namespace holding what a run leaves
  (two sessions: a list and a hash each), 1000 times;
- *examples/s*: ``verify`` with seed 0 and ``--examples`` examples on
  ``redis`` and on ``json`` alternately (json, redis, redis, json), thread
  actors then process actors, server start included for redis;
- *catch*: ``verify("mutant:redis-get-set")`` with seeds 0..N-1: seconds
  to the first failure and seconds of the whole call, shrinking included.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostinfo import describe  # noqa: E402


def machine() -> str:
    import subprocess

    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2]
    return describe(f"redis-server {version}")


def startup(n: int) -> tuple[list[float], list[float]]:
    from sessioncheck.servers.redis import RedisResource

    RedisResource.unavailable()  # imports redis-py before the clock starts
    starts, stops = [], []
    for _ in range(n):
        r = RedisResource()
        t0 = time.perf_counter()
        r.start()
        starts.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        r.stop()
        stops.append(time.perf_counter() - t0)
    return starts, stops


def reset_cost(n: int) -> list[float]:
    import redis

    from sessioncheck.servers.redis import RedisResource

    r = RedisResource()
    r.start()
    c = redis.Redis.from_url(r.address)
    out = []
    try:
        for _ in range(n):
            for s in ("s0", "s1"):
                c.rpush(f"{s}:messages", "m1", "m2", "m3")
                c.hset(f"{s}:meta", mapping={"model": "v1", "compute_instance_id": "v2"})
            t0 = time.perf_counter()
            r.reset()
            out.append(time.perf_counter() - t0)
        assert r.keys() == 0
    finally:
        c.close()
        r.stop()
    return out


def rate(store: str, mode: str, examples: int) -> float:
    from sessioncheck.verify import verify

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        r = verify(store, mode=mode, budget=600, max_examples=examples, seed=0, report_dir=Path(d),
                   save_report=False)
    assert not r.found, r.story
    return r.exploration.examples / (time.perf_counter() - t0)


def catch(mode: str, seeds: int) -> list[tuple[int, float, float]]:
    from sessioncheck.verify import verify

    out = []
    for seed in range(seeds):
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            r = verify("mutant:redis-get-set", mode=mode, budget=60, seed=seed, report_dir=Path(d),
                       save_report=False)
        assert r.found, f"seed {seed} missed"
        out.append((r.exploration.first_failure_example, r.exploration.first_failure_seconds,
                    time.perf_counter() - t0))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--examples", type=int, default=300)
    ap.add_argument("--starts", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path("benchmarks") / "RESULTS-servers.md")
    args = ap.parse_args()
    from sessioncheck.controlled import intercept

    intercept.install()
    t_all = time.perf_counter()
    lines = ["# Server-backed stores: Redis", "", f"`python benchmarks/bench_servers.py --seeds {args.seeds} "
             f"--examples {args.examples}`, one run; {machine()}.", ""]
    starts, stops = startup(args.starts)
    resets = reset_cost(1000)
    ms = lambda xs: f"{statistics.median(xs) * 1000:.2f} ms (max {max(xs) * 1000:.2f})"  # noqa: E731
    lines += ["| cost | median |", "| --- | --- |",
              f"| private redis-server start (until PING answers), {args.starts} starts | {ms(starts)} |",
              f"| stop (SIGTERM, directory removed) | {ms(stops)} |",
              f"| per-run reset (FLUSHDB of 2 sessions' keys), 1000 resets | {ms(resets)} |", ""]
    print("\n".join(lines), flush=True)
    rows = ["| mode | json examples/s | redis examples/s | redis / json |", "| --- | --- | --- | --- |"]
    for mode in ("threads", "processes"):
        j1 = rate("json", mode, args.examples)
        r1 = rate("redis", mode, args.examples)
        r2 = rate("redis", mode, args.examples)
        j2 = rate("json", mode, args.examples)
        j, r = statistics.mean([j1, j2]), statistics.mean([r1, r2])
        rows.append(f"| {mode} | {j:.0f} | {r:.0f} | {r / j:.2f} |")
        print(rows[-1], flush=True)
    lines += [f"Examples per second, seed 0, {args.examples} examples, order json, redis, redis, json "
              "(mean of the two of each):", "", *rows, ""]
    rows = ["| mode | caught | examples to 1st failure (per seed) | median s to 1st | median s incl. shrinking |",
            "| --- | --- | --- | --- | --- |"]
    for mode in ("threads", "processes"):
        got = catch(mode, args.seeds)
        rows.append(f"| {mode} | {len(got)}/{args.seeds} | {', '.join(str(g[0]) for g in got)} | "
                    f"{statistics.median(g[1] for g in got):.2f} | {statistics.median(g[2] for g in got):.2f} |")
        print(rows[-1], flush=True)
    lines += [f"`mutant:redis-get-set`, seeds 0..{args.seeds - 1} (`sessioncheck run` shrinking, 10 s cap):",
              "", *rows, "", f"Whole run: {time.perf_counter() - t_all:.0f} s.", ""]
    args.out.write_text("\n".join(lines))
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
