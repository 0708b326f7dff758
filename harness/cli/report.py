"""``sessioncheck report REPORT.json --html out.html``: a saved report as a
self-contained HTML timeline (see :mod:`sessioncheck.reporting.html`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from sessioncheck.reporting import report as reports
from sessioncheck.errors import ConfigError, ReportError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("report", type=Path, help="a report saved by sessioncheck run, fuzz or the pytest gate")
    parser.add_argument("--html", type=Path, required=True, metavar="OUT",
                        help="write the page here (one file: no network needed to open it)")


def main(args: argparse.Namespace) -> int:
    from sessioncheck.reporting.html import render_html

    data = reports.load(args.report)
    try:
        page = render_html(data)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        # load() checks the frame of a report; a value inside it of the
        # wrong shape shows up only when it is drawn
        raise ReportError(f"{args.report}: malformed report ({type(exc).__name__}: {exc})") from None
    try:
        if args.html.parent != Path(""):
            args.html.parent.mkdir(parents=True, exist_ok=True)
        args.html.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {args.html}: {exc.strerror or exc}") from None
    print(f"wrote {args.html}")
    return 0
