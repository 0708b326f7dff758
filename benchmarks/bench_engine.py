"""Benchmark of the controlled engine, this tree against a base commit, in one run.

    python benchmarks/bench_engine.py [--seeds 10] [--base 5702996] [--out benchmarks/RESULTS-engine.md]

Every measurement runs in a subprocess, once on this tree's code and once
on the code of ``--base`` (checked out in a temporary ``git worktree``,
removed afterwards), alternating measurement by measurement, so both are
measured on the same machine state.  ``--base ''`` measures this tree only.

What it measures (issues: core engine, process actors, search):

1. Time to catch ``mutant:stale-overwrite`` (shrinking included) over N
   seeds, thread and process actors: median and max, and examples to the
   first failure.
2. 1000 examples on the correct ``json`` store, thread and process actors
   (no violation may be found).
3. Distinct interleavings per second of a seeded 20 s search on ``json``.
4. Harness overhead per run against the bare operations, in the same run:
   300 programs drawn with seed 1 run through the controlled engine, and
   the same operations (taken from each run's history, in the order they
   began) called bare on fresh instances of the store, one instance per
   actor, each operation to completion, then the final reads.  The ratio
   of the medians is what the harness costs on top of the store's own
   work (an earlier "raw ceiling" of lock or pipe ping-pong was dropped: it
   measured a different hand-off than the engine makes, and the engine
   exceeded it on some machines).
5. Scheduler points per second on a store whose operation is nothing but
   ``time.sleep(0)`` points (what one preemption point costs).
6. The floor under (2): the same seeded Hypothesis search of 1000
   programs with nothing run (each program drawn and decoded, no store,
   no harness), plus 1000 times the mean cost of a program's operations
   called bare (from 4).  No harness that lets Hypothesis make every
   choice and runs the store's own operations can do 1000 examples in
   less on this machine.
7. What a hand-over costs: a round trip of the baton between two threads
   (two locks) or two processes (two pipes), bare, with the two free to
   run on any CPU and pinned to one; and the hand-overs a drawn program's
   run makes (median of the 300 of 4).  Their product is what the
   hand-overs alone cost a run, whatever else the harness does.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def _use_code(tree: Path) -> None:
    """Import ``sessioncheck`` from another checkout of this repository
    (the base commit's worktree): the package, its stores and scenarios
    are mapped from its directories, as an editable install maps them."""
    import importlib.abc
    import importlib.util

    mapping = {"sessioncheck": tree / "harness", "sessioncheck.stores": tree / "store_impl",
               "sessioncheck.scenarios": tree / "scenarios"}

    class _Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path=None, target=None):
            if fullname in mapping:
                init = mapping[fullname] / "__init__.py"
                return importlib.util.spec_from_file_location(
                    fullname, init, submodule_search_locations=[str(mapping[fullname])])
            return None

    sys.meta_path.insert(0, _Finder())


if __name__ == "__main__" and "--code" in sys.argv:
    _use_code(Path(sys.argv[sys.argv.index("--code") + 1]))

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
    return {"harness": h, "bare": b, "ratio": h / b if b else float("inf"),
            "bare_mean": statistics.fmean(bare_t)}


def generation_alone(store: str = "json", n: int = 1000) -> float:
    """Seconds the seeded search of :func:`thousand_examples` spends in
    Hypothesis alone: the same strategy, settings and seed, each program
    decoded and nothing run (a conservative floor: the real search also
    draws the repeats it rejects)."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings

    from sessioncheck.controlled.program import decode, programs
    from sessioncheck.verify import model_config

    cfg = model_config(resolve(store), "threads", ())
    drawn = [0]

    @seed(0)
    @settings(max_examples=n, database=None, phases=[Phase.generate], deadline=None, verbosity=Verbosity.quiet,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=False)
    @given(programs(cfg))
    def body(raw):
        decode(raw, cfg)
        drawn[0] += 1

    t = time.perf_counter()
    body()
    assert drawn[0] == n, drawn[0]
    return time.perf_counter() - t


def _round_trip(mode: str, n: int = 20_000) -> float:
    """Seconds per bare baton round trip: two threads on two locks, or a
    parent and a forked child on two pipes."""
    if mode == "threads":
        import threading

        go, back = threading.Lock(), threading.Lock()
        go.acquire()
        back.acquire()

        def other() -> None:
            for _ in range(n):
                go.acquire()
                back.release()

        t = threading.Thread(target=other)
        t.start()
        t0 = time.perf_counter()
        for _ in range(n):
            go.release()
            back.acquire()
        dt = time.perf_counter() - t0
        t.join()
        return dt / n
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer every byte, then leave without cleanup
        try:
            for _ in range(n):
                os.read(r1, 1)
                os.write(w2, b"x")
        finally:
            os._exit(0)
    t0 = time.perf_counter()
    for _ in range(n):
        os.write(w1, b"x")
        os.read(r2, 1)
    dt = time.perf_counter() - t0
    os.waitpid(pid, 0)
    for fd in (r1, w1, r2, w2):
        os.close(fd)
    return dt / n


def handovers(mode: str, store: str = "json", n: int = 300) -> dict:
    """The bare round trip (free, then pinned to one CPU) and the
    hand-overs per run of the drawn programs of :func:`overhead`."""
    from sessioncheck.controlled.program import decode, programs
    from sessioncheck.verify import model_config

    spec = resolve(store)
    cfg = model_config(spec, mode, ())
    drawn = [decode(raw, cfg) for raw in _draw(programs(cfg), n)]
    count = [0]
    with Executor(spec, mode, cfg) as ex:
        ex.run(drawn[0])
        kinds = {type(a) for a in (ex._actor(i) for i in range(len(ex.names)))}
        saved = []
        for cls in kinds:
            for name in ("begin", "resume", "run_ahead"):
                real = getattr(cls, name, None)
                if real is None:  # an older engine, without running ahead
                    continue

                def counted(self, *a, _real=real, **k):
                    count[0] += 1
                    return _real(self, *a, **k)

                saved.append((cls, name, real))
                setattr(cls, name, counted)
        per_run = []
        try:
            for program in drawn:
                count[0] = 0
                ex.run(program)
                per_run.append(count[0])
        finally:
            for cls, name, real in saved:
                setattr(cls, name, real)
    free = statistics.median(_round_trip(mode) for _ in range(3))
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})  # a forked child inherits it
    try:
        pinned = statistics.median(_round_trip(mode) for _ in range(3))
    finally:
        os.sched_setaffinity(0, cpus)
    return {"free": free, "pinned": pinned, "per_run": statistics.median(per_run)}


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


MEASURES = ("overhead", "points", "catch", "thousand", "distinct", "generation", "handovers")


def measure(what: str, seeds: int) -> dict:
    import sessioncheck

    out: dict = {"code": str(Path(sessioncheck.__file__).resolve().parent.parent)}
    for mode in ("threads", "processes"):
        if what == "overhead":
            out[mode] = overhead(mode)
        elif what == "points":
            out[mode] = points_per_second(mode)
        elif what == "catch":
            out[mode] = catch_times(mode, seeds)
        elif what == "thousand":
            out[mode] = thousand_examples(mode)
        elif what == "distinct":
            out[mode] = distinct_per_second(mode)
        elif what == "handovers":
            out[mode] = handovers(mode)
        elif what == "generation":
            # the same for both modes: measured once
            out[mode] = out.get("threads") or generation_alone()
    return out


def child(script: str, args: list[str], code: Path | None, timeout: float = 1800):
    """Run ``script`` (a benchmark's own file) in a fresh interpreter with
    ``args``, on ``code`` (a worktree, see :func:`_use_code`) or this tree,
    and return the JSON its last line printed."""
    cmd = [sys.executable, str(Path(script).resolve()), *args]
    if code is not None:
        cmd += ["--code", str(code)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _sub(what: str, seeds: int, code: Path | None) -> dict:
    return child(__file__, ["--measure", what, "--seeds", str(seeds)], code)


def _worktree(base: str) -> Path:
    where = Path(tempfile.mkdtemp(prefix="sessioncheck-bench-base-"))
    shutil.rmtree(where)
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(where), base],
                   check=True, timeout=120)
    return where


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS-engine.md")
    ap.add_argument("--base", default="5702996", help="commit to compare against ('' for none)")
    ap.add_argument("--measure", choices=MEASURES, help=argparse.SUPPRESS)
    ap.add_argument("--code", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.seeds)))
        return
    load0 = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip() or "this tree"
    base_tree = _worktree(args.base) if args.base else None
    new: dict = {}
    old: dict = {}
    try:
        for what in MEASURES:
            if base_tree is not None:
                old[what] = _sub(what, args.seeds, base_tree)
            new[what] = _sub(what, args.seeds, None)
    finally:
        if base_tree is not None:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)],
                           timeout=120)
            shutil.rmtree(base_tree, ignore_errors=True)
    load1 = os.getloadavg()
    text = table(new, old, args, started, load0, load1, head)
    print(text)
    args.out.write_text(text)


def table(new: dict, old: dict, args, started: str, load0, load1, head: str) -> str:
    base = args.base if old else ""

    def pair(what: str, fmt, mode: str, times: bool = False, ratios: bool = True) -> str:
        a = fmt(new[what][mode])
        if not old:
            return a
        b = fmt(old[what][mode])
        ratio = ""
        x, y = _num(what, new[what][mode]), _num(what, old[what][mode])
        if ratios and x and y:
            ratio = f" ({x / y:.1f}x)" if not times else f" ({y / x:.1f}x faster)"
        return f"{a} / {b}{ratio}"

    cols = f"{head} / {base}" if base else head

    def fmt_pair(a: str, b: str | None) -> str:
        return a if b is None else f"{a} / {b}"

    def count(v) -> str:
        return f"{v:,.0f}"

    def rate(v) -> str:
        return f"{v[0]:,.0f}"

    def share(v) -> str:
        return f"{v[1]:.0%}"

    def per_run(v) -> str:
        return f"{v['harness'] * 1e3:.2f} ({v['bare'] * 1e3:.2f})"

    def extra(v) -> str:
        return f"{v['ratio'] - 1:+.0%}"

    def secs(v) -> str:
        return f"{v:.1f}"

    def trips(v) -> str:
        return f"{v['per_run']:.0f} x {v['free'] * 1e6:.0f} us ({v['pinned'] * 1e6:.0f} us pinned)"

    def caught(v) -> str:
        return f"{v['median_total']:.2f} (max {v['max_total']:.2f})"

    def examples(v) -> str:
        return f"{v['median_examples']:.0f}"

    def row(label: str, what: str, fmt, target: str = "", times: bool = False, ratios: bool = True) -> str:
        cells = [pair(what, fmt, mode, times, ratios) for mode in ("threads", "processes")]
        return f"| {label} | {cells[0]} | {cells[1]} | {target} |"

    lines = [
        "## Engine benchmark",
        "",
        f"`python benchmarks/bench_engine.py --seeds {args.seeds}" + (f" --base {base}" if base else "")
        + f"` on {machine()}, {started};",
        f"load average {load0[0]:.1f} at the start, {load1[0]:.1f} at the end."
        + (f" Each cell: this branch ({head}) / the base ({base}), measured alternately in one run."
           if base else ""),
        "",
        f"| what ({cols}) | threads | processes | target |",
        "| --- | --- | --- | --- |",
        row("scheduler points/s (median of 5)", "points", count),
        row("distinct interleavings/s on `json`, seeded 20 s search", "distinct", rate, ">= 3x the base"),
        row("... share of the examples that were distinct", "distinct", share, ratios=False),
        row("one run of a drawn program on `json`, median ms: harness (bare operations), 300 programs",
            "overhead", per_run),
        row("harness overhead per run over the bare operations", "overhead", extra, "<= +25 %"),
        row("... hand-overs a run makes (median) x a bare baton round trip (CPUs free; pinned to one CPU)",
            "handovers", trips),
        handover_row(new, old, fmt_pair),
        row("1000 examples on `json`, s", "thousand", secs, "<= 2 s threads, <= 3 s processes", True),
        floor_row(new, old, fmt_pair),
        row(f"catch `mutant:stale-overwrite`, median s incl. shrinking ({args.seeds} seeds)", "catch", caught,
            "<= 1 s threads, <= 5 s processes", True),
        row("... median examples to the first failure", "catch", examples, ratios=False),
        "",
        "Targets, this branch: " + "; ".join(verdicts(new, old)) + ".",
        "",
    ]
    return "\n".join(lines)


def handover_row(new: dict, old: dict, fmt_pair) -> str:
    """The hand-overs' own cost per run, as a share of the bare operations."""
    def cell(results: dict | None, mode: str) -> str | None:
        if not results or "handovers" not in results:
            return None
        h, bare = results["handovers"][mode], results["overhead"][mode]["bare"]
        return f"+{h['per_run'] * h['free'] / bare:.0%} (+{h['per_run'] * h['pinned'] / bare:.0%} pinned)"

    cells = [fmt_pair(cell(new, m) or "", cell(old, m)) for m in ("threads", "processes")]
    return f"| ... the hand-overs alone, over the bare operations | {cells[0]} | {cells[1]} | within +25 % |"


def floor_of(results: dict) -> tuple[float, float]:
    """(Hypothesis' generation of the 1000 programs alone, 1000 times a
    program's bare operations): the floor under "1000 examples"."""
    return results["generation"]["threads"], 1000 * results["overhead"]["threads"]["bare_mean"]


def floor_row(new: dict, old: dict, fmt_pair) -> str:
    def cell(results: dict | None) -> str | None:
        if not results or "generation" not in results:
            return None
        gen, bare = floor_of(results)
        return f"{gen + bare:.1f} ({gen:.1f} + {bare:.1f})"

    text = fmt_pair(cell(new) or "", cell(old))
    gen, bare = floor_of(new)
    reach = [f"{goal:g} s ({mode}) {'out of reach' if gen + bare > goal else 'within reach'}"
             for mode, goal in (("threads", 2.0), ("processes", 3.0))]
    verdict = "; ".join(reach)
    return (f"| ... its floor, s: Hypothesis' generation of the 1000 programs alone + their operations "
            f"called bare (1000 x the mean of 4) | {text} | (the same) | {verdict} |")


def _num(what: str, v) -> float:
    if what == "points":
        return v
    if what == "distinct":
        return v[0]
    if what == "thousand":
        return v
    if what == "catch":
        return v["median_total"]
    return 0.0  # overhead: a ratio of its own


def verdicts(new: dict, old: dict) -> list[str]:
    out = []
    for mode in ("threads", "processes"):
        r = new["overhead"][mode]["ratio"] - 1
        out.append(f"overhead {mode} {r:+.0%} ({'met' if r <= 0.25 else 'missed'}: <= +25 %)")
    gen, bare = floor_of(new)
    for mode, goal in (("threads", 2.0), ("processes", 3.0)):
        t = new["thousand"][mode]
        why = f"; its floor here is {gen + bare:.1f} s" if t > goal else ""
        out.append(f"1000 examples {mode} {t:.1f} s ({'met' if t <= goal else 'missed'}: <= {goal:g} s{why})")
    if old:
        for mode in ("threads", "processes"):
            x = new["distinct"][mode][0] / old["distinct"][mode][0]
            out.append(f"distinct interleavings/s {mode} {x:.1f}x the base ({'met' if x >= 3 else 'missed'}: >= 3x)")
    return out


if __name__ == "__main__":
    main()
