"""``sessioncheck explain REPORT.json``: a saved report as its story.

The story is data from a file: it is printed with every control character
but newline and tab taken out, so a tampered report cannot drive the
terminal (colours, cursor moves, a cleared screen)."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from sessioncheck.reporting import report as reports

#: C0 controls but tab and newline, DEL, and the C1 controls (CSI is 0x9b)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` without terminal control characters."""
    return _CONTROL.sub("", text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("report", type=Path, help="a report saved by sessioncheck run")


def main(args: argparse.Namespace) -> int:
    data = reports.load(args.report)
    sys.stdout.write(printable(data["story"]))
    return 0
