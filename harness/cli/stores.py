"""``sessioncheck stores``: what can be named with ``--store``."""
from __future__ import annotations

import argparse

from sessioncheck.specs import BUILTIN, mutant_names, resolve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def main(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from sessioncheck.stores import adapters

    table = Table("spec", "what it is")
    for name in [*BUILTIN, *(f"mutant:{m}" for m in mutant_names())]:
        table.add_row(name, resolve(name).describe())
    for name, (_, extra, package) in adapters.ADAPTERS.items():
        table.add_row(name, f"adapter; needs the extra {extra!r}: pip install 'sessioncheck[{extra}]'")
    Console().print(table)
    return 0
