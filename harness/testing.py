"""Verification from a test: what a store's own test suite calls.

    from harness.testing import check_store

    def test_store_keeps_every_message():
        check_store("mypkg.store:MyStore", budget=30)

``check_store`` raises ``AssertionError`` carrying the counterexample story
(and the path of its saved report) when a violation is found, so any test
runner shows it.  The pytest plugin (``harness.pytest_plugin``) adds a
``sessioncheck`` fixture and ``--sessioncheck-store`` on top of it.
"""
from __future__ import annotations

import os
from pathlib import Path

from .verify import Result, parse_faults, verify


class StoreViolation(AssertionError):
    """A store broke an invariant; ``str()`` is the story."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.story + (f"Report: {result.report_path}\n" if result.report_path else ""))
        self.result = result


def check_store(store: str, *, budget: float = 30.0, actors: str = "threads", faults: str = "",
                examples: int | None = None, seed: int | None = None,
                report_dir: str | os.PathLike | None = None, database=None) -> Result:
    """Explore ``store`` within the budget; raise :class:`StoreViolation`
    on a violation, return the :class:`Result` otherwise."""
    result = verify(store, mode=actors, faults=parse_faults(faults), budget=budget, max_examples=examples,
                    seed=seed, database=database, report_dir=Path(report_dir) if report_dir else None)
    if result.found:
        raise StoreViolation(result)
    return result
