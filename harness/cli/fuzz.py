"""``sessioncheck fuzz``: long runs across all cores, deduplicated failures.

Runs ``--workers`` processes until ``--hours`` are up or Ctrl-C, saves each
distinct failure once under ``--out`` (default ``.sessioncheck/fuzz``), and
prints a summary table at the end, Ctrl-C included.  Exit 1 if any failure
was met in this run, 0 if none, 2 for a usage or configuration error (or
workers that all failed without finding anything).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from sessioncheck.campaigns.fuzz import FuzzConfig, FuzzResult, run_fuzz
from sessioncheck.verify import FAULTS, parse_faults
from sessioncheck.cli.common import add_model_options, model_from_args
from sessioncheck.cli.numbers import count, seconds, seed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True, metavar="SPEC",
                        help="built-in name (json, sqlite, mutant:<name>, an adapter) or package.module:factory")
    parser.add_argument("--hours", type=seconds(0.0, 10_000.0), required=True, metavar="H", help="how long to run (0.5 = 30 min)")
    parser.add_argument("--workers", type=count(1, 1024), default=os.cpu_count() or 1, metavar="N",
                        help="worker processes (default: one per core)")
    parser.add_argument("--actors", default="threads", choices=("threads", "processes", "mixed"),
                        help="what each actor is (default: threads)")
    parser.add_argument("--faults", default="", metavar="LIST",
                        help=f"comma-separated faults to inject: {', '.join(FAULTS)}")
    parser.add_argument("--seed", type=seed, default=None, help="base of the workers' seed streams (default: random)")
    parser.add_argument("--out", type=Path, default=Path(".sessioncheck") / "fuzz", metavar="DIR",
                        help="where distinct failures are saved (default: .sessioncheck/fuzz)")
    parser.add_argument("--round", type=seconds(), default=60.0, metavar="SECONDS",
                        help="search time of one round of one worker (default: 60)")
    parser.add_argument("--stats", action="store_true", help="also print what was explored")
    add_model_options(parser)


def main(args: argparse.Namespace) -> int:
    from rich.console import Console

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    config = FuzzConfig(store=args.store, hours=args.hours, workers=args.workers, mode=args.actors,
                        faults=parse_faults(args.faults), seed=args.seed, out_dir=args.out,
                        database=None if args.no_db else Path(".sessioncheck") / "examples",
                        round_seconds=args.round, cfg=model_from_args(args), watchdog=args.watchdog)
    config.validate()
    from sessioncheck.specs import resolve

    resolve(config.store)  # a bad spec: one line, before the banner
    err.print(f"fuzz: {config.store} ({config.mode}), {config.workers} workers, for {config.hours:g} h "
              f"({config.hours * 3600:.0f} s); Ctrl-C stops and prints the summary")
    shown: set[str] = set()

    def on_event(result: FuzzResult) -> None:
        for key, f in result.failures.items():
            if key not in shown and not f.known:
                shown.add(key)
                err.print(f"new failure {f.invariant} after {f.first_seconds:.0f} s ({f.worker}): {f.report}")

    result = run_fuzz(config, on_event)
    print_summary(result, args.stats)
    if result.worker_errors and not any(f.hits for f in result.failures.values()):
        return 2 if len(result.worker_errors) >= config.workers else 0
    return 1 if any(f.hits for f in result.failures.values()) else 0


def print_summary(result: FuzzResult, stats: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=False, width=max(120, Console().width))
    how = "interrupted (Ctrl-C)" if result.interrupted else "time is up"
    met = [f for f in result.failures.values() if f.hits]
    hits = sum(f.hits for f in met)
    table = Table(title=f"sessioncheck fuzz: {how}", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("invariant")
    table.add_column("first met")
    table.add_column("hits", justify="right")
    table.add_column("steps", justify="right")
    table.add_column("what broke", overflow="fold", max_width=60)
    table.add_column("report", overflow="fold")
    for n, f in enumerate(result.failures.values(), 1):
        first = "earlier run" if f.known else f"{f.first_seconds:.0f} s, {f.worker}"
        table.add_row(str(n), f.invariant, first, str(f.hits), str(f.steps), f.summary, str(f.report))
    if not result.failures:
        table.add_row("-", "-", "-", "0", "-", "no violation found", "-")
    console.print(table)
    x = result.coverage
    console.print(f"{result.workers} workers, {result.seconds:.1f} s, {result.rounds} rounds, "
                  f"{result.examples} examples, {len(x.interleavings)} distinct interleavings; "
                  f"{_n(len(met), 'distinct failure')} met ({_n(hits, 'hit')}), "
                  f"{_n(sum(1 for f in result.failures.values() if f.known and not f.hits), 'known failure')} "
                  "not met again")
    for e in result.worker_errors:
        console.print(f"worker error: {e}")
    if stats:
        for line in x.lines():
            console.print(line)


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")
