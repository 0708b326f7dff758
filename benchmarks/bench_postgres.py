"""PostgreSQL under the harness: what the server costs and how fast bugs fall.

    python benchmarks/bench_postgres.py [--seeds 10] [--examples 300] [--out benchmarks/RESULTS-postgres.md]

Measures, in one run on this machine:

- server start (initdb + postmaster + first connection), three times;
- a server crash: kill -9 of the postmaster and its processes until the
  restarted server answers, ten times;
- the per-run reset (``DROP SCHEMA ... CASCADE; CREATE SCHEMA``), and what
  the alternatives cost on the same tables (TRUNCATE, DELETE), and what
  re-creating the store's two tables after a reset adds;
- examples per second on the reference ``postgres`` store and the ``json``
  store, the same seeded search, threads and processes;
- seconds to catch ``mutant:postgres-select-update`` (search and shrinking,
  the whole ``verify`` call) over ``--seeds`` seeds, threads and processes.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))


def _ms(xs: list[float]) -> str:
    return f"median {statistics.median(xs) * 1000:.2f} ms (min {min(xs) * 1000:.2f}, max {max(xs) * 1000:.2f})"


def bench_server(reps: int = 3, resets: int = 200) -> list[str]:
    import psycopg

    from sessioncheck.servers.postgres import PostgresResource
    from sessioncheck.stores.reference.postgres_store import SCHEMA

    out = []
    starts = []
    for _ in range(reps):
        r = PostgresResource(dsn=None)
        r.private = True
        r.start()
        starts.append(r.start_seconds)
        r.stop()
    out.append(f"- server start (initdb, postmaster, first connection): {_ms(starts)} over {reps} starts")
    r = PostgresResource(dsn=None)
    r.private = True
    r.start()
    try:
        conn = psycopg.connect(r.address, autocommit=True)

        def fill() -> None:
            conn.execute(SCHEMA)
            conn.execute("INSERT INTO messages VALUES ('s0', 1, 'user', 'm1') ON CONFLICT DO NOTHING")

        def timed(fn, n: int = resets) -> list[float]:
            xs = []
            for _ in range(n):
                fill()
                t0 = time.perf_counter()
                fn()
                xs.append(time.perf_counter() - t0)
            return xs

        out.append(f"- reset as used (DROP SCHEMA ... CASCADE; CREATE SCHEMA, two tables in it): "
                   f"{_ms(timed(r.reset))}")

        def reset_and_recreate() -> None:
            r.reset()
            conn.execute(SCHEMA)
        out.append(f"- the same plus the store re-creating its two tables at its next open: "
                   f"{_ms(timed(reset_and_recreate))}")
        out.append(f"- alternative, TRUNCATE both tables: {_ms(timed(lambda: conn.execute('TRUNCATE sessions, messages')))}")
        out.append(f"- alternative, DELETE from both tables: "
                   f"{_ms(timed(lambda: conn.execute('DELETE FROM sessions; DELETE FROM messages')))}")
        connects = []
        for _ in range(20):
            t0 = time.perf_counter()
            psycopg.connect(r.address).close()
            connects.append(time.perf_counter() - t0)
        out.append(f"- a new connection (what the store's per-process pool saves per open): {_ms(connects)}")
        conn.close()
        crashes = []
        for _ in range(10):
            r.crash()  # kill -9 of every server process, restart on the data directory, recovery
            crashes.append(r.last_restart_seconds)
        out.append(f"- server crash (--faults server-crash), kill -9 to answering again: {_ms(crashes)} "
                   "over 10 crashes")
    finally:
        r.stop()
    return out


def bench_throughput(examples: int) -> list[str]:
    from sessioncheck.controlled.engine import Executor
    from sessioncheck.controlled.search import explore
    from sessioncheck.specs import resolve
    from sessioncheck.verify import model_config

    out = ["", "| store | mode | examples | seconds | examples/s |", "| --- | --- | --- | --- | --- |"]
    for mode in ("threads", "processes"):
        for store in ("json", "postgres", "postgres-row-lock"):
            spec = resolve(store)
            with Executor(spec, mode, model_config(spec, mode, ())) as ex:
                t0 = time.perf_counter()
                x = explore(ex, budget=600, max_examples=examples, seed=0)
                dt = time.perf_counter() - t0
            assert x.outcome is None, (store, mode, x.outcome.violations[0].summary)
            out.append(f"| `{store}` | {mode} | {x.examples} | {dt:.1f} | {x.examples / dt:.1f} |")
    return out


def bench_catch(seeds: int) -> list[str]:
    from sessioncheck.verify import verify

    out = ["", "`mutant:postgres-select-update`, seeds 0..N-1 (`sessioncheck run` shrinking, 10 s cap):", "",
           "| mode | caught | examples to 1st failure (per seed) | median s to 1st | median s incl. shrinking |",
           "| --- | --- | --- | --- | --- |"]
    for mode in ("threads", "processes"):
        whole, first, examples, caught = [], [], [], 0
        for seed in range(seeds):
            t0 = time.perf_counter()
            res = verify("mutant:postgres-select-update", mode=mode, budget=60, seed=seed, save_report=False)
            whole.append(time.perf_counter() - t0)
            x = res.exploration
            if res.outcome is not None:
                caught += 1
                examples.append(str(x.first_failure_example))
                first.append(x.first_failure_seconds or 0.0)
        out.append(f"| {mode} | {caught}/{seeds} | {', '.join(examples)} | "
                   f"{statistics.median(first) if first else float('nan'):.2f} | {statistics.median(whole):.2f} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--examples", type=int, default=300)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    from sessioncheck.controlled import intercept

    intercept.install()
    t0 = time.perf_counter()
    lines = ["# PostgreSQL benchmark", "",
             f"`python benchmarks/bench_postgres.py --seeds {args.seeds} --examples {args.examples}`, one run; "
             f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, CPython "
             f"{platform.python_version()}, load average at start {os.getloadavg()[0]:.1f}.", ""]
    lines += bench_server()
    lines += bench_throughput(args.examples)
    lines += bench_catch(args.seeds)
    lines += ["", f"Load average at the end {os.getloadavg()[0]:.1f}; {time.perf_counter() - t0:.0f} s in all."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
