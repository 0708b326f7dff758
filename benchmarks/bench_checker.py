"""Checker time and memory on synthetic, valid concurrent histories.

Usage::

    python benchmarks/bench_checker.py [--sizes 10000,100000,1000000] [--runs 3] [--seed 1]

Each history is produced by a simulation of the specification: every
operation gets an interval ``[start, end]`` and a linearization point inside
it; the state is computed in linearization order, so every history is valid
by construction (the checker must say ``ok``).  Several processes overlap
on a few sessions at a time; sessions are retired after about 60 appends so
reads stay realistic in length.  About 1 % of the operations end ``info``
(half of those took effect).  Writes and reads of metadata use a small key
set with unique values, ``None`` and ``''``.

For each size the script reports the median of ``--runs`` timings of
``check(events)`` (pairing included), the ratio to the previous size, and
memory in a fresh process: resident size with the history loaded, the
peak during ``check()`` (the kernel's peak mark is reset just before the
check; Python may reuse memory the builder freed, so the difference
understates), and the checker's own peak allocation measured by
``tracemalloc`` in a second, untimed call.
"""
from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sessioncheck.checking.checker import check  # noqa: E402
from sessioncheck.checking.history import Event  # noqa: E402

KEYS = ("model", "compute_instance_id", "tokens")


def synthetic(n_events: int, *, processes: int = 8, live_sessions: int = 4,
              per_session: int = 60, seed: int = 1) -> list[Event]:
    """A valid history of about ``n_events`` events."""
    rng = random.Random(seed)
    n_ops = n_events // 2
    # 1. Operations with intervals, per process, back to back with small gaps.
    clock = [rng.random() for _ in range(processes)]
    ops = []  # (start, lin, end, process, f, session, value, status)
    live = [f"s{i}" for i in range(live_sessions)]
    next_session = live_sessions
    adds_in = dict.fromkeys(live, 0)
    counter = 0
    for k in range(n_ops):
        p = k % processes
        start = clock[p] + rng.random() * 0.2
        end = start + 0.1 + rng.expovariate(1.0)
        clock[p] = end
        lin = start + (end - start) * rng.random()
        s = rng.choice(live)
        r = rng.random()
        status = "ok"
        if r < 0.45:
            counter += 1
            f, value = "add", f"p{p}-{counter}"
            adds_in[s] += 1
            if adds_in[s] >= per_session:
                live[live.index(s)] = f"s{next_session}"
                adds_in[f"s{next_session}"] = 0
                next_session += 1
        elif r < 0.65:
            f = "persist"
            value = {}
            for key in rng.sample(KEYS, rng.randint(1, 2)):
                x = rng.random()
                value[key] = None if x < 0.2 else "" if x < 0.3 else f"v{k}"
        else:
            f, value = "read", None
        if f != "read" and rng.random() < 0.01:
            status = "info"
            if rng.random() < 0.5:
                lin = None  # never took effect
        ops.append([start, lin, end, f"p{p}", f, s, value, status, None])
    # 2. Apply in linearization order to compute what reads return.
    state: dict[str, tuple[list, dict]] = {}
    for op in sorted((o for o in ops if o[1] is not None), key=lambda o: o[1]):
        msgs, meta = state.setdefault(op[5], ([], {}))
        if op[4] == "add":
            msgs.append(op[6])
        elif op[4] == "persist":
            for key, v in op[6].items():
                if v is None:
                    meta.pop(key, None)
                else:
                    meta[key] = v
        else:
            op[8] = {"messages": list(msgs), "metadata": dict(meta)}
    # 3. Events in time order.
    heap = []
    for i, (start, _, end, p, f, s, value, status, out) in enumerate(ops):
        heap.append((start, 0, i, Event(p, "invoke", f, s, value, start)))
        heap.append((end, 1, i, Event(p, status, f, s, out if status == "ok" else None, end,
                                      "timeout" if status == "info" else None)))
    heapq.heapify(heap)
    return [heapq.heappop(heap)[3] for _ in range(len(heap))]


def time_check(events: list[Event], runs: int) -> tuple[float, dict]:
    times = []
    result = None
    for _ in range(runs):
        t = time.perf_counter()
        result = check(events)
        times.append(time.perf_counter() - t)
        if result.verdict != "ok":
            raise SystemExit(f"synthetic history judged {result.verdict}: "
                             f"{[f.summary for f in result.findings][:3]} {result.reason}")
    return statistics.median(times), result.stats


def _memory_child(n: int, seed: int) -> None:
    """Peak resident memory of check() alone, in a fresh process: build the
    history, reset the kernel's peak-RSS mark (``/proc/self/clear_refs``),
    check, read the new peak (``VmHWM``)."""
    import ctypes
    import gc

    events = synthetic(n, seed=seed)
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # give the builder's freed memory back
    except OSError:
        pass
    resettable = True
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        resettable = False
    before = _status_kb("VmRSS")
    result = check(events)
    peak = _status_kb("VmHWM") if resettable else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Then the checker's own allocations, exactly (tracemalloc slows it down, so not timed).
    import tracemalloc

    tracemalloc.start()
    check(events)
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(json.dumps({"verdict": result.verdict, "history_kb": before, "peak_kb": peak,
                      "traced": traced, "resettable": resettable}))


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--file", action="store_true",
                    help="also time the file path: write_jsonl, then read_jsonl (what `sessioncheck check` adds)")
    ap.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        _memory_child(args.memory_child, args.seed)
        return
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} cores, {platform.platform()}")
    print(f"| events | ops | sessions | registers | check median of {args.runs} (s) | ratio to previous "
          "| RSS with the history loaded (MiB) | peak RSS during check (MiB) | check's own peak allocation (MiB, tracemalloc) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    prev = None
    file_rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        events = synthetic(n, seed=args.seed)
        med, stats = time_check(events, args.runs)
        if args.file:
            file_rows.append((n, _time_file(events)))
        del events
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(n), "--seed", str(args.seed)],
                             capture_output=True, text=True, check=True)
        mem = json.loads(out.stdout)
        ratio = f"{med / prev:.1f}" if prev else "-"
        print(f"| {n} | {stats['ops']} | {stats['sessions']} | {stats['registers']} | {med:.3f} | {ratio} "
              f"| {mem['history_kb'] / 1024:.0f} | {mem['peak_kb'] / 1024:.0f} "
              f"| {mem['traced'] / 2**20:.0f} |",
              flush=True)
        prev = med
    if file_rows:
        print()
        print("| events | read_jsonl of the file (s) | file size (MiB) |")
        print("| --- | --- | --- |")
        for n, (secs, size) in file_rows:
            print(f"| {n} | {secs:.2f} | {size / 2**20:.0f} |")


def _time_file(events: list[Event]) -> tuple[float, int]:
    import tempfile

    from sessioncheck.checking.history import read_jsonl, write_jsonl

    with tempfile.TemporaryDirectory(prefix="sessioncheck-bench-") as tmp:
        path = Path(tmp) / "h.jsonl"
        write_jsonl(events, path)
        t = time.perf_counter()
        back = read_jsonl(path)
        secs = time.perf_counter() - t
        assert len(back) == len(events)
        return secs, path.stat().st_size


if __name__ == "__main__":
    main()
