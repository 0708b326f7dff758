"""Benchmark of the controlled engine, measured in one run.

    python benchmarks/bench_engine.py [--seeds 10] [--out benchmarks/RESULTS-engine.md]

What it measures (issues: core engine, process actors):

1. Time to catch ``mutant:stale-overwrite`` (shrinking included) over N
   seeds, thread and process actors: median and max, and examples to the
   first failure.
2. 1000 examples on the correct ``json`` store, thread and process actors
   (no violation may be found).
3. Scheduler points per second against the raw ceiling of the transport,
   measured in the same run: a store whose operation is nothing but
   ``time.sleep(0)`` points, against two threads passing a baton of raw
   locks, and against two processes passing a pickled tuple over raw
   pipes.
"""
from __future__ import annotations

import argparse
import os
import pickle
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sessioncheck.controlled.engine import Executor  # noqa: E402
from sessioncheck.controlled.program import ModelConfig, OpSpec, Step  # noqa: E402
from sessioncheck.specs import resolve  # noqa: E402
from sessioncheck.verify import verify  # noqa: E402

POINTS = 2000


class SleepStore:
    """A store whose add_message is POINTS preemption points and nothing else."""

    def __init__(self, location):
        self.location = location

    def add_message(self, session_id, message):
        for _ in range(POINTS):
            time.sleep(0)

    def persist_state(self, session_id, fields):
        pass

    def read(self, session_id):
        from sessioncheck.protocol import SessionState

        return SessionState()


def catch_times(mode: str, seeds: int) -> dict:
    rows = []
    for seed in range(seeds):
        t = time.perf_counter()
        r = verify("mutant:stale-overwrite", mode=mode, budget=120, seed=seed, save_report=False)
        total = time.perf_counter() - t
        assert r.found, f"seed {seed}: not found"
        rows.append((total, r.exploration.first_failure_seconds, r.exploration.first_failure_example,
                     len(r.outcome.program)))
    return {
        "median_total": statistics.median(x[0] for x in rows),
        "max_total": max(x[0] for x in rows),
        "median_first": statistics.median(x[1] for x in rows),
        "median_examples": statistics.median(x[2] for x in rows),
        "median_steps": statistics.median(x[3] for x in rows),
    }


def thousand_examples(mode: str, store: str = "json") -> float:
    t = time.perf_counter()
    r = verify(store, mode=mode, budget=3600, max_examples=1000, seed=0, save_report=False)
    assert not r.found and r.exploration.examples == 1000
    return time.perf_counter() - t


def points_per_second(mode: str, reps: int = 5) -> float:
    spec = resolve("benchmarks.bench_engine:SleepStore")
    program = [Step("start", 0, OpSpec("add", 0)), Step("advance", 0, points=POINTS + 10)]
    rates = []
    with Executor(spec, mode, ModelConfig(actors=1, metadata=False)) as ex:
        ex.run(program)
        for _ in range(reps):
            t = time.perf_counter()
            ex.run(program)
            rates.append(POINTS / (time.perf_counter() - t))
    return statistics.median(rates)


def thread_ceiling(n: int = 20000, reps: int = 5) -> float:
    import _thread

    rates = []
    for _ in range(reps):
        go, back = _thread.allocate_lock(), _thread.allocate_lock()
        go.acquire()
        back.acquire()

        def other():
            for _ in range(n):
                go.acquire()
                back.release()

        th = threading.Thread(target=other)
        th.start()
        t = time.perf_counter()
        for _ in range(n):
            go.release()
            back.acquire()
        rates.append(n / (time.perf_counter() - t))
        th.join()
    return statistics.median(rates)


def pipe_ceiling(n: int = 20000, reps: int = 5) -> float:
    import struct

    import multiprocess

    L = struct.Struct("!I")

    def echo(r, w):
        for _ in range(n):
            (k,) = L.unpack(os.read(r, 4))
            msg = pickle.loads(os.read(r, k))
            data = pickle.dumps(msg)
            os.write(w, L.pack(len(data)) + data)
        os._exit(0)

    rates = []
    for _ in range(reps):
        a_r, a_w = os.pipe()
        b_r, b_w = os.pipe()
        p = multiprocess.get_context("fork").Process(target=echo, args=(a_r, b_w))
        p.start()
        t = time.perf_counter()
        for _ in range(n):
            data = pickle.dumps(("go", 1.0, None))
            os.write(a_w, L.pack(len(data)) + data)
            (k,) = L.unpack(os.read(b_r, 4))
            pickle.loads(os.read(b_r, k))
        rates.append(n / (time.perf_counter() - t))
        p.join()
        for fd in (a_r, a_w, b_r, b_w):
            os.close(fd)
    return statistics.median(rates)


def machine() -> str:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu or platform.machine()}, Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS-engine.md")
    args = ap.parse_args()
    load0 = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())

    tc = thread_ceiling()
    tp = points_per_second("threads")
    pc = pipe_ceiling()
    pp = points_per_second("processes")
    ct = catch_times("threads", args.seeds)
    cp = catch_times("processes", args.seeds)
    kt = thousand_examples("threads")
    kp = thousand_examples("processes")
    load1 = os.getloadavg()

    lines = [
        "## Engine benchmark",
        "",
        f"`python benchmarks/bench_engine.py --seeds {args.seeds}` on {machine()}, {started};",
        f"load average {load0[0]:.1f} at the start, {load1[0]:.1f} at the end.",
        "",
        "| what | threads | processes | target |",
        "| --- | --- | --- | --- |",
        f"| catch `mutant:stale-overwrite`, median s incl. shrinking ({args.seeds} seeds) | "
        f"{ct['median_total']:.2f} (max {ct['max_total']:.2f}) | {cp['median_total']:.2f} (max {cp['max_total']:.2f}) "
        "| <= 1 s threads, <= 5 s processes |",
        f"| ... median s to the first failure | {ct['median_first']:.2f} | {cp['median_first']:.2f} | |",
        f"| ... median examples to the first failure | {ct['median_examples']:.0f} | {cp['median_examples']:.0f} | |",
        f"| ... median steps in the shrunk program | {ct['median_steps']:.0f} | {cp['median_steps']:.0f} | |",
        f"| 1000 examples on `json`, s | {kt:.1f} | {kp:.1f} | <= 5 s threads, <= 20 s processes |",
        f"| scheduler points/s (median of 5) | {tp:,.0f} | {pp:,.0f} | |",
        f"| raw ceiling, round trips/s (lock ping-pong / pickled pipe ping-pong) | {tc:,.0f} | {pc:,.0f} | |",
        f"| points/s as a share of the ceiling | {tp / tc:.0%} | {pp / pc:.0%} | >= 50 % |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
