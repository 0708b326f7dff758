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
}
