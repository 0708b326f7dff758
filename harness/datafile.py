"""Files the harness reads are data: reports and histories are read here,
bounded in size and nesting, before anything parses them.

Nothing read through this module is ever evaluated, unpickled or
imported.  A file that is not a regular file (``/dev/zero``, a FIFO) is
refused before it is opened for reading, so a read cannot hang.
"""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

#: A report of the largest allowed program with a full trace stays far
#: below this; a history of a long stress run may not, hence its own bound.
MAX_REPORT_BYTES = 64 * 2**20
MAX_HISTORY_BYTES = 2 * 2**30
#: JSON nesting deeper than this is refused before ``json.loads`` sees it
#: (deep nesting is a RecursionError inside the parser, not a format).
MAX_DEPTH = 64


class DataError(ValueError):
    """The file is not readable as bounded data; the message says why."""


def check_regular(path: str | Path, limit: int) -> int:
    """The size of ``path`` if it is a regular file within ``limit``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{path} is not a regular file")
    if st.st_size > limit:
        raise DataError(f"{path} is {st.st_size} bytes; the limit is {limit}")
    return st.st_size


def read_text(path: str | Path, limit: int = MAX_REPORT_BYTES) -> str:
    """The text of a regular UTF-8 file of at most ``limit`` bytes."""
    check_regular(path, limit)
    with open(path, "rb") as fh:
        raw = fh.read(limit + 1)
    if len(raw) > limit:
        raise DataError(f"{path} grew past {limit} bytes while being read")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text") from None


def depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` outside JSON strings."""
    deepest = level = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            level += 1
            deepest = max(deepest, level)
        elif ch in "]}":
            level -= 1
    return deepest


def loads(text: str, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` of text nested at most ``max_depth`` deep.

    Raises :class:`DataError` for deeper text and ``json.JSONDecodeError``
    for text that is not JSON."""
    # counting is C-fast; the exact scan runs only when the count allows it
    if text.count("[") + text.count("{") > max_depth and depth(text) > max_depth:
        raise DataError(f"JSON nested deeper than {max_depth} levels")
    return json.loads(text)
