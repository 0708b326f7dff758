"""The controlled engine: run one program against a store.

``Executor.run(program)`` is deterministic: the same program on the same
store gives the same trace, history and verdict, in thread and in process
mode.  The search over programs is ``sessioncheck.controlled.search``.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sessioncheck import servers
from sessioncheck.controlled import intercept
from sessioncheck.controlled.actor import Actor, ActorDied, Done, OpCall, Stuck, read_value
from sessioncheck.checking.history import Operation
from sessioncheck import operations
from sessioncheck.controlled.program import ModelConfig, OpSpec, Step, takes_fields
from sessioncheck.controlled.scheduler import Deadlock, Scheduler
from sessioncheck.controlled.messages import identity_of, message_id, message_of
from sessioncheck.controlled.values import numbered, value_of
from sessioncheck.protocol import StoreSpec
from sessioncheck.scratch import scratch_dir  # noqa: F401 - re-exported for callers

MODEL_TEXT = {
    "strict": "only fsynced data and fsynced directory entries survive",
    "entries-first": "every directory entry survives, file data only as of its last fsync",
}


def _brief(session: str, value: Any) -> str:
    if not isinstance(value, dict):
        return f"{session}: {value}"
    msgs = ", ".join(value.get("messages", []))
    return f"{session} as messages [{msgs}]"


@dataclass
class Violation:
    invariant: str
    summary: str
    subject: str | None = None
    ops: list[int] = field(default_factory=list)  # indices into Outcome.ops
    raw_times: bool = False  # summary speaks of trace times, not story steps

    def to_json(self) -> dict:
        return {"invariant": self.invariant, "summary": self.summary, "subject": self.subject, "ops": self.ops}


@dataclass
class Outcome:
    """Everything one run of one program produced."""

    program: list[Step]
    trace: list[dict]
    ops: list[Operation]
    violations: list[Violation]
    warnings: list[str] = field(default_factory=list)
    unknown: str = ""  # the checker ran out of budget

    @property
    def failed(self) -> bool:
        return bool(self.violations)

    def schedule_hash(self) -> str:
        """The interleaving: which actor took which point of which
        operation (its function and session), in order.  Not the values:
        two persists of different values share an interleaving.

        Computed once per trace length (the search, the coverage and the
        health checks each ask for it)."""
        cached = self.__dict__.get("_hash")
        if cached is not None and cached[0] == len(self.trace):
            return cached[1]
        data = json.dumps([(e["actor"], e["ev"], e.get("kind", ""), e.get("call") or "", e.get("session", ""))
                           for e in self.trace], default=str)
        digest = hashlib.sha1(data.encode()).hexdigest()[:12]
        self.__dict__["_hash"] = (len(self.trace), digest)
        return digest


MODES = ("threads", "processes", "mixed", "tasks")


def make_actor(kind: str, name: str, spec: StoreSpec, watchdog: float, record: bool = False) -> Actor:
    """A new actor; ``record``: its accesses to private temporary files
    are recorded, not points (:func:`records_private`)."""
    if kind == "thread":
        from sessioncheck.controlled.thread_actor import ThreadActor

        actor = ThreadActor(name, spec, watchdog)
        actor.record = record
        return actor
    from sessioncheck.controlled.intercept.context import RECORD_PRIVATE
    from sessioncheck.controlled.process_actor import ProcessActor

    RECORD_PRIVATE[0] = record  # the child keeps the value it was forked with
    try:
        return ProcessActor(name, spec, watchdog)
    finally:
        RECORD_PRIVATE[0] = False


#: Whether private temporary files are recorded instead of points.  Off by
#: default: measured on the gallery's file mutants, the random search alone
#: (``gallery --no-systematic``) met the bugs later with them recorded
#: (lock-unlinked 0 of 5 seeds against 4 of 5, delete-unlocked and
#: read-outside-lock several times later): fewer points make the narrow
#: windows of a read-modify-write rarer among random stops.  On with
#: ``SESSIONCHECK_RECORD_TEMPS=1`` (read when this module is imported).
RECORD_PRIVATE_TEMPS = [os.environ.get("SESSIONCHECK_RECORD_TEMPS") == "1"]


def records_private(cfg: ModelConfig) -> bool:
    """Whether a store's accesses to its private temporary files (a file
    only the actor that made it touches: ``tempfile``'s fresh names, an
    ``O_TMPFILE``) are *recorded* accesses rather than points: told in the
    trace and the story, but no place where the schedule switches actors.
    Not with power loss (its model snapshots files at each sync, as the
    sync is called) nor with injected I/O errors (each file call is a
    place to fail): there every access stays a point."""
    return RECORD_PRIVATE_TEMPS[0] and not cfg.power_loss and not cfg.io_faults


def mode_label(mode: str, cfg: ModelConfig | None = None) -> str:
    """The mode as summaries say it: ``tasks in 2 processes`` for task
    actors hosted by processes (``cfg.task_processes``), else the mode."""
    m = cfg.task_processes if cfg is not None else 0
    if mode == "tasks" and m:
        return f"tasks in {m} process{'es' if m != 1 else ''}"
    return mode


def actor_kinds(mode: str, n: int) -> list[str]:
    if mode == "threads":
        return ["thread"] * n
    if mode == "processes":
        return ["process"] * n
    if mode == "mixed":
        return [("process" if i % 2 == 0 else "thread") for i in range(n)]
    if mode == "tasks":
        return ["task"] * n  # asyncio tasks of one loop (controlled/task_actor.py)
    raise ValueError(mode)



#: The furthest virtual time any run of this process reached (see
#: Executor.epoch): virtual time never goes back within a process.
_virtual_time_reached = [0.0]

class Executor:
    """Runs programs against one store with one set of actors.

    Actors are created once and reused across runs (a thread or a forked
    process per actor); one that crashed, got stuck or deadlocked is
    replaced before the next run.  Every run gets a fresh temporary
    location, removed afterwards whatever happens.  ``close()`` reaps
    everything; use the executor as a context manager.
    """

    def __init__(self, spec: StoreSpec, mode: str = "threads", cfg: ModelConfig | None = None,
                 watchdog: float = 10.0) -> None:
        intercept.install()
        self.spec = spec
        self.mode = mode
        self.cfg = cfg or ModelConfig()
        self.watchdog = watchdog
        from sessioncheck.controlled.refusals import compile_allowed
        from sessioncheck.errors import ConfigError

        try:
            self._allowed = compile_allowed(self.cfg.allow_errors)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.kinds = actor_kinds(mode, self.cfg.actors)
        self.names = [chr(ord("A") + i) for i in range(self.cfg.actors)]
        if mode == "tasks" and self.cfg.task_processes:
            from sessioncheck.controlled.task_host import task_names

            self.names = task_names(self.cfg.task_processes, self.cfg.actors)
        elif self.cfg.task_processes:
            raise ConfigError("task processes (--processes) host task actors: add --actors tasks")
        self.actors: list[Actor | None] = [None] * self.cfg.actors
        self._tasks: Any = None  # the event loop of the task actors, made on first use
        #: with ``cfg.task_processes``: the processes hosting the task actors
        #: (controlled/task_host.py), by index, each made on first use
        self._hosts: dict[int, Any] = {}
        self.runs = 0
        #: a :class:`~sessioncheck.controlled.repeats.Schedules` told what
        #: every step of every run did (the search's memory of runs done)
        self.watch: Any = None
        # Virtual time never goes back, not even from one run to the next:
        # stores keep time-ordered ids (uuid6, ULIDs) with a per-process
        # "last timestamp" guard, and a clock that restarts at 0 every run
        # would order one process's ids by its history, not by the run.
        # Nor from one executor to the next in one process: a campaign with
        # thread actors leaves such a guard at its last virtual time, and
        # process actors forked later inherit it (a pytest worker runs many
        # campaigns), so every executor starts where the last one ended.
        self.epoch = _virtual_time_reached[0]
        # Servers the store asks for run for the executor's life; every run
        # starts and ends with their namespaces empty.
        self.resources = servers.acquire(spec.factory, power_loss=self.cfg.power_loss,
                                         io_faults=self.cfg.io_faults, server_crash=self.cfg.server_crash)

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        for i, a in enumerate(self.actors):
            if a is not None:
                a.shutdown()
            self.actors[i] = None
        if self._tasks is not None:
            self._tasks.close()
        for host in self._hosts.values():
            host.close()
        self._hosts.clear()
        self.resources.release()

    def _actor(self, i: int, warm: bool = True) -> Actor:
        a = self.actors[i]
        if a is not None and getattr(a, "stale", False):
            a = self.actors[i] = None  # its host process was abandoned (task_host.py)
        if a is None and self.kinds[i] == "task" and self.cfg.task_processes:
            a = self.actors[i] = self._task_proxy(self.names[i])
            if warm:
                self._warm_up(a)
        if a is None and self.kinds[i] == "task":
            from sessioncheck.controlled.task_actor import task_actor

            a, self._tasks = task_actor(self.names[i], self.spec, self._tasks, self.actors, self.watchdog)
            self.actors[i] = a
            if warm:
                self._warm_up(a)
        if a is None:
            a = self.actors[i] = make_actor(self.kinds[i], self.names[i], self.spec, self.watchdog,
                                            records_private(self.cfg))
            if warm:
                self._warm_up(a)
        return a

    def _task_proxy(self, name: str) -> Actor:
        """A task actor in the process its name says (p1.t0: process 1), a
        new process when that one was abandoned or not made yet."""
        from sessioncheck.controlled.task_host import TaskHost, TaskProxy, host_of

        index = host_of(name)
        host = self._hosts.get(index)
        if host is None or host.broken:
            if host is not None:
                host.close()
            host = self._hosts[index] = TaskHost(index, self.spec, self.watchdog)
        return TaskProxy(name, host)

    def _warm_up(self, actor: Actor) -> None:
        """Run every call once on a new actor, in a scratch location.

        Store code and its libraries often do something extra the first
        time (a lazy import, a thread-local set up, a cache filled).  Done
        during a real run, that would make the first run of a program
        differ from the next, and Hypothesis would call the store flaky."""
        location = tempfile.mkdtemp(prefix="sessioncheck-warmup-", dir=scratch_dir())
        try:
            actor.set_location(location)
            sched = Scheduler([actor], now=self.epoch)
            calls = [OpCall("open"), OpCall("add", "s0", "warm-up", self._message(self.cfg.messages[0], "warm-up"))]
            if self.cfg.metadata:
                calls.append(OpCall("persist", "s0", {"model": "warm-up", "compute_instance_id": None}))
            calls += [OpCall("read", "s0"), OpCall("close")]
            for call in calls:
                sched.run_alone(actor.name, call)
        finally:
            self.epoch = max(self.epoch, sched.now) + 1.0
            _virtual_time_reached[0] = max(_virtual_time_reached[0], self.epoch)
            shutil.rmtree(location, ignore_errors=True)
            self.resources.reset()

    def _retire(self, name: str) -> None:
        i = self.names.index(name)
        a = self.actors[i]
        if a is not None:
            a.shutdown()
        self.actors[i] = None

    # -- one run ------------------------------------------------------------
    def run(self, program: list[Step]) -> Outcome:
        self.runs += 1
        self._close_errors: list[tuple[str, str]] = []  # (actor, error) of each close() that raised
        location = tempfile.mkdtemp(prefix="sessioncheck-", dir=scratch_dir())
        sched = Scheduler([])
        violations: list[Violation] = []
        warnings: list[str] = []
        broken = False
        try:
            # Only the actors the program starts an operation on take part
            # (A always): an instance that does nothing opens and closes the
            # store for no outcome, at two baton round trips a run.
            n = len(self.names)
            used = sorted({0} | {s.actor % n for s in program if s.kind == "start"})
            actors = [self._actor(i) for i in used]
            for a in actors:
                a.set_location(location)
            sched = Scheduler(actors, now=self.epoch)
            if self.cfg.power_loss:
                self._watch_power(sched, location, violations)
            # An actor opens its instance inside its first operation (Runner
            # opens lazily), so opening interleaves with the others' work like
            # any operation: a store that compacts or rewrites sessions in
            # __init__ meets concurrent writers.
            self._opened: set[str] = set()
            self._violations = violations  # a server crash may add one
            counters = {"m": 0, "v": 0}
            rec = self.watch.recorder(self.names) if self.watch is not None else None
            for step in program:
                if rec is None:
                    self._apply(sched, step, counters)
                else:
                    rec.before(sched, step)
                    self._apply(sched, step, counters)
                    rec.after(sched)
            sched.drain()
            self._close_all(sched, violations)
            self._final_read(sched, location, violations)
            warnings.extend(orphans(sched.trace, location))
            if rec is not None:
                rec.finished()
        except Stuck as exc:
            broken = True
            self._retire(exc.actor)
            others = [n for n in sched.busy() if n != exc.actor]
            unseen, where = unseen_wait(exc, others, self.mode)
            if unseen is not None:
                raise unseen from None
            violations.append(Violation("I5", f"{exc} (the store blocks outside any preemption point{where})"))
        except Deadlock as exc:
            broken = True
            violations.append(Violation("I5", exc.summary, subject=exc.kind))
        except ActorDied as exc:
            broken = True
            violations.append(Violation("I5", f"{exc}: the store ended its own actor", subject="vanished"))
        finally:
            self.epoch = max(self.epoch, sched.now) + 1.0
            _virtual_time_reached[0] = max(_virtual_time_reached[0], self.epoch)
            for name, st in sched.state.items():
                if st.crashed or broken:
                    self._retire(name)
            shutil.rmtree(location, ignore_errors=True)
            self.resources.reset()
        self._classify_errors(sched)
        self._classify_close(sched, violations)
        return self._outcome(program, sched, violations, warnings)

    # -- an operation that raised -------------------------------------------
    def _classify_errors(self, sched: Scheduler) -> None:
        """Decide, for every operation that raised an unexpected exception,
        what the exception says (``op.meta["error_kind"]``):

        - ``allowed``: its chain matches ``--allow-errors``: a refusal;
        - ``after-fault``: a kill or an injected I/O error came before it:
          the store met a state the fault left (I4);
        - ``concurrent``: run alone it does not raise (E1);
        - run alone it raises too: the store or its adapter fails without
          any concurrency, a :class:`ConfigError` (exit 2), as the adapter
          contract treats a call that fails on an empty location.

        "Alone" is deterministic: the operations the same actor started up
        to and including the one that raised, in the same order with the
        same arguments, each run to completion by the same actor on a fresh
        location (and empty servers) with no other actor taking a step: the
        run minus everything concurrent."""
        from sessioncheck.controlled.refusals import allowed

        patterns = self._allowed
        faults = [e["t"] for e in sched.trace if e["ev"] in ("crash", "fault")]
        downs = [e["t"] for e in sched.trace if e["ev"] == "server-crash"]
        for op in sched.ops:
            if op.meta.get("error_kind") != "error":
                continue
            if patterns and allowed(op.meta.get("causes", [op.error or ""]), patterns):
                op.meta["error_kind"] = "allowed"
            elif any(op.start < t < op.end for t in downs):
                # its server went down under it: not acknowledged, and
                # whether it took effect is the final read's to say
                op.meta["error_kind"] = "server-crash"
            elif faults and min(faults) < op.start:
                op.meta["error_kind"] = "after-fault"
            else:
                prefix = [o for o in sched.ops if o.process == op.process and o.start <= op.start]
                alone = self._alone(op.process, prefix)
                if alone is not None and alone.status == "error":
                    from sessioncheck.errors import ConfigError

                    calls = "; ".join(o.describe() for o in prefix)
                    raise ConfigError(
                        f"store {self.spec.name!r}: {op.describe()} raised {op.error}, and it raises "
                        f"{alone.error} with no other actor running too ({calls}, alone on a fresh "
                        "location): the store or its adapter fails without any concurrency, which is "
                        "not a finding about concurrency (fix the adapter, or let "
                        "--allow-errors PATTERN count this error as 'not acknowledged')")
                op.meta["error_kind"] = "concurrent"
                op.meta["alone"] = alone.status if alone is not None else "did not finish"

    def _alone(self, name: str, prefix: list[Operation], close: bool = False) -> "Done | None":
        """Run ``prefix`` (one actor's operations) alone on a fresh
        location, then close the instance; the last operation's result (or
        with ``close``, close()'s), None if the store did not let the
        replay finish (it got stuck or ended its actor)."""
        i = self.names.index(name)
        location = tempfile.mkdtemp(prefix="sessioncheck-alone-", dir=scratch_dir())
        sched = Scheduler([])
        last = None
        try:
            actor = self._actor(i)
            actor.set_location(location)
            sched = Scheduler([actor], now=self.epoch)
            for o in prefix:
                last = sched.run_alone(name, OpCall(o.f, o.session, o.value, o.meta.get("message")))
            closed = sched.run_alone(name, OpCall("close"))
            if close:
                last = closed
        except (Stuck, Deadlock, ActorDied):
            self._retire(name)
            last = None
        finally:
            self.epoch = max(self.epoch, sched.now) + 1.0
            _virtual_time_reached[0] = max(_virtual_time_reached[0], self.epoch)
            shutil.rmtree(location, ignore_errors=True)
            self.resources.reset()
        return last

    def _apply(self, sched: Scheduler, step: Step, counters: dict) -> None:
        # Steps name their actor directly, so deleting a step while
        # shrinking never changes what the other steps mean.  An actor is
        # sequential: starting an operation on a busy actor first lets its
        # current one finish; if that cannot finish now (it waits for a
        # lock), the step does nothing, as does advancing an idle actor.
        if step.kind == "server-crash":
            from sessioncheck.controlled.server_crash import crash_servers

            crash_servers(sched, self.resources, self._violations, Violation)
            return
        name = self.names[step.actor % len(self.names)]
        if name not in sched.state:
            return  # an actor that never starts an operation: nothing to advance
        st = sched.state[name]
        if step.kind == "start":
            if st.crashed:
                self._restart(sched, name)
            elif not sched.finish(name):
                return
            self._opened.add(name)
            call = self._call(step.op, counters)
            op = Operation(name, call.f, call.session, call.value, 0, meta={"actor": name})
            if call.message is not None:
                op.meta["message"] = call.message  # the same message, should it run again alone
            sched.begin(name, call, op)
            return
        if not sched.runnable(name):
            return
        if step.kind == "advance":
            sched.advance(name, step.points)
        elif step.kind == "crash" and st.actor.can_crash:
            sched.crash(name)
        elif step.kind == "fault":
            sched.inject(name, step.errno_name)

    def _watch_power(self, sched: Scheduler, location: str, violations: list[Violation]) -> None:
        """After every acknowledged mutation, cut the power (in a copy):
        the durable state must hold every acknowledged operation (I6)."""
        import dataclasses

        from sessioncheck.checking.checker import check
        from sessioncheck.controlled.durability import MODELS, DurableState, crash_reads

        state = DurableState(location)
        sched.on_performed = lambda name, point: state.performed(point)
        real_resume = sched.resume

        def resume(name: str, fault: int | None = None) -> None:
            # A sync makes durable what is on file when it is called; by
            # on_performed the actor has already run on to its next point.
            point = sched.state[name].parked
            if fault is None and point is not None:
                state.before(point)
            real_resume(name, fault)

        sched.resume = resume  # type: ignore[method-assign]

        def probe(op: Operation) -> None:
            if any(v.invariant == "I6" for v in violations):
                return
            sessions = sorted({o.session for o in sched.ops})
            reads = crash_reads(state, self.spec, sessions, scratch_dir())
            t = sched.t + 0.5
            for model in MODELS:
                mine = [(s_, v) for m, s_, v in reads if m == model]
                broken = next(((s_, v) for s_, v in mine if isinstance(v, Exception)), None)
                if broken is not None:
                    session, exc = broken
                    entry = sched._log("power", "power-loss", model=model, session=session,
                                       text=f"power lost after this step; from the {model} crash state "
                                            f"read({session}) raised {type(exc).__name__}: {exc}")
                    violations.append(Violation(
                        "I6", f"after a power loss right after t={entry['t'] - 1} ({model} crash state: "
                              f"{MODEL_TEXT[model]}) the store cannot read {session}: "
                              f"{type(exc).__name__}: {exc}", subject=session, raw_times=True))
                    return
                # Only acknowledged mutations are promises: what a reader
                # saw of a write still in flight may be gone after the cut.
                ops = [dataclasses.replace(o, index=i)
                       for i, o in enumerate(o for o in sched.ops if o.f != "read")]
                for session, value in mine:
                    ops.append(Operation(f"power:{model}", "read", session, None, t, t, "ok", value,
                                         index=len(ops)))
                result = check(ops)
                if result.findings:
                    f = result.findings[0]
                    shown = next((v for s_, v in mine if s_ == f.session), None)
                    entry = sched._log("power", "power-loss", model=model,
                                       text=f"power lost after this step; the {model} crash state reads "
                                            f"{_brief(f.session, shown)}")
                    violations.append(Violation(
                        "I6", f"after a power loss right after t={entry['t'] - 1} ({model} crash state: "
                              f"{MODEL_TEXT[model]}): " + f.summary.replace(f"power:{model}", "the crash state"),
                        subject=f.subject, raw_times=True))
                    return

        sched.on_ack = probe

    def _restart(self, sched: Scheduler, name: str) -> None:
        """A killed writer comes back: a new process opens a new instance
        on the same location (a restart after kill -9)."""
        i = self.names.index(name)
        location = sched.state[name].actor.location
        self._retire(name)
        # A server's namespace is the run's own: no warm-up writes into it
        # mid-run (the new process is forked from a warm harness anyway).
        actor = self._actor(i, warm=not self.resources.names)
        actor.set_location(location)
        sched.replace(name, actor)
        # the new instance opens inside the operation that follows

    def _close_all(self, sched: Scheduler, violations: list[Violation]) -> None:
        """Close every open instance before the final read, interleaved by
        the drain: what a store writes in ``close()`` (a cache flushed
        back, a compaction) is part of the state the final read checks."""
        closing = [n for n in sched.state if n in self._opened and not sched.state[n].crashed]
        for name in closing:
            sched.begin(name, OpCall("close"), None)
        sched.drain()
        self._close_errors = [(e["actor"], e.get("error") or "") for e in sched.trace
                              if e["ev"] == "done" and e.get("call") == "close" and e.get("status") == "error"]

    def _classify_close(self, sched: Scheduler, violations: list[Violation]) -> None:
        """Decide what a ``close()`` that raised says, as
        :meth:`_classify_errors` does for operations: allowed by
        ``--allow-errors``; I4 after a fault (the store met a state the
        fault left); E1 when the same actor's operations and its close, run
        alone, do not raise; a configuration error when they do."""
        from sessioncheck.controlled.refusals import allowed

        faults = [e["t"] for e in sched.trace if e["ev"] in ("crash", "fault")]
        for name, error in self._close_errors:
            if self._allowed and allowed([error], self._allowed):
                continue
            if name == "final":  # the fresh instance that read the final state
                violations.insert(0, Violation("I4", f"the final instance's close() raised {error}: the "
                                                     "store met a state it cannot handle"))
                continue
            if faults:
                violations.insert(0, Violation("I4", f"{name}: close() of the store raised {error}, "
                                                     "after a fault: the store met a state it cannot handle"))
                continue
            prefix = [o for o in sched.ops if o.process == name]
            closed = self._alone(name, prefix, close=True)
            if closed is not None and closed.status == "error":
                from sessioncheck.errors import ConfigError

                raise ConfigError(
                    f"store {self.spec.name!r}: close() raised {error}, and it raises {closed.error} "
                    "with no other actor running too (the same actor's operations, then close(), alone "
                    "on a fresh location): the store or its adapter fails without any concurrency "
                    "(fix the adapter, or let --allow-errors PATTERN count this error)")
            violations.insert(0, Violation(
                "E1", f"{name}: close() of the store raised {error}; the same operations and close() "
                      "run alone on a fresh store do not raise: it fails only beside the other actors"))

    def _call(self, spec: OpSpec | None, counters: dict) -> OpCall:
        assert spec is not None
        session = f"s{spec.session}"
        if spec.f == "add":
            counters["m"] += 1
            mid = message_id(spec.message, counters["m"])
            return OpCall("add", session, mid, self._message(spec.message, mid))
        if spec.f == "persist" or takes_fields(spec.f):
            fields = {}
            for key, kind in spec.fields:
                if numbered(kind):
                    counters["v"] += 1
                fields[key] = value_of(kind, counters["v"])
            return OpCall(spec.f, session, fields)
        if spec.f not in ("read", "delete", "pop", "clear") and operations.get(spec.f).input == "message":
            counters["m"] += 1
            mid = message_id(spec.message, counters["m"])
            return OpCall(spec.f, session, mid, self._message(spec.message, mid))
        return OpCall(spec.f, session)

    def _message(self, kind: str, mid: str) -> dict | None:
        """The message of ``kind`` with id ``mid`` in the store's identity
        field; ``None`` for the plain user message identified by its
        content (the actor builds that one, as cheap as before)."""
        identity = self.cfg.identity
        if kind in ("", "user") and identity == "content":
            return None
        return message_of(kind or "user", mid, identity)

    def _final_read(self, sched: Scheduler, location: str, violations: list[Violation]) -> None:
        """Read every session through a fresh instance once all is done:
        the final state.  Runs in the scheduler's thread, not controlled."""
        from sessioncheck.controlled.aio import Uncontrolled

        with Uncontrolled() as settle:  # an async store's calls are awaited
            self._final_reads(sched, location, violations, settle)

    def _final_reads(self, sched: Scheduler, location: str, violations: list[Violation], settle: Any) -> None:
        sessions = sorted({op.session for op in sched.ops}) or ["s0"]
        try:
            store = settle(self.spec.open(Path(location)))
        except Exception as exc:  # noqa: BLE001
            violations.append(Violation("I4", f"a fresh instance could not open the store at the end: "
                                              f"{type(exc).__name__}: {exc}"))
            return
        try:
            for s in sessions:
                op = Operation("final", "read", s, None, sched.t + 1, meta={"actor": "final"})
                op.index = len(sched.ops)
                sched.ops.append(op)
                try:
                    value = read_value(settle(store.read(s)), identity_of(store))
                except Exception as exc:  # noqa: BLE001
                    sched._log("final", "done", status="error", call="read", session=s,
                               error=f"{type(exc).__name__}: {exc}", value=None)
                    op.status, op.error = "info", f"{type(exc).__name__}: {exc}"
                    violations.append(Violation("I4", f"the final read of {s} failed: {op.error}", ops=[op.index]))
                    continue
                entry = sched._log("final", "done", status="ok", call="read", session=s, value=value)
                op.start = op.end = entry["t"]
                op.status, op.output = "ok", value
        finally:
            close = getattr(store, "close", None)
            if callable(close):
                try:
                    settle(close())
                except Exception as exc:  # noqa: BLE001 -- decided with the actors' closes
                    self._close_errors.append(("final", f"{type(exc).__name__}: {exc}"))

    def _outcome(self, program: list[Step], sched: Scheduler, violations: list[Violation],
                 warnings: list[str]) -> Outcome:
        from sessioncheck.checking.checker import check
        from sessioncheck.controlled.trace import line_of, renumber, segments

        # Operation times become story step numbers, so that every
        # sentence about a violation points at a line of the story.
        where = line_of(segments(sched.trace))
        ops = renumber(sched.ops, sched.trace, where)
        for v in violations:
            if v.raw_times:
                # a crash-state read sits half a step after the
                # acknowledgement: it belongs to the power-loss line after it
                v.summary = re.sub(r"\bt=(\d+(?:\.\d+)?)(?:\.\.(\d+(?:\.\d+)?))?",
                                   lambda m: "t=" + "..".join(str(where.get(math.ceil(float(g)), g))
                                                               for g in m.groups() if g),
                                   v.summary)
                v.raw_times = False
        for op in reversed(ops):
            kind = op.meta.get("error_kind")
            if kind == "concurrent":
                violations.insert(0, Violation(
                    "E1", f"{op.describe()} raised {op.error}; the same operations of {op.process} run "
                          "alone on a fresh store do not raise: it fails only beside the other actors' "
                          "operations", ops=[op.index]))
            elif kind in ("after-fault", "error"):
                violations.insert(0, Violation(
                    "I4", f"{op.describe()} raised {op.error}: the store met a state it cannot handle",
                    ops=[op.index]))
        unknown = ""
        if not any(v.invariant == "I5" for v in violations):
            result = check(ops)
            for f in result.findings:
                violations.append(Violation(f.invariant, f.summary, f.subject, [o.index for o in f.ops]))
            if result.verdict == "unknown":
                unknown = result.reason
        return Outcome(program, sched.trace, ops, violations, warnings, unknown)


#: synchronous drivers whose wait in a task holds the loop, by the path of
#: a frame of theirs (their async forms live under these names too, but a
#: synchronous wait in them is the synchronous API's)
SYNC_DRIVERS = ((f"{os.sep}psycopg{os.sep}", "a synchronous psycopg statement",
                 "psycopg.AsyncConnection"),
                (f"{os.sep}psycopg2{os.sep}", "a synchronous psycopg2 statement", "an async driver (psycopg 3's "
                 "AsyncConnection, asyncpg)"),
                (f"{os.sep}redis{os.sep}", "a synchronous redis-py command", "redis.asyncio"))


def _sync_call_in_task(exc: Stuck, found: tuple) -> "UnseenWait":
    """The error for a task blocked in a synchronous wait: it holds the
    loop, so no other task can run until it returns (and, in one loop,
    none that holds what it waits for ever can)."""
    from sessioncheck.controlled.waits import describe
    from sessioncheck.errors import UnseenWait

    stack = exc.samples[0] if exc.samples else []
    what, instead = "a synchronous call", "its async form (asyncio.Lock, asyncio.to_thread, an async driver)"
    for marker, name, alternative in SYNC_DRIVERS:
        if any(marker in f.file and f"{os.sep}asyncio{os.sep}" not in f.file for f in stack):
            what, instead = name, alternative
            break
    return UnseenWait(
        f"{what} blocked the task loop: {describe(*found)}: task {exc.actor} waited there for {exc.seconds:g} s "
        "without an await, and while it waits no other task of its loop can run, so a wait for something "
        "another task holds (a row lock, a lock, a reply) cannot end; the harness cannot see or schedule "
        "such a wait (under asyncio in production it stalls every request on that loop, and, where the "
        f"holder is a task of the same loop, never ends). How to fix: use {instead} in async code, or run "
        "a synchronous store with --actors threads or processes")


def unseen_wait(exc: Stuck, others: list[str], mode: str = "threads") -> tuple["UnseenWait | None", str]:
    """Whether a stuck actor is the harness's blind spot or the store's hang.

    Blocked in a wait (its stack says so) while ``others`` (actors the
    harness parked in the middle of an operation) might be what it waits
    for: the harness cannot see this wait, a configuration error (exit 2).
    Blocked while nobody else is running an operation: nothing the harness
    holds back can end the wait, so the store hangs on its own (I5, with
    where).  Spinning: I5.  Under task actors (``mode`` ``tasks``) the
    wait is a synchronous call holding the loop (:func:`_sync_call_in_task`),
    not interception the store missed.  Returns the error, or None and the
    text to add to the I5 summary."""
    from sessioncheck.controlled.waits import blocked_at, describe
    from sessioncheck.errors import UnseenWait

    found = blocked_at(exc.samples)
    if found is None:
        return None, ": it computes without touching the shared medium" if exc.samples else ""
    if not others:
        return None, (f": blocked at {describe(*found)} while no other actor was running an operation, "
                      "so nothing the harness held back can end the wait")
    if mode == "tasks":
        return _sync_call_in_task(exc, found), ""
    return UnseenWait(
        f"the harness cannot see this wait: {describe(*found)}: actor {exc.actor} blocked there for "
        f"{exc.seconds:g} s without reaching a preemption point while {', '.join(others)} "
        f"{'was' if len(others) == 1 else 'were'} parked in an operation, so no schedule can be controlled "
        "(how to fix: import the store after sessioncheck installs interception, e.g. let "
        "sessioncheck import it from --store, or call sessioncheck.controlled.intercept.install() "
        "before importing it in a test / use a lock the harness models: threading.Lock, RLock, "
        "Semaphore or a multiprocessing lock made by store code, flock, lockf or fcntl locks, "
        "an SQLite busy timeout)"), ""


def orphans(trace: list[dict], location: str) -> list[str]:
    """Temporary files a killed writer created and left behind."""
    import os

    from sessioncheck.controlled.trace import Names, line_of, segments

    killed = {e["actor"]: e["t"] for e in trace if e["ev"] == "crash"}
    if not killed:
        return []
    names = Names(trace)
    where = line_of(segments(trace))
    out = []
    for e in trace:
        if (e["ev"] == "point" and e["kind"] == "open" and e["path"] in names.map
                and e["actor"] in killed and e["t"] < killed[e["actor"]]
                and os.path.exists(os.path.join(location, e["path"]))):
            shown = names(e["path"])
            out.append(f"{e['actor']} was killed at step {where.get(killed[e['actor']], 0)} after creating "
                       f"{shown}; it is left behind and nothing removes it")
    return out
