"""Health checks: a search that tested nothing must not read as a pass.

As Hypothesis has them, each check looks at what an exploration reached
and fails the run (a :class:`HealthCheckFailed`, a configuration error:
exit 2) when the harness cannot have tested the store, unless the user
suppresses it by name (``--suppress-health-check NAME``, repeatable; the
pytest option ``--sessioncheck-suppress-health-check``; the
``suppress_health_check=`` keyword of ``check_store`` and the fixture).

The checks, by name:

``no_preemption_point``
    An operation type ran but never reached a preemption point: its I/O
    goes through something the interception layer does not see (memory, a
    network client, a C extension's own file access), so no interleaving
    of it was explored.  Under ``--actors tasks`` only awaits (and the
    I/O of helper threads) are points, so a synchronous store trips it
    there by design, and the message says so (:data:`TASKS_BLIND`).
``no_acknowledged_write``
    No ``add_message``, ``persist_state`` or ``delete_session`` was ever
    acknowledged: every one was refused or failed, so there was nothing
    for the invariants to lose.
``no_overlap``
    In no example did two operations overlap: nothing concurrent ran.
``too_few_distinct``
    Fewer than 10 % of the examples Hypothesis generated had a distinct
    interleaving (judged once there are at least
    :data:`MIN_EXAMPLES_FOR_DISTINCT`; the systematic pass before them
    tries small programs that share schedules by design).
``no_fault_injected``
    Faults were asked for (``--faults``) but no generated example injected
    one: the run is a plain search, not a test of crashes, I/O errors,
    server crashes or cancellation (judged once there are
    :data:`MIN_EXAMPLES_FOR_DISTINCT` generated examples).  A power loss is
    probed after every acknowledged write, not drawn as a step: it is not
    judged here.
``actor_vanished``
    The store ended its actor (``os._exit``, ``sys.exit``, a
    ``BaseException`` such as ``KeyboardInterrupt`` or ``GeneratorExit``
    escaping it, the process killed).  Suppressed, the run reports it as
    the I5 violation it found instead (exit 1); it is never a pass.

Everything here is a pure function of the exploration's
:class:`~sessioncheck.reporting.coverage.Coverage` (operations, points,
interleavings) and the :class:`Tally` of acknowledgements and overlaps,
both fed from the same ``on_example`` callback.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from sessioncheck.errors import ConfigError

NO_PREEMPTION_POINT = "no_preemption_point"
NO_ACKNOWLEDGED_WRITE = "no_acknowledged_write"
NO_OVERLAP = "no_overlap"
TOO_FEW_DISTINCT = "too_few_distinct"
ACTOR_VANISHED = "actor_vanished"
NO_FAULT_INJECTED = "no_fault_injected"

#: every check, in the order they are reported
ALL: tuple[str, ...] = (ACTOR_VANISHED, NO_PREEMPTION_POINT, NO_ACKNOWLEDGED_WRITE, NO_OVERLAP, TOO_FEW_DISTINCT,
                        NO_FAULT_INJECTED)

#: ``too_few_distinct`` judges only from this many examples on
MIN_EXAMPLES_FOR_DISTINCT = 50
#: ... and fires below this share of distinct interleavings
MIN_DISTINCT_SHARE = 0.10

WRITES = ("add", "persist", "delete", "pop", "clear", "rename")
#: the store's method behind each operation, for messages
METHOD = {"add": "add_message", "persist": "persist_state", "read": "read", "delete": "delete_session",
          "pop": "pop_message", "clear": "clear_messages", "rename": "rename_session"}
HOUSEKEEPING = ("open", "close")


class HealthCheckFailed(ConfigError):
    """A health check failed: the run tested too little to be a verdict.
    ``names`` lists the failed checks; ``str()`` says what and how to fix
    it, and the suppress name of each."""

    def __init__(self, store: str, failures: list[tuple[str, str]]) -> None:
        self.names = [n for n, _ in failures]
        lines = [f"health check failed for store {store!r}, so this run is not a verdict:"]
        lines += [f"  {name}: {text} (suppress with --suppress-health-check {name})" for name, text in failures]
        super().__init__("\n".join(lines))


def parse_suppressed(names: Iterable[str] | str | None) -> frozenset[str]:
    """Validate suppress names (a comma-separated string or an iterable of
    them); an unknown name is a :class:`ConfigError`.  ``all`` suppresses
    every check."""
    if names is None:
        return frozenset()
    if isinstance(names, str):
        names = [names]
    out: set[str] = set()
    for item in names:
        for name in str(item).split(","):
            name = name.strip().replace("-", "_")
            if not name:
                continue
            if name == "all":
                out.update(ALL)
            elif name not in ALL:
                raise ConfigError(f"unknown health check {name!r}; choose from {', '.join(ALL)} (or all)")
            else:
                out.add(name)
    return frozenset(out)


@dataclass
class Tally:
    """What :class:`Coverage` does not count: acknowledged and refused
    writes, and examples in which two operations overlapped."""

    examples: int = 0
    acknowledged: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    #: the first refusal's error per operation type, for the message
    first_refusal: dict[str, str] = field(default_factory=dict)
    overlapping: int = 0
    #: examples Hypothesis generated (after the systematic pass, whose
    #: small programs repeat schedules by design; programs rejected as
    #: repeats of a run done count too) and their distinct schedules
    generated: int = 0
    generated_schedules: set = field(default_factory=set)

    def observe(self, outcome: Any) -> None:
        self.examples += 1
        self.observe_trace(outcome.trace)

    def observe_trace(self, trace: list[dict]) -> None:
        running: set[str] = set()
        overlapped = False
        for e in trace:
            ev, actor = e.get("ev"), e.get("actor", "")
            if ev == "start":
                if e.get("call") not in HOUSEKEEPING:
                    if running - {actor}:
                        overlapped = True
                    running.add(actor)
            elif ev == "done":
                running.discard(actor)
                call = e.get("call")
                if call in WRITES:
                    if e.get("status") == "ok":
                        self.acknowledged += 1
                    else:
                        self.refused[call] = self.refused.get(call, 0) + 1
                        self.first_refusal.setdefault(call, str(e.get("error") or e.get("status")))
            elif ev in ("crash", "restart"):
                running.discard(actor)
        if overlapped:
            self.overlapping += 1

    def on_example(self, stats: Any) -> None:
        """``explore()``'s callback: observe ``stats.last``."""
        last = getattr(stats, "last", None)
        if last is not None:
            self.observe(last)
            if getattr(stats, "examples", 0) > getattr(stats, "systematic", 0):
                self.generated += 1
                self.generated_schedules.add(last.schedule_hash())


def vanished(outcome: Any) -> str | None:
    """The summary of the violation saying the store ended its actor, if
    the outcome has one."""
    if outcome is None:
        return None
    for v in outcome.violations:
        if v.invariant == "I5" and v.subject == "vanished":
            return v.summary
    return None


#: why an operation reached no point under ``--actors tasks``: there only
#: its awaits (and the I/O of helper threads it hands work to) can let
#: another task in, and a synchronous method has none
TASKS_BLIND = ("under --actors tasks only an await, or the I/O of a thread it hands work to, lets another task "
               "in, and it reached none: a synchronous method (a sync redis-py or psycopg client, plain file "
               "calls) runs there as one atomic step, and so does one that waits on its pool synchronously; "
               "run a synchronous store with --actors threads or processes, or give it async methods")


def failures(coverage: Any, tally: Tally, outcome: Any = None,
             faults: Iterable[str] = (), mode: str | None = None) -> list[tuple[str, str]]:
    """Every check that fails on this exploration, as ``(name, message)``.

    ``coverage`` is a :class:`~sessioncheck.reporting.coverage.Coverage`
    (``examples``, ``operations``, ``points``, ``interleavings``);
    ``faults`` the faults the run asked for (``--faults``); ``mode`` the
    actor mode, for the reason an operation reached no point.  With
    a found violation (``outcome``) only ``actor_vanished`` is judged: a
    real violation is a verdict however little else was reached."""
    out: list[tuple[str, str]] = []
    gone = vanished(outcome)
    if gone is not None:
        out.append((ACTOR_VANISHED, f"{gone}; a store must never end the process or thread that calls it, "
                                    "and nothing can be tested after it does"))
    if outcome is not None:
        return out
    examples = coverage.examples
    if examples == 0:
        out.append((NO_ACKNOWLEDGED_WRITE, "no example ran within the budget; raise --budget"))
        return out
    blind = [op for op, n in sorted(coverage.operations.items())
             if n and op not in HOUSEKEEPING and not coverage.points.get(op)]
    for op in blind:
        why = (TASKS_BLIND if mode == "tasks" else
               "its I/O is invisible to the harness (memory, a network client the harness does not know, a C "
               "extension's own file access), so no interleaving of it was explored; make the store do its I/O "
               "through Python's files, os, fcntl, sqlite3, redis-py or psycopg, or test it with sessioncheck "
               "stress")
        out.append((NO_PREEMPTION_POINT,
                    f"{METHOD.get(op, op)} ran {coverage.operations[op]} times and never reached a preemption "
                    f"point: {why}"))
    if tally.acknowledged == 0:
        why = "; ".join(f"{METHOD.get(op, op)}: {text}" for op, text in sorted(tally.first_refusal.items()))
        out.append((NO_ACKNOWLEDGED_WRITE,
                    f"no write was acknowledged in {examples} examples: every add_message/persist_state was "
                    f"refused or failed ({why or 'none ran'}); check the store's configuration (a lock that "
                    "always times out, a read-only location)"))
    # judged once Hypothesis generated examples of its own: the systematic
    # pass runs operations to a preemption point after an effect, and on a
    # store whose every operation is one atomic command (a Redis MULTI/EXEC)
    # that is never mid-operation, rightly, since nothing can come between
    if tally.overlapping == 0 and tally.generated >= MIN_EXAMPLES_FOR_DISTINCT:
        out.append((NO_OVERLAP, f"in none of {examples} examples did two operations overlap, so nothing "
                                "concurrent was tested; run more examples (the first ones try each operation "
                                "alone), use more than one actor (--actor-count), and let operations reach "
                                "preemption points"))
    # judged on the generated examples: the systematic pass tries small
    # programs that share schedules by design
    judged = tally.generated
    distinct = len(tally.generated_schedules)
    if judged >= MIN_EXAMPLES_FOR_DISTINCT and distinct < MIN_DISTINCT_SHARE * judged:
        out.append((TOO_FEW_DISTINCT, f"only {distinct} of {judged} generated examples had a distinct interleaving "
                                      f"(fewer than {MIN_DISTINCT_SHARE:.0%}); the model is too small "
                                      "(--max-steps, --actor-count, --sessions) to explore anything new"))
    # a power loss is not a step: it is probed after every acknowledged
    # write (no_acknowledged_write covers a run with none)
    asked = [f for f in faults if f and f != "power-loss"]
    if (asked and tally.generated >= MIN_EXAMPLES_FOR_DISTINCT
            and not (getattr(coverage, "faults", 0) or getattr(coverage, "crashes", 0))):
        out.append((NO_FAULT_INJECTED, f"--faults {','.join(asked)} was asked for, but none of {examples} examples "
                                       "injected a fault, so no fault was tested; a fault applies at an operation's "
                                       "preemption points (a crash, a power loss, an I/O error at a file call, a "
                                       "cancellation at an await): check that the store reaches them, or raise "
                                       "--examples"))
    return out


def check(store: str, coverage: Any, tally: Tally | None, outcome: Any = None,
          suppressed: Iterable[str] = (), found: list[tuple[str, str]] | None = None,
          faults: Iterable[str] = (), mode: str | None = None) -> list[tuple[str, str]]:
    """Raise :class:`HealthCheckFailed` for every failing check not
    suppressed; return the suppressed failures (for a summary line).
    ``found``: failures already judged (``stress``) instead of
    :func:`failures` of the coverage."""
    skip = frozenset(suppressed)
    if found is None:
        found = failures(coverage, tally or Tally(), outcome, faults, mode)
    live = [f for f in found if f[0] not in skip]
    if live:
        raise HealthCheckFailed(store, live)
    return found


def stress_failures(result: Any) -> list[tuple[str, str]]:
    """The checks that apply to a free-running ``stress`` run (a
    :class:`~sessioncheck.stress.runner.StressResult`): ``actor_vanished``,
    ``no_acknowledged_write`` and ``no_overlap`` (in real time).  A run
    with a violation is judged on ``actor_vanished`` only."""
    out: list[tuple[str, str]] = []
    for text in getattr(result, "vanished", []):
        out.append((ACTOR_VANISHED, f"{text}: a store must never end the process or thread that calls it, "
                                    "and nothing that actor did after it was tested"))
    if result.verdict == "violation":
        return out
    from sessioncheck.checking.history import pair

    ops = [o for o in pair(result.events) if o.process != "final"]
    writes = [o for o in ops if o.f in WRITES]
    if writes and not any(o.status == "ok" for o in writes):
        first = next((o.error for o in writes if o.error), "refused")
        out.append((NO_ACKNOWLEDGED_WRITE, f"none of {len(writes)} writes was acknowledged: every "
                                           f"add_message/persist_state was refused or failed (first: {first}); "
                                           "check the store's configuration (a lock that always times out, "
                                           "a read-only location)"))
    spans = sorted((o.start, o.end, o.process) for o in ops)
    overlapped = False
    latest: dict[str, float] = {}
    for start, end, proc in spans:
        if any(e > start for p, e in latest.items() if p != proc):
            overlapped = True
            break
        latest[proc] = max(latest.get(proc, start), end)
    if ops and not overlapped:
        out.append((NO_OVERLAP, f"in {len(ops)} operations no two overlapped in time, so nothing concurrent "
                                "was tested; use more actors (--threads, --processes)"))
    return out
