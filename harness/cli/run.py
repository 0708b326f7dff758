"""``sessioncheck run``: controlled interleavings against one store."""
from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Iterator
from pathlib import Path

from sessioncheck.verify import FAULTS, parse_faults, verify
from sessioncheck.cli.common import add_model_options, add_store_option, database_for, model_from_args, progress
from sessioncheck.cli.numbers import count, seconds, seed
from sessioncheck.words import plural


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_store_option(parser)
    parser.add_argument("--actors", default="threads", choices=("threads", "processes", "mixed", "tasks"),
                        help="what each actor is (default: threads)")
    parser.add_argument("--faults", default="", metavar="LIST",
                        help=f"comma-separated faults to inject: {', '.join(FAULTS)}")
    parser.add_argument("--budget", type=seconds(), default=60.0, metavar="SECONDS",
                        help="stop searching after this long (default: 60)")
    parser.add_argument("--examples", type=count(), default=None, metavar="N",
                        help="stop after N examples (default: only the time budget)")
    parser.add_argument("--seed", type=seed, default=None,
                        help="seed the search: the same seed explores the same schedules")
    parser.add_argument("--report", type=Path, default=None, metavar="PATH",
                        help="where to save the report of a violation (default: .sessioncheck/reports/)")
    parser.add_argument("--stats", action="store_true", help="print what was explored")
    parser.add_argument("--keep-going", action="store_true",
                        help="go on searching after a violation, within the same budget, and report every "
                             "distinct one (by invariant and operations), each shrunk, told and saved")
    add_health_option(parser)
    add_allow_errors_option(parser)
    add_model_options(parser)


def add_allow_errors_option(parser: argparse.ArgumentParser) -> None:
    """``--allow-errors PATTERN`` (repeatable), shared with ``stress``."""
    parser.add_argument("--allow-errors", action="append", default=[], metavar="PATTERN",
                        help="a regular expression: an exception whose 'Type: message' (or that of one "
                             "in its chain) it matches counts as 'not acknowledged', like a refusal "
                             "(repeatable)")


def add_health_option(parser: argparse.ArgumentParser) -> None:
    """``--suppress-health-check NAME`` (repeatable), shared with ``stress``."""
    from sessioncheck.health import ALL

    parser.add_argument("--suppress-health-check", action="append", default=[], metavar="NAME",
                        help=f"do not fail the run on this health check (repeatable): {', '.join(ALL)}, or all")


@contextlib.contextmanager
def private_scratch() -> Iterator[None]:
    """Every run location of this command in one folder of its own,
    removed at the end whatever happens, ``kill -9`` included
    (:func:`sessioncheck.scratch.private_folder`)."""
    from sessioncheck.scratch import private_folder

    with private_folder("sessioncheck-run-"):
        yield


class Explored:
    """What the search explored so far, for a summary when a signal cuts
    it short: ``on_example`` passes every example's statistics through."""

    def __init__(self, seed: int, tick) -> None:
        import time

        self.seed, self.tick, self.t0, self.stats = seed, tick, time.monotonic(), None

    def __call__(self, stats) -> None:
        self.stats = stats
        self.tick(stats)

    def summary(self, store: str, mode: str) -> str:
        import time

        x = self.stats
        examples = x.examples if x is not None else 0
        distinct = len(x.interleavings) if x is not None else 0
        share = f" ({distinct / examples:.0%})" if examples else ""
        what = (f"{plural(examples, 'example')}, {plural(distinct, 'distinct interleaving')}{share}, "
                f"{time.monotonic() - self.t0:.1f} s; seed {self.seed}")
        if x is not None and x.first_failure_example is not None:
            return (f"interrupted in {store} ({mode}) while shrinking a violation found after "
                    f"{plural(x.first_failure_example, 'example')} (no report saved): {what}")
        return f"interrupted in {store} ({mode}): no violation found so far in {what}"


def main(args: argparse.Namespace) -> int:
    from sessioncheck.controlled.exits import terminate_cleanly
    from sessioncheck.health import parse_suppressed

    import secrets

    faults = parse_faults(args.faults)
    suppressed = parse_suppressed(args.suppress_health_check)
    # A run without --seed draws one and says it, so that any run can be
    # searched again the same way (the example database still replays
    # earlier failures first: database_for looks at --seed as given).
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    explored = None
    try:
        with terminate_cleanly(), private_scratch(), progress(args.budget, args.examples) as tick:
            explored = Explored(seed, tick)
            result = verify(
                args.store, mode=args.actors, faults=faults, budget=args.budget, max_examples=args.examples,
                seed=seed, report_path=args.report, database=database_for(args),
                cfg=model_from_args(args), watchdog=args.watchdog, on_example=explored,
                suppress_health_check=suppressed, allow_errors=tuple(args.allow_errors),
                seed_chosen=args.seed is not None, keep_going=args.keep_going,
            )
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP (Terminated)
        return interrupted(exc, explored.summary(args.store, args.actors) if explored else None)
    print(result.summary())
    for text, example in result.exploration.warnings.values():
        print(f"warning (example {example}): {text}", file=sys.stderr)
    if args.stats and result.coverage is not None:
        print("\n".join(result.coverage.lines()) + f"\nseconds: {result.exploration.seconds:.2f}")
    if result.found:
        for story in [d.story for d in result.distinct] or [result.story]:
            sys.stdout.write("\n" + story)
        return 1
    return 0


def interrupted(exc: KeyboardInterrupt, summary: str | None) -> int:
    """What was explored on stdout, the signal on stderr; exit 128 + its
    number (130 for Ctrl-C)."""
    import signal

    signum = getattr(exc, "signum", signal.SIGINT)
    if summary:
        print(summary, flush=True)
    print(f"sessioncheck: interrupted by {signal.Signals(signum).name}", file=sys.stderr)
    return 128 + signum
