"""Knowing, before a run, that a program repeats a run already done.

Many programs mean the same run: an ``advance`` of an actor that is idle
or waits at a lock does nothing, an ``advance`` past the end of an
operation stops at its end, and two advances of one actor in a row are
one advance of their sum.  A program with those steps removed or merged
is its *canonical* program; two programs with the same canonical program
give the same run (the engine is deterministic), so the search runs only
one of them.

What a step does depends on the state the steps before it left, which
only a run shows.  :class:`Schedules` therefore learns as the search
runs: a trie of canonical prefixes, each node knowing which actors can
move there and, for an advance, after how many points its actor stopped.
:meth:`Schedules.predict` walks a new program through what is known and
answers its canonical program's node, or ``None`` as soon as a step's
effect is not known yet (then the program must run: it may be new).  A
prediction is exact, never a guess: a step whose effect no run showed is
never assumed, and a ``start`` is always kept (what it does to a busy
actor is the engine's business).

The engine reports each step of a run to a :class:`Recorder`
(``Executor.watch``), which extends the trie with what really happened.
"""
from __future__ import annotations

from typing import Any

from sessioncheck.controlled.program import Step

#: A node of the trie: an int; 0 is the empty program (nothing busy).
ROOT = 0


class Schedules:
    """The canonical programs of the runs done in one search."""

    def __init__(self, actors: int) -> None:
        self.actors = actors
        self._child: dict[tuple[int, tuple], int] = {}
        #: node -> indexes of the actors that can take a point there
        self._movable: dict[int, frozenset[int]] = {ROOT: frozenset()}
        #: (node, actor) -> total points after which an advance of actor
        #: from node left it unable to move (its operation done or blocked)
        self._stop: dict[tuple[int, int], int] = {}
        #: the final nodes of the runs done (a whole canonical program each)
        self.done: set[int] = set()

    # -- lookups ----------------------------------------------------------
    def child(self, node: int, item: tuple, create: bool = False) -> int | None:
        key = (node, item)
        got = self._child.get(key)
        if got is None and create:
            got = self._child[key] = len(self._child) + 1
        return got

    def predict(self, program: list[Step]) -> int | None:
        """The node of ``program``'s canonical program, or ``None`` if some
        step's effect is not known from the runs so far."""
        walk = _Walk(self)
        for step in program:
            if not walk.step(step):
                return None
        return walk.node

    def repeats(self, program: list[Step]) -> bool:
        """True if a run done already is ``program``'s run."""
        node = self.predict(program)
        return node is not None and node in self.done

    def recorder(self, names: list[str]) -> "Recorder":
        return Recorder(self, names)


class _Walk:
    """A position in the trie while a program is read step by step."""

    def __init__(self, schedules: Schedules) -> None:
        self.s = schedules
        self.node = ROOT
        # the advance being merged: its actor, the node it began at, its total
        self.actor: int | None = None
        self.base = ROOT
        self.total = 0

    def step(self, step: Step) -> bool:
        """Follow one step; False if its effect is not known."""
        x = step.actor % self.s.actors
        if step.kind == "start":
            assert step.op is not None
            return self._go(self.node, ("start", x, step.op))
        movable = self.s._movable.get(self.node)
        if movable is None:
            return False
        if x not in movable:
            return True  # does nothing
        if step.kind != "advance":
            return self._go(self.node, (step.kind, x, step.errno_name))
        base, total = (self.base, self.total + step.points) if self.actor == x else (self.node, step.points)
        stop = self.s._stop.get((base, x))
        if stop is not None:
            total = min(total, stop)
        node = self.s.child(base, ("advance", x, total))
        if node is None:
            return False
        self.node, self.actor, self.base, self.total = node, x, base, total
        return True

    def _go(self, node: int, item: tuple) -> bool:
        nxt = self.s.child(node, item)
        if nxt is None:
            return False
        self.node, self.actor = nxt, None
        return True


class Recorder:
    """Follows one run step by step (the engine calls :meth:`before` and
    :meth:`after` around each step) and adds what it did to the trie;
    :meth:`finished` marks the run done."""

    def __init__(self, schedules: Schedules, names: list[str]) -> None:
        self.s = schedules
        self.names = names
        self.walk = _Walk(schedules)
        self._step: Step | None = None
        self._could = False
        self._mark = 0

    def _movable(self, sched: Any) -> frozenset[int]:
        return frozenset(i for i, n in enumerate(self.names) if n in sched.state and sched.runnable(n))

    def before(self, sched: Any, step: Step) -> None:
        name = self.names[step.actor % len(self.names)]
        self._step = step
        self._could = name in sched.state and sched.runnable(name)
        self._mark = len(sched.trace)

    def after(self, sched: Any) -> None:
        step, w = self._step, self.walk
        assert step is not None
        x = step.actor % len(self.names)
        if step.kind == "start":
            assert step.op is not None
            w.node, w.actor = self.s.child(w.node, ("start", x, step.op), create=True), None
        elif not self._could:
            pass  # did nothing
        elif step.kind == "advance":
            name = self.names[x]
            moved = sum(1 for e in sched.trace[self._mark:]
                        if e["actor"] == name and e["ev"] == "point" and not e.get("recorded"))
            base, total = (w.base, w.total + moved) if w.actor == x else (w.node, moved)
            if moved < step.points:
                self.s._stop[base, x] = total
            w.node = self.s.child(base, ("advance", x, total), create=True)
            w.actor, w.base, w.total = x, base, total
        else:
            w.node, w.actor = self.s.child(w.node, (step.kind, x, step.errno_name), create=True), None
        self.s._movable[w.node] = self._movable(sched)

    def finished(self) -> None:
        self.s.done.add(self.walk.node)
