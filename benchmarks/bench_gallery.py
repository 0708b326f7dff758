"""The headline table: every mutant in every mode, N seeds, and the controls.

Usage::

    python benchmarks/bench_gallery.py [--seeds 10] [--jobs 1] [--out benchmarks/RESULTS-gallery.md]
                                       [gallery options: --budget, --control-budget, --shrink-runs,
                                        --only, --modes]

Runs exactly what ``sessioncheck gallery --seeds N --json PATH`` runs (the
same verb, in this process), then writes the two tables to a Markdown file
with the command, the machine (cores, CPU model, Python), the load average
before and after, the date and the wall-clock time of the whole run.  The
full JSON (every seed of every row) is written next to it.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sessioncheck.cli.main import main as cli  # noqa: E402
from sessioncheck.cli.gallery import markdown  # noqa: E402
from sessioncheck.campaigns.gallery import Attempt, Case, Row  # noqa: E402

HERE = Path(__file__).resolve().parent


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def rows_from_json(doc: dict) -> list[Row]:
    rows = []
    for r in doc["rows"]:
        case = Case(r["store"], r["mode"], tuple(r["faults"]), tuple(r["expect"]))
        rows.append(Row(case, [Attempt(**a) for a in r["attempts"]]))
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--out", type=Path, default=HERE / "RESULTS-gallery.md")
    args, rest = p.parse_known_args()
    json_path = args.out.with_suffix(".json")
    # the run writes beside the committed results, which it replaces only
    # once it has finished: an interrupted run leaves them as they were
    fresh = json_path.with_name(f".{json_path.name}.running")
    argv = ["gallery", "--seeds", str(args.seeds), *rest, "--json", str(fresh)]
    command = "sessioncheck " + " ".join(shlex.quote(a) for a in argv[:-2])
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = load()
    fresh.unlink(missing_ok=True)  # never re-render an older run's JSON
    t0 = time.monotonic()
    try:
        code = cli(argv)
    except BaseException:
        fresh.unlink(missing_ok=True)
        raise
    seconds = time.monotonic() - t0
    if code not in (0, 1) or not fresh.exists():
        fresh.unlink(missing_ok=True)
        return code  # interrupted or refused: nothing measured to write
    fresh.replace(json_path)
    doc = json.loads(json_path.read_text())
    rows = rows_from_json(doc)
    mutants = [r for r in rows if r.case.mutant]
    controls = [r for r in rows if not r.case.mutant]
    missed = [r for r in mutants if not r.ok]
    alarms = sum(len(r.wrong) for r in controls)
    text = f"""## The gallery: every mutant, every mode, {args.seeds} seeds

Command (the same as `python benchmarks/bench_gallery.py --seeds {args.seeds} {' '.join(rest)}`):

```
{command}
```

- Date: {started:%Y-%m-%d %H:%M} UTC; wall-clock time of the whole run: {seconds / 60:.1f} min
  ({seconds:.0f} s), exit code {code}.
- Machine: {os.cpu_count()} cores, {cpu_model()}, {platform.system()} {platform.release()},
  Python {platform.python_version()}; load average (1, 5, 15 min) {load_before} before, {load()} after.
  The machine is shared: other work ran at the same time, so seconds are noisy; example counts are not
  (a seeded search draws the same programs whatever the load).
- Budgets: {doc['budget']:g} s search per mutant and seed, {doc['control_budget']:g} s per control and seed,
  at most {doc['shrink_runs']} store runs of shrinking after a catch; {doc['jobs']} seed(s) at a time;
  {"the systematic pass, then the random search" if doc.get("systematic", True) else
   "the random search alone (--no-systematic)"}.
- Result: {len(mutants) - len(missed)}/{len(mutants)} mutant rows caught in every seed;
  {alarms} false alarm(s) in {sum(a.examples for r in controls for a in r.attempts)} control examples.

{markdown(rows, args.seeds)}"""
    if missed:
        text += "\nRows not caught in every seed: " + ", ".join(
            f"`{r.case.name}` {r.case.label} ({len(r.caught)}/{len(r.attempts)})" for r in missed) + ".\n"
    args.out.write_text(text)
    print(f"wrote {args.out} and {json_path}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
