"""Numeric options as data: every number a verb takes is checked here
(finite, in its range) so that a bad value is a one-line usage error with
exit 2, never a traceback, an unbounded run or an overflow."""
from __future__ import annotations

import argparse
import math
from typing import Callable


def seconds(low: float = 0.0, high: float = 1e7, *, allow_low: bool = False) -> Callable[[str], float]:
    """A finite duration ``low < x <= high`` (``low <= x`` with ``allow_low``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not finite")
        if value < low or (value == low and not allow_low) or value > high:
            bound = "at least" if allow_low else "more than"
            raise argparse.ArgumentTypeError(f"{text} must be {bound} {low:g} and at most {high:g}")
        return value

    return parse


def count(low: int = 1, high: int = 10**9) -> Callable[[str], int]:
    """A whole number ``low <= n <= high``."""

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} must be between {low} and {high}")
        return value

    return parse


#: A seed: what Hypothesis and random.Random accept without surprise.
seed = count(0, 2**64 - 1)
