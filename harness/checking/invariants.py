"""The invariants a run is checked against, by name (DESIGN.md, section 2).

Every part that names an invariant (the checker, the engine, reports and
stories) takes the names from here.
"""
from __future__ import annotations

INVARIANTS = {
    "I1": "no lost message",
    "I2": "order",
    "I3": "metadata is a map of last-writer-wins registers",
    "I4": "no torn state",
    "I5": "liveness",
    "I6": "durability",
    # An operation raised an exception it does not raise when the same
    # actor's operations run alone on a fresh store: the failure comes from
    # what ran beside it (a first-use race in schema creation, a file
    # another writer left half-written).  Not an invariant of the state a
    # read returns, so it has a name of its own (engine.Executor.run).
    "E1": "no operation fails only under concurrency",
}
