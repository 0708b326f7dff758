"""Benchmark of ``sessioncheck fuzz`` on a store with a bug it meets often:
what a campaign explores in its hours, and when it ends, against an older
revision in the same run.

    python benchmarks/bench_fuzz.py [--runs 3] [--hours 0.004] [--workers 2]
                                    [--store mutant:none-skipped] [--ref bd6d610]

Each run is one ``sessioncheck fuzz`` command in a fresh directory (no
earlier findings, its own example database), this tree and ``--ref``
alternating so that the load of the shared machine falls on both alike.
Read from the campaign's summary line: its wall time (from the start to
the cluster closed), rounds, examples and distinct interleavings; and
the hits of the one finding.  Medians over the runs, and the ratio.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_search import export
from hostinfo import describe

SUMMARY = re.compile(r"workers?, ([\d.]+) s, (\d+) rounds?, (\d+) examples?, (\d+) distinct interleavings?; "
                     r"(\d+) distinct failures? met \((\d+) hits?\)")


def one(site: Path | None, store: str, hours: float, workers: int) -> dict:
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    where = tempfile.mkdtemp(prefix="bench-fuzz-run-")
    try:
        p = subprocess.run([sys.executable, "-m", "sessioncheck", "fuzz", "--store", store, "--hours", str(hours),
                            "--workers", str(workers)], capture_output=True, text=True, cwd=where, env=env,
                           timeout=hours * 3600 + 120, start_new_session=True)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    m = SUMMARY.search(p.stdout)
    if not m:
        return {"error": (p.stderr.strip().splitlines() or ["no summary"])[-1][:200]}
    seconds, rounds, examples, distinct, failures, hits = m.groups()
    return {"seconds": float(seconds), "rounds": int(rounds), "examples": int(examples),
            "distinct": int(distinct), "failures": int(failures), "hits": int(hits)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--hours", type=float, default=0.004)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--store", default="mutant:none-skipped")
    ap.add_argument("--ref", default="bd6d610", help="the revision to compare with ('' for none)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-fuzz-"))
    try:
        sides: dict[str, Path | None] = {"this tree": None}
        if a.ref:
            sides[a.ref] = export(a.ref, tmp / "ref")
        start = describe()
        rows: dict[str, list[dict]] = {side: [] for side in sides}
        for n in range(a.runs):
            for side, site in sides.items():
                r = one(site, a.store, a.hours, a.workers)
                rows[side].append(r)
                print(f"{side:>10} run {n + 1}: {r}", flush=True)
        print(f"\n`{a.store}`, --hours {a.hours:g} ({a.hours * 3600:.1f} s), --workers {a.workers}, "
              f"{a.runs} runs each, medians\n")
        print(f"start: {start}; end: {describe()}\n")
        cols = ["seconds", "rounds", "examples", "distinct", "hits", "failures"]
        print("| measure | " + " | ".join(sides) + (" | ratio |" if a.ref else " |"))
        print("|---" * (len(sides) + 1 + bool(a.ref)) + "|")
        med = {side: {c: statistics.median([r[c] for r in rs if "error" not in r] or [float("nan")])
                      for c in cols} for side, rs in rows.items()}
        for side in sides:
            med[side]["distinct/s"] = med[side]["distinct"] / med[side]["seconds"]
        for c in ["seconds", "rounds", "examples", "distinct", "distinct/s", "hits", "failures"]:
            vals = [med[s][c] for s in sides]
            cells = [f"{v:.1f}" if c in ("seconds", "distinct/s") else f"{v:g}" for v in vals]
            ratio = f" | {vals[0] / vals[1]:.2f}x" if a.ref and vals[1] else (" | -" if a.ref else "")
            print(f"| {c} | " + " | ".join(cells) + ratio + " |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
