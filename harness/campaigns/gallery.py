"""The mutant gallery as a measurement: which store runs in which mode, and
the runner that turns seeded searches into the headline table.

Design notes
------------
The *plan* says, for every mutant in ``store_impl/``, the actor modes and
faults under which its bug can show (``store_impl/mutants/GALLERY.md`` and each
mutant's docstring) and the invariants a catch may name.  Every correct
store runs in every actor mode and must never be flagged; so must a mutant
in a mode where its bug cannot show (``thread-lock-only`` with thread
actors): those rows are *controls*.

The plan knows nothing about how a bug is found: every case is one plain
:func:`sessioncheck.verify.verify` per seed, with the same model and strategy a
user gets from ``sessioncheck run``.  A mutant without a plan entry is a
configuration error, not a silent gap in the table.

A *catch* counts only if the first violation names one of the invariants
the plan expects: a mutant flagged for the wrong reason is a harness bug or
a wrong plan, and the table says so instead of counting it.
"""
from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable

from sessioncheck.errors import ConfigError
from sessioncheck.specs import BUILTIN, SERVER_BACKED, mutant_names

if TYPE_CHECKING:
    from sessioncheck.controlled.program import ModelConfig

ACTOR_MODES = ("threads", "processes", "mixed")
ANY = ACTOR_MODES  # threads, processes and mixed all show it
#: Task actors in two processes, an event loop each (``--actors tasks
#: --processes 2``): a mode name of the plan, run as mode ``tasks`` with
#: ``ModelConfig.task_processes`` = 2 (:attr:`Case.processes`).
TASKS_2P = "tasks-2p"
#: the plan's mode names besides ACTOR_MODES
TASK_MODES = ("tasks", TASKS_2P)
#: Controls with task actors (``--actors tasks``, and in two processes):
#: the native async reference store, with and without cancellations, and
#: the mutant whose asyncio.Lock is correct among tasks of one loop.
TASK_CONTROLS = (("async-json", (), "tasks"), ("async-json", ("cancel",), "tasks"),
                 ("mutant:asyncio-lock-only", (), "tasks"),
                 ("async-json", (), TASKS_2P), ("async-json", ("cancel",), TASKS_2P))


@dataclass(frozen=True)
class MutantPlan:
    """Where one mutant's bug can show and what a catch must name."""

    modes: tuple[str, ...]  # actor modes with no faults
    expect: tuple[str, ...]  # invariants the first violation may name there
    faulted: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()  # (mode, faults, expect) rows
    resources: tuple[str, ...] = ()  # servers the store needs (its ``resources``): skipped where they cannot run


#: One entry per mutant (``store_impl/mutants/<name>.py``).  Modes follow the
#: "modes / faults where it shows" column of ``store_impl/mutants/GALLERY.md``;
#: mixed runs process and thread actors together, so a bug that shows with
#: processes shows there too.
PLAN: dict[str, MutantPlan] = {
    # The stale copy holds the metadata too: a concurrent persist is undone (I3).
    "stale-overwrite": MutantPlan(ANY, ("I1", "I3")),
    "none-skipped": MutantPlan(ANY, ("I3",)),
    "unlocked-rmw": MutantPlan(ANY, ("I1", "I3")),
    "thread-lock-only": MutantPlan(("processes", "mixed"), ("I1", "I3")),
    # Torn reads without faults (a read that returns a torn state is I4, one
    # that raises on it, which it never does alone, E1); after a crash or a
    # power loss the session (never created durably: no directory fsync) is gone.
    "non-atomic-write": MutantPlan(ANY, ("I4", "E1", "I1"), faulted=(
        ("processes", ("crash",), ("I1", "I4", "I6", "E1")),
        ("threads", ("power-loss",), ("I6", "I1", "I4", "E1")))),
    # Two bugs: a torn read (E1 when the read raises on it, I4) and an
    # unlocked append (I1; a persist it overwrites, I3).
    "torn-and-lost": MutantPlan(ANY, ("I1", "I3", "I4", "E1")),
    "no-fsync": MutantPlan((), (), faulted=(("threads", ("power-loss",), ("I6", "I1", "I4")),
                                            ("processes", ("power-loss",), ("I6", "I1", "I4")))),
    "eio-empty": MutantPlan((), (), faulted=(("threads", ("io-error",), ("I6", "I1")),
                                             ("processes", ("io-error",), ("I6", "I1")))),
    "lock-unlinked": MutantPlan(ANY, ("I1", "I3")),
    "read-outside-lock": MutantPlan(ANY, ("I1", "I3")),
    "stale-cache": MutantPlan(ANY, ("I1", "I3")),
    "cached-read": MutantPlan(ANY, ("I1", "I3")),
    "one-file-all-sessions": MutantPlan(ANY, ("I1", "I3")),
    "delete-unlocked": MutantPlan(ANY, ("I1", "I3")),
    # pop and clear (capabilities.pop, .clear): an append racing them is lost
    # or a cleared message comes back (I1); the clear's stale metadata (I3),
    # and the pop's: it writes back the whole session it read, so a
    # persist_state landing in between is reverted too
    "pop-races-append": MutantPlan(ANY, ("I1", "I3")),
    "clear-unlocked": MutantPlan(ANY, ("I1", "I3")),
    # rename (capabilities.rename) writing back the whole stale metadata:
    # a persist it raced reverts (I3)
    "rename-overwrites-metadata": MutantPlan(ANY, ("I3",)),
    # message shapes (Capabilities.message_kinds, message_identity): a merge
    # that drops tool messages; an idempotent append keyed by content (I1)
    "merge-drops-tool-messages": MutantPlan(ANY, ("I1",)),
    "dedupe-by-content": MutantPlan(ANY, ("I1",)),
    "swallowed-timeout": MutantPlan(ANY, ("I3", "I6")),
    "stale-history-replace": MutantPlan(ANY, ("I1",)),
    "silent-truncate": MutantPlan(ANY, ("I1",)),
    "sqlite-rmw": MutantPlan(ANY, ("I1", "I3")),
    # Two instances opening a new database both find no table: the second
    # CREATE TABLE raises, which it never does alone (E1).
    "create-race": MutantPlan(ANY, ("E1",)),
    # Server-backed (a private redis-server): no file faults apply.
    "redis-get-set": MutantPlan(ANY, ("I1", "I3"), resources=("redis",)),
    "redis-watch-ignored": MutantPlan(ANY, ("I1", "I3"), resources=("redis",)),
    # A "None" read back is a value nobody wrote (I4) or a clear undone (I3).
    "redis-none-string": MutantPlan(ANY, ("I4", "I3"), resources=("redis",)),
    # Persistence off: only a server crash loses what it acknowledged (I6;
    # the final read misses it too, I1/I3).
    "redis-aof-off": MutantPlan((), (), faulted=(("threads", ("server-crash",), ("I6", "I1", "I3")),
                                                 ("processes", ("server-crash",), ("I6", "I1", "I3"))),
                                resources=("redis",)),
    # The read-modify-write runs in a helper thread (a pool, asyncio.to_thread).
    "executor-rmw": MutantPlan(ANY, ("I1", "I3")),
    "to-thread-rmw": MutantPlan(("tasks", TASKS_2P, *ANY), ("I1", "I3")),
    # Async stores (asyncio tasks of one loop as actors: --actors tasks).
    "async-stale-write": MutantPlan(("tasks", TASKS_2P, *ANY), ("I1", "I3")),
    # One loop's asyncio.Lock: holds among tasks of one loop (a control
    # there, TASK_CONTROLS), not among tasks of two processes.
    "asyncio-lock-only": MutantPlan((TASKS_2P, *ANY), ("I1", "I3")),
    "async-none-skipped": MutantPlan(("tasks", TASKS_2P, *ANY), ("I3", "I1")),
    # Torn by a cancellation at the await between truncate and write.
    "cancel-torn": MutantPlan((), (), faulted=(("tasks", ("cancel",), ("I4", "I1", "E1")),
                                               (TASKS_2P, ("cancel",), ("I4", "I1", "E1")))),
    "sqlalchemy-rmw": MutantPlan(ANY, ("I1", "I3")),
    # Below Python's file objects: a cached fd rewritten in place (a torn
    # read between pwrite and ftruncate is I4), and paths relative to a dir fd.
    "pread-rmw": MutantPlan(ANY, ("I1", "I3", "I4", "E1")),
    "dir-fd-rmw": MutantPlan(ANY, ("I1", "I3")),
    "fsync-before-write": MutantPlan((), (), faulted=(("threads", ("power-loss",), ("I6", "I4", "I1")),
                                                      ("processes", ("power-loss",), ("I6", "I4", "I1")))),
    # Opening interleaves with other writers; closing happens before the
    # final read (one actor is enough for stale-close).
    "compact-in-init": MutantPlan(ANY, ("I1", "I3")),
    "stale-close": MutantPlan(ANY, ("I1", "I3")),
    # POSIX record locks exclude processes, never threads of one process.
    "lockf-threads": MutantPlan(("threads",), ("I1", "I3")),
    # Server-backed (a private PostgreSQL): no file faults apply.
    "postgres-select-update": MutantPlan(ANY, ("I1", "I3"), resources=("postgres",)),
    "postgres-strip-nulls": MutantPlan(ANY, ("I3",), resources=("postgres",)),
    "postgres-wrong-row-lock": MutantPlan(ANY, ("I1",), resources=("postgres",)),
    # SQLAlchemy over psycopg2: a lost metadata update (I3), or an append
    # whose stale counter the primary key refuses, only beside another (E1).
    "sqlalchemy-postgres-rmw": MutantPlan(ANY, ("I3", "E1", "I1"), resources=("postgres",)),
    # Its session's commits are acknowledged before the WAL flush: only a
    # server crash shows it (I6, from the session's setting at each commit).
    "postgres-async-commit": MutantPlan((), (), faulted=(("threads", ("server-crash",), ("I6", "I1", "I3")),
                                                         ("processes", ("server-crash",), ("I6", "I1", "I3"))),
                                        resources=("postgres",)),
}


#: Faults every correct store must survive: an I/O error is reported, a
#: kill -9 loses nothing acknowledged, and neither does a power loss.
CONTROL_FAULTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("threads", ("io-error",)), ("processes", ("crash",)), ("threads", ("power-loss",)))
#: Stores whose file I/O happens inside a C library (SQLite's), below
#: every file call an I/O error is injected at: an io-error control would
#: inject nothing (the no_fault_injected health check says so), so it is
#: not a control there.
NO_FILE_CALLS = ("sqlite", "sqlite-checked-create")
#: The faults that apply to a server-backed store (io-error and power-loss
#: model the store's own files): a writer killed mid-operation.
SERVER_CONTROL_FAULTS: tuple[tuple[str, tuple[str, ...]], ...] = (("processes", ("crash",)),)
#: Opt-in controls (:func:`plan` ``server_crash=True``, ``sessioncheck
#: gallery --server-crash``): the reference server-backed stores under
#: ``--faults server-crash`` (a kill -9 of their server and a restart from
#: its files; what they acknowledged must survive, I6).  Left out of the
#: default plan: a server restart per crash keeps a run near 4 examples a
#: second, so a control that proves something costs minutes, too slow for
#: every gallery run in CI.
SERVER_CRASH_STORES = ("redis", "postgres")
SERVER_CRASH_CONTROLS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("threads", ("server-crash",)), ("processes", ("server-crash",)))


@dataclass(frozen=True)
class Case:
    """One row of the table: a store in one mode, with or without faults.

    ``expect`` empty means the store must *not* be flagged (a correct store,
    or a mutant in a mode where its bug cannot show)."""

    store: str
    mode: str
    faults: tuple[str, ...] = ()
    expect: tuple[str, ...] = ()
    #: task actors in this many processes (mode ``tasks``; 0: one loop)
    processes: int = 0

    @classmethod
    def of(cls, store: str, mode: str, faults: tuple[str, ...] = (), expect: tuple[str, ...] = ()) -> "Case":
        """A case from a plan's mode name (``tasks-2p``: tasks in two processes)."""
        if mode == TASKS_2P:
            return cls(store, "tasks", faults, expect, processes=2)
        return cls(store, mode, faults, expect)

    @property
    def mutant(self) -> bool:
        return bool(self.expect)

    @property
    def mode_name(self) -> str:
        """The plan's name of its mode: ``tasks-2p`` for tasks in two processes."""
        return f"tasks-{self.processes}p" if self.processes else self.mode

    @property
    def label(self) -> str:
        return self.mode_name + "".join(f"+{f}" for f in self.faults)

    def model(self, spec) -> "ModelConfig":
        """The model :func:`~sessioncheck.verify.model_config` gives the store
        in this case's mode (with its task processes)."""
        from sessioncheck.controlled.program import ModelConfig
        from sessioncheck.verify import model_config

        return model_config(spec, self.mode, self.faults, ModelConfig(task_processes=self.processes))

    @property
    def name(self) -> str:
        return self.store.removeprefix("mutant:")


def correct_stores() -> list[str]:
    """The reference stores that must pass everywhere (server-backed too)."""
    return [*BUILTIN, *SERVER_BACKED]


def unavailable() -> dict[str, str]:
    """Server-backed stores of the gallery that cannot run here (the server
    is not installed), each with the reason: their cases are left out of
    :func:`plan`, and a front end says so."""
    from sessioncheck import servers

    out: dict[str, str] = {}
    needs = {f"mutant:{m}": p.resources for m, p in PLAN.items() if p.resources}
    for store in SERVER_BACKED:
        try:
            from sessioncheck.specs import resolve

            needs[store] = resolve(store).resources
        except ConfigError as exc:  # its client library is missing
            out[store] = str(exc)
    for store, names in needs.items():
        why = next((w for w in (servers.unavailable(n) for n in names) if w), "")
        if why:
            out[store] = why
    return out


def plan(only: Iterable[str] = (), modes: Iterable[str] = (), server_crash: bool = False) -> list[Case]:
    """Every case of the gallery, mutants first, in a stable order.

    ``only`` keeps the cases whose store name (``stale-overwrite``,
    ``mutant:stale-overwrite``, ``json``) is listed, ``modes`` those whose
    actor mode is listed; an unknown name is a :class:`ConfigError`.
    ``server_crash`` adds the opt-in controls :data:`SERVER_CRASH_CONTROLS`
    of the stores :data:`SERVER_CRASH_STORES` (never there without it)."""
    mutants = mutant_names()
    missing = [m for m in mutants if m not in PLAN]
    if missing:
        raise ConfigError(f"mutant {missing[0]!r} has no entry in harness/campaigns/gallery.py PLAN: "
                          "add the modes and faults where its bug shows")
    cases: list[Case] = []
    for m in mutants:
        p = PLAN[m]
        spec = f"mutant:{m}"
        cases += [Case.of(spec, mode, (), p.expect) for mode in p.modes]
        cases += [Case.of(spec, mode, faults, expect) for mode, faults, expect in p.faulted]
    for store in correct_stores():
        cases += [Case(store, mode) for mode in ACTOR_MODES]
        faults_ = SERVER_CONTROL_FAULTS if store in SERVER_BACKED else CONTROL_FAULTS
        cases += [Case(store, mode, faults) for mode, faults in faults_
                  if not (store in NO_FILE_CALLS and "io-error" in faults)]
        if server_crash and store in SERVER_CRASH_STORES:
            cases += [Case(store, mode, faults) for mode, faults in SERVER_CRASH_CONTROLS]
    # Controls: a mutant in an actor mode where its bug cannot show must
    # pass like a correct store (only bugs that need no fault qualify).
    for m in mutants:
        p = PLAN[m]
        if p.modes:
            cases += [Case(f"mutant:{m}", mode) for mode in ACTOR_MODES if mode not in p.modes]
    cases += [Case.of(store, mode, faults) for store, faults, mode in TASK_CONTROLS]
    skipped = unavailable()
    cases = [c for c in cases if c.store not in skipped]
    if only:
        wanted = {o.removeprefix("mutant:") for o in only}
        known = {c.name for c in cases}
        unknown = sorted(wanted - known)
        if unknown:
            raise ConfigError(f"--only {unknown[0]!r}: no such store in the gallery; known: "
                              f"{', '.join(sorted(known))}")
        cases = [c for c in cases if c.name in wanted]
    modes = set(modes)
    if modes:
        bad = sorted(modes - {*ACTOR_MODES, *TASK_MODES})
        if bad:
            raise ConfigError(f"--modes {bad[0]!r}: choose from {', '.join((*ACTOR_MODES, *TASK_MODES))}")
        cases = [c for c in cases if c.mode_name in modes]
    return cases


@dataclass
class Attempt:
    """One seed of one case."""

    seed: int
    found: bool = False
    invariant: str = ""
    summary: str = ""
    examples: int = 0
    seconds: float = 0.0  # the whole call, shrinking included
    first_failure_example: int | None = None
    first_failure_seconds: float | None = None
    steps: int | None = None  # numbered lines in the (shrunk) story
    unknown: int = 0  # examples whose verdict the checker could not decide
    error: str = ""  # the engine refused the case (a configuration error)
    by: str = ""  # what found it: "systematic" (the pass) or "random"


def run_attempt(case: Case, seed: int, budget: float, shrink_runs: int,
                max_examples: int | None = None, systematic: bool = True) -> Attempt:
    """One seeded search of one case; never raises for a store's behaviour
    (a case the engine refuses as configured is recorded in ``error``).

    The same executor and search :func:`sessioncheck.verify.verify` uses, minus
    the report and story: the gallery needs the numbers, and bounds
    shrinking by ``shrink_runs`` store runs (a seeded search's only bound),
    since shrinking, not the search, dominates a catch's cost."""
    import time

    from sessioncheck.controlled.engine import Executor
    from sessioncheck.controlled.search import explore
    from sessioncheck.specs import resolve
    from sessioncheck.reporting.story import segments
    from sessioncheck.verify import model_config

    t0 = time.monotonic()
    try:
        spec = resolve(case.store)
        model = case.model(spec)
        with Executor(spec, case.mode, model) as ex:
            x = explore(ex, budget=budget, max_examples=max_examples, seed=seed, shrink_runs=shrink_runs,
                        systematic=systematic)
    except ConfigError as exc:  # a plan the engine refuses: a red row, not a crash of the table
        return Attempt(seed, error=f"cannot run: {exc}")
    a = Attempt(seed, examples=x.examples, seconds=time.monotonic() - t0, unknown=x.unknown,
                first_failure_example=x.first_failure_example, first_failure_seconds=x.first_failure_seconds)
    if x.outcome is not None:
        v = x.outcome.violations[0]
        a.found, a.invariant, a.summary = True, v.invariant, v.summary
        a.steps = len(segments(x.outcome.trace))
        a.by = "systematic" if (x.first_failure_example or 0) <= x.systematic else "random"
    return a


@dataclass
class Row:
    case: Case
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def error(self) -> str:
        errs = [a.error for a in self.attempts if a.error]
        return errs[0] if errs else ""

    @property
    def caught(self) -> list[Attempt]:
        """Seeds where the mutant was flagged for one of its invariants."""
        return [a for a in self.attempts if a.found and a.invariant in self.case.expect]

    @property
    def wrong(self) -> list[Attempt]:
        """Seeds flagged for an invariant the plan does not expect; for a
        control, every flag is a false alarm."""
        return [a for a in self.attempts if a.found and a.invariant not in self.case.expect]

    @property
    def ok(self) -> bool:
        """The row meets its target: every seed caught (mutant), or no
        false alarm (control).  A row that could not run is not ok."""
        if self.error or not self.attempts:
            return False
        if self.case.mutant:
            return len(self.caught) == len(self.attempts)
        return not self.wrong

    def median(self, what: Callable[[Attempt], float | None]) -> float | None:
        values = [v for v in (what(a) for a in self.caught) if v is not None]
        return statistics.median(values) if values else None

    def to_json(self) -> dict:
        c = self.case
        out = {"store": c.store, "mode": c.mode_name, "faults": list(c.faults), "expect": list(c.expect),
               "kind": "mutant" if c.mutant else "control", "ok": self.ok, "error": self.error,
               "seeds": len(self.attempts), "caught": len(self.caught),
               ("unexpected" if c.mutant else "false_alarms"): len(self.wrong),
               "examples": sum(a.examples for a in self.attempts),
               "attempts": [asdict(a) for a in self.attempts]}
        if c.mutant:
            out.update(
                median_examples_to_failure=self.median(lambda a: a.first_failure_example),
                median_seconds_to_failure=self.median(lambda a: a.first_failure_seconds),
                median_seconds_with_shrinking=self.median(lambda a: a.seconds),
                median_story_steps=self.median(lambda a: a.steps),
            )
        return out


def run(cases: list[Case], *, seeds: int, budget: float, control_budget: float, shrink_runs: int,
        jobs: int = 1, on_attempt: Callable[[Case, Attempt], None] | None = None,
        systematic: bool = True) -> list[Row]:
    """Run every case with seeds ``0 .. seeds-1``; return one row per case,
    in the order of ``cases``.

    A mutant's seed searches for ``budget`` seconds at most (it stops at the
    first failure, then shrinks for at most ``shrink_runs`` runs); a control's seed
    searches for ``control_budget`` seconds.  With ``jobs > 1`` seeds run in
    that many worker processes at once; each worker runs whole
    :func:`verify` calls, so process actors are its own children and are
    reaped by it.  ``systematic=False`` leaves out the systematic pass:
    what the random search finds alone."""
    rows = [Row(c) for c in cases]
    work = [(i, s) for s in range(seeds) for i in range(len(cases))]

    def args(i: int, s: int) -> tuple:
        c = cases[i]
        return c, s, budget if c.mutant else control_budget, shrink_runs, None, systematic

    def record(i: int, a: Attempt) -> None:
        rows[i].attempts.append(a)
        if on_attempt is not None:
            on_attempt(cases[i], a)

    if jobs <= 1:
        for i, s in work:
            record(i, run_attempt(*args(i, s)))
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # Fresh interpreters: a forked copy of this process would carry its
        # installed interception and imported stores into every worker.
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = {pool.submit(run_attempt, *args(i, s)): i for i, s in work}
            try:
                for fut in as_completed(futures):
                    record(futures[fut], fut.result())
            except BaseException:
                # Ctrl-C or a signal: workers would otherwise finish their
                # current search (up to a whole budget) before exiting.  The
                # pool then fails every pending future itself (cancelling
                # them first trips the pool's own manager thread).
                for proc in list(getattr(pool, "_processes", {}).values()):
                    proc.terminate()
                raise
    for r in rows:
        r.attempts.sort(key=lambda a: a.seed)
    return rows
