"""The trace of a run cut into steps, the unit every report counts in.

A *step* is one actor beginning an operation, or one actor running through
consecutive points; a final read and a power loss always start a new step.
Operation times in the history become step numbers (:func:`renumber`), so a
sentence about a violation points at a line of the story that reporting
prints from the same cut.  Temporary files get stable names in order of
first appearance (:class:`Names`), so the same run is told the same way.
"""
from __future__ import annotations

from typing import Any

from sessioncheck.checking.history import Operation


class Names:
    """Stable names for temporary files: the sources of a replace or
    rename, and files created exclusively (``mkstemp``) that are not lock
    files, are called ``tmp1``, ``tmp2``, ... in order of first appearance."""

    def __init__(self, trace: list[dict]) -> None:
        temps: set[str] = set()
        excl: set[str] = set()
        locked: set[str] = set()
        for e in trace:
            if e.get("ev") != "point":
                continue
            if e["kind"] in ("replace", "rename") and e.get("detail"):
                temps.add(e["detail"])
            elif e["kind"] == "open" and "excl" in (e.get("detail") or ""):
                excl.add(e["path"])
            elif e["kind"] == "flock":
                locked.add(e["path"])
        # created exclusively (mkstemp) and never used as a lock file
        temps |= excl - locked
        self.map: dict[str, str] = {}
        for e in trace:
            for p in (e.get("path"), e.get("detail")):
                if p in temps and p not in self.map:
                    self.map[p] = f"tmp{len(self.map) + 1}"
        # longest first, so that a name that contains another is replaced whole
        self._order = sorted(self.map, key=len, reverse=True)

    def __call__(self, path: str) -> str:
        return self.map.get(path, path)

    def text(self, s: str) -> str:
        for p in self._order:
            s = s.replace(p, self.map[p])
        return s


def visible(trace: list[dict]) -> list[dict]:
    """The trace without housekeeping (opening a store instance explicitly,
    closing one that touched nothing shared), unless it failed.  A close
    that reached a point (it wrote a cache back, compacted, unlinked) is
    part of the story: it changes what the final read sees."""
    out = []
    current: dict[str, str] = {}
    touching: set[int] = set()  # trace times of close starts that reach a point
    closing: dict[str, int] = {}
    for e in trace:
        if e["ev"] == "start":
            closing.pop(e["actor"], None)
            if e.get("call") == "close":
                closing[e["actor"]] = e["t"]
        elif e["ev"] == "point" and e["actor"] in closing:
            touching.add(closing.pop(e["actor"]))
    shown: dict[str, bool] = {}
    for e in trace:
        if e["ev"] == "start":
            current[e["actor"]] = e.get("call") or ""
            shown[e["actor"]] = e["t"] in touching
        call = current.get(e["actor"])
        hidden = (call == "open" or (call == "close" and not shown.get(e["actor"]))) \
            and e["ev"] in ("start", "point", "done")
        if hidden and e["ev"] == "done" and e.get("status") != "ok":
            hidden = False
        if not hidden:
            out.append(e)
    return out


def segments(trace: list[dict]) -> list[list[dict]]:
    """The visible trace cut into story lines: a line is one actor's run of
    consecutive entries; beginning an operation, a final read and a power
    loss always start a new line."""
    out: list[list[dict]] = []
    actor = None
    for e in visible(trace):
        if e["ev"] in ("start", "power-loss", "restart") or e["actor"] != actor or actor == "final":
            out.append([])
            actor = e["actor"]
        out[-1].append(e)
    return out


def line_of(lines: list[Any]) -> dict[int, int]:
    """Map every trace time inside a story line to the line's number."""
    out: dict[int, int] = {}
    for n, ln in enumerate(lines, 1):
        # a story line (reporting) or a raw segment of trace entries
        first, last = (ln.first_t, ln.last_t) if hasattr(ln, "first_t") else (ln[0]["t"], ln[-1]["t"])
        for t in range(first, last + 1):
            out[t] = n
    return out


def renumber(ops: list[Operation], trace: list[dict]) -> list[Operation]:
    """Copies of ``ops`` whose start and end are story step numbers."""
    where = line_of(segments(trace))
    out = []
    for op in ops:
        c = Operation(op.process, op.f, op.session, op.value, where.get(int(op.start), 0), op.end,
                      op.status, op.output, op.error, op.index, dict(op.meta))
        if op.end != float("inf"):
            c.end = where.get(int(op.end), 0)
        out.append(c)
    return out
