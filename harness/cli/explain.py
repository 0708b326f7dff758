"""``sessioncheck explain REPORT.json``: a saved report as its story."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sessioncheck.reporting import report as reports


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("report", type=Path, help="a report saved by sessioncheck run")


def main(args: argparse.Namespace) -> int:
    data = reports.load(args.report)
    sys.stdout.write(data["story"])
    return 0
