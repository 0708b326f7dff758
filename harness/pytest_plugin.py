"""pytest plugin: ``--sessioncheck-store SPEC`` and the ``sessioncheck`` fixture.

Kept tiny and light to import (pytest loads it in every run): the engine is
imported only when a store is actually checked.
"""
from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("sessioncheck", "concurrency verification of session stores")
    g.addoption("--sessioncheck-store", action="append", default=[], metavar="SPEC",
                help="check this store (repeatable): one test per store")
    g.addoption("--sessioncheck-budget", type=float, default=30.0, metavar="SECONDS",
                help="search budget per store (default: 30)")
    g.addoption("--sessioncheck-actors", default="threads", choices=("threads", "processes", "mixed"))
    g.addoption("--sessioncheck-faults", default="", metavar="LIST", help="crash,power-loss,io-error")


class StoreItem(pytest.Item):
    def __init__(self, *, spec: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def runtest(self) -> None:
        from .testing import check_store

        opt = self.config.getoption
        check_store(self.spec, budget=opt("sessioncheck_budget"), actors=opt("sessioncheck_actors"),
                    faults=opt("sessioncheck_faults"))

    def repr_failure(self, excinfo, style=None):  # the story, not a traceback
        from .testing import StoreViolation

        if isinstance(excinfo.value, StoreViolation):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"sessioncheck[{self.spec}]"


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    for spec in config.getoption("sessioncheck_store"):
        items.append(StoreItem.from_parent(session, name=f"sessioncheck[{spec}]", spec=spec))


@pytest.fixture
def sessioncheck(tmp_path):
    """``sessioncheck(store, budget=..., actors=..., faults=...)`` checks a
    store and fails the test with the story on a violation."""
    from .testing import check_store

    def run(store: str, **kwargs):
        kwargs.setdefault("report_dir", tmp_path)
        return check_store(store, **kwargs)

    return run
