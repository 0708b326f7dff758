"""Schedule coverage: what an exploration actually reached.

A search that reports "no violation" is only as good as what it explored.
:class:`Coverage` watches every example's trace and counts

- examples and distinct interleavings (a hash of the schedule, the same
  hash the engine keeps: :meth:`Outcome.schedule_hash`),
- operations started, per operation type (``add``, ``persist``, ...),
- distinct preemption points reached per operation type, a point being
  its kind and its path with the parts that change from run to run taken
  out (session ids become ``s*``, temporary files ``<tmp>``), and
- which known kinds of point (:data:`KNOWN_KINDS`) were never reached.

A kind never reached is not an error (a JSON store never reaches ``sql``),
but a kind the store *does* use and that is missing says the budget or the
model is too small to exercise it.

The collector is fed through ``explore()``'s ``on_example`` callback: the
engine puts the example's :class:`Outcome` on ``Exploration.last``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sessioncheck.reporting.story import POINT_TEXT

#: every kind of preemption point the interception layer can report
KNOWN_KINDS: tuple[str, ...] = tuple(POINT_TEXT)

#: housekeeping calls: counted, but not what a store's user calls
HOUSEKEEPING = ("open", "close")

_SESSION = re.compile(r"(?<![A-Za-z0-9])s\d+(?![0-9])")


def temp_paths(trace: list[dict]) -> set[str]:
    """Paths that are temporary files in this trace: sources of a replace
    or rename, and files created exclusively then unlinked (``mkstemp``)."""
    temps: set[str] = set()
    excl: set[str] = set()
    for e in trace:
        if e.get("ev") != "point":
            continue
        kind, path, detail = e.get("kind"), e.get("path") or "", e.get("detail") or ""
        if kind in ("replace", "rename") and detail:
            temps.add(detail)
        elif kind == "open" and "excl" in detail:
            excl.add(path)
        elif kind == "unlink" and path in excl:
            temps.add(path)
    return temps


def point_id(e: dict, temps: set[str]) -> str:
    """A point's identity across runs: ``"open s*.json (r)"``."""
    kind = e.get("kind") or ""
    path = e.get("path") or ""
    path = "<tmp>" if path in temps else _SESSION.sub("s*", path)
    detail = e.get("detail") or ""
    if kind == "open":
        mode = detail.replace("+excl", "")
        return f"open {path} ({mode})" if mode else f"open {path}"
    if kind == "sql":
        return f"sql {path} {detail.split(' ')[0]}".rstrip()
    if kind in ("replace", "rename"):
        src = "<tmp>" if detail in temps else _SESSION.sub("s*", detail)
        return f"{kind} {src} -> {path}"
    return f"{kind} {path}".rstrip()


@dataclass
class Coverage:
    """Accumulates coverage over the examples of one or more explorations."""

    examples: int = 0
    interleavings: set = field(default_factory=set)
    operations: dict[str, int] = field(default_factory=dict)
    points: dict[str, set] = field(default_factory=dict)
    kinds: set = field(default_factory=set)
    faults: int = 0
    crashes: int = 0

    def observe(self, outcome: Any) -> None:
        """Count one example's outcome (anything with ``.trace`` and
        ``.schedule_hash()``)."""
        self.examples += 1
        self.interleavings.add(outcome.schedule_hash())
        trace = outcome.trace
        temps = temp_paths(trace)
        current: dict[str, str] = {}
        for e in trace:
            ev, actor = e.get("ev"), e.get("actor", "")
            if ev == "start":
                call = e.get("call") or "?"
                current[actor] = call
                self.operations[call] = self.operations.get(call, 0) + 1
            elif ev == "point" and not e.get("recorded"):  # preemption points only
                call = current.get(actor, "?")
                self.kinds.add(e.get("kind"))
                self.points.setdefault(call, set()).add(point_id(e, temps))
            elif ev in ("fault", "power-loss", "server-crash"):
                self.faults += 1
            elif ev == "crash":
                self.crashes += 1

    def on_example(self, stats: Any) -> None:
        """``explore()``'s callback: observe ``stats.last``."""
        last = getattr(stats, "last", None)
        if last is not None:
            self.observe(last)

    def merge(self, other: "Coverage") -> None:
        """Fold another collector in (workers of one fuzz run)."""
        self.examples += other.examples
        self.interleavings |= other.interleavings
        for k, n in other.operations.items():
            self.operations[k] = self.operations.get(k, 0) + n
        for k, pts in other.points.items():
            self.points.setdefault(k, set()).update(pts)
        self.kinds |= other.kinds
        self.faults += other.faults
        self.crashes += other.crashes

    @property
    def never_reached(self) -> list[str]:
        return [k for k in KNOWN_KINDS if k not in self.kinds]

    def to_json(self) -> dict:
        """The ``coverage`` object of a report (documented in the README)."""
        return {
            "examples": self.examples,
            "interleavings": len(self.interleavings),
            "operations": dict(sorted(self.operations.items())),
            "points_per_operation": {k: len(v) for k, v in sorted(self.points.items())},
            "points": {k: sorted(v) for k, v in sorted(self.points.items())},
            "kinds_reached": [k for k in KNOWN_KINDS if k in self.kinds],
            "kinds_never_reached": self.never_reached,
            "faults_injected": self.faults,
            "crashes": self.crashes,
        }

    @classmethod
    def from_json(cls, data: dict) -> "Coverage":
        """Rebuild a collector from :meth:`to_json` (interleavings are
        known only by count there, so they come back as placeholders)."""
        c = cls(examples=int(data.get("examples", 0)))
        c.interleavings = {f"#{i}" for i in range(int(data.get("interleavings", 0)))}
        c.operations = {str(k): int(v) for k, v in data.get("operations", {}).items()}
        c.points = {str(k): set(v) for k, v in data.get("points", {}).items()}
        c.kinds = set(data.get("kinds_reached", []))
        c.faults = int(data.get("faults_injected", 0))
        c.crashes = int(data.get("crashes", 0))
        return c

    def lines(self) -> list[str]:
        """What ``run --stats`` prints."""
        out = [f"examples: {self.examples}", f"distinct interleavings: {len(self.interleavings)}"]
        if self.operations:
            out.append("operations started: " + ", ".join(f"{k} {n}" for k, n in sorted(self.operations.items())))
        out.append("distinct preemption points reached per operation:")
        for call, pts in sorted(self.points.items()):
            out.append(f"  {call}: {len(pts)}")
        if not self.points:
            out.append("  (none)")
        out.append("point kinds reached: " + (", ".join(k for k in KNOWN_KINDS if k in self.kinds) or "none"))
        out.append("point kinds never reached: " + (", ".join(self.never_reached) or "none"))
        if self.faults or self.crashes:
            out.append(f"faults injected: {self.faults}, crashes: {self.crashes}")
        return out
