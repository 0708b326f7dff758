"""pytest plugin: the ``sessioncheck`` fixture and marker, ``--sessioncheck-store``,
and the gate's options.

Kept tiny and light to import (pytest loads it in every run): options and
hooks only; the engine and Hypothesis are imported when a store is
actually checked, and the work lives in :mod:`sessioncheck.testing`.  The
options, their ini keys and their precedence are one table,
:mod:`sessioncheck.gate_options`.

``@pytest.mark.sessioncheck(store, **options)`` on a test, class or module
gives its tests' checks their options (the closest marker wins); on a test
that does not use the ``sessioncheck`` fixture, a marker naming ``store=``
(or ``replay=``, a saved report) makes the test that check: it runs after
the test's body, and fails the test with the story.

Under pytest-xdist (``-n 2``, ``-n auto``) every worker has its own
:class:`~sessioncheck.testing.Gate`: its own seed stream and its own report
directory.  Each check leaves its findings in the test's
``user_properties`` (so they are in the JUnit XML as ``<property>``
elements), which xdist carries to the controlling process; there they are
merged into one table at the end of the run and one ``summary.json``, and
``--sessioncheck-statistics`` shows what each check explored.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sessioncheck import gate_options as options

_GATE = pytest.StashKey[object]()
_RUN = pytest.StashKey[dict]()

MARKER = ("sessioncheck(store=None, *, replay=None, budget=, examples=, seed=, watchdog=, actors=, processes=, faults=, "
          "actor_count=, sessions=, max_steps=, without=, values=, messages=, suppress_health_check=): check a store (or replay a "
          "saved report) in this test, or give the sessioncheck fixture's checks these options")


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("sessioncheck", "concurrency verification of session stores")
    for o in options.OPTIONS:
        if o.flag:
            g.addoption(o.cli, action="store_true", default=False, help=o.help)
            parser.addini(o.ini, type="bool", default=False, help=o.help)
        elif o.many:
            g.addoption(o.cli, action="append", default=None, metavar=o.metavar, help=o.help)
            parser.addini(o.ini, type="args", default=[], help=o.help)
        else:
            g.addoption(o.cli, default=None, metavar=o.metavar, help=o.help)
            parser.addini(o.ini, default="", help=o.help)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    try:
        config.stash[_RUN] = options.from_run(config.getoption, config.getini)
    except options.OptionError as exc:
        raise pytest.UsageError(str(exc)) from None
    if not hasattr(config, "workerinput"):  # the controlling process (or the only one)
        config.pluginmanager.register(Summary(config), "sessioncheck-summary")


def run_values(config: pytest.Config) -> dict:
    """The run's option values (the command line over the ini file)."""
    return config.stash[_RUN]


def _run_value(config: pytest.Config, name: str, default: Any = None) -> Any:
    v = run_values(config).get(name)
    return default if v is None else v.value


def gate(config: pytest.Config):
    """This process's :class:`~sessioncheck.testing.Gate`, made on first use
    (after every conftest.py had its chance to register a profile)."""
    if _GATE not in config.stash:
        from sessioncheck.testing import Gate

        config.stash[_GATE] = Gate.from_options(
            profile=_run_value(config, "profile", "ci"), root=Path(config.rootpath),
            report_dir=_run_value(config, "report_dir"), db=_run_value(config, "db"),
            seed=_run_value(config, "seed"), keep_going=bool(_run_value(config, "keep_going", False)),
            # the worker's id from xdist itself: an environment variable
            # would be inherited by a pytest run started inside a worker
            worker=getattr(config, "workerinput", {}).get("workerid", "main"))
    return config.stash[_GATE]


def marker_layers(item: pytest.Item) -> list[dict]:
    """The ``sessioncheck`` markers of a test, farthest first (module, class,
    function), as option layers."""
    layers = []
    for mark in reversed(list(item.iter_markers("sessioncheck"))):
        if len(mark.args) > 1:
            raise options.OptionError("@pytest.mark.sessioncheck takes one positional argument, the store")
        kwargs = dict(mark.kwargs)
        if mark.args:
            if "store" in kwargs:
                raise options.OptionError("@pytest.mark.sessioncheck got the store twice (positional and store=)")
            kwargs["store"] = mark.args[0]
        layers.append(options.from_test(kwargs, "@pytest.mark.sessioncheck"))
    return layers


def _check_settings(values: dict) -> tuple[dict, Any]:
    """What :meth:`Gate.check` takes from merged values, and the check's own
    seed (``None``: the gate derives it from the base seed)."""
    from sessioncheck.testing import CHECK_KEYWORDS

    settings = {k: values[k].value for k in CHECK_KEYWORDS if k in values}
    seed = values.get("seed")
    return settings, (seed.value if seed is not None and seed.where not in ("ini", "command line") else None)


def _check(item: pytest.Item, store: Any, values: dict, check_id: str) -> Any:
    __tracebackhide__ = True
    settings, seed = _check_settings(values)
    return gate(item.config).check(store, check_id, properties=item.user_properties, seed=seed, **settings)


def _replay(item: pytest.Item, report: Any, values: dict) -> Any:
    """Replay a saved report as the test: as saved (its actors and model)
    unless the test itself gives ``actors=``; a relative path is the test
    file's."""
    __tracebackhide__ = True
    from sessioncheck.testing import replay_report

    path = Path(report)
    if not path.is_absolute():
        path = Path(item.path).parent / path
    actors = values.get("actors")
    actors = actors.value if actors is not None and actors.where not in ("default", "ini", "command line") else None
    watchdog = values["watchdog"].value if "watchdog" in values else 10.0
    store = values["store"].value if "store" in values else None
    item.user_properties.append(("sessioncheck_replay", str(path)))
    return replay_report(path, store, actors=actors, watchdog=watchdog)


class StoreItem(pytest.Item):
    def __init__(self, *, spec: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def runtest(self) -> None:
        values = options.merge(run_values(self.config))
        _check(self, self.spec, values, self.nodeid)

    def repr_failure(self, excinfo, style=None):  # the story, not a traceback
        from sessioncheck.errors import ConfigError
        from sessioncheck.testing import StoreViolation

        if isinstance(excinfo.value, (StoreViolation, ConfigError, options.OptionError)):
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


@pytest.hookimpl(tryfirst=True)  # before -k and -m deselect: the store items are items like any other
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    for item in items:  # a bad marker is a usage error before anything runs
        if item.get_closest_marker("sessioncheck") is not None:
            try:
                options.merge(run_values(config), *marker_layers(item))
            except options.OptionError as exc:
                raise pytest.UsageError(f"{item.nodeid}: {exc}") from None
    added = []
    for spec in _run_value(config, "store", ()):
        added.append(StoreItem.from_parent(session, name=f"sessioncheck[{spec}]", spec=spec))
        if _run_value(config, "scenarios", False):
            from sessioncheck.scenario import all_scenarios

            added.extend(ScenarioItem.from_parent(session, name=f"scenario[{s.name}|{spec}]", spec=spec,
                                                  scenario=s.name) for s in all_scenarios())
    if added:
        # Items made here were not collected from a file, so no collect
        # report counted them: report them, so "N tests collected" (which
        # the terminal counts from collect reports) agrees with the list.
        config.hook.pytest_collectreport(
            report=pytest.CollectReport("", "passed", None, added))
        items.extend(added)


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    """A test marked with ``store=`` or ``replay=`` that does not use the
    fixture becomes that check: it runs after the test's body passed."""
    __tracebackhide__ = True
    result = yield
    if pyfuncitem.get_closest_marker("sessioncheck") is None or "sessioncheck" in pyfuncitem.fixturenames:
        return result
    values = options.merge(run_values(pyfuncitem.config), *marker_layers(pyfuncitem))
    if "replay" in values:
        _replay(pyfuncitem, values["replay"].value, values)
    elif "store" in values:
        store = values["store"].value
        _check(pyfuncitem, store, values, f"{pyfuncitem.nodeid}|{_label(store)}")
    return result


def _label(store: Any) -> str:
    if isinstance(store, str):
        return store
    from sessioncheck.specs import name_of

    return name_of(store)


class Checker:
    """The ``sessioncheck`` fixture's value: ``sessioncheck(store, **options)``
    checks a store, ``sessioncheck.replay(report, store=None)`` replays a
    saved report.  Its keywords are the marker's (every model option:
    ``actors``, ``processes`` (task actors in that many processes),
    ``faults``, ``actor_count``, ``sessions``, ``max_steps``,
    ``without``, ``watchdog``, ``budget``, ``examples``, ``seed``,
    ``suppress_health_check``) and override the test's markers; against
    the command line they follow :mod:`sessioncheck.gate_options`."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self._item = request.node

    def _values(self, kwargs: dict) -> dict:
        try:
            return options.merge(run_values(self._item.config), *marker_layers(self._item),
                                 options.from_test(kwargs, "sessioncheck"))
        except options.OptionConflict as exc:
            raise pytest.UsageError(str(exc)) from None

    def __call__(self, store: Any = None, **kwargs: Any) -> Any:
        """Check ``store`` (a spec string, or a factory object: a class or
        callable taking a directory; by default the marker's ``store=``)."""
        __tracebackhide__ = True
        values = self._values(dict(kwargs, store=store))
        if "store" not in values:
            raise options.OptionError("sessioncheck() needs a store: sessioncheck('json'), "
                                      "sessioncheck(MyStore), or @pytest.mark.sessioncheck(store=...)")
        store = values["store"].value
        return _check(self._item, store, values, f"{self._item.nodeid}|{_label(store)}")

    def replay(self, report: Any = None, store: Any = None, **kwargs: Any) -> Any:
        """Replay a saved report (by default the marker's ``replay=``): fail
        with the story if its violation happens again."""
        __tracebackhide__ = True
        values = self._values(dict(kwargs, store=store, replay=report))
        if "replay" not in values:
            raise options.OptionError("sessioncheck.replay() needs a report path")
        return _replay(self._item, values["replay"].value, values)


@pytest.fixture
def sessioncheck(request: pytest.FixtureRequest) -> Checker:
    """``sessioncheck(store, budget=..., examples=..., actors=..., faults=...,
    actor_count=..., sessions=..., max_steps=..., without=[...], watchdog=...,
    seed=..., suppress_health_check=[...])`` checks a store (a spec string
    or a factory object) under the gate's profile and fails the test with
    the story and the report path on a violation;
    ``sessioncheck.replay(report)`` replays a saved report."""
    return Checker(request)


class Summary:
    """In the controlling process: every check's findings, from every
    worker, merged into one table and ``summary.json``."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.checks: list[dict] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        # one test may run several checks: each begins with its store (or replay)
        rows: list[dict] = []
        for key, value in report.user_properties:
            if not key.startswith("sessioncheck_"):
                continue
            name = key[len("sessioncheck_"):]
            if name in ("store", "replay") or not rows:
                rows.append({"test": report.nodeid, "outcome": "passed"})
            rows[-1][name] = value
        if rows:
            rows[-1]["outcome"] = report.outcome  # the earlier checks of a test passed, or it would have ended
        self.checks.extend(r for r in rows if "store" in r or "replay" in r)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.checks:
            return
        tr = terminalreporter
        tr.section("sessioncheck")
        checks = [c for c in self.checks if "store" in c]
        found = [c for c in checks if c.get("report")]
        for c in checks:
            verdict = f"{c.get('invariant')} violated" if c.get("report") else "no violation"
            if str(c.get("health", "")).startswith("failed"):
                verdict = f"not a verdict (health check {c['health']})"
            where = (f" in {c.get('examples')} examples, {c.get('interleavings')} interleavings, {c.get('seconds')} s"
                     if c.get("examples") is not None else "")
            tr.write_line(f"{c['store']} [{c.get('worker')}, {c.get('profile')}, seed {c.get('seed')}]: {verdict}"
                          + where + (f"; report {c['report']}" if c.get("report") else ""))
        for c in self.checks:
            if "replay" in c:
                what = "the saved violation happens again" if c["outcome"] == "failed" else "passes (fixed)"
                tr.write_line(f"replay of {c['replay']}: {what}")
        path = self._write()
        if checks:
            tr.write_line(f"{_plural(len(checks), 'check')}, {_plural(len(found), 'violation')}; "
                          f"merged summary: {path}")
        if _run_value(self.config, "statistics", False):
            self._statistics(tr, checks)

    def _statistics(self, tr, checks: list[dict]) -> None:
        tr.section("sessioncheck statistics")
        for c in checks:
            tr.write_line(f"{c['test']} [{c['store']}]:")
            if c.get("examples") is None:
                tr.write_line(f"  - not run to the end; seed {c.get('seed')} ({c.get('worker')}, {c.get('profile')})")
            else:
                tr.write_line(f"  - {_plural(int(c['examples']), 'example')}, "
                              f"{_plural(int(c['interleavings']), 'distinct interleaving')}, {c.get('seconds')} s, "
                              f"seed {c.get('seed')} ({c.get('worker')}, {c.get('profile')})")
            try:
                points = json.loads(c.get("points") or "{}")
            except ValueError:
                points = {}
            if points:
                tr.write_line("  - points reached per operation: "
                              + ", ".join(f"{op} {n}" for op, n in sorted(points.items())))
            tr.write_line(f"  - health: {c.get('health', 'not judged')}")
            tr.write_line("")

    def _write(self) -> Path | None:
        given = _run_value(self.config, "report_dir")
        root = Path(given or Path(self.config.rootpath) / ".sessioncheck" / "reports" / "gate")
        try:
            root.mkdir(parents=True, exist_ok=True)
            path = root / "summary.json"
            path.write_text(json.dumps({"checks": self.checks}, indent=1) + "\n", encoding="utf-8")
            return path
        except OSError:
            return None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
