"""Verification from a test: what a store's own test suite calls.

    from sessioncheck.testing import check_store

    def test_store_keeps_every_message():
        check_store("mypkg.store:MyStore", budget=30)

``check_store`` raises ``AssertionError`` carrying the counterexample story
(and the path of its saved report) when a violation is found, so any test
runner shows it.  The pytest plugin (``sessioncheck.pytest_plugin``) adds a
``sessioncheck`` fixture and ``--sessioncheck-store`` on top of it, through
a :class:`Gate`: the profile, seeds, report directory and example database
of one pytest worker.

Profiles (``--sessioncheck-profile``):

``ci``
    bounded and deterministic, for a gate that must not flake (Hypothesis'
    CI recipe: derandomised, no database writes): at most ``max_examples``
    examples (1000) under a time ceiling (120 s); the seed of a check is a
    function of the base seed and the check's identity, and no example
    database is used unless one is given (then read only), so the same
    commit explores the same schedules on every runner, on any xdist
    worker, in any order, with or without ``-n``.
``fuzz``
    long and random: a time budget (600 s per check) and no example bound;
    each worker draws its seeds from its own stream.

Each profile's Hypothesis side is a registered Hypothesis settings profile,
``sessioncheck-ci`` and ``sessioncheck-fuzz``, holding ``max_examples`` and
``database``.  The plugin registers them only if the project has not: a
``conftest.py`` that registers its own (for example with a shared Redis
database) wins, database and all.  ``fuzz`` uses Hypothesis' example
database, a directory (``.sessioncheck/examples``) by default, so a
failure found once is replayed first the next time, before anything new is
generated; ``ci`` reads such a directory only when it is given
(``--sessioncheck-db DIR``), and never writes to it.
"""
from __future__ import annotations

import os
import random
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sessioncheck.errors import ConfigError
from sessioncheck.verify import Result, parse_faults, verify


class StoreViolation(AssertionError):
    """A store broke an invariant; ``str()`` is the story, then the path of
    the saved report."""

    def __init__(self, result: Result) -> None:
        told = result.distinct or [result]
        text = "".join(t.story + (f"Report: {t.report_path.resolve()}\n" if t.report_path else "") for t in told)
        if result.distinct:
            text = "\n".join([result.summary(), "", text])
        super().__init__(text)
        self.result = result


def check_store(store: Any, *, budget: float = 30.0, actors: str = "threads", faults: Any = "",
                examples: int | None = None, seed: int | None = None,
                report_dir: str | os.PathLike | None = None, database: Any = None,
                shrink_budget: float = 10.0, suppress_health_check: Any = (),
                actor_count: int = 3, sessions: int = 2, max_steps: int = 24, without: Any = (),
                watchdog: float = 10.0, allow_errors: tuple[str, ...] | list[str] = (),
                keep_going: bool = False, processes: int | None = None, values: str = "plain",
                messages: str = "plain") -> Result:
    """Explore ``store`` (a spec string, or a factory object: a class or
    callable taking a directory) within the budget; raise
    :class:`StoreViolation` on a violation, return the :class:`Result`
    otherwise.  ``actor_count``, ``sessions``, ``max_steps``, ``without``,
    ``watchdog``, ``values`` and ``messages`` (``plain`` or ``rich``) are
    the model options of ``sessioncheck run``.

    A health check that fails (:mod:`sessioncheck.health`: the run tested
    too little to be a verdict) raises
    :class:`~sessioncheck.health.HealthCheckFailed` unless its name is in
    ``suppress_health_check``; so does a store that breaks the adapter
    contract (:class:`~sessioncheck.errors.ConfigError`).  ``allow_errors``:
    regular expressions; an exception whose "Type: message" (or that of one
    in its chain) matches one counts as "not acknowledged"
    (``--allow-errors``).  ``keep_going``: search on past a violation and
    raise with every distinct one (``--keep-going``).  ``processes``: with
    ``actors="tasks"``, the task actors run in that many processes, an
    event loop each (``--processes``)."""
    __tracebackhide__ = True
    from sessioncheck.controlled.program import ModelConfig
    from sessioncheck.specs import name_of

    name = store if isinstance(store, str) else name_of(store)
    fault_list = parse_faults(faults) if isinstance(faults, str) else parse_faults(",".join(faults))
    if processes is not None and actors != "tasks":
        raise ConfigError(f"processes={processes} hosts task actors in processes: set actors='tasks'")
    from sessioncheck.controlled import messages as message_kinds
    from sessioncheck.controlled import values as value_kinds

    for option, value in (("values", values), ("messages", messages)):
        if value not in ("plain", "rich"):
            raise ConfigError(f"{option}={value!r}: choose plain or rich")
    cfg = ModelConfig(actors=actor_count, sessions=sessions, max_steps=max_steps,
                      without=tuple(dict.fromkeys([without] if isinstance(without, str) else without)),
                      values=value_kinds.SETS[values], messages=message_kinds.SETS[messages],
                      task_processes=processes or 0)
    from sessioncheck.scratch import private_folder

    # every location, probe and private server of the check in one folder
    # of its own, with a reaper: a kill -9 of the test process leaves nothing
    with private_folder("sessioncheck-check-"):
        result = verify(name, mode=actors, faults=fault_list, budget=budget, max_examples=examples,
                        seed=seed, database=database, report_dir=Path(report_dir) if report_dir else None,
                        shrink_budget=shrink_budget, suppress_health_check=suppress_health_check,
                        cfg=cfg, watchdog=watchdog, allow_errors=tuple(allow_errors), keep_going=keep_going)
    if result.found:
        raise StoreViolation(result)
    return result


class ReplayFailed(AssertionError):
    """A saved violation happened again; ``str()`` is its story."""


def replay_report(report: str | os.PathLike, store: Any = None, *, actors: str | None = None,
                  watchdog: float = 10.0) -> Any:
    """Run the program saved in ``report`` against its store again (the
    ``sessioncheck replay`` of a test): raise :class:`ReplayFailed` with
    the story if the violation happens again, return the outcome when it
    does not (the store is fixed).

    The report is data (:func:`sessioncheck.reporting.report.load`: read
    bounded, never evaluated); the store it names is loaded only if it is
    built in, so a report of another store is refused unless ``store`` is
    given (a spec string or a factory object)."""
    __tracebackhide__ = True
    from sessioncheck.cli.replay import store_for
    from sessioncheck.reporting import report as reports
    from sessioncheck.specs import name_of
    from sessioncheck.verify import rerun

    from sessioncheck.errors import ConfigError

    data = reports.load(report)
    given = None if store is None else store if isinstance(store, str) else name_of(store)
    try:
        name = store_for(data, given)
    except ConfigError:
        raise ConfigError(f"{report} was saved for store {data['store']!r}, which is not built in, and a report "
                          f"never names the code to load: pass store={data['store']!r} (or the factory object) "
                          "to replay it") from None
    mode = actors or data["mode"]
    outcome, story = rerun(name, mode, data["_config"], data["_program"], Path(report), watchdog)
    if outcome.failed:
        whose = "" if name == data["store"] else f"(the report was saved for {data['store']!r})\n"
        raise ReplayFailed(f"the saved violation happens again: {report}\n{whose}{story}")
    return outcome


def reproduce(report: str | os.PathLike, store: Any = None, **kwargs: Any) -> Any:
    """``@reproduce("report.json")``: the test replays the saved report
    (``@pytest.mark.sessioncheck(replay=..., store=...)``); it fails with
    the story while the violation happens, and passes once it is fixed.
    A relative path is taken from the test file's directory."""
    import pytest

    return pytest.mark.sessioncheck(replay=str(report), store=store, **kwargs)


@dataclass(frozen=True)
class Profile:
    """How long and how a gated check searches."""

    name: str
    budget: float  # seconds per check: the bound in fuzz, a ceiling in ci
    max_examples: int  # examples per check (the bound in ci)
    deterministic: bool  # seed from the check's identity (ci) or a worker's stream (fuzz)
    shrink_budget: float


PROFILES = {
    # ci's shrink time is generous so that the engine's bound on shrink
    # *runs* ends shrinking, not the clock: the same failure shrinks to the
    # same program on a loaded machine
    "ci": Profile("ci", budget=120.0, max_examples=1000, deterministic=True, shrink_budget=120.0),
    "fuzz": Profile("fuzz", budget=600.0, max_examples=10**9, deterministic=False, shrink_budget=60.0),
}

DEFAULT_DB = Path(".sessioncheck") / "examples"


def hypothesis_profile(name: str, root: Path) -> Any:
    """The Hypothesis settings profile ``sessioncheck-<name>``, registered
    with the defaults if the project has not registered its own: ``ci``
    without a database (Hypothesis' CI recipe: what a check explores is
    its seed's alone, the same on every runner), ``fuzz`` with the
    directory ``.sessioncheck/examples``."""
    from hypothesis import settings
    from hypothesis.database import DirectoryBasedExampleDatabase
    from hypothesis.errors import InvalidArgument

    key = f"sessioncheck-{name}"
    try:
        return settings.get_profile(key)
    except InvalidArgument:
        database = None if PROFILES[name].deterministic else DirectoryBasedExampleDatabase(str(root / DEFAULT_DB))
        settings.register_profile(key, max_examples=PROFILES[name].max_examples, database=database)
        return settings.get_profile(key)


#: what :meth:`Gate.check` passes on to :func:`check_store` when a test or
#: the run sets it (the rest comes from the profile)
CHECK_KEYWORDS = ("budget", "examples", "actors", "faults", "actor_count", "sessions", "max_steps", "without",
                  "watchdog", "suppress_health_check", "allow_errors", "processes", "values", "messages")


@dataclass
class Gate:
    """One pytest process's way of running checks: every check of a worker
    goes through its gate."""

    profile: Profile
    report_dir: Path  # this worker's own directory
    database: Any = None
    base_seed: int = 0
    worker: str = "main"
    #: ``--sessioncheck-keep-going``: every check reports every distinct violation
    keep_going: bool = False
    _stream: random.Random | None = field(default=None, repr=False)

    @classmethod
    def from_options(cls, *, profile: str, root: Path, report_dir: str | None, db: str | None,
                     seed: int | None, worker: str = "main", keep_going: bool = False) -> "Gate":
        """``worker``: ``gw0``, ``gw1``, ... under pytest-xdist, ``main``
        without it.  ``db``: a directory, ``none``, or ``None`` for the
        profile's database; in ci a directory given here is read, never
        written (the seed alone decides what is generated after it)."""
        if profile not in PROFILES:
            raise ConfigError(f"unknown sessioncheck profile {profile!r}; choose {', '.join(PROFILES)}")
        hyp = hypothesis_profile(profile, root)
        base = PROFILES[profile]
        prof = Profile(base.name, base.budget, int(hyp.max_examples), base.deterministic, base.shrink_budget)
        if db is None:
            database = hyp.database
        elif db.lower() == "none":
            database = None
        else:
            from hypothesis.database import DirectoryBasedExampleDatabase, ReadOnlyDatabase

            database = DirectoryBasedExampleDatabase(str(Path(db)))
            if prof.deterministic:
                database = ReadOnlyDatabase(database)
        if seed is None:
            # ci: a fixed base, so the gate is the same on every run; fuzz:
            # a fresh one (the seed of each check is in its report)
            seed = 0 if prof.deterministic else random.SystemRandom().getrandbits(32)
        # each worker its own directory: no two processes write one file
        out = Path(report_dir) if report_dir else root / ".sessioncheck" / "reports" / "gate"
        return cls(prof, out / worker, database, seed, worker, keep_going)

    def seed_for(self, check_id: str) -> int:
        """ci: a function of the base seed and the check's identity; fuzz:
        the next seed of this worker's own stream."""
        if self.profile.deterministic:
            return zlib.crc32(f"{self.base_seed}|{check_id}".encode())
        if self._stream is None:
            self._stream = random.Random(f"{self.base_seed}|{self.worker}")
        return self._stream.getrandbits(32)

    def check(self, store: Any, check_id: str, *, properties: list | None = None, seed: int | None = None,
              **settings: Any) -> Result:
        """Run one check of ``store`` (a spec or a factory object) with
        ``settings`` (:data:`CHECK_KEYWORDS`; what is missing is the
        profile's or :func:`check_store`'s default) and ``seed`` (the
        check's own; by default :meth:`seed_for`); append what it found to
        ``properties`` (pytest's ``user_properties``: they reach the JUnit
        XML and, under xdist, the controlling process), then raise
        :class:`StoreViolation` if a store broke an invariant."""
        __tracebackhide__ = True
        unknown = sorted(set(settings) - set(CHECK_KEYWORDS))
        if unknown:
            raise ConfigError(f"unknown check setting {unknown[0]!r}; known: {', '.join(CHECK_KEYWORDS)}")
        from sessioncheck.specs import name_of

        name = store if isinstance(store, str) else name_of(store)
        seed = self.seed_for(check_id) if seed is None else seed
        kwargs: dict[str, Any] = dict(budget=self.profile.budget, examples=self.profile.max_examples,
                                      report_dir=self.report_dir, database=self.database,
                                      shrink_budget=self.profile.shrink_budget, keep_going=self.keep_going)
        kwargs.update({k: v for k, v in settings.items() if v is not None})
        props = properties if properties is not None else []
        import json

        model = {k: kwargs.get(k, d) for k, d in (("actors", "threads"), ("faults", ()), ("actor_count", 3),
                                                  ("sessions", 2), ("max_steps", 24), ("without", ()),
                                                  ("watchdog", 10.0))}
        if kwargs.get("processes"):  # task actors in processes: said only when set
            model["processes"] = kwargs["processes"]
        model = {k: list(v) if isinstance(v, tuple) else v for k, v in model.items()}
        for k in ("values", "messages"):  # named only when not the default, as before they existed
            if kwargs.get(k, "plain") != "plain":
                model[k] = kwargs[k]
        props += [("sessioncheck_store", name), ("sessioncheck_profile", self.profile.name),
                  ("sessioncheck_seed", seed), ("sessioncheck_worker", self.worker),
                  ("sessioncheck_model", json.dumps(model, sort_keys=True)),
                  ("sessioncheck_budget", kwargs["budget"]), ("sessioncheck_max_examples", kwargs["examples"])]
        from sessioncheck.health import HealthCheckFailed

        try:
            result = check_store(store, seed=seed, **kwargs)
        except StoreViolation as exc:
            _record(props, exc.result)
            raise
        except HealthCheckFailed as exc:
            props.append(("sessioncheck_health", "failed: " + ", ".join(exc.names)))
            raise
        _record(props, result)
        x = result.exploration
        if self.profile.deterministic and x.budget_exhausted and x.examples < kwargs["examples"]:
            import warnings

            warnings.warn(f"sessioncheck: the {kwargs['budget']:g} s ceiling ended the check of {name} after "
                          f"{x.examples} of {kwargs['examples']} examples, so this pass depends on the "
                          "machine's speed; lower the examples or raise the budget (--sessioncheck-examples, "
                          "--sessioncheck-budget)", stacklevel=2)
        return result


def _record(props: list, result: Result) -> None:
    import json

    x = result.exploration
    points = result.coverage.to_json()["points_per_operation"] if result.coverage is not None else {}
    health = "ok" if not result.suppressed else "suppressed: " + ", ".join(n for n, _ in result.suppressed)
    # plain strings and numbers only: user_properties travel from xdist
    # workers and into the JUnit XML
    props += [("sessioncheck_examples", x.examples), ("sessioncheck_interleavings", len(x.interleavings)),
              ("sessioncheck_seconds", round(x.seconds, 2)),
              ("sessioncheck_points", json.dumps(points, sort_keys=True)),
              ("sessioncheck_health", health)]
    if result.found:
        props += [("sessioncheck_invariant", result.outcome.violations[0].invariant),
                  ("sessioncheck_report", str(result.report_path.resolve()) if result.report_path else "")]
        if result.distinct:
            props.append(("sessioncheck_distinct", json.dumps([t.signature for t in result.distinct])))
