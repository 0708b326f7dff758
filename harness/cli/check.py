"""``sessioncheck check HISTORY.jsonl``: check a recorded history file.

The file is JSON lines, one event per line (the format is documented in
``harness/checking/history.py`` and the README), from ``sessioncheck stress
--history`` or from any other tool.  Prints the verdict and, for each
violation, the smallest set of operations that shows it.

Exit codes: 0 ok; 1 a violation, or ``unknown`` (the search ran out of
``--budget``; printed as UNKNOWN, never as a pass); 2 a file that cannot be
read or does not follow the format (one line saying where).
"""
from __future__ import annotations

import argparse
import math

from sessioncheck.checking.checker import check, explain
from sessioncheck.errors import ConfigError
from sessioncheck.checking.history import read_jsonl
from sessioncheck.cli.numbers import count, seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("history", metavar="HISTORY.jsonl", help="the history to check (JSON lines)")
    parser.add_argument("--budget", type=seconds(allow_low=True), default=300.0, metavar="SECONDS",
                        help="give up (verdict unknown, exit 1) after this long on metadata search "
                             "(default 300)")
    parser.add_argument("--max-states", type=count(), default=1_000_000, metavar="N",
                        help="give up when a field has more possible configurations at once (default 1000000)")


def main(args: argparse.Namespace) -> int:
    if not (args.budget >= 0 and math.isfinite(args.budget)):
        raise ConfigError("--budget must be a non-negative number of seconds")
    if args.max_states < 1:
        raise ConfigError("--max-states must be at least 1")
    events = read_jsonl(args.history)
    if not events:
        raise ConfigError(f"{args.history} holds no events; a history is one JSON event per line")
    result = check(events, budget=args.budget, max_states=args.max_states)
    t0 = events[0].time
    for finding in result.findings:
        print("\n".join(explain(finding, t0)))
    totals = result.stats.get("findings_total", {})
    if sum(totals.values()) > len(result.findings):
        print(f"({sum(totals.values())} violations in all: "
              + ", ".join(f"{k} {v}" for k, v in sorted(totals.items()))
              + f"; {len(result.findings)} shown)")
    s = result.stats
    scope = (f"{s['ops']} operations, {s['sessions']} sessions, {s['registers']} metadata fields, "
             f"{s['seconds']:.2f} s")
    if result.verdict == "ok":
        print(f"OK: {scope}")
        return 0
    if result.verdict == "violation":
        print(f"VIOLATION: {len(result.findings)} shown; {scope}")
        return 1
    print(f"UNKNOWN (not a pass): {result.reason}; {scope}")
    return 1
