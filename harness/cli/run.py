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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_store_option(parser)
    parser.add_argument("--actors", default="threads", choices=("threads", "processes", "mixed"),
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
    """Every run location of this command in one directory of its own,
    removed at the end whatever happens: a signal that lands between a
    location's creation and its removal (Ctrl-C, SIGTERM, SIGHUP) leaves
    nothing behind.  The removal itself runs with those signals ignored."""
    import os
    import shutil
    import signal
    import tempfile

    from sessioncheck.scratch import scratch_dir

    old = os.environ.get("SESSIONCHECK_TMPDIR")
    mine = tempfile.mkdtemp(prefix="sessioncheck-run-", dir=scratch_dir())
    os.environ["SESSIONCHECK_TMPDIR"] = mine
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SESSIONCHECK_TMPDIR", None)
        else:
            os.environ["SESSIONCHECK_TMPDIR"] = old
        sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        try:
            saved = {s: signal.signal(s, signal.SIG_IGN) for s in sigs}
        except ValueError:  # not the main thread
            saved = {}
        try:
            shutil.rmtree(mine, ignore_errors=True)
        finally:
            for s, h in saved.items():
                signal.signal(s, h)


def main(args: argparse.Namespace) -> int:
    from sessioncheck.controlled.exits import Terminated, terminate_cleanly
    from sessioncheck.health import parse_suppressed

    import secrets

    faults = parse_faults(args.faults)
    suppressed = parse_suppressed(args.suppress_health_check)
    # A run without --seed draws one and says it, so that any run can be
    # searched again the same way (the example database still replays
    # earlier failures first: database_for looks at --seed as given).
    seed = args.seed if args.seed is not None else secrets.randbelow(2**32)
    try:
        with terminate_cleanly(), private_scratch(), progress(args.budget, args.examples) as tick:
            result = verify(
                args.store, mode=args.actors, faults=faults, budget=args.budget, max_examples=args.examples,
                seed=seed, report_path=args.report, database=database_for(args),
                cfg=model_from_args(args), watchdog=args.watchdog, on_example=tick,
                suppress_health_check=suppressed, allow_errors=tuple(args.allow_errors),
            )
    except Terminated as exc:
        import signal

        print(f"sessioncheck: terminated by {signal.Signals(exc.signum).name}", file=sys.stderr)
        return 128 + exc.signum
    if args.seed is None:
        # the seed was drawn, not asked for: a time-bounded search is what
        # the user wanted, and the reproducibility note is not theirs
        result.exploration.clock_cut = False
    print(result.summary(), file=sys.stderr)
    for text, example in result.exploration.warnings.values():
        print(f"warning (example {example}): {text}", file=sys.stderr)
    if args.stats and result.coverage is not None:
        print("\n".join(result.coverage.lines()) + f"\nseconds: {result.exploration.seconds:.2f}", file=sys.stderr)
    if result.found:
        sys.stdout.write("\n" + result.story)
        return 1
    return 0
