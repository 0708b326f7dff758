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
    bounded and deterministic, for a gate that must not flake: at most
    ``max_examples`` examples (1000) under a time ceiling (120 s); the seed
    of a check is a function of the base seed and the check's identity, so
    the same test explores the same schedules on any xdist worker, in any
    order, with or without ``-n``.
``fuzz``
    long and random: a time budget (600 s per check) and no example bound;
    each worker draws its seeds from its own stream.

Each profile's Hypothesis side is a registered Hypothesis settings profile,
``sessioncheck-ci`` and ``sessioncheck-fuzz``, holding ``max_examples`` and
``database``.  The plugin registers them only if the project has not: a
``conftest.py`` that registers its own (for example with a shared Redis
database) wins.  Both use Hypothesis' example database, a directory
(``.sessioncheck/examples``) by default, so a failure found once is
replayed first the next time, before anything new is generated.
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
        path = result.report_path.resolve() if result.report_path else None
        super().__init__(result.story + (f"Report: {path}\n" if path else ""))
        self.result = result


def check_store(store: str, *, budget: float = 30.0, actors: str = "threads", faults: str = "",
                examples: int | None = None, seed: int | None = None,
                report_dir: str | os.PathLike | None = None, database: Any = None,
                shrink_budget: float = 10.0, suppress_health_check: Any = (),
                allow_errors: tuple[str, ...] | list[str] = ()) -> Result:
    """Explore ``store`` within the budget; raise :class:`StoreViolation`
    on a violation, return the :class:`Result` otherwise.

    A health check that fails (:mod:`sessioncheck.health`: the run tested
    too little to be a verdict) raises
    :class:`~sessioncheck.health.HealthCheckFailed` unless its name is in
    ``suppress_health_check``; so does a store that breaks the adapter
    contract (:class:`~sessioncheck.errors.ConfigError`).  ``allow_errors``:
    regular expressions; an exception whose "Type: message" (or that of one
    in its chain) matches one counts as "not acknowledged"
    (``--allow-errors``)."""
    __tracebackhide__ = True
    result = verify(store, mode=actors, faults=parse_faults(faults), budget=budget, max_examples=examples,
                    seed=seed, database=database, report_dir=Path(report_dir) if report_dir else None,
                    shrink_budget=shrink_budget, suppress_health_check=suppress_health_check,
                    allow_errors=tuple(allow_errors))
    if result.found:
        raise StoreViolation(result)
    return result


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
    with the defaults if the project has not registered its own."""
    from hypothesis import settings
    from hypothesis.database import DirectoryBasedExampleDatabase
    from hypothesis.errors import InvalidArgument

    key = f"sessioncheck-{name}"
    try:
        return settings.get_profile(key)
    except InvalidArgument:
        settings.register_profile(key, max_examples=PROFILES[name].max_examples,
                                  database=DirectoryBasedExampleDatabase(str(root / DEFAULT_DB)))
        return settings.get_profile(key)




@dataclass
class Gate:
    """One pytest process's way of running checks: every check of a worker
    goes through its gate."""

    profile: Profile
    report_dir: Path  # this worker's own directory
    database: Any = None
    budget: float | None = None  # overrides the profile's
    examples: int | None = None  # overrides the profile's
    base_seed: int = 0
    actors: str = "threads"
    faults: str = ""
    worker: str = "main"
    suppress_health_check: tuple = ()
    allow_errors: tuple = ()
    _stream: random.Random | None = field(default=None, repr=False)

    @classmethod
    def from_options(cls, *, profile: str, root: Path, report_dir: str | None, db: str | None,
                     budget: float | None, examples: int | None, seed: int | None, actors: str,
                     faults: str, worker: str = "main", suppress_health_check: Any = (),
                     allow_errors: Any = ()) -> "Gate":
        """``worker``: ``gw0``, ``gw1``, ... under pytest-xdist, ``main`` without it."""
        if profile not in PROFILES:
            raise ConfigError(f"unknown sessioncheck profile {profile!r}; choose {', '.join(PROFILES)}")
        if budget is not None and budget <= 0:
            raise ConfigError("--sessioncheck-budget must be a positive number of seconds")
        if examples is not None and examples < 1:
            raise ConfigError("--sessioncheck-examples must be at least 1")
        parse_faults(faults)
        from sessioncheck.health import parse_suppressed

        suppressed = tuple(sorted(parse_suppressed(suppress_health_check)))
        hyp = hypothesis_profile(profile, root)
        base = PROFILES[profile]
        prof = Profile(base.name, base.budget, int(hyp.max_examples), base.deterministic, base.shrink_budget)
        if db is None:
            database = hyp.database
        elif db.lower() == "none":
            database = None
        else:
            from hypothesis.database import DirectoryBasedExampleDatabase

            database = DirectoryBasedExampleDatabase(str(Path(db)))
        if seed is None:
            # ci: a fixed base, so the gate is the same on every run; fuzz:
            # a fresh one (the seed of each check is in its report)
            seed = 0 if prof.deterministic else random.SystemRandom().getrandbits(32)
        # each worker its own directory: no two processes write one file
        out = Path(report_dir) if report_dir else root / ".sessioncheck" / "reports" / "gate"
        from sessioncheck.controlled.refusals import compile_allowed

        try:
            compile_allowed(allow_errors)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return cls(prof, out / worker, database, budget, examples, seed, actors, faults, worker, suppressed,
                   tuple(allow_errors))

    def seed_for(self, check_id: str) -> int:
        """ci: a function of the base seed and the check's identity; fuzz:
        the next seed of this worker's own stream."""
        if self.profile.deterministic:
            return zlib.crc32(f"{self.base_seed}|{check_id}".encode())
        if self._stream is None:
            self._stream = random.Random(f"{self.base_seed}|{self.worker}")
        return self._stream.getrandbits(32)

    def check(self, store: str, check_id: str, *, properties: list | None = None, **overrides: Any) -> Result:
        """Run one check; append what it found to ``properties`` (pytest's
        ``user_properties``: they reach the JUnit XML and, under xdist, the
        controlling process), then raise :class:`StoreViolation` if a store
        broke an invariant."""
        __tracebackhide__ = True
        seed = overrides.pop("seed", None)
        seed = self.seed_for(check_id) if seed is None else seed
        kwargs = dict(budget=self.budget or self.profile.budget,
                      examples=self.examples or self.profile.max_examples,
                      actors=self.actors, faults=self.faults, seed=seed, report_dir=self.report_dir,
                      database=self.database, shrink_budget=self.profile.shrink_budget,
                      suppress_health_check=self.suppress_health_check, allow_errors=self.allow_errors)
        kwargs.update(overrides)
        props = properties if properties is not None else []
        props += [("sessioncheck_store", store), ("sessioncheck_profile", self.profile.name),
                  ("sessioncheck_seed", seed), ("sessioncheck_worker", self.worker)]
        from sessioncheck.health import HealthCheckFailed

        try:
            result = check_store(store, **kwargs)
        except StoreViolation as exc:
            _record(props, exc.result)
            raise
        except HealthCheckFailed as exc:
            props.append(("sessioncheck_health", ", ".join(exc.names)))
            raise
        _record(props, result)
        x = result.exploration
        if self.profile.deterministic and x.budget_exhausted and x.examples < kwargs["examples"]:
            import warnings

            warnings.warn(f"sessioncheck: the {kwargs['budget']:g} s ceiling ended the check of {store} after "
                          f"{x.examples} of {kwargs['examples']} examples, so this pass depends on the "
                          "machine's speed; lower --sessioncheck-examples or raise --sessioncheck-budget",
                          stacklevel=2)
        return result


def _record(props: list, result: Result) -> None:
    x = result.exploration
    props += [("sessioncheck_examples", x.examples), ("sessioncheck_interleavings", len(x.interleavings)),
              ("sessioncheck_seconds", round(x.seconds, 2))]
    if result.found:
        props += [("sessioncheck_invariant", result.outcome.violations[0].invariant),
                  ("sessioncheck_report", str(result.report_path.resolve()) if result.report_path else "")]
