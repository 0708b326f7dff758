"""Cost of the default model per example: this tree against the tree before
operations became plug-ins, in one run.

    python benchmarks/bench_model.py [--rounds 5] [--examples 1000] [--base 9fac1ef]

The model work (user operations, value and message strategies, the
checker deciding by effect) must not make the default model dearer.  Each
round runs, in a subprocess of its own and alternating base / this tree so
both see the same machine state:

- ``draw``: Hypothesis drawing ``--examples`` programs of the default
  model for ``json`` (the generation side of the model), seeded;
- ``run``: ``--examples`` examples of ``sessioncheck run --store json``
  with thread actors, seeded (drawing, running, checking: everything an
  example costs).

It reports the median over the rounds of milliseconds per example, and the
ratio this tree / base (target: <= 1.10).  The base's code is checked out
in a temporary ``git worktree``, removed afterwards.

The base predates some engine speed-ups too, which could hide a dearer
model in the ratio; so the last row is a profile of this tree alone
(yappi, every thread, wall clock; ``pip install yappi``, skipped without
it): the share of the profiled time spent in the model's own code (the
operations, value and message kinds, the checker).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

if __name__ == "__main__" and "--code" in sys.argv:
    from benchmarks.bench_engine import _use_code

    _use_code(Path(sys.argv[sys.argv.index("--code") + 1]))

MEASURES = ("draw", "run")
MODEL_CODE = ("harness/operations/", "controlled/messages.py", "controlled/values.py", "checking/")


def measure(what: str, examples: int) -> float:
    """Milliseconds per example of ``what`` on the code imported."""
    from sessioncheck.specs import resolve
    from sessioncheck.verify import model_config, verify

    if what == "draw":
        from benchmarks.bench_engine import _draw
        from sessioncheck.controlled.program import programs

        cfg = model_config(resolve("json"), "threads", ())
        t = time.perf_counter()
        drawn = _draw(programs(cfg), examples)
        assert len(drawn) == examples, len(drawn)
    else:
        t = time.perf_counter()
        r = verify("json", mode="threads", budget=3600, max_examples=examples, seed=0, save_report=False)
        assert not r.found and r.exploration.examples == examples
    return (time.perf_counter() - t) * 1000 / examples


def model_share(examples: int) -> float | None:
    """Percent of the profiled time of ``examples`` json examples spent in
    the model's own code, or ``None`` without yappi."""
    try:
        import yappi
    except ImportError:
        return None
    from sessioncheck.verify import verify

    verify("json", mode="threads", budget=3600, max_examples=50, seed=0, save_report=False)  # imports
    yappi.set_clock_type("wall")
    yappi.start(builtins=False)
    verify("json", mode="threads", budget=3600, max_examples=examples, seed=0, save_report=False)
    yappi.stop()
    own = [(s.module, s.tsub) for s in yappi.get_func_stats()]
    total = sum(t for _, t in own)
    mine = sum(t for m, t in own if any(p in m.replace("\\", "/") for p in MODEL_CODE))
    return 100 * mine / total if total else None


def _sub(what: str, examples: int, code: Path | None) -> float:
    from benchmarks.bench_engine import child

    return child(__file__, ["--measure", what, "--examples", str(examples)], code, timeout=900)


def main() -> None:
    from benchmarks.bench_engine import _worktree
    from benchmarks.hostinfo import describe

    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--examples", type=int, default=1000)
    ap.add_argument("--base", default="9fac1ef", help="the commit before the model work")
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS-model.md")
    ap.add_argument("--measure", choices=MEASURES, help=argparse.SUPPRESS)
    ap.add_argument("--code", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.examples)))
        return
    before = describe()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    base_tree = _worktree(args.base)
    got: dict = {(w, t): [] for w in MEASURES for t in ("base", "head")}
    try:
        for _ in range(args.rounds):
            for what in MEASURES:
                got[what, "base"].append(_sub(what, args.examples, base_tree))
                got[what, "head"].append(_sub(what, args.examples, None))
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)], timeout=120)
        shutil.rmtree(base_tree, ignore_errors=True)
    lines = [
        "## Cost of the default model per example",
        "",
        f"`python benchmarks/bench_model.py --rounds {args.rounds} --examples {args.examples} --base {args.base}`,"
        f" {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        f"Before: {before}. After: {describe()}.",
        f"This tree ({head}) against {args.base}, alternating, each cell the median of {args.rounds}"
        " subprocesses (every value in brackets).",
        "",
        f"| ms per example | {args.base} | {head} | ratio (target <= 1.10) |",
        "| --- | --- | --- | --- |",
    ]
    names = {"draw": "drawing a default-model program (Hypothesis)",
             "run": "one example of `sessioncheck run --store json`, threads"}
    for what in MEASURES:
        b, h = statistics.median(got[what, "base"]), statistics.median(got[what, "head"])
        fmt = lambda xs: ", ".join(f"{x:.3f}" for x in xs)  # noqa: E731
        lines.append(f"| {names[what]} | {b:.3f} ({fmt(got[what, 'base'])}) | {h:.3f} ({fmt(got[what, 'head'])})"
                     f" | {h / b:.2f} ({'met' if h / b <= 1.10 else 'missed'}) |")
    share = model_share(args.examples)
    if share is not None:
        lines.append(f"| share of the profiled time in the model's own code ({head}, yappi) | | {share:.1f} % | |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
