"""Benchmark of the search: how early it meets each bug, and how many
points a run spends, against an older revision in the same run.

    python benchmarks/bench_search.py [--seeds 5] [--budget 30] [--ref 5702996]
                                      [--targets gallery,adapters,servers] [--out FILE.json]

What it measures, for this tree and for ``--ref`` (a git revision of this
repository, exported to a temporary directory and imported from there),
seed by seed and target by target, interleaved so that the load of the
shared machine falls on both alike; every measurement is one child
process bounded by a timeout:

1. *Time to catch*: ``verify()`` as ``sessioncheck run`` calls it (thread
   actors, the default model, the seed given), examples and seconds from
   the start of the search to the first failing example (shrinking not
   included), and the systematic pattern that caught it
   (:attr:`sessioncheck.controlled.systematic.Plan.labels`, this tree only),
   or ``random`` when the random search did.  Medians over the seeds.
   ``--random-only`` skips the pass: the drawn programs alone (their
   lengths and advance counts, :func:`sessioncheck.controlled.program.programs`).
2. *Points per operation*: 60 programs drawn with seed 1 (no systematic
   pass) on the correct stores and the real adapters, preemption points
   and operations counted in each run's trace; and the points of the
   shrunk counterexample's story for each caught target.

Targets that need what the machine lacks (an adapter's package, a server)
are reported as skipped, not as misses.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: Bugs the random search and the pass must meet with thread actors, no faults.
GALLERY = ["mutant:stale-overwrite", "mutant:none-skipped", "mutant:unlocked-rmw", "mutant:lock-unlinked",
           "mutant:read-outside-lock", "mutant:clear-unlocked", "mutant:create-race", "mutant:stale-cache",
           "mutant:cached-read", "mutant:pop-races-append", "mutant:delete-unlocked", "mutant:compact-in-init",
           "mutant:one-file-all-sessions", "mutant:executor-rmw", "mutant:sqlite-rmw", "mutant:pread-rmw",
           "mutant:dir-fd-rmw", "mutant:stale-history-replace", "mutant:swallowed-timeout", "mutant:to-thread-rmw"]
#: Real third-party stores (the adapters extra) and the SQLAlchemy store's mutant.
ADAPTERS = ["praisonai", "praisonai-prefix", "langgraph-read-put", "mutant:sqlalchemy-rmw"]
#: Server-backed bugs (a private redis-server / PostgreSQL).
SERVERS = ["mutant:redis-get-set", "mutant:postgres-select-update", "langgraph-postgres-read-put"]
#: Correct stores whose points per operation are counted.
POINT_STORES = ["json", "sqlite", "sqlalchemy", "praisonai", "langgraph", "redis"]
CHILD_TIMEOUT = 240.0


# -- the child: one measurement, printed as one JSON line --------------------------
def child_catch(spec: str, seed: int, budget: float, random_only: bool = False) -> dict:
    from hypothesis import Phase

    from sessioncheck.controlled import systematic
    from sessioncheck.verify import verify

    labels: list = []
    plan_init = systematic.Plan.__init__

    def remember(self, *a, **k):  # the pass's plan, to read which pattern ran
        plan_init(self, *a, **k)
        labels.append(self)

    systematic.Plan.__init__ = remember
    t0 = time.monotonic()
    # without the explicit phase the search skips the systematic pass: the drawn programs alone
    phases = {"phases": [Phase.reuse, Phase.generate, Phase.shrink]} if random_only else None
    r = verify(spec, mode="threads", budget=budget, seed=seed, save_report=False, shrink_budget=2.0,
               settings_kwargs=phases)
    x = r.exploration
    out = dict(found=bool(r.found), examples=x.examples, first_example=x.first_failure_example,
               first_seconds=x.first_failure_seconds, systematic=x.systematic, wall=time.monotonic() - t0,
               distinct=x.distinct_share)
    if r.found:
        out["invariant"] = r.outcome.violations[0].invariant
        out["story_steps"] = len(r.outcome.program)
        out["story_points"] = sum(1 for e in r.outcome.trace if e["ev"] == "point")
        n = x.first_failure_example
        plan = labels[0] if labels else None
        names = getattr(plan, "labels", None)
        if n is not None and n <= x.systematic:
            out["pattern"] = names[n - 1] if names and n - 1 < len(names) else "pass"
        else:
            out["pattern"] = "random"
    return out


def child_points(spec: str, examples: int) -> dict:
    from sessioncheck.controlled.engine import Executor
    from sessioncheck.controlled.search import explore
    from sessioncheck.specs import resolve

    counts = {"points": 0, "ops": 0, "runs": 0}

    def seen(x) -> None:
        out = x.last
        counts["runs"] += 1
        counts["points"] += sum(1 for e in out.trace if e["ev"] == "point")
        counts["ops"] += sum(1 for e in out.trace if e["ev"] == "start" and e.get("call") not in ("open", "close"))

    with Executor(resolve(spec), "threads") as ex:
        t0 = time.monotonic()
        explore(ex, budget=120, max_examples=examples, seed=1, systematic=False, on_example=seen)
        counts["seconds"] = time.monotonic() - t0
    counts["points_per_op"] = counts["points"] / counts["ops"] if counts["ops"] else None
    return counts


def child_main(argv: list[str]) -> None:
    kind, spec, *rest = argv
    try:
        if kind == "catch":
            out = child_catch(spec, int(rest[0]), float(rest[1]), rest[2:] == ["random"])
        else:
            out = child_points(spec, int(rest[0]))
    except Exception as exc:  # noqa: BLE001 - reported as data
        out = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]}
    print("RESULT " + json.dumps(out, default=str), flush=True)


# -- the parent ------------------------------------------------------------------------
def export(ref: str, into: Path) -> Path:
    """``ref`` of this repository as an importable ``sessioncheck`` tree."""
    src = into / "src"
    src.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    pkg = into / "site" / "sessioncheck"
    shutil.copytree(src / "harness", pkg)
    shutil.copytree(src / "store_impl", pkg / "stores")
    shutil.copytree(src / "scenarios", pkg / "scenarios")
    return into / "site"


def run_child(site: Path | None, args: list[str], python: str) -> dict:
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    env.setdefault("PYTHONHASHSEED", "0")
    cmd = [python, str(Path(__file__).resolve()), "--child", *args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT, env=env,
                           cwd=tempfile.gettempdir(), start_new_session=True)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {CHILD_TIMEOUT:g} s"}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"error": (p.stderr.strip().splitlines() or ["no output"])[-1][:300]}


def median(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--budget", type=float, default=30.0)
    ap.add_argument("--ref", default="5702996", help="the revision to compare with ('' for none)")
    ap.add_argument("--targets", default="gallery,adapters,servers")
    ap.add_argument("--only", default="", help="comma-separated specs, instead of --targets")
    ap.add_argument("--points", type=int, default=60, help="programs per store for points per op (0: skip)")
    ap.add_argument("--python", default=sys.executable, help="the interpreter (the adapters' venv for adapters)")
    ap.add_argument("--random-only", action="store_true",
                    help="skip the systematic pass: how early the drawn programs alone meet each bug")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    groups = {"gallery": GALLERY, "adapters": ADAPTERS, "servers": SERVERS}
    targets = a.only.split(",") if a.only else [t for g in a.targets.split(",") for t in groups[g]]
    tmp = Path(tempfile.mkdtemp(prefix="bench-search-"))
    try:
        sides: dict[str, Path | None] = {"this": None}
        if a.ref:
            sides[a.ref] = export(a.ref, tmp / "ref")
        t0 = time.monotonic()
        load0 = os.getloadavg()
        rows: dict = {side: {t: [] for t in targets} for side in sides}
        for seed in range(1, a.seeds + 1):
            for t in targets:
                for side, site in sides.items():
                    r = run_child(site, ["catch", t, str(seed), str(a.budget)] + (["random"] if a.random_only else []),
                                  a.python)
                    rows[side][t].append(r)
                    print(f"{side:>8} {t:<34} seed {seed}: " + (r.get("error") or
                          f"{'found' if r['found'] else 'MISS '} ex {r['first_example']} "
                          f"{fmt(r['first_seconds'])} s {r.get('pattern', '')}"), flush=True)
        points: dict = {side: {} for side in sides}
        if a.points:
            for s in POINT_STORES:
                for side, site in sides.items():
                    points[side][s] = run_child(site, ["points", s, str(a.points)], a.python)
                    print(f"{side:>8} points {s}: {points[side][s]}", flush=True)
        report = dict(seeds=a.seeds, budget=a.budget, ref=a.ref, seconds=time.monotonic() - t0,
                      load_start=load0, load_end=os.getloadavg(), rows=rows, points=points)
        print()
        print(render(report, targets, list(sides)))
        if a.out:
            Path(a.out).write_text(json.dumps(report, indent=1, default=str))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def render(report: dict, targets: list[str], sides: list[str]) -> str:
    lines = [f"seeds 1..{report['seeds']}, budget {report['budget']:g} s, thread actors; "
             f"whole run {report['seconds']:.0f} s; load {report['load_start'][0]:.1f} -> {report['load_end'][0]:.1f}",
             "", "| target | " + " | ".join(f"{s}: found, median examples, median s" for s in sides)
             + " | patterns (this) |", "|---" * (len(sides) + 2) + "|"]
    for t in targets:
        cells = []
        for s in sides:
            rs = [r for r in report["rows"][s][t] if "error" not in r]
            if not rs:
                err = report["rows"][s][t][0].get("error", "") if report["rows"][s][t] else ""
                cells.append(f"skipped ({err[:60]})")
                continue
            found = [r for r in rs if r["found"]]
            cells.append(f"{len(found)}/{len(rs)}, {fmt(median([r['first_example'] for r in found]), '.0f')}, "
                         f"{fmt(median([r['first_seconds'] for r in found]))}")
        pats = sorted({str(r.get("pattern")) for r in report["rows"][sides[0]][t] if r.get("found")})
        lines.append(f"| {t} | " + " | ".join(cells) + f" | {', '.join(pats)} |")
    if any(report["points"].values()):
        lines += ["", "| store | " + " | ".join(f"{s}: points/op" for s in sides) + " |",
                  "|---" * (len(sides) + 1) + "|"]
        for st in report["points"][sides[0]]:
            cells = [fmt(report["points"][s].get(st, {}).get("points_per_op"), ".1f")
                     if "error" not in report["points"][s].get(st, {}) else "skipped" for s in sides]
            lines.append(f"| {st} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        main()
