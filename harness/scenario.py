"""Named scenarios: fixed, replayable regressions with an expected outcome.

A scenario is one program of steps (``sessioncheck.controlled.program.Step``) that
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
  writing), first wrote to one in place (``os.pwrite`` on a cached fd),
  or issued its first SQL write.

Before the real run, each mark is resolved to a point count by a
calibration run: the program up to the mark, then the actor advanced to
the end of its operation; the count is read off that run's trace.  Runs
are deterministic, so the real run reaches exactly the same points.  An
operation without such a point (an SQL ``persist_state`` that reads
nothing) gets a count of 0: the actor stays parked at its first point,
and the scenario's ``notes`` say what the run then means on that store.
The resolved program is part of the result, and the tests check on the
story of every run that the interleaving is the intended one.  A file
store whose operation ends without the point a mark names (it reads
through an ``mmap``, say) cannot be told where to stop: that is a
configuration error (exit 2), never a step silently dropped.

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

from sessioncheck.controlled.engine import Executor, Outcome
from sessioncheck.errors import ConfigError
from sessioncheck.controlled.program import Step
from sessioncheck.protocol import Capabilities
from sessioncheck.specs import probe, resolve
from sessioncheck.reporting.story import render
from sessioncheck.verify import steps_wording
from sessioncheck.regression import _CALIBRATION_POINTS, Expect, ProgramStep, Scenario


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
    from sessioncheck.scenarios import SCENARIOS

    return list(SCENARIOS)


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
    file_faults = scenario.config.power_loss or bool(scenario.config.io_faults)
    if missing or (file_faults and spec.resources):
        why = (f"store {store} does not declare {' or '.join(missing)}, which this scenario calls" if missing
               else f"store {store} keeps its data in a {spec.resources[0]} server, which this scenario's "
                    "file fault does not reach")
        return ScenarioResult(scenario, store, expected, "n/a", True,
                              f"scenario {scenario.name} on {store}: not applicable: {why}\n", skipped=why)
    cfg = replace(scenario.config, metadata=caps.metadata, delete=caps.delete,
                  pop=caps.pop, clear=caps.clear, rename=caps.rename)
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


def resolve_marks(ex: Executor, program: tuple[ProgramStep, ...]) -> list[Step]:
    """``program`` with every :class:`Until` replaced by the ``advance``
    that reaches its mark on this store (or dropped when the count is 0),
    found by one calibration run per mark.

    Raises :class:`ConfigError` when an operation ran to its end without
    a point the mark names: the store does that part of its work through
    calls the harness does not intercept (an ``mmap``, a C extension), so
    the scenario cannot place its step, and a run without it would test
    another interleaving than the one the scenario is about.  SQL is the
    exception: every statement is a point, so an operation without a
    ``SELECT`` reads nothing, and its count is 0 (see the module notes)."""
    out: list[Step] = []
    for step in program:
        if isinstance(step, Step):
            out.append(step)
            continue
        probe_run = ex.run([*out, Step("advance", step.actor, points=_CALIBRATION_POINTS)])
        name = ex.names[step.actor]
        n = _points_to_mark(probe_run.trace, name, step.mark)
        if n is None:
            raise ConfigError(f"scenario step until({name!r}, {step.mark!r}): {_UNPLACEABLE[step.mark]}; "
                              "the scenario cannot place this step on this store (check that the store "
                              "opens and reads its files with open(), os.open/os.read/os.pread or sqlite3)")
        if n:
            out.append(Step("advance", step.actor, points=n))
    return out


_UNPLACEABLE = {
    "reading": "this store never reads the session file through an intercepted call",
    "read": "this store never reads the session file through an intercepted call",
    "created": "this store never creates or truncates a data file through an intercepted call",
}

_SQL_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN")


def _points_to_mark(trace: list[dict], actor: str, mark: str) -> int | None:
    """How many points of ``actor``'s last operation before the end of the
    program (the one the calibration advanced) reach ``mark``: 0 when the
    operation waits for a lock before it (the actor stays parked), None
    when it ran to its end without such a point (and is not SQL).

    Recorded accesses (a private temporary file's, ``recorded`` in the
    trace) are no points: the count is of real points, and a mark at a
    recorded access is reached at the first point after it."""
    n = _entries_to_mark(trace, actor, mark)
    if not n:
        return n
    ops = [i for i, e in enumerate(trace) if e["actor"] == actor and e["ev"] == "start"
           and e.get("call") not in ("open", "close")]
    mine = [e for e in trace[ops[-1] + 1:] if e["actor"] == actor][:n]
    return sum(1 for e in mine if not e.get("recorded"))


def _entries_to_mark(trace: list[dict], actor: str, mark: str) -> int | None:
    """:func:`_points_to_mark` counted in trace entries, recorded ones too."""
    starts = [i for i, e in enumerate(trace) if e["actor"] == actor and e["ev"] == "start"
              and e.get("call") not in ("open", "close")]
    if not starts:
        return 0
    points = []
    blocked = False
    for e in trace[starts[-1] + 1:]:
        if e["actor"] != actor:
            continue
        if e["ev"] != "point" or e.get("busy"):
            # the operation ended, or waits for a lock: the mark is not reachable alone
            blocked = e["ev"] != "done"
            break
        points.append(e)
    else:
        blocked = True  # still running when the calibration stopped
    locks = {p["path"] for p in points if p["kind"] in ("flock", "flock-wait")}

    def sql(p: dict) -> str:
        return (p.get("detail") or "").split(" ")[0].upper() if p["kind"] == "sql" else ""

    def redis(p: dict) -> str:
        """``read`` or ``write`` for a Redis command point, else empty."""
        if p["kind"] != "redis":
            return ""
        from sessioncheck.servers.redis_commands import is_write

        return "write" if is_write(p.get("detail") or "") else "read"

    def data_open_for_write(p: dict) -> bool:
        detail = p.get("detail") or ""
        return (p["kind"] == "open" and p["path"] not in locks and p["path"] != "."
                and ("w" in detail or "create" in detail))

    # a statement or a server command is atomic where it runs: an operation
    # made only of them has nothing to stop between (count 0), unlike a
    # store whose file I/O the harness cannot see (None: a loud error)
    missing = 0 if blocked or any(p["kind"] in ("sql", "redis") for p in points) else None
    if mark == "created":
        for i, p in enumerate(points):
            # an in-place writer (os.pwrite on a cached fd) changes its data file at its first write
            in_place = p["kind"] in ("write", "truncate") and p["path"] not in locks
            if data_open_for_write(p) or in_place or sql(p) in _SQL_WRITES[:4] or redis(p) == "write":
                return i + 1
        return missing
    first = next((i for i, p in enumerate(points)
                  if (p["kind"] == "read" and p["path"] not in locks) or sql(p) == "SELECT"
                  or redis(p) == "read"), None)
    if first is None:
        return missing
    if mark == "reading":
        return first
    n = first + 1
    while n < len(points):
        p = points[n]
        if (p["kind"] in ("flock", "flock-wait", "lock", "lock-wait", "replace", "rename", "truncate", "unlink",
                          "write")
                or (p["kind"] == "open" and ("w" in (p.get("detail") or "") or "create" in (p.get("detail") or "")))
                or sql(p) in _SQL_WRITES or redis(p) == "write"):
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
