"""Free-running stress: real threads and processes at full speed, a
recorded history, and the checker's verdict on it.

Design notes
------------

*Actors.*  ``processes`` worker processes (``multiprocess``, fork context)
each run ``threads`` actor threads; with ``processes = 0`` the threads run
in this process.  Every actor opens its *own* store instance on one shared
temporary directory, as separate writers do in real life.  Each actor's
operations are drawn from a seeded random plan before the start, so the
timed loop does nothing but call the store and record; all actors (and the
parent) leave one barrier together.

*Recording.*  Each actor appends plain tuples to its own list (no lock, no
I/O): ``invoke`` with ``time.monotonic()`` just before the call, then
``ok`` with the returned state for a read, or ``info`` with the exception
text.  An exception is ``info`` (not ``fail``) because the harness cannot
know whether a store's exception came before or after its effect.
``time.monotonic()`` is one system-wide clock on Linux, so times from
different processes are comparable.  A worker process sends its actors'
lists to the parent once, at the end, through a pipe.

*Bounds.*  Actors stop issuing operations ``duration`` seconds after the
start.  An operation still running ``op_timeout`` seconds later is left
behind: its invoke stays without completion (the checker treats it as
"may or may not have happened") and it is reported as a liveness (I5)
violation, as is any operation that returned but took longer than
``op_timeout``.  A worker that does not report in time is killed; its
history is then lost, and because its messages could show up in other
actors' reads the verdict becomes ``unknown``, never ``ok``.  Children are
always reaped and the temporary directory removed, on success, failure or
Ctrl-C.

*After the run* one final read per session by process ``final`` closes the
history, then :func:`sessioncheck.checking.checker.check` decides I1-I4.
"""
from __future__ import annotations

import math
import os
import random
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sessioncheck.controlled.process_actor import die_with_parent
from sessioncheck.checking.checker import CheckResult, Finding, check
from sessioncheck.errors import ConfigError
from sessioncheck.checking.history import Event, pair
from sessioncheck import operations
from sessioncheck.controlled.messages import identity_of
from sessioncheck.protocol import capabilities_of
from sessioncheck.specs import resolve

#: Metadata fields the plans write to a store that declares none
#: (``Capabilities.metadata_fields``: the declared ones are the model's).
KEYS = ("model", "compute_instance_id", "tokens")

#: Share of add_message, persist_state and read in a plan.
MIX = (0.45, 0.20, 0.35)

#: Share of deletes (taken from the reads) when the store supports them:
#: rare, so that sessions grow between deletes.
DELETE_SHARE = 0.05
#: Share of the reads that become one of the store's declared edits (pop,
#: clear, rename), when it declares any.
EDIT_SHARE = 0.15
#: the declared edits stress draws, by capability
EDITS = ("pop", "clear", "rename")

_BARRIER_TIMEOUT = 60.0  # seconds for every actor to open its store and arrive


@dataclass(frozen=True)
class StressConfig:
    """What to run.  ``ops`` is the total over all actors."""

    store: str
    threads: int = 4
    processes: int = 0
    sessions: int = 4
    ops: int = 2000
    duration: float = 60.0
    seed: int = 0
    op_timeout: float = 30.0
    check_budget: float = 300.0  # seconds of metadata search before the verdict is unknown
    #: regular expressions (``--allow-errors``): an error whose chain
    #: matches one is "not acknowledged", never a finding
    allow_errors: tuple[str, ...] = ()
    #: asyncio tasks per process on one event loop, instead of threads
    #: (``--tasks``; stress/tasks.py); 0: threads
    tasks: int = 0
    #: message kinds added to a store that declares no
    #: ``Capabilities.message_kinds`` (``--messages``; sessioncheck.controlled.messages)
    messages: tuple[str, ...] = ("user",)
    #: metadata value kinds persists write (``--values``;
    #: sessioncheck.controlled.values): built-in kind names and names of
    #: registered strategies, beside the store's declared
    #: ``Capabilities.metadata_values``; empty: the plan's own values
    #: (unique strings, ``None``, ``''``), as earlier versions drew them
    values: tuple[str, ...] = ()

    def validate(self) -> None:
        if self.tasks < 0:
            raise ConfigError("--tasks must be 0 (threads) or more")
        if self.threads < 1 and not self.tasks:
            raise ConfigError("--threads must be at least 1 (threads per process)")
        if self.processes < 0:
            raise ConfigError("--processes must be 0 (threads in this process) or more")
        if self.sessions < 1:
            raise ConfigError("--sessions must be at least 1")
        if self.ops < 1:
            raise ConfigError("--ops must be at least 1")
        if not (self.duration > 0 and math.isfinite(self.duration)):
            raise ConfigError("--duration must be a positive number of seconds")
        if not (self.op_timeout > 0 and math.isfinite(self.op_timeout)):
            raise ConfigError("--op-timeout must be a positive number of seconds")
        if not (self.check_budget > 0 and math.isfinite(self.check_budget)):
            raise ConfigError("--check-budget must be a positive number of seconds")
        from sessioncheck.controlled import values as value_kinds

        for kind in self.values:
            if not (kind in value_kinds.RICH or value_kinds.is_strategy(kind)):
                raise ConfigError(f"value kind {kind!r}: give one of {', '.join(value_kinds.RICH)} or the name "
                                  "of a strategy registered with sessioncheck.controlled.values.register")
        from sessioncheck.controlled.refusals import compile_allowed

        try:
            compile_allowed(self.allow_errors)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    @property
    def per_process(self) -> int:
        return self.tasks or self.threads

    @property
    def actor_names(self) -> list[str]:
        if self.tasks:
            if self.processes == 0:
                return [f"k{j}" for j in range(self.tasks)]
            return [f"p{i}k{j}" for i in range(self.processes) for j in range(self.tasks)]
        if self.processes == 0:
            return [f"t{j}" for j in range(self.threads)]
        return [f"p{i}t{j}" for i in range(self.processes) for j in range(self.threads)]


# One planned operation: (f, session, recorded value, argument for the store).
Planned = tuple[str, str, Any, Any]

#: values drawn per strategy for a run's plans (they may repeat: sound)
DRAWN_PER_STRATEGY = 64


def value_choices(kinds: tuple[str, ...], seed: int) -> tuple[Any, ...]:
    """What a plan's persists choose their values from: each built-in kind
    of ``kinds`` once (a name), and :data:`DRAWN_PER_STRATEGY` values of
    each registered strategy among them (:class:`~sessioncheck.controlled.
    values.Drawn`, the same for the same seed).  Empty for no kinds."""
    from sessioncheck.controlled import values as value_kinds

    out: list[Any] = []
    for i, kind in enumerate(dict.fromkeys(kinds)):
        if value_kinds.is_strategy(kind):
            out.extend(value_kinds.sample(kind, DRAWN_PER_STRATEGY, seed + 7919 * i))
        else:
            out.append(kind)
    return tuple(out)


def _value(choice: Any, name: str, k: int) -> Any:
    """The value of one choice of :func:`value_choices` for write ``k`` of
    actor ``name``: a fresh value is ``<actor>-<k>`` (unique, as the plan's
    own), a drawn one its literal, another kind its value for ``k``."""
    from sessioncheck.controlled import values as value_kinds

    if choice == "fresh":
        return f"{name}-{k}"
    return value_kinds.value_of(choice, k)


def plan(name: str, n: int, sessions: int, seed: int, *, deletes: bool = False,
         metadata: bool = True, edits: tuple[str, ...] = (), keys: tuple[str, ...] = KEYS,
         kinds: tuple[str, ...] = ("user",), identity: str = "content",
         values: tuple[Any, ...] = ()) -> list[Planned]:
    """The seeded operations of one actor: message ids ``<actor>-<n>`` are
    unique; metadata values are unique strings, ``None`` (clear) and ``''``.
    With ``deletes`` (the store declares ``delete_session``), a share
    ``DELETE_SHARE`` of the reads become deletes.  Without ``metadata``
    (the store declares ``metadata=False``) no ``persist`` is planned: its
    share goes to appends.  With ``edits`` (operations of :data:`EDITS`
    the store declares), a share ``EDIT_SHARE`` of the other reads become
    one of them (a rename sets a unique name).  ``keys`` are the metadata
    fields persists write (the store's declared ``metadata_fields``),
    ``kinds`` the message kinds appends draw, each message carrying its id
    in the ``identity`` field (``Capabilities.message_identity``).
    ``values`` (:func:`value_choices`: the model's value kinds and values
    its strategies drew) replaces the plan's own values: a field is
    cleared (``None``) a quarter of the time, as before, and otherwise
    takes one of them.  With the defaults the plan is the one earlier
    versions drew from a seed."""
    from sessioncheck.controlled.messages import message_of

    plain = tuple(kinds) == ("user",) and identity == "content"
    rng = random.Random(f"{seed}:{name}")
    out: list[Planned] = []
    p_add, p_persist = MIX[0], MIX[0] + MIX[1]
    if not metadata:
        p_add = p_persist
    p_delete = 1.0 - DELETE_SHARE if deletes else 2.0
    for k in range(n):
        s = f"s{rng.randrange(sessions)}"
        r = rng.random()
        if r >= p_delete:
            out.append(("delete", s, None, None))
        elif r < p_add:
            mid = f"{name}-{k}"
            if plain:  # the draws of earlier versions: the same plan from the same seed
                out.append(("add", s, mid, {"role": "user", "content": mid}))
            else:
                kind = kinds[rng.randrange(len(kinds))] if len(kinds) > 1 else kinds[0]
                out.append(("add", s, mid, message_of(kind, mid, identity)))
        elif r < p_persist:
            fields = {}
            for key in rng.sample(keys, rng.randint(1, min(2, len(keys)))):
                x = rng.random()
                if values:  # the model's values (the default path draws exactly as before)
                    fields[key] = None if x < 0.25 else _value(values[rng.randrange(len(values))], name, k)
                else:
                    fields[key] = None if x < 0.25 else "" if x < 0.4 else f"{name}-{k}"
            out.append(("persist", s, fields, fields))
        elif edits and rng.random() < EDIT_SHARE:
            f = rng.choice(edits)
            fields = {"name": f"{name}-{k}"} if f == "rename" else None
            out.append((f, s, fields, fields))
        else:
            out.append(("read", s, None, None))
    return out


#: appended to the recorded error of an exception ``--allow-errors`` matches
ALLOWED_MARK = " (allowed by --allow-errors)"


def run_actor(store: Any, ops: list[Planned], record: list, *, duration: float,
              barrier: Any = None, counts: Any = None, slot: int = 0, allow_errors: tuple[str, ...] = (),
              settle: Any = None) -> None:
    """Issue ``ops`` against ``store`` at full speed, appending to ``record``
    ``(type, f, session, value, time, error)`` tuples.  Starts at the
    barrier (if any) and stops issuing after ``duration`` seconds.  The
    error of an exception ``allow_errors`` matches (anywhere in its chain)
    ends with :data:`ALLOWED_MARK`."""
    from sessioncheck.controlled.refusals import allowed, compile_allowed, describe_chain

    from sessioncheck.controlled.aio import Uncontrolled

    patterns = compile_allowed(allow_errors)
    mono = time.monotonic
    ap = record.append
    if settle is not None:
        return _run_ops(store, ops, record, duration, barrier, counts, slot, patterns, settle)
    settle = Uncontrolled()  # an async store's results, awaited on this thread's loop
    try:
        _run_ops(store, ops, record, duration, barrier, counts, slot, patterns, settle)
    finally:
        settle.close()


def _run_ops(store: Any, ops: list[Planned], record: list, duration: float, barrier: Any, counts: Any,
             slot: int, patterns: Any, settle: Any) -> None:
    from sessioncheck.controlled.refusals import allowed, describe_chain

    mono = time.monotonic
    ap = record.append
    add, persist, read = store.add_message, store.persist_state, store.read
    from sessioncheck.controlled.actor import output_of

    identity = identity_of(store)
    if barrier is not None:
        barrier.wait(_BARRIER_TIMEOUT)
    deadline = mono() + duration
    done = 0
    for f, session, value, arg in ops:
        t = mono()
        if t > deadline:
            break
        ap(("invoke", f, session, value, t, None))
        try:
            if f == "add":
                settle(add(session, arg))
                out = None
            elif f == "persist":
                settle(persist(session, dict(arg)))
                out = None
            elif f == "delete":
                settle(store.delete_session(session))
                out = None
            elif f != "read":  # a declared edit, through its definition
                op = operations.get(f)
                out = output_of(op, settle(op.call(store, session, arg)), store)
            else:
                state = settle(read(session))
                out = {"messages": state.message_ids(identity), "metadata": dict(state.metadata)}
        except Exception as exc:  # the store's own error: outcome unknown
            mark = ALLOWED_MARK if patterns and allowed(describe_chain(exc), patterns) else ""
            ap(("info", f, session, None, mono(), f"{type(exc).__name__}: {exc}{mark}"))
        else:
            ap(("ok", f, session, out, mono(), None))
        done += 1
        if counts is not None:
            counts[slot] = done


def is_lock_timeout(error: str | None) -> bool:
    """Does an error text say a lock was not acquired in time?"""
    if not error:
        return False
    low = error.lower()
    kind = low.split(":", 1)[0]  # the exception's type name, as run_actor records it
    return ("timeout" in kind and "lock" in low) or "database is locked" in low or \
        "could not acquire" in low


@dataclass
class ActorStats:
    name: str
    ops: int = 0
    info: int = 0
    lock_timeouts: int = 0
    slow: int = 0
    unfinished: int = 0


@dataclass
class StressResult:
    config: StressConfig
    events: list[Event]
    check: CheckResult
    seconds: float  # from the start barrier to the last actor's end
    actors: list[ActorStats]
    latencies: dict[str, list[float]]
    #: What the run itself shows beyond the history check: I5 (an operation
    #: that did not return within the op timeout) and I4 (a read that
    #: raised: with no fault injected a read must return a session state).
    run_findings: list[Finding] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)  # actors whose history was not collected
    #: actors the store ended (sys.exit, os._exit, a BaseException), in words
    vanished: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.check.verdict == "violation" or self.run_findings:
            return "violation"
        if self.check.verdict == "unknown" or self.lost:
            return "unknown"
        return "ok"

    @property
    def completed(self) -> int:
        return sum(a.ops - a.unfinished for a in self.actors)


def _marks() -> Any:
    from sessioncheck.stress.tasks import Marks

    return Marks(ALLOWED_MARK, VANISHED, _BARRIER_TIMEOUT)


class _Going:
    """A barrier that also sets ``go`` once passed (tasks_main waits once)."""

    def __init__(self, barrier: Any, go: threading.Event) -> None:
        self._barrier, self._go = barrier, go

    def wait(self, timeout: float) -> Any:
        out = self._barrier.wait(timeout)
        self._go.set()
        return out

    def abort(self) -> None:
        self._barrier.abort()


def _child_main(conn: Any, spec: str, location: str, names: list[str], plans: list[list[Planned]],
                slots: list[int], duration: float, op_timeout: float, barrier: Any, counts: Any,
                allow_errors: tuple[str, ...] = (), tasks: bool = False) -> None:
    """A worker process: run one actor thread per name (each opens its own
    store instance), send ``("ok", [(name, records, finished)])`` or
    ``("error", text)`` to the parent, exit."""
    status = 0
    # A kill -9 of the harness must not leave a worker running (nor holding
    # the run folder's reaper pipe open until its --duration ends).
    die_with_parent()
    try:
        factory = resolve(spec)
        records: list[list] = [[] for _ in names]
        errors: list[str] = []
        go = threading.Event()  # set by the first actor through the barrier
        finished = [False] * len(names)
        if tasks:
            from sessioncheck.stress.tasks import tasks_main

            def loop_main() -> None:
                tasks_main(factory, Path(location), plans, records, finished, duration, op_timeout,
                           _Going(barrier, go), counts, slots, errors, _marks(), allow_errors)

            threads = [threading.Thread(target=loop_main, daemon=True, name="tasks")]
        else:
            threads = [threading.Thread(target=_thread_main, daemon=True, name=n,
                                        args=(factory, Path(location), p, rec, duration, barrier, counts,
                                              slot, go, errors, allow_errors))
                       for n, p, rec, slot in zip(names, plans, records, slots)]
        for t in threads:
            t.start()
        # The same bound as the parent's: from the common start, not from ours.
        go.wait(_BARRIER_TIMEOUT + 1.0)
        limit = time.monotonic() + duration + op_timeout
        for t in threads:
            t.join(max(0.0, limit - time.monotonic()))
        gone = [e for e in errors if e.startswith(VANISHED)]
        if gone:
            conn.send(("error", gone[0]))
        elif errors:
            conn.send(("error", errors[0]))
        elif tasks:
            conn.send(("ok", [(n, list(r), f) for n, r, f in zip(names, records, finished)]))
        else:
            conn.send(("ok", [(n, list(r), not t.is_alive()) for n, r, t in zip(names, records, threads)]))
    except BaseException:
        status = 1
    finally:
        conn.close()
        from sessioncheck.controlled import exits

        exits.real_exit(status)  # hung actor threads die with the process


def _thread_main(factory: Any, location: Path, ops: list[Planned], record: list, duration: float,
                 barrier: Any, counts: Any, slot: int, go: threading.Event | None,
                 errors: list[str], allow_errors: tuple[str, ...] = ()) -> None:
    """One actor: open its own store instance *in its own thread* (some
    stores, e.g. SQLite connections, belong to the thread that made them),
    meet the others at the barrier, run, close."""
    from sessioncheck.controlled.aio import Uncontrolled

    settle = Uncontrolled()  # an async store keeps this thread's one loop from open to close
    try:
        store = settle(factory.open(location))
    except Exception as exc:
        settle.close()
        errors.append(f"opening the store raised {type(exc).__name__}: {exc}")
        barrier.abort()
        return
    try:
        try:
            barrier.wait(_BARRIER_TIMEOUT)
        except threading.BrokenBarrierError:
            return
        if go is not None:
            go.set()
        from sessioncheck.controlled import exits

        try:
            with exits.inside_store():  # os._exit raises here: the harness lives on to say so
                run_actor(store, ops, record, duration=duration, counts=counts, slot=slot,
                          allow_errors=allow_errors, settle=settle)
        except BaseException as exc:  # noqa: BLE001 - a store ending its actor is reported
            errors.append(f"{VANISHED}actor {threading.current_thread().name}: {exits.describe(exc)}")
    finally:
        _close(store, settle)
        settle.close()


#: prefix of an ``errors`` entry saying the store ended an actor
VANISHED = "vanished: "


def _close(store: Any, settle: Any = None) -> None:
    close = getattr(store, "close", None)
    if callable(close):
        try:
            result = close()
            if settle is not None:
                settle(result)
        except Exception:
            pass


def run_stress(config: StressConfig, *, progress: Callable[[int], None] | None = None) -> StressResult:
    """Run the stress test described by ``config`` and check its history.

    ``progress`` (if given) is called about five times a second with the
    number of operations completed so far.  Raises :class:`ConfigError`
    when the store cannot be resolved or opened.
    """
    import multiprocess as mp

    config.validate()
    spec = resolve(config.store)
    names = config.actor_names
    per, extra = divmod(config.ops, len(names))
    ctx = mp.get_context("fork")
    counts = ctx.RawArray("q", len(names))
    # one party per actor thread, or per event loop of tasks (one a process)
    barrier = ctx.Barrier((max(1, config.processes) if config.tasks else len(names)) + 1)
    tmp = tempfile.mkdtemp(prefix="sessioncheck-stress-")
    children: list[Any] = []
    try:
        location = Path(tmp)
        from sessioncheck.controlled.aio import Uncontrolled

        settle = Uncontrolled()  # the probe and the final read of an async store
        try:
            probe = settle(spec.open(location))
        except Exception as exc:
            settle.close()
            raise ConfigError(f"store {config.store!r}: opening it raised {type(exc).__name__}: {exc}") from None
        caps = capabilities_of(probe)
        deletes = caps.delete
        edits = tuple(f for f in EDITS if getattr(caps, f))
        identity = caps.message_identity
        # the store's declared fields and message kinds are the model's
        keys = tuple(dict.fromkeys(caps.metadata_fields)) or KEYS
        kinds = tuple(dict.fromkeys(caps.message_kinds)) or tuple(config.messages)
        value_names = tuple(config.values)
        if caps.metadata_values is not None:  # the store's strategy is the model's, as in run
            from sessioncheck.controlled import values as value_kinds

            try:
                value_names += (value_kinds.register(f"{spec.name}.metadata_values", caps.metadata_values,
                                                     replace=True),)
            except ValueError as exc:
                _close(probe, settle)
                raise ConfigError(f"store {spec.name!r}: Capabilities.metadata_values: {exc}") from None
        _close(probe, settle)
        choices = value_choices(value_names, config.seed) if value_names else ()
        plans = [plan(n, per + (i < extra), config.sessions, config.seed, deletes=deletes, metadata=caps.metadata,
                      edits=edits, keys=keys, kinds=kinds, identity=identity, values=choices)
                 for i, n in enumerate(names)]
        collected: dict[str, tuple[list, bool]] = {}
        threads: list[tuple[str, threading.Thread, list]] = []
        errors: list[str] = []
        finished_tasks = [False] * len(names)
        if config.processes == 0 and config.tasks:
            from sessioncheck.stress.tasks import tasks_main

            recs: list[list] = [[] for _ in names]
            t = threading.Thread(target=tasks_main, daemon=True, name="tasks",
                                 args=(spec, location, plans, recs, finished_tasks, config.duration,
                                       config.op_timeout, barrier, counts, list(range(len(names))), errors,
                                       _marks(), config.allow_errors))
            t.start()
            threads.append(("tasks", t, recs))
        elif config.processes == 0:
            for i, n in enumerate(names):
                rec: list = []
                t = threading.Thread(target=_thread_main, daemon=True, name=n,
                                     args=(spec, location, plans[i], rec, config.duration, barrier,
                                           counts, i, None, errors, config.allow_errors))
                t.start()
                threads.append((n, t, rec))
        else:
            for p in range(config.processes):
                idx = list(range(p * config.per_process, (p + 1) * config.per_process))
                parent_conn, child_conn = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_child_main, daemon=True, name=f"sessioncheck-p{p}",
                                   args=(child_conn, config.store, tmp, [names[i] for i in idx],
                                         [plans[i] for i in idx], idx, config.duration,
                                         config.op_timeout, barrier, counts, config.allow_errors,
                                         bool(config.tasks)))
                proc.start()
                child_conn.close()
                children.append((proc, parent_conn, [names[i] for i in idx]))
        try:
            barrier.wait(_BARRIER_TIMEOUT)
        except threading.BrokenBarrierError:
            why = "; ".join(dict.fromkeys(errors)) or _drain_errors(children)
            raise ConfigError(f"store {config.store!r}: the actors did not start: "
                              + (why or "an actor did not reach the start in time")) from None
        started = time.monotonic()
        limit = started + config.duration + config.op_timeout
        pending = {id(c[1]): c for c in children}
        from multiprocess.connection import wait as mp_wait

        while True:
            now = time.monotonic()
            if progress is not None:
                progress(sum(counts))
            threads_alive = any(t.is_alive() for _, t, _ in threads)
            if (not threads_alive and not pending) or now > limit + 5.0:
                break
            if pending:
                for conn in mp_wait([c[1] for c in pending.values()], timeout=0.2):
                    proc, _, cnames = pending.pop(id(conn))
                    try:
                        kind, payload = conn.recv()
                    except (EOFError, OSError):
                        continue
                    if kind == "ok":
                        for n, rec, finished in payload:
                            collected[n] = (rec, finished)
                    elif isinstance(payload, str) and payload.startswith(VANISHED):
                        errors.append(payload)
            else:
                next(t for _, t, _ in threads if t.is_alive()).join(0.2)
        for n, t, rec in threads:
            if n == "tasks":  # one loop, a record per task
                for i, task_rec in enumerate(rec):
                    collected[names[i]] = (list(task_rec), finished_tasks[i])
            else:
                collected[n] = (list(rec), not t.is_alive())
        ended = time.monotonic()
        if progress is not None:
            progress(sum(counts))
        lost = [n for n in names if n not in collected]
        # The final state: one read per session, after everything else.
        final_store = settle(spec.open(location))
        finals: list[Event] = []
        for s in range(config.sessions):
            sid = f"s{s}"
            t0 = time.monotonic()
            finals.append(Event("final", "invoke", "read", sid, None, t0))
            try:
                state = settle(final_store.read(sid))
                ids = state.message_ids(identity_of(final_store))
            except Exception as exc:
                finals.append(Event("final", "info", "read", sid, None, time.monotonic(),
                                    f"{type(exc).__name__}: {exc}"))
            else:
                finals.append(Event("final", "ok", "read", sid,
                                    {"messages": ids, "metadata": dict(state.metadata)},
                                    time.monotonic()))
        _close(final_store, settle)
        settle.close()
    finally:
        _reap(children)
        shutil.rmtree(tmp, ignore_errors=True)
    result = _assemble(config, names, collected, lost, finals, ended - started)
    result.vanished = [e[len(VANISHED):] for e in dict.fromkeys(errors) if e.startswith(VANISHED)]
    return result


def _drain_errors(children: list) -> str:
    msgs = []
    for proc, conn, _ in children:
        try:
            if conn.poll(2.0):
                kind, payload = conn.recv()
                if kind == "error":
                    msgs.append(str(payload))
        except (EOFError, OSError):
            pass
    return "; ".join(dict.fromkeys(msgs))


def _reap(children: list) -> None:
    for proc, conn, _ in children:
        proc.join(timeout=2.0)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=5.0)
        try:
            conn.close()
        except OSError:
            pass


def _assemble(config: StressConfig, names: list[str], collected: dict, lost: list[str],
              finals: list[Event], seconds: float) -> StressResult:
    events: list[Event] = []
    info_end: dict[tuple[str, float], float] = {}  # pair() forgets when an info came back
    for n in names:
        rec, _ = collected.get(n, ([], True))
        events.extend(Event(n, typ, f, s, v, t, err) for typ, f, s, v, t, err in rec)
        for i in range(1, len(rec)):
            if rec[i][0] == "info":
                info_end[(n, rec[i - 1][4])] = rec[i][4]
    events.sort(key=lambda e: e.time)  # stable: each actor's own order is kept
    events.extend(finals)
    ops = pair(events)
    stats = {n: ActorStats(n) for n in names}
    latencies: dict[str, list[float]] = {"add": [], "persist": [], "read": [], "delete": []}
    latencies.update((f, []) for f in EDITS)
    run_findings: list[Finding] = []
    t0 = ops[0].start if ops else 0.0
    for op in ops:
        a = stats.get(op.process)
        if a is None:
            continue
        a.ops += 1
        if op.status == "pending":
            a.unfinished += 1
            run_findings.append(Finding("I5", op.session, None,
                                        f"{op.describe()} invoked at t={op.start - t0:.4f}s did not "
                                        f"return within the op timeout ({config.op_timeout:g} s)", (op,)))
            continue
        if op.status == "info":
            a.info += 1
            if is_lock_timeout(op.error):
                a.lock_timeouts += 1
            elif op.f == "read" and not (op.error or "").endswith(ALLOWED_MARK):
                run_findings.append(Finding("I4", op.session, None,
                                            f"the read by {op.process} at t={op.start - t0:.4f}s raised "
                                            f"{op.error}; with no fault injected a read must return a "
                                            "session state (was a half-written state visible?)", (op,)))
        end = op.end if op.end != math.inf else info_end.get((op.process, op.start))
        if end is not None:
            latency = end - op.start
            latencies[op.f].append(latency)
            if latency > config.op_timeout:
                a.slow += 1
                run_findings.append(Finding("I5", op.session, None,
                                        f"{op.describe()} took {latency:.1f} s, more than the op "
                                        f"timeout ({config.op_timeout:g} s)", (op,)))
    result = check(ops, budget=config.check_budget)
    return StressResult(config, events, result, seconds, list(stats.values()), latencies, run_findings, lost)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return math.nan
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]
