"""The metadata values a model writes, by *kind*: the program names a kind
(data, cheap to draw and shrink), the engine turns it into a value.

``PLAIN`` is the default, as cheap as ever: a fresh string, ``None``,
``''``.  ``RICH`` adds unicode, numbers, nested JSON and a 100 KB string.
Every kind but ``none`` and ``empty`` carries the write's counter ``n``, so
two writes never give equal values and the checker can tell which write a
read shows (values are compared as JSON data).
"""
from __future__ import annotations

from typing import Any

PLAIN = ("fresh", "none", "empty")  # shrinks toward a fresh value
RICH = PLAIN + ("unicode", "integer", "float", "nested", "large")
#: value sets by the name ``--values`` takes
SETS = {"plain": PLAIN, "rich": RICH}
LARGE_CHARS = 100_000


def numbered(kind: str) -> bool:
    """Does a value of ``kind`` use up a counter (a distinct value)?"""
    return kind not in ("none", "empty")


def value_of(kind: str, n: int) -> Any:
    """The value of ``kind`` for the ``n``-th numbered write."""
    if kind == "fresh":
        return f"v{n}"
    if kind == "none":
        return None
    if kind == "empty":
        return ""
    if kind == "unicode":
        return f"v{n} ünïcødé ✓ 😀 中文 \u202eǝ"
    if kind == "integer":
        return n
    if kind == "float":
        return n + 0.25
    if kind == "nested":
        return {"v": n, "list": [1, None, "", True, {"deep": [False, 2.5, "ü"]}], "empty": {}}
    if kind == "large":
        return f"v{n}:" + "x" * LARGE_CHARS
    raise ValueError(f"unknown value kind {kind!r}")
