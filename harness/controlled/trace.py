"""The trace of a run cut into steps, the unit every report counts in.

A *step* is one actor beginning an operation, or one actor running through
consecutive points; a final read and a power loss always start a new step.
Operation times in the history become step numbers (:func:`renumber`), so a
sentence about a violation points at a line of the story that reporting
prints from the same cut.  Scratch files get stable names in order of
first appearance, lock files keep theirs (:class:`Names`), so the same
run is told the same way.
"""
from __future__ import annotations

from typing import Any

from sessioncheck.checking.history import Operation


def _creates(detail: str) -> bool:
    """Whether an ``open`` point with this detail may create its file
    (``os.open`` flags text, or a ``builtins.open`` mode)."""
    return "create" in detail or "excl" in detail or detail[:1] in ("w", "x", "a")


class Names:
    """Stable names for scratch files, so the same run is told the same
    way whatever pid, object id or random suffix a name carried.

    A file is *scratch* (``tmp1``, ``tmp2``, ... in order of first
    appearance) when it is the source of a replace or rename (performed
    or failed) and was made before anything looked for it (nobody opens
    a random name before it exists: a file opened first and renamed
    later, as ``dbm.dumb`` renames its index to a backup, is data and
    keeps its name), or when an operation created it and either created it
    exclusively (``mkstemp``) or unlinked it again itself, *and* it was
    not a lock: a file the operation locks with ``flock``, or one it
    holds while it works on other files without reading it back (an
    ``O_EXCL`` lock file, released by unlinking it), keeps its own name
    (``s0.json.lock``), which every instance must agree on and which is
    therefore the same in every run."""

    def __init__(self, trace: list[dict]) -> None:
        renamed: set[str] = set()
        made_first: dict[str, bool] = {}  # path -> whether its first access created it
        excl: set[str] = set()
        locked: set[str] = set()
        created: dict[str, list[tuple[tuple[str, int], int]]] = {}  # path -> [(operation, trace index)]
        unlinked: dict[str, list[tuple[tuple[str, int], int]]] = {}
        touches: list[tuple[int, tuple[str, int], str]] = []
        reads: dict[str, list[tuple[tuple[str, int], int]]] = {}
        ends: dict[tuple[str, int], int] = {}  # operation -> trace index of its end
        op_no: dict[str, int] = {}
        for i, e in enumerate(trace):
            ev, actor = e.get("ev"), e.get("actor", "")
            if ev == "start":
                op_no[actor] = op_no.get(actor, 0) + 1
                continue
            op = (actor, op_no.get(actor, 0))
            if ev in ("done", "crash"):
                ends.setdefault(op, i)
                continue
            if ev not in ("point", "fault"):
                continue
            kind, path, detail = e.get("kind", ""), e.get("path") or "", e.get("detail") or ""
            if path:
                made_first.setdefault(path, kind == "open" and _creates(detail))
            if kind in ("replace", "rename") and detail:
                renamed.add(detail)
            if ev != "point":
                continue
            if kind == "open" and _creates(detail) and not any(o == op for o, _ in created.get(path, [])):
                created.setdefault(path, []).append((op, i))
                if "excl" in detail:
                    excl.add(path)
            elif kind in ("flock", "flock-wait"):
                locked.add(path)
            elif kind == "unlink":
                unlinked.setdefault(path, []).append((op, i))
            if kind == "read" or (kind == "open" and "excl" not in detail):
                # a lock is never read or opened again by its holder (a waiter's
                # retried exclusive create is not a reopening)
                reads.setdefault(path, []).append((op, i))
            if path and path != ".":
                touches.append((i, op, path))
        temps = {p for p in renamed if made_first.get(p, True)}
        for path, creations in created.items():
            if path in temps or path in locked or path == ".":
                continue
            scratch = False
            for op, i0 in creations:
                gone = next((j for o, j in unlinked.get(path, []) if o == op and j > i0), None)
                if path not in excl and gone is None:
                    continue  # a data file the operation wrote in place, or left for others
                end = gone if gone is not None else ends.get(op, len(trace))
                read_back = any(o == op and i0 < j < end for o, j in reads.get(path, []))
                holds = any(op2 == op and i0 < j < end and q != path and q not in renamed
                            for j, op2, q in touches)
                if holds and not read_back:
                    scratch = False  # held while the operation worked on other files: a lock
                    break
                scratch = True
            if scratch:
                temps.add(path)
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


def renumber(ops: list[Operation], trace: list[dict], where: dict[int, int] | None = None) -> list[Operation]:
    """Copies of ``ops`` whose start and end are story step numbers
    (``where``: ``line_of(segments(trace))``, if the caller has it)."""
    if where is None:
        where = line_of(segments(trace))
    out = []
    for op in ops:
        c = Operation(op.process, op.f, op.session, op.value, where.get(int(op.start), 0), op.end,
                      op.status, op.output, op.error, op.index, dict(op.meta))
        if op.end != float("inf"):
            c.end = where.get(int(op.end), 0)
        out.append(c)
    return out
