"""``sessioncheck stores``: what can be named with ``--store``.

One row per name: the built-in stores and mutants say what they are; an
adapter says whether the package it drives is installed, and if not the
extra that installs it (``pip install 'sessioncheck[EXTRA]'``, the same
words as the error a run without it gives)."""
from __future__ import annotations

import argparse
import sys

from sessioncheck.specs import BUILTIN, mutant_names, resolve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def adapter_text(extra: str, packages: str) -> str:
    from sessioncheck.stores.adapters import _installed

    if all(_installed(p) for p in packages.split()):
        return f"adapter (extra {extra}): installed"
    return f"adapter, not installed: pip install 'sessioncheck[{extra}]'"


def main(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from sessioncheck.stores import adapters

    table = Table("spec", "what it is")
    table.columns[0].no_wrap = True
    for name in [*BUILTIN, *(f"mutant:{m}" for m in mutant_names())]:
        table.add_row(name, Text(resolve(name).describe()))
    for name, (_, extra, packages) in adapters.ADAPTERS.items():
        # Text, not markup: "[openai-agents]" is not a style tag
        table.add_row(name, Text(adapter_text(extra, packages)))
    # piped, the table would be cut to 80 columns and a pip line split
    (Console() if sys.stdout.isatty() else Console(width=160)).print(table)
    return 0
