"""Benchmark of the controlled engine, measured in one run.

    python benchmarks/bench_engine.py [--seeds 10] [--out benchmarks/RESULTS-engine.md]

What it measures (issues: core engine, process actors):

1. Time to catch ``mutant:stale-overwrite`` (shrinking included) over N
   seeds, thread and process actors: median and max, and examples to the
   first failure.
2. 1000 examples on the correct ``json`` store, thread and process actors
   (no violation may be found).
3. Harness overhead per run against the bare operations, in the same run:
   300 programs drawn with seed 1 run through the controlled engine, and
   the same operations (taken from each run's history, in the order they
   began) called bare on fresh instances of the store, one instance per
   actor, each operation to completion, then the final reads.  The ratio
   of the medians is what the harness costs on top of the store's own
   work (an earlier "raw ceiling" of lock or pipe ping-pong was dropped: it
   measured a different hand-off than the engine makes, and the engine
   exceeded it on some machines).
4. Scheduler points per second on a store whose operation is nothing but
   ``time.sleep(0)`` points (what one preemption point costs).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sessioncheck.controlled.engine import Executor, scratch_dir  # noqa: E402
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


def distinct_per_second(mode: str, store: str = "json", budget: float = 20.0) -> tuple[float, float]:
    """Distinct interleavings a seeded search reaches per second on
    ``store``, and their share of the examples run."""
    r = verify(store, mode=mode, budget=budget, seed=1, save_report=False)
    x = r.exploration
    return len(x.interleavings) / x.seconds, x.distinct_share


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


def overhead(mode: str, store: str = "json", n: int = 300) -> dict:
    """Median seconds per program, harness vs bare, over the same programs."""
    import shutil
    import tempfile

    from sessioncheck.controlled.program import decode, programs

    spec = resolve(store)
    from sessioncheck.verify import model_config

    cfg = model_config(spec, mode, ())
    drawn = [decode(raw, cfg) for raw in _draw(programs(cfg), n)]
    harness_t, bare_t = [], []
    with Executor(spec, mode, cfg) as ex:
        ex.run(drawn[0])  # warm up: imports, first actor start
        for program in drawn:
            t0 = time.perf_counter()
            outcome = ex.run(program)
            harness_t.append(time.perf_counter() - t0)
            ops = sorted((o for o in outcome.ops if o.process != "final"), key=lambda o: o.start)
            location = tempfile.mkdtemp(prefix="sessioncheck-bare-", dir=scratch_dir())  # as the engine
            try:
                t0 = time.perf_counter()
                stores: dict = {}
                for o in ops:
                    s = stores.get(o.process)
                    if s is None:
                        s = stores[o.process] = spec.open(Path(location))
                    try:
                        if o.f == "add":
                            s.add_message(o.session, {"role": "user", "content": o.value})
                        elif o.f == "persist":
                            s.persist_state(o.session, dict(o.value))
                        elif o.f == "delete":
                            s.delete_session(o.session)
                        elif o.f == "read":
                            s.read(o.session)
                    except Exception:  # noqa: BLE001 - a refusal costs what it costs
                        pass
                final = spec.open(Path(location))
                for session in sorted({o.session for o in ops}) or ["s0"]:
                    final.read(session)
                for s in [*stores.values(), final]:
                    close = getattr(s, "close", None)
                    if callable(close):
                        close()
                bare_t.append(time.perf_counter() - t0)
            finally:
                shutil.rmtree(location, ignore_errors=True)
    h, b = statistics.median(harness_t), statistics.median(bare_t)
    return {"harness": h, "bare": b, "ratio": h / b if b else float("inf")}


def _draw(strategy, n: int) -> list:
    """``n`` draws of ``strategy`` by Hypothesis itself, seeded: the same
    programs on every run."""
    from hypothesis import HealthCheck, Phase, given, seed, settings

    out: list = []

    @seed(1)
    @settings(max_examples=n, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(raw):
        out.append(raw)

    collect()
    return out[:n]


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

    ot = overhead("threads")
    op = overhead("processes")
    tp = points_per_second("threads")
    pp = points_per_second("processes")
    ct = catch_times("threads", args.seeds)
    cp = catch_times("processes", args.seeds)
    kt = thousand_examples("threads")
    kp = thousand_examples("processes")
    dt = distinct_per_second("threads")
    dp = distinct_per_second("processes")
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
        f"| distinct interleavings/s on `json`, seeded 20 s search (share of examples) | "
        f"{dt[0]:,.0f} ({dt[1]:.0%}) | {dp[0]:,.0f} ({dp[1]:.0%}) | |",
        f"| scheduler points/s (median of 5) | {tp:,.0f} | {pp:,.0f} | |",
        f"| one run of a drawn program on `json`, median ms: harness / bare operations (300 programs) | "
        f"{ot['harness'] * 1e3:.2f} / {ot['bare'] * 1e3:.2f} | {op['harness'] * 1e3:.2f} / {op['bare'] * 1e3:.2f} | |",
        f"| harness overhead per run over the bare operations | {ot['ratio'] - 1:+.0%} | {op['ratio'] - 1:+.0%} "
        "| <= +25 % |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
