"""``--keep-going``: every distinct violation a search meets, not only the first.

A violation's *signature* is its first invariant and the kinds of the
operations it names (``I1 add,read``).  :func:`explore_all` runs
:func:`~sessioncheck.controlled.search.explore` in rounds: each round ends
with one violation shrunk; the next round goes on searching with every
signature found so far (the shrunk one's and the unshrunk one's) answered
"passes", so Hypothesis neither stops at nor shrinks towards a known bug,
and such failures are only counted.  The rounds share one time budget and
one example limit, so the promise of ``explore`` holds for the whole: no
round starts an example after ``budget`` seconds, and the last one's
shrinking ends by ``budget`` + :func:`~sessioncheck.controlled.search.grace`.

Why rounds and not Hypothesis' ``report_multiple_bugs``: Hypothesis stops
generating at its first failure and only tells apart the failures it meets
while shrinking that one, by exception type and line, not by what they
break; the search would still end at the first bug.

A seeded search stays deterministic while the example limit ends it: the
systematic pass resumes where the last round left it, and round ``r`` of
the random search runs with seed ``seed + r`` (a new sequence of
programs rather than a replay of the one before).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sessioncheck.controlled.engine import Executor, Outcome
from sessioncheck.controlled.search import Exploration, NondeterministicStore, explore, grace
from sessioncheck.words import plural


def signature(outcome: Outcome) -> str:
    """The first violation's invariant and the kinds of the operations it
    names, sorted, each once (all the run's operations if it names none)."""
    first = outcome.violations[0]
    ops = [outcome.ops[i] for i in first.ops if 0 <= i < len(outcome.ops)] or list(outcome.ops)
    kinds = sorted({str(getattr(op.f, "value", op.f)) for op in ops})
    return f"{first.invariant} {','.join(kinds)}".strip()


@dataclass
class Distinct:
    """One distinct violation: its shrunk outcome, its signature, and when
    the search first met it (example number, seconds since the start)."""

    signature: str
    outcome: Outcome
    example: int
    seconds: float
    shrink_cut: str = ""
    #: the signature of the unshrunk failure it was shrunk from (known too)
    raw: str = ""


def explore_all(executor: Executor, *, budget: float = 60.0, max_examples: int | None = None,
                seed: int | None = None, **kwargs: Any) -> tuple[Exploration, list[Distinct]]:
    """Search for every distinct violation within ``budget`` seconds and
    ``max_examples`` examples in all.  Returns the whole search's counts
    (``outcome`` is the first violation's) and the violations in the order
    found; ``kwargs`` go to every round of ``explore``."""
    t0 = time.monotonic()
    deadline = t0 + budget
    stats = Exploration()
    found: list[Distinct] = []
    known: dict[str, int] = {}  # signature -> index into found

    def ignore(outcome: Outcome) -> str | None:
        sig = signature(outcome)
        return sig if sig in known else None

    systematic = kwargs.pop("systematic", True)
    rounds = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or (max_examples is not None and stats.examples >= max_examples):
            break
        try:
            explore(executor, budget=left, max_examples=max_examples,
                    seed=None if seed is None else (seed + rounds) % 2**32,
                    ignore=ignore, into=stats, systematic_skip=stats.systematic,
                    systematic=systematic and not stats.systematic_done, **kwargs)
        except NondeterministicStore as exc:
            if not found:
                raise
            # the violations found stand (each ran to the same failure while
            # shrinking); the one this round met cannot be told
            stats.keep_going_stopped = f"the search stopped after {plural(len(found), 'distinct violation')}: {exc}"
            break
        rounds += 1
        if stats.outcome is None:
            break
        sig = signature(stats.outcome)
        if sig in known:  # cannot happen while ignore holds; never report one twice
            break
        known[sig] = len(found)
        raw = signature(stats.found_raw) if stats.found_raw is not None else sig
        known.setdefault(raw, len(found))
        began = deadline - left - t0
        found.append(Distinct(sig, stats.outcome, stats.first_failure_example or stats.examples,
                              began + (stats.first_failure_seconds or 0.0), stats.shrink_cut, raw))
        if time.monotonic() > deadline + grace(budget):
            break
    stats.seconds = time.monotonic() - t0
    if found:
        first = found[0]
        stats.outcome, stats.shrink_cut = first.outcome, first.shrink_cut
        stats.first_failure_example, stats.first_failure_seconds = first.example, first.seconds
    return stats, found
