"""``sessioncheck scenarios --store SPEC``: every named regression, one table.

The table has one row per scenario: the mode it runs in, the outcome the
store must show, the outcome it showed, and ``ok`` or ``UNEXPECTED``
(``n/a`` when the scenario calls an operation the store does not
declare).  The story of every unexpected outcome follows the table.

Exit codes: 0 every outcome as expected, 1 at least one unexpected, 2 a
usage or configuration error.
"""
from __future__ import annotations

import argparse
import sys

from sessioncheck.scenario import all_scenarios, run
from sessioncheck.cli.common import add_store_option, add_watchdog_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_store_option(parser)
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    add_watchdog_option(parser)


def main(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    # Piped (CI logs) the table would be cut to 80 columns; give it room.
    console = Console() if sys.stdout.isatty() else Console(width=110)
    if args.list:
        for s in all_scenarios():
            console.print(f"[bold]{s.name}[/bold] ({s.mode}): {s.title}", highlight=False)
        return 0
    table = Table(title=f"scenarios on {args.store}", title_justify="left")
    # The name and the verdict never wrap: they are what a reader scans for.
    table.add_column("scenario", no_wrap=True)
    table.add_column("mode")
    table.add_column("expected")
    table.add_column("observed")
    table.add_column("verdict", no_wrap=True)
    unexpected = []
    for s in all_scenarios():
        r = run(s, args.store, watchdog=args.watchdog)
        style = "green" if r.ok and not r.skipped else ("dim" if r.skipped else "bold red")
        table.add_row(s.name, s.mode, r.expected.text(), r.observed, f"[{style}]{r.verdict}[/{style}]")
        if not r.ok:
            unexpected.append(r)
    console.print(table)
    for r in unexpected:
        sys.stdout.write("\n" + r.story)
    n = len(all_scenarios())
    print(f"{n - len(unexpected)} of {n} scenarios as expected" +
          (f"; UNEXPECTED: {', '.join(r.scenario.name for r in unexpected)}" if unexpected else ""))
    return 1 if unexpected else 0
