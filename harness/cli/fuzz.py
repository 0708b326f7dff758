"""``sessioncheck fuzz``: long runs on a Dask cluster, one finding per bug.

Runs rounds on ``--cluster ADDRESS`` (a Dask scheduler) or on a local
cluster of ``--workers`` processes until ``--hours`` are up or Ctrl-C,
saves each distinct failure once under ``--out`` (default
``.sessioncheck/fuzz``), shows live progress on a terminal (stderr), and
prints a summary on stdout at the end, Ctrl-C included.  Exit 1 if any
failure was met in this run, 0 if none, 130 when Ctrl-C stopped it (after
the summary), 2 for a usage or configuration error (or rounds that all
failed without finding anything).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from sessioncheck.campaigns.fuzz import Failure, FuzzConfig, FuzzResult, run_fuzz
from sessioncheck.verify import FAULTS, parse_faults
from sessioncheck.cli.common import add_model_options, model_from_args
from sessioncheck.cli.numbers import count, seconds, seed
from sessioncheck.words import plural as _n

REFRESH = 4  # live display refreshes per second
PLAIN_EVERY = 10.0  # seconds between two progress lines when stderr is not a terminal


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True, metavar="SPEC",
                        help="built-in name (json, sqlite, mutant:<name>, an adapter) or package.module:factory")
    parser.add_argument("--hours", type=seconds(0.0, 10_000.0), required=True, metavar="H", help="how long to run (0.5 = 30 min)")
    parser.add_argument("--workers", type=count(1, 1024), default=os.cpu_count() or 1, metavar="N",
                        help="worker processes of the local cluster (default: one per core); "
                             "with --cluster, the cluster's workers are used")
    parser.add_argument("--cluster", default=None, metavar="ADDRESS",
                        help="a Dask scheduler (tcp://host:8786) to run the rounds on")
    parser.add_argument("--database", default=str(Path(".sessioncheck") / "examples"), metavar="DIR|URL",
                        help="Hypothesis example database the workers share: a directory on shared storage "
                             "(default: .sessioncheck/examples) or redis://host:port/db, redis+unix:///path/to/socket")
    parser.add_argument("--actors", default="threads", choices=("threads", "processes", "mixed", "tasks"),
                        help="what each actor is (default: threads)")
    parser.add_argument("--faults", default="", metavar="LIST",
                        help=f"comma-separated faults to inject: {', '.join(FAULTS)}")
    parser.add_argument("--seed", type=seed, default=None, help="base of the rounds' seed stream (default: random)")
    parser.add_argument("--out", type=Path, default=Path(".sessioncheck") / "fuzz", metavar="DIR",
                        help="where distinct failures are saved (default: .sessioncheck/fuzz)")
    parser.add_argument("--round", type=seconds(), default=60.0, metavar="SECONDS",
                        help="search time of one round (default: 60)")
    parser.add_argument("--stats", action="store_true", help="also print what was explored")
    add_model_options(parser)


def main(args: argparse.Namespace) -> int:
    import secrets

    from rich.console import Console

    from sessioncheck.scratch import private_folder, tempfiles_in

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    # drawn here when not given, so that the summary can say it
    base_seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    config = FuzzConfig(store=args.store, hours=args.hours, workers=args.workers, mode=args.actors,
                        faults=parse_faults(args.faults), seed=base_seed, out_dir=args.out,
                        database=None if args.no_db else args.database, round_seconds=args.round,
                        cfg=model_from_args(args), watchdog=args.watchdog, cluster=args.cluster)
    config.validate()
    from sessioncheck.specs import resolve

    resolve(config.store)  # a bad spec: one line, before the banner
    where = f"on {config.cluster}" if config.cluster else _n(config.workers, "local worker")
    err.print(f"fuzz: {config.store} ({config.mode}), {where}, for {config.hours:g} h "
              f"({config.hours * 3600:.0f} s); Ctrl-C stops and prints the summary")
    display = Display(err, config)
    try:
        # every location of the local cluster's workers, and the
        # cluster's own directory, in one folder, removed even when the
        # harness is killed outright
        with private_folder("sessioncheck-fuzz-run-") as mine, tempfiles_in(mine):
            result = run_fuzz(config, display.update)
    finally:
        display.close()
    print_summary(result, args.stats, seed=base_seed)
    met = result.current
    if result.interrupted:
        print("sessioncheck: interrupted by SIGINT", file=sys.stderr)
        return 130
    if result.worker_errors and not met:
        return 2 if result.rounds == 0 or len(result.worker_errors) >= result.rounds else 0
    return 1 if met else 0


class Display:
    """Live progress on a terminal (rich Live on stderr, refreshed
    ``REFRESH`` times a second); elsewhere one line per new failure."""

    def __init__(self, console, config: FuzzConfig) -> None:
        self.console = console
        self.config = config
        self.live = None
        self.up = False
        self.last_line = time.monotonic()
        self.t0 = time.monotonic()
        if console.is_terminal:
            from rich.live import Live

            self.live = Live(console=console, refresh_per_second=REFRESH, transient=True)
            self.live.start()

    def update(self, result: FuzzResult, fresh: list[Failure]) -> None:
        if result.startup_seconds is not None and not self.up:
            self.up = True
            (self.live.console if self.live else self.console).print(
                f"{result.where}: up in {result.startup_seconds:.1f} s, {_n(result.workers, 'worker')}")
        for f in fresh:
            line = f"new failure {f.invariant} after {f.first_seconds:.0f} s ({f.worker}): {f.key}"
            (self.live.console if self.live else self.console).print(line)
            (self.live.console if self.live else self.console).print(f"  {f.report}", soft_wrap=True)
        if self.live is not None:
            self.live.update(self.render(result))
        elif result.startup_seconds is not None and time.monotonic() - self.last_line >= PLAIN_EVERY:
            # not a terminal (CI, a pipe): a plain line now and then
            self.last_line = time.monotonic()
            self.console.print(f"progress: {self.head(result)}")

    def head(self, result: FuzzResult) -> str:
        elapsed = time.monotonic() - self.t0
        total = self.config.hours * 3600
        examples = result.live_examples()
        return (f"{result.where or 'starting'}: {min(elapsed, total):.0f} / {total:.0f} s, "
                f"{_n(examples, 'example')} ({examples / max(elapsed, 1e-9):.0f}/s), "
                f"{_n(result.live_interleavings(), 'distinct interleaving')}, "
                f"{_n(len(result.current), 'finding')}, {_n(result.rounds, 'round')} done")

    def render(self, result: FuzzResult):
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        head = Text(self.head(result))
        table = Table(box=None, pad_edge=False)
        for col in ("worker", "rounds", "examples", "interleavings", "findings"):
            table.add_column(col, justify="left" if col == "worker" else "right")
        rows: dict[str, list] = {}
        for name, w in result.per_worker.items():
            rows[name] = [w.rounds, w.examples, set(w.interleavings), w.findings]
        for name, n, hashes in result.live.values():
            row = rows.setdefault(name, [0, 0, set(), 0])
            row[1] += n
            row[2] = row[2] | hashes
        for name in sorted(rows):
            r = rows[name]
            table.add_row(name, str(r[0]), str(r[1]), str(len(r[2])), str(r[3]))
        return Group(head, table)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None


def print_summary(result: FuzzResult, stats: bool = False, seed: int | None = None) -> None:
    """The table of findings, then each report's path on a line of its
    own (never wrapped, so it can be copied), then the totals (with the
    base ``seed``), on stdout; worker errors on stderr."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=True, width=max(120, Console().width))
    how = "interrupted (Ctrl-C)" if result.interrupted else "time is up"
    met = result.current
    hits = sum(f.hits for f in met)
    table = Table(title=f"sessioncheck fuzz: {how}", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("invariant")
    table.add_column("first met")
    table.add_column("hits", justify="right")
    table.add_column("status")
    table.add_column("steps", justify="right")
    table.add_column("what broke", overflow="fold", max_width=60)
    order = sorted(result.failures.values(), key=lambda f: (not f.hits, f.fixed))
    for n, f in enumerate(order, 1):
        first = "earlier run" if f.known else f"{f.first_seconds:.0f} s, {f.worker}"
        table.add_row(str(n), f.invariant, first, str(f.hits), f.status, str(f.steps), f.summary)
    if not result.failures:
        table.add_row("-", "-", "-", "0", "-", "-", "no violation found")
    console.print(table, soft_wrap=False)
    for n, f in enumerate(order, 1):
        console.print(f"{n}. {f.key} ({f.status}), report:")
        console.print(str(f.report))  # alone on its line, never wrapped by us: it can be copied whole
    x = result.coverage
    fixed = sum(1 for f in result.failures.values() if f.fixed and not f.hits)
    console.print(f"{result.where or 'no cluster'}: {_n(result.workers, 'worker')}, {result.seconds:.1f} s, "
                  f"{_n(result.rounds, 'round')}, {_n(result.examples, 'example')}, "
                  f"{_n(len(x.interleavings), 'distinct interleaving')}; "
                  f"{_n(len(met), 'distinct failure')} met ({_n(hits, 'hit')}), "
                  f"{fixed} fixed (passes now)" + (f"; seed {seed}" if seed is not None else ""))
    for name in sorted(result.per_worker):
        w = result.per_worker[name]
        console.print(f"  worker {name}: {_n(w.rounds, 'round')}, {_n(w.examples, 'example')}, "
                      f"{_n(len(w.interleavings), 'distinct interleaving')}, {_n(w.findings, 'failure')} met")
    for e in result.worker_errors:
        print(f"worker error: {e}", file=sys.stderr)
    if stats:
        for line in x.lines():
            console.print(line)

