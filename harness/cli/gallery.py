"""``sessioncheck gallery``: every mutant and correct store in every mode,
with N seeds each: the headline table.

Exit 0 when every mutant is caught in every seed of every mode where it
can show and no control (a correct store, or a mutant where its bug cannot
show) is ever flagged; exit 1 otherwise, including a row that could not
run at all.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from sessioncheck.errors import ConfigError
from sessioncheck.campaigns.gallery import Attempt, Case, Row, correct_stores, plan, run
from sessioncheck.cli.numbers import count, seconds
from sessioncheck.words import plural

DEFAULT_BUDGET = 30.0
DEFAULT_CONTROL_BUDGET = 2.0
DEFAULT_SHRINK_RUNS = 50


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--budget", type=seconds(), default=DEFAULT_BUDGET, metavar="SECONDS",
                        help=f"search budget per mutant and seed; a seed not caught by then is a miss "
                             f"(default: {DEFAULT_BUDGET:g})")
    parser.add_argument("--control-budget", type=seconds(), default=DEFAULT_CONTROL_BUDGET, metavar="SECONDS",
                        help=f"search budget per correct store (or control) and seed "
                             f"(default: {DEFAULT_CONTROL_BUDGET:g})")
    parser.add_argument("--shrink-runs", type=count(0, 10**6), default=DEFAULT_SHRINK_RUNS, metavar="N",
                        help=f"store runs spent shrinking each catch (default: {DEFAULT_SHRINK_RUNS})")
    parser.add_argument("--seeds", type=count(1, 10_000), default=3, metavar="N", help="seeds 0..N-1 per row (default: 3)")
    parser.add_argument("--jobs", type=count(1, 1024), default=1, metavar="N",
                        help="seeds run at once in worker processes (default: 1, so timings are not "
                             "shared with a sibling run)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH",
                        help="also write every row and seed as JSON to PATH")
    parser.add_argument("--only", nargs="+", default=[], metavar="NAME",
                        help="run only these stores (mutant names, json, sqlite)")
    parser.add_argument("--no-systematic", dest="systematic", action="store_false",
                        help="leave out the systematic pass that precedes the random search: measures "
                             "what the random search finds alone")
    parser.add_argument("--server-crash", action="store_true",
                        help="also run the reference redis and postgres stores under --faults server-crash "
                             "(threads and processes): controls left out by default, as a server restart per "
                             "crash makes them slow (raise --control-budget for a meaningful number of examples)")
    parser.add_argument("--modes", nargs="+", default=[], metavar="MODE",
                        help="run only these actor modes (threads, processes, mixed, tasks, tasks-2p: tasks in "
                             "two processes); faults ride along")


def main(args: argparse.Namespace) -> int:
    for name in ("budget", "control_budget"):
        if getattr(args, name) <= 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive number of seconds")
    if args.seeds < 1:
        raise ConfigError("--seeds must be at least 1")
    if args.shrink_runs < 0:
        raise ConfigError("--shrink-runs must be 0 or more")
    if args.jobs < 1:
        raise ConfigError("--jobs must be at least 1")
    cases = plan(args.only, args.modes, server_crash=args.server_crash)
    # A terminated gallery stops its workers too (they are reaped on the
    # way out of ``run``), as on Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    from sessioncheck.scratch import private_folder

    t0 = time.monotonic()
    # every run location of every worker in one folder, removed even when
    # the gallery is killed outright
    with private_folder("sessioncheck-gallery-run-"), _progress(len(cases) * args.seeds) as tick:
        rows = run(cases, seeds=args.seeds, budget=args.budget, control_budget=args.control_budget,
                   shrink_runs=args.shrink_runs, jobs=args.jobs, on_attempt=tick, systematic=args.systematic)
    seconds = time.monotonic() - t0
    print_tables(rows, args.seeds)
    ok = all(r.ok for r in rows)
    print(f"{'all targets met' if ok else 'TARGETS MISSED'}: {sum(r.ok for r in rows)}/{len(rows)} rows ok, "
          f"{seconds:.0f} s in all")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {"command": " ".join(["sessioncheck", *sys.argv[1:]]) if sys.argv else "sessioncheck gallery",
               "seeds": args.seeds, "budget": args.budget, "control_budget": args.control_budget,
               "shrink_runs": args.shrink_runs, "jobs": args.jobs, "systematic": args.systematic,
               "seconds": round(seconds, 1),
               "ok": ok, "rows": [r.to_json() for r in rows]}
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    return 0 if ok else 1


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


class _progress:
    """A rich progress bar on a terminal: one tick per seed finished."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.bar = None

    def __enter__(self):
        if not sys.stderr.isatty():
            return self._line
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("[bold]gallery"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("{task.description}"),
                            console=Console(stderr=True), transient=True)
        self.bar.__enter__()
        task = self.bar.add_task("", total=self.total)

        def tick(case: Case, attempt: Attempt) -> None:
            mark = "caught" if attempt.found else ("error" if attempt.error else "passed")
            self.bar.update(task, advance=1, description=f"{case.name} {case.label} seed {attempt.seed}: {mark}")

        return tick

    def _line(self, case: Case, attempt: Attempt) -> None:
        """Off a terminal (CI logs, files): one line per seed."""
        self.done += 1
        if attempt.error:
            what = attempt.error
        elif attempt.found:
            what = (f"{attempt.invariant} after {plural(attempt.first_failure_example or 0, 'example')} "
                    f"({attempt.first_failure_seconds:.2f} s)")
        else:
            what = f"nothing found in {plural(attempt.examples, 'example')}"
        print(f"[{self.done}/{self.total}] {case.name} {case.label} seed {attempt.seed}: {what}",
              file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


def _num(v: float | None, digits: int = 2) -> str:
    if v is None:
        return "-"
    return f"{v:.{digits}f}" if digits else f"{v:g}"


def mutant_cells(row: Row, seeds: int) -> list[str]:
    """One mutant row: mutant, mode, caught k/N, medians, invariants."""
    c = row.case
    if row.error:
        return [c.name, c.label, row.error, "", "", "", "", "", ""]
    invs = sorted({a.invariant for a in row.caught})
    caught = f"{len(row.caught)}/{len(row.attempts)}"
    if row.wrong:
        caught += f" ({len(row.wrong)} flagged {'/'.join(sorted({a.invariant for a in row.wrong}))})"
    return [c.name, c.label, caught,
            _num(row.median(lambda a: a.first_failure_example), 0),
            _num(row.median(lambda a: a.first_failure_seconds)),
            _num(row.median(lambda a: a.seconds)),
            _num(row.median(lambda a: a.steps), 0),
            ", ".join(invs), "/".join(sorted({a.by for a in row.caught if a.by}))]


MUTANT_HEADER = ["mutant", "mode", "caught", "examples", "s to 1st", "s total", "steps", "invariant", "by"]
MUTANT_CAPTION = ("caught: seeds whose first violation names an invariant the mutant breaks; medians over "
                  "caught seeds: examples and seconds to the first failure, seconds including shrinking, "
                  "lines in the story; by: the systematic pass or the random search")
CONTROL_HEADER = ["store", "mode", "seeds", "examples", "false alarms", "unknown"]
CONTROL_CAPTION = ("controls: correct stores, and mutants where their bug cannot show; examples run in all "
                   "seeds; unknown: examples the checker could not decide")


def control_cells(row: Row) -> list[str]:
    c = row.case
    name = c.name if c.store in correct_stores() else f"{c.name} (bug cannot show here)"
    if row.error:
        return [name, c.label, row.error, "", "", ""]
    return [name, c.label, str(len(row.attempts)), str(sum(a.examples for a in row.attempts)),
            str(len(row.wrong)), str(sum(a.unknown for a in row.attempts))]


def print_tables(rows: list[Row], seeds: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 110))
    mutants = Table(*MUTANT_HEADER, title="mutants", caption=MUTANT_CAPTION)
    for r in (r for r in rows if r.case.mutant):
        mutants.add_row(*mutant_cells(r, seeds), style=None if r.ok else "bold red")
    controls = Table(*CONTROL_HEADER, title="controls: never flagged", caption=CONTROL_CAPTION)
    for r in (r for r in rows if not r.case.mutant):
        controls.add_row(*control_cells(r), style=None if r.ok else "bold red")
    if mutants.row_count:
        console.print(mutants)
    if controls.row_count:
        console.print(controls)


def markdown(rows: list[Row], seeds: int) -> str:
    """The same two tables as Markdown (for the README and benchmarks)."""
    def table(header: list[str], body: list[list[str]]) -> str:
        lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        lines += ["| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |" for cells in body]
        return "\n".join(lines)

    out = []
    m = [mutant_cells(r, seeds) for r in rows if r.case.mutant]
    c = [control_cells(r) for r in rows if not r.case.mutant]
    if m:
        out.append(table(MUTANT_HEADER, m) + f"\n\n{MUTANT_CAPTION}.")
    if c:
        out.append(table(CONTROL_HEADER, c) + f"\n\n{CONTROL_CAPTION}.")
    return "\n\n".join(out) + "\n"


