"""``sessioncheck scenario NAME --store SPEC``: one named regression.

Prints the story of the run (with ``--story`` also when it passes) and
whether the outcome is the one the scenario expects of that store.

Exit codes: 0 the outcome is the expected one (a pass where a pass is
expected, or the expected violation of a known-bad store; also a
scenario that does not apply to the store), 1 it is not, 2 a usage or
configuration error.  What a scenario *finds* is a deviation from its
expected outcome (see ``harness/scenario.py``).
"""
from __future__ import annotations

import argparse
import sys

from sessioncheck.scenario import all_scenarios, get, run
from sessioncheck.cli.common import add_store_option, add_watchdog_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = ", ".join(s.name for s in all_scenarios())
    parser.add_argument("name", metavar="NAME", help=f"the scenario: {names}")
    add_store_option(parser)
    parser.add_argument("--story", action="store_true", help="print the story of the run even when it passes")
    add_watchdog_option(parser)


def main(args: argparse.Namespace) -> int:
    scenario = get(args.name)
    result = run(scenario, args.store, watchdog=args.watchdog)
    verdict = "as expected" if result.ok else "UNEXPECTED"
    if result.skipped:
        print(f"scenario {scenario.name} on {args.store}: not applicable ({result.skipped}); {verdict}")
        return 0
    if result.observed != "pass" or args.story or not result.ok:
        sys.stdout.write(result.story)
    else:
        print(f"scenario {scenario.name} on {args.store}: passes; expected {result.expected.text()}: {verdict}")
        for w in result.outcome.warnings if result.outcome else []:
            print(f"warning: {w}", file=sys.stderr)
    if not result.ok:
        print(f"UNEXPECTED: {args.store} must show {result.expected.text()} in scenario {scenario.name}, "
              f"but showed {result.observed}")
    return 0 if result.ok else 1
