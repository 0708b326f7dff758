"""Counts in words: ``plural(1, "example")`` is ``"1 example"``,
``plural(2, "example")`` is ``"2 examples"``."""
from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``count`` and ``noun``, in the plural (``many``, default ``noun`` +
    "s") unless ``count`` is exactly 1."""
    return f"{count} {noun if count == 1 else (many or noun + 's')}"
