"""Named scenarios: fixed, replayable regressions with an expected outcome.

A scenario is one program of steps (``harness.program.Step``) that
replays one interleaving or fault a real bug needed, the actor mode it
runs in, and the outcome every store must show: ``pass``, or the
invariant it must report.  Stores a scenario does not name must pass it.

The registry is the fixed tuple ``scenarios.SCENARIOS``: a name given on
the command line is looked up there, never imported.

Marks instead of point counts
-----------------------------
A program counts preemption points ("advance B by 2"), and the points an
operation passes differ per store and even per library version: the
reference JSON store reads the session file at its 4th point with
filelock 3 and its 5th with filelock 4 (which first tries an exclusive
create of the lock file), praisonai's store takes its lock for reads too
and opens the directory before its temp file, SQLite reads inside one
transaction or not at all.  A scenario therefore says *where* an actor
stops, as an :class:`Until` step with a mark:

- ``"reading"``: just before the operation's first read of session data
  (a file read, or an SQL ``SELECT``): the next point is that read, where
  a ``fault`` step makes it fail;
- ``"read"``: past that read, and on up to just before its next lock or
  write: the actor now holds a copy of the session, and holds the lock
  only if the store reads under the lock it writes under;
- ``"created"``: just past the point where the operation created or
  truncated a data file (a temp file, or the session file opened for
  writing), or issued its first SQL write.

Before the real run, each mark is resolved to a point count by a
calibration run: the program up to the mark, then the actor advanced to
the end of its operation; the count is read off that run's trace.  Runs
are deterministic, so the real run reaches exactly the same points.  An
operation without such a point (an SQL ``persist_state`` that reads
nothing) gets a count of 0: the actor stays parked at its first point,
and the scenario's ``notes`` say what the run then means on that store.
The resolved program is part of the result, and the tests check on the
story of every run that the interleaving is the intended one.

Exit codes of the ``scenario`` verbs follow the project's rule with one
reading: what a scenario *finds* is an outcome other than the expected
one.  0: every outcome as expected (a known-bad store that shows its
bug is as expected); 1: at least one unexpected outcome (a correct store
broke, or a bad store no longer shows its bug, so the scenario lost its
power); 2: usage or configuration error.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Union

from .engine import INVARIANTS, Executor, MODES, Outcome
from .errors import ConfigError
from .program import ModelConfig, Step
from .store import Capabilities, probe, resolve
from .story import render
from .verify import steps_wording


@dataclass(frozen=True)
class Expect:
    """An expected outcome: ``invariant`` ``None`` means the run must pass
    (no violation, verdict not unknown); otherwise the run must report
    that invariant (others may come with it).  ``warning``, if given, is
    text one of the run's warnings must contain (an orphan temp file)."""

    invariant: str | None = None
    warning: str = ""

    def __post_init__(self) -> None:
        if self.invariant is not None and self.invariant not in INVARIANTS:
            raise ValueError(f"Expect: unknown invariant {self.invariant!r}; use one of {', '.join(INVARIANTS)}")

    def text(self) -> str:
        base = self.invariant or "pass"
        return f"{base}, warns '{self.warning}'" if self.warning else base


PASS = Expect()


def violates(invariant: str) -> Expect:
    return Expect(invariant)


@dataclass(frozen=True)
class Until:
    """Advance actor ``actor`` (an index) to ``mark`` in its current
    operation: ``"reading"``, ``"read"`` or ``"created"`` (see the module notes).  It must
    come after the start of that operation with no other step on the same
    actor in between; resolved to an ``advance`` before the run."""

    actor: int
    mark: str

    def __post_init__(self) -> None:
        if self.mark not in MARKS:
            raise ValueError(f"Until: unknown mark {self.mark!r}; use one of {', '.join(MARKS)}")


MARKS = ("reading", "read", "created")

ProgramStep = Union[Step, Until]


@dataclass(frozen=True)
class Scenario:
    """One named regression.

    ``program`` is a tuple of steps and :class:`Until` marks.
    ``expect`` maps store specs, as a user writes them after ``--store``,
    to their outcome; ``default`` is the outcome of every other store.
    ``notes`` maps a store spec to what the scenario means there when
    that differs from the story (shown under its story).
    """

    name: str
    doc: str
    mode: str
    config: ModelConfig
    program: tuple[ProgramStep, ...]
    expect: Mapping[str, Expect]
    default: Expect = PASS
    notes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Checked when the scenario module is imported, naming the fix.
        where = f"scenario {self.name!r}"
        if self.mode not in MODES:
            raise ValueError(f"{where}: mode must be one of {', '.join(MODES)}")
        kinds = {s.kind for s in self.program if isinstance(s, Step)}
        if "crash" in kinds and (self.mode != "processes" or not self.config.crash):
            raise ValueError(f"{where}: a crash step needs mode='processes' and config crash=True")
        if "fault" in kinds and not self.config.io_faults:
            raise ValueError(f"{where}: a fault step needs config io_faults")
        for i, s in enumerate(self.program):
            if s.actor >= self.config.actors:
                raise ValueError(f"{where}: step {i} names actor {chr(65 + s.actor)}, "
                                 f"but config has {self.config.actors} actors")
            if isinstance(s, Until):
                before = [p for p in self.program[:i] if p.actor == s.actor]
                if not before or not (isinstance(before[-1], Step) and before[-1].kind == "start"):
                    raise ValueError(f"{where}: step {i} (until {s.mark}) must follow the start of "
                                     f"actor {chr(65 + s.actor)}'s operation with no step on it in between")

    @property
    def title(self) -> str:
        return (self.doc or "").strip().splitlines()[0] if self.doc else self.name

    def expected(self, store: str) -> Expect:
        return self.expect.get(store, self.default)

    def needs(self) -> list[str]:
        """Capabilities the program calls."""
        fs = {s.op.f for s in self.program if isinstance(s, Step) and s.kind == "start" and s.op is not None}
        return [c for c, f in (("metadata", "persist"), ("delete", "delete")) if f in fs]


@dataclass
class ScenarioResult:
    scenario: Scenario
    store: str
    expected: Expect
    observed: str  # "pass", the invariants reported ("I1, I4"), "unknown" or "n/a"
    ok: bool
    story: str
    outcome: Outcome | None = None
    program: list[Step] = field(default_factory=list)  # with every mark resolved
    skipped: str = ""  # why the scenario does not apply to this store

    @property
    def verdict(self) -> str:
        if self.skipped:
            return "n/a"
        return "ok" if self.ok else "UNEXPECTED"


def all_scenarios() -> list[Scenario]:
    """Every registered scenario, in registry order."""
    import scenarios

    return list(scenarios.SCENARIOS)


def get(name: str) -> Scenario:
    """The scenario called ``name``, or :class:`ConfigError` listing the names."""
    for s in all_scenarios():
        if s.name == name:
            return s
    raise ConfigError(f"unknown scenario {name!r}; known scenarios: {', '.join(s.name for s in all_scenarios())}")


def run(scenario: Scenario, store: str, *, watchdog: float = 10.0) -> ScenarioResult:
    """Run ``scenario`` once against ``store`` and compare with what it
    must show.  Deterministic: the same scenario and store give the same
    story.  Raises :class:`ConfigError` for a store that cannot be
    resolved or opened."""
    spec = resolve(store)
    expected = scenario.expected(store)
    location = tempfile.mkdtemp(prefix="sessioncheck-scenario-probe-")
    try:
        caps: Capabilities = probe(spec, Path(location))
    finally:
        shutil.rmtree(location, ignore_errors=True)
    missing = [c for c in scenario.needs() if not getattr(caps, c)]
    if missing:
        why = f"store {store} does not declare {' or '.join(missing)}, which this scenario calls"
        return ScenarioResult(scenario, store, expected, "n/a", True,
                              f"scenario {scenario.name} on {store}: not applicable: {why}\n", skipped=why)
    cfg = replace(scenario.config, metadata=caps.metadata, delete=caps.delete)
    with Executor(spec, scenario.mode, cfg, watchdog=watchdog) as ex:
        program = resolve_marks(ex, scenario.program)
        outcome = ex.run(program)
    invariants = list(dict.fromkeys(v.invariant for v in outcome.violations))
    if invariants:
        observed = ", ".join(invariants)
    elif outcome.unknown:
        observed = "unknown"
    else:
        observed = "pass"
    if expected.invariant is None:
        ok = observed == "pass"
    else:
        ok = expected.invariant in invariants
    if expected.warning and not any(expected.warning in w for w in outcome.warnings):
        ok = False
    story = _tell(scenario, store, expected, observed, ok, outcome)
    return ScenarioResult(scenario, store, expected, observed, ok, story, outcome, program)


#: Enough points to finish any one operation of a store that is not
#: waiting for a lock (praisonai's persist is 16, an SQLite one 3-5).
_CALIBRATION_POINTS = 400


def resolve_marks(ex: Executor, program: tuple[ProgramStep, ...]) -> list[Step]:
    """``program`` with every :class:`Until` replaced by the ``advance``
    that reaches its mark on this store (or dropped when the count is 0),
    found by one calibration run per mark."""
    out: list[Step] = []
    for step in program:
        if isinstance(step, Step):
            out.append(step)
            continue
        probe_run = ex.run([*out, Step("advance", step.actor, points=_CALIBRATION_POINTS)])
        n = _points_to_mark(probe_run.trace, ex.names[step.actor], step.mark)
        if n:
            out.append(Step("advance", step.actor, points=n))
    return out


_SQL_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN")


def _points_to_mark(trace: list[dict], actor: str, mark: str) -> int:
    """How many points of ``actor``'s last operation before the end of the
    program (the one the calibration advanced) reach ``mark``."""
    starts = [i for i, e in enumerate(trace) if e["actor"] == actor and e["ev"] == "start"
              and e.get("call") not in ("open", "close")]
    if not starts:
        return 0
    points = []
    for e in trace[starts[-1] + 1:]:
        if e["actor"] != actor:
            continue
        if e["ev"] != "point" or e.get("busy"):
            break  # the operation ended, or waits for a lock: the mark is not reachable alone
        points.append(e)
    locks = {p["path"] for p in points if p["kind"] in ("flock", "flock-wait")}

    def sql(p: dict) -> str:
        return (p.get("detail") or "").split(" ")[0].upper() if p["kind"] == "sql" else ""

    def data_open_for_write(p: dict) -> bool:
        detail = p.get("detail") or ""
        return (p["kind"] == "open" and p["path"] not in locks and p["path"] != "."
                and ("w" in detail or "create" in detail))

    if mark == "created":
        for i, p in enumerate(points):
            if data_open_for_write(p) or sql(p) in _SQL_WRITES[:4]:
                return i + 1
        return 0
    first = next((i for i, p in enumerate(points)
                  if (p["kind"] == "read" and p["path"] not in locks) or sql(p) == "SELECT"), None)
    if first is None:
        return 0
    if mark == "reading":
        return first
    n = first + 1
    while n < len(points):
        p = points[n]
        if (p["kind"] in ("flock", "flock-wait", "lock", "lock-wait", "replace", "rename", "truncate", "unlink")
                or (p["kind"] == "open" and ("w" in (p.get("detail") or "") or "create" in (p.get("detail") or "")))
                or sql(p) in _SQL_WRITES):
            break
        n += 1
    return n


def check(name: str, store: str) -> tuple[bool, str]:
    """Run scenario ``name`` against ``store``: (outcome as expected, story).

    A scenario that does not apply to the store (it calls an operation the
    store does not declare) counts as as expected; its story says why."""
    r = run(get(name), store)
    return r.ok, r.story


def command(scenario: Scenario, store: str) -> str:
    import shlex

    return f"sessioncheck scenario {scenario.name} --store {shlex.quote(store)}"


def _tell(scenario: Scenario, store: str, expected: Expect, observed: str, ok: bool,
          outcome: Outcome) -> str:
    verdict = "as expected" if ok else "UNEXPECTED"
    shown = "passes" if observed == "pass" else ("verdict unknown" if observed == "unknown"
                                                  else f"{observed} violated")
    header = (f"scenario {scenario.name} on {store} ({scenario.mode} actors): {shown}; "
              f"expected {expected.text()}: {verdict}")
    for v in outcome.violations:
        v.summary = steps_wording(v.summary)
    text = render(header=header, trace=outcome.trace, ops=outcome.ops, violations=outcome.violations,
                  replay_command=command(scenario, store))
    extra = [f"Warning: {w}" for w in outcome.warnings]
    if outcome.unknown:
        extra.append(f"The checker ran out of budget: {outcome.unknown}")
    if expected.warning and not any(expected.warning in w for w in outcome.warnings):
        extra.append(f"Expected a warning containing '{expected.warning}'; none was given.")
    note = scenario.notes.get(store)
    if note:
        extra.append(f"Note: {note}")
    return text + ("\n".join(extra) + "\n" if extra else "")


# -- building programs --------------------------------------------------------
# Scenario modules write programs with these, naming actors by their letter
# as stories do ("A", "B"), so a program reads like the story it replays.


def _index(actor: str) -> int:
    if len(actor) != 1 or not "A" <= actor <= "Z":
        raise ValueError(f"actor must be a letter A-Z, not {actor!r}")
    return ord(actor) - ord("A")


def start(actor: str, f: str, session: int = 0, **fields: str) -> Step:
    """Begin ``f`` (add, persist, read, delete) on ``actor``; for persist,
    ``fields`` maps each key to a value kind: ``fresh`` (a new value
    ``v1``, ``v2``, ...), ``none`` (clear it) or ``empty`` (``''``).
    On a busy actor its current operation finishes first."""
    from .program import OpSpec

    return Step("start", _index(actor), OpSpec(f, session, tuple(fields.items())))


def advance(actor: str, points: int) -> Step:
    """Let ``actor`` perform up to ``points`` preemption points (fewer if
    its operation ends or it must wait for a lock)."""
    return Step("advance", _index(actor), points=points)


def finish(actor: str) -> Step:
    """Let ``actor`` run its current operation to its end (when nothing
    holds it back): an ``advance`` longer than any one operation."""
    return Step("advance", _index(actor), points=_CALIBRATION_POINTS)


def crash(actor: str) -> Step:
    """kill -9 of process actor ``actor`` before the point it is parked at."""
    return Step("crash", _index(actor))


def fault(actor: str, errno_name: str) -> Step:
    """The file call ``actor`` is parked at fails with ``errno_name``
    (EIO, ENOSPC, EACCES) instead of running; at a point that is not a
    file call (a lock, an SQL statement) nothing happens."""
    return Step("fault", _index(actor), errno_name=errno_name)


def until(actor: str, mark: str) -> Until:
    """Advance ``actor`` to ``mark`` (``"reading"``, ``"read"``, ``"created"``) in its
    current operation; see the module notes."""
    return Until(_index(actor), mark)
