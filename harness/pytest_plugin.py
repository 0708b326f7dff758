"""pytest plugin: the ``sessioncheck`` fixture, ``--sessioncheck-store``, and
the gate's options.

Kept tiny and light to import (pytest loads it in every run): options and
hooks only; the engine and Hypothesis are imported when a store is
actually checked, and the work lives in :mod:`sessioncheck.testing`.

Under pytest-xdist (``-n 2``, ``-n auto``) every worker has its own
:class:`~sessioncheck.testing.Gate`: its own seed stream and its own report
directory.  Each check leaves its findings in the test's
``user_properties`` (so they are in the JUnit XML as ``<property>``
elements), which xdist carries to the controlling process; there they are
merged into one table at the end of the run and one ``summary.json``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

_GATE = pytest.StashKey[object]()


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("sessioncheck", "concurrency verification of session stores")
    g.addoption("--sessioncheck-store", action="append", default=[], metavar="SPEC",
                help="check this store (repeatable): one test per store")
    g.addoption("--sessioncheck-profile", default="ci", choices=("ci", "fuzz"),
                help="ci: bounded and deterministic (default); fuzz: long and random")
    g.addoption("--sessioncheck-budget", type=float, default=None, metavar="SECONDS",
                help="time per check (default: the profile's: ci 120 as a ceiling, fuzz 600)")
    g.addoption("--sessioncheck-examples", type=int, default=None, metavar="N",
                help="examples per check (default: the profile's max_examples: ci 1000)")
    g.addoption("--sessioncheck-seed", type=int, default=None, metavar="N",
                help="base seed (default: 0 in ci, random in fuzz)")
    g.addoption("--sessioncheck-actors", default="threads", choices=("threads", "processes", "mixed"))
    g.addoption("--sessioncheck-faults", default="", metavar="LIST", help="crash,power-loss,io-error")
    g.addoption("--sessioncheck-scenarios", action="store_true",
                help="also run every named scenario against each --sessioncheck-store, one test each")
    g.addoption("--sessioncheck-report-dir", default=None, metavar="DIR",
                help="where reports go, one subdirectory per worker (default: .sessioncheck/reports/gate)")
    g.addoption("--sessioncheck-suppress-health-check", action="append", default=[], metavar="NAME",
                help="do not fail a check on this health check (repeatable): no_preemption_point, "
                     "no_acknowledged_write, no_overlap, too_few_distinct, actor_vanished, or all")
    parser.addini("sessioncheck_suppress_health_check", type="args", default=[],
                  help="health checks not to fail a check on (as --sessioncheck-suppress-health-check)")
    g.addoption("--sessioncheck-allow-errors", action="append", default=[], metavar="PATTERN",
                help="a regular expression: an exception whose 'Type: message' (or that of one in its "
                     "chain) it matches counts as 'not acknowledged' (repeatable)")
    parser.addini("sessioncheck_allow_errors", type="linelist", default=[],
                  help="regular expressions of errors that count as 'not acknowledged', one a line "
                       "(as --sessioncheck-allow-errors)")
    g.addoption("--sessioncheck-db", default=None, metavar="DIR|none",
                help="Hypothesis example database directory, or none (default: the profile's, "
                     ".sessioncheck/examples)")


def pytest_configure(config: pytest.Config) -> None:
    budget = config.getoption("sessioncheck_budget")
    examples = config.getoption("sessioncheck_examples")
    if budget is not None and budget <= 0:
        raise pytest.UsageError("--sessioncheck-budget must be a positive number of seconds")
    if examples is not None and examples < 1:
        raise pytest.UsageError("--sessioncheck-examples must be at least 1")
    if not hasattr(config, "workerinput"):  # the controlling process (or the only one)
        config.pluginmanager.register(Summary(config), "sessioncheck-summary")


def gate(config: pytest.Config):
    """This process's :class:`~sessioncheck.testing.Gate`, made on first use
    (after every conftest.py had its chance to register a profile)."""
    if _GATE not in config.stash:
        from sessioncheck.testing import Gate

        opt = config.getoption
        config.stash[_GATE] = Gate.from_options(
            profile=opt("sessioncheck_profile"), root=Path(config.rootpath),
            report_dir=opt("sessioncheck_report_dir"), db=opt("sessioncheck_db"),
            budget=opt("sessioncheck_budget"), examples=opt("sessioncheck_examples"),
            seed=opt("sessioncheck_seed"), actors=opt("sessioncheck_actors"), faults=opt("sessioncheck_faults"),
            # the worker's id from xdist itself: an environment variable
            # would be inherited by a pytest run started inside a worker
            worker=getattr(config, "workerinput", {}).get("workerid", "main"),
            suppress_health_check=[*config.getini("sessioncheck_suppress_health_check"),
                                   *opt("sessioncheck_suppress_health_check")],
            allow_errors=[*config.getini("sessioncheck_allow_errors"), *opt("sessioncheck_allow_errors")])
    return config.stash[_GATE]


class StoreItem(pytest.Item):
    def __init__(self, *, spec: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def runtest(self) -> None:
        gate(self.config).check(self.spec, self.nodeid, properties=self.user_properties)

    def repr_failure(self, excinfo, style=None):  # the story, not a traceback
        from sessioncheck.errors import ConfigError
        from sessioncheck.testing import StoreViolation

        if isinstance(excinfo.value, (StoreViolation, ConfigError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"sessioncheck[{self.spec}]"


class ScenarioUnexpected(Exception):
    """A scenario's outcome is not the one it expects of the store."""


class ScenarioItem(pytest.Item):
    def __init__(self, *, spec: str, scenario: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spec, self.scenario = spec, scenario

    def runtest(self) -> None:
        from sessioncheck.scenario import check

        ok, story = check(self.scenario, self.spec)
        if not ok:
            raise ScenarioUnexpected(story)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ScenarioUnexpected):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, self.name


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    for spec in config.getoption("sessioncheck_store"):
        items.append(StoreItem.from_parent(session, name=f"sessioncheck[{spec}]", spec=spec))
        if config.getoption("sessioncheck_scenarios"):
            from sessioncheck.scenario import all_scenarios

            items.extend(ScenarioItem.from_parent(session, name=f"scenario[{s.name}|{spec}]", spec=spec,
                                                  scenario=s.name) for s in all_scenarios())


@pytest.fixture
def sessioncheck(request: pytest.FixtureRequest):
    """``sessioncheck(store, budget=..., examples=..., actors=..., faults=...,
    seed=..., suppress_health_check=[...])`` checks a store under the gate's profile and fails the test
    with the story and the report path on a violation."""
    def run(store: str, **kwargs):
        __tracebackhide__ = True
        return gate(request.config).check(store, f"{request.node.nodeid}|{store}",
                                          properties=request.node.user_properties, **kwargs)

    return run


class Summary:
    """In the controlling process: every check's findings, from every
    worker, merged into one table and ``summary.json``."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.checks: list[dict] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        props: dict = {}
        for key, value in report.user_properties:
            if key.startswith("sessioncheck_"):
                props[key[len("sessioncheck_"):]] = value
        if "store" in props:
            self.checks.append({"test": report.nodeid, "outcome": report.outcome, **props})

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.checks:
            return
        tr = terminalreporter
        tr.section("sessioncheck")
        found = [c for c in self.checks if c.get("report")]
        for c in self.checks:
            verdict = f"{c.get('invariant')} violated" if c.get("report") else "no violation"
            if c.get("health"):
                verdict = f"not a verdict (health check failed: {c['health']})"
            where = (f" in {c.get('examples')} examples, {c.get('interleavings')} interleavings, {c.get('seconds')} s"
                     if c.get("examples") is not None else "")
            tr.write_line(f"{c['store']} [{c.get('worker')}, {c.get('profile')}, seed {c.get('seed')}]: {verdict}"
                          + where + (f"; report {c['report']}" if c.get("report") else ""))
        path = self._write()
        from sessioncheck.words import plural

        tr.write_line(f"{plural(len(self.checks), 'check')}, {plural(len(found), 'violation')}; "
                      f"merged summary: {path}")

    def _write(self) -> Path | None:
        opt = self.config.getoption
        root = Path(opt("sessioncheck_report_dir") or Path(self.config.rootpath) / ".sessioncheck" / "reports" / "gate")
        try:
            root.mkdir(parents=True, exist_ok=True)
            path = root / "summary.json"
            path.write_text(json.dumps({"checks": self.checks}, indent=1) + "\n", encoding="utf-8")
            return path
        except OSError:
            return None
