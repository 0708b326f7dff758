"""The controlled scheduler: one actor at a time, locks, virtual time.

Design notes
------------
Every actor is parked at a point or idle.  The scheduler resumes exactly
one actor at a time; the actor performs the access it was parked before
and runs privately until its next point.  So a run is fully described by
the sequence of (actor, resume) decisions, which the engine takes from a
program (Hypothesis chose it) and, at the end, from a fixed round-robin
*drain* that lets every unfinished operation complete.

Locks.  Actors report lock events with each point: ``acquired`` /
``released`` (a flock on an inode, a cooperative threading lock) and
``blocked`` (an attempt that would have blocked).  An actor is *blocked*
while the lock it last failed to take is held by someone else.  A blocked
actor parked at a blocking wait (``flock-wait``, ``lock-wait``) cannot run
until the holder releases; a blocked actor parked at a ``sleep`` is a
poller and may run (each poll lets virtual time pass, so lock timeouts can
fire).  When every busy actor is blocked and none polls, that is a
deadlock (unless some wait inside a PostgreSQL server, which breaks its
own cycles: one of those then goes on and waits for the server); when only pollers remain and virtual time passes the horizon, it
is a livelock: both are reported (I5), never waited out.

Sleeping yields.  An actor parked at a ``sleep`` waits for something
another actor does, whether the harness sees the lock or not (an
``O_EXCL`` lock file retried every 10 ms, ``filelock.SoftFileLock``): in
the drain and in :meth:`Scheduler.finish`, every other actor that can run
without sleeping runs first, and sleepers then wake in order of their
wake-up time (ties by actor order), as a discrete-event clock would have
them.  So the holder of a lock file runs and releases it instead of the
waiter polling alone until the horizon.  The one exception is a poller
whose lock the scheduler knows and sees free: it will take it at once, so
it need not yield.

Running ahead.  Where the scheduler would let the running actor continue
anyway (an ``advance`` past a point that is not a blocking wait; the
drain and :meth:`Scheduler.finish` past a point where the actor stays
free), the actor decides that itself at the point and goes on without
handing the baton back (:class:`~sessioncheck.controlled.actor.Ahead`).
It tells the scheduler every point it passed, and :meth:`Scheduler._run`
does for each what a resume would have done (the trace entry, the clock,
the lock bookkeeping) and checks that it would have let the actor go on.
The trace, the history and the story are the same as with a hand-over at
every point (``tests/test_baton.py``).  Not while something watches each
point (the power-loss probe), nor for task actors.

Virtual time.  ``time.sleep`` inside an actor is a point; when the actor
is resumed from it the clock jumps to its wake-up time (a discrete-event
clock: a 10 s lock timeout fires at t=10, not after 10 s of real time).
Every other resume advances the clock by one microsecond so that time
stamps taken by the store stay ordered and replayable.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sessioncheck.controlled.actor import Actor, Done, OpCall, Point, Stop

#: the acknowledged operations a power-loss probe follows (the built-in
#: mutations; the probe checks them with the history checker)
_PROBED = ("add", "persist", "delete", "pop", "clear", "rename")
from sessioncheck.checking.history import Operation

TICK = 1e-6
WAITS = ("flock-wait", "lock-wait")
#: Points where an injected I/O error means something: file system calls.
#: Points where a task can be cancelled (``--faults cancel``): its awaits.
CANCELLABLE = ("await", "sleep", "lock-wait")
FAULTABLE = ("open", "read", "flush", "close", "replace", "rename", "unlink", "fsync", "truncate")


class Deadlock(Exception):
    """Every busy actor waits for a lock another holds (I5)."""

    def __init__(self, summary: str, kind: str = "deadlock") -> None:
        super().__init__(summary)
        self.summary = summary
        self.kind = kind


@dataclass
class ActorState:
    actor: Actor
    parked: Point | None = None
    op: Operation | None = None
    blocked_on: Any = None
    wake: float = 0.0
    crashed: bool = False

    @property
    def busy(self) -> bool:
        return self.op is not None


@dataclass
class Scheduler:
    actors: list[Actor]
    horizon: float = 120.0
    drain_limit: int = 50_000
    now: float = 0.0
    t: int = 0
    trace: list[dict] = field(default_factory=list)
    ops: list[Operation] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state = {a.name: ActorState(a) for a in self.actors}
        self.holders: dict[Any, set[str]] = {}
        #: semaphores (keys ``("sem" | "mpsem", ..., capacity)``): acquisitions
        #: minus releases, by every actor; a waiter is held back only while
        #: this is at the capacity
        self.taken: dict[Any, int] = {}
        self._taken_by: dict[tuple[Any, str], int] = {}
        #: called with (actor, point) after an actor performed a point
        self.on_performed: Any = None
        #: called with the operation after a mutation was acknowledged
        self.on_ack: Any = None
        #: how often each actor waiting in a PostgreSQL server was let go
        #: on while every busy actor looked blocked (drain)
        self._server_turns: dict[str, int] = {}

    # -- bookkeeping ----------------------------------------------------
    def _log(self, actor: str, ev: str, **data: Any) -> dict:
        self.t += 1
        entry = {"t": self.t, "actor": actor, "ev": ev, **data}
        self.trace.append(entry)
        return entry

    def _absorb(self, name: str, stop: Stop) -> None:
        st = self.state[name]
        for ev in stop.events:
            what, key = ev[0], ev[1]
            if what == "acquired":
                self.holders.setdefault(key, set()).add(name)
                if _counted(key):
                    self.taken[key] = self.taken.get(key, 0) + 1
                    self._taken_by[key, name] = self._taken_by.get((key, name), 0) + 1
                if st.blocked_on == key:
                    st.blocked_on = None
            elif what == "released":
                if _counted(key):
                    self.taken[key] = self.taken.get(key, 0) - 1
                    left = self._taken_by.get((key, name), 0) - 1
                    self._taken_by[key, name] = left
                    if left > 0:
                        continue  # still holds another slot
                self.holders.get(key, set()).discard(name)
                if _server_breaks(key) and not self.holders.get(key):
                    # A PostgreSQL backend's key is released once it holds
                    # nothing, and the releaser lets the statements it woke
                    # settle first (intercept/postgres.py): its waiters got
                    # their lock or wait for someone else now.  They are no
                    # longer blocked on it, even when the same backend
                    # takes the key again for its next transaction.
                    for other in self.state.values():
                        if other.blocked_on == key:
                            other.blocked_on = None
            elif what == "not-durable":
                # a commit the server acknowledges before it is durable
                # (sessioncheck.controlled.server_crash reads it)
                if st.op is not None:
                    st.op.meta["not_durable"] = key
            elif what == "recorded":
                # an access to a private temporary file the actor made
                # (intercept.ActorContext.point): in the trace and the
                # story, but never a place the schedule switches actors
                self._log(name, "point", kind=key, path=ev[2], detail=ev[3], recorded=True)
            elif what == "blocked":
                st.blocked_on = key
                last = self.trace[-1] if self.trace else None
                if last is not None and last["actor"] == name and last["ev"] == "point":
                    last["busy"] = True
        if isinstance(stop, Point):
            st.parked = stop
            if stop.kind == "sleep":
                st.wake = self.now + float(stop.detail or 0)
        else:
            self._finish(name, stop)

    def _finish(self, name: str, done: Done) -> None:
        st = self.state[name]
        st.parked = None
        st.blocked_on = None
        op = st.op
        st.op = None
        value = done.value
        if op is not None:
            op.end = self.t + 1
            op.meta["end_t"] = self.t + 1
            op.output = value
            if done.status == "ok":
                op.status = "ok"
            else:
                op.status = "info"
                op.end = float("inf")
                op.error = done.error
            op.meta["error_kind"] = done.status
            if done.causes:
                op.meta["causes"] = list(done.causes)
        self._log(name, "done", status=done.status, value=value, error=done.error,
                  call=op.f if op else None)
        if (self.on_ack is not None and op is not None and done.status == "ok"
                and op.f in _PROBED):
            self.on_ack(op)

    def release_all(self, name: str) -> None:
        """A crashed actor's locks die with it (the kernel closes its fds),
        except a multiprocessing semaphore's count: the kernel does not give
        back what a killed process held."""
        for key, holders in self.holders.items():
            if key[0] == "mpsem":
                continue
            holders.discard(name)
            if key[0] == "sem":
                self.taken[key] = self.taken.get(key, 0) - self._taken_by.pop((key, name), 0)

    # -- queries --------------------------------------------------------
    def busy(self) -> list[str]:
        return [n for n, s in self.state.items() if s.busy]

    def idle(self) -> list[str]:
        return [n for n, s in self.state.items() if not s.busy and not s.crashed]

    def blocked(self, name: str) -> bool:
        key = self.state[name].blocked_on
        if key is None:
            return False
        if key[0] == "sqlite":
            # SQLite's own lock has no holder the harness can see: an actor
            # whose last statement found the database busy counts as
            # blocked until a statement of its succeeds.
            return True
        if key[0] == "redis-blocked":
            # a command the Redis server holds until a key is ready
            # (controlled/intercept/redis_waits.py): blocked while it does
            from sessioncheck.controlled.intercept.redis_waits import still_blocked

            return still_blocked(key)
        if key[0] == "await":
            # a task waiting for a future another task settles
            # (controlled/task_actor.py): blocked until it is done
            return not key[1].ready()
        if _counted(key):
            # no slot left: the count of slots taken is at the capacity
            return self.taken.get(key, 0) >= key[-1]
        return bool(self.holders.get(key, set()) - {name})

    def runnable(self, name: str) -> bool:
        st = self.state[name]
        if not st.busy or st.parked is None:
            return False
        return not (self.blocked(name) and st.parked.kind in WAITS)

    def sleeping(self, name: str) -> bool:
        """Parked at a ``sleep`` while waiting for someone else: for a lock
        it failed to take and that is still held, or for something the
        harness cannot see (a lock file made with ``O_EXCL``).  A poller
        whose known lock is free now is not waiting for anyone."""
        st = self.state[name]
        if st.parked is None or st.parked.kind != "sleep":
            return False
        return st.blocked_on is None or self.blocked(name)

    def free(self, name: str) -> bool:
        """Busy and able to make progress without waiting for anyone."""
        return self.runnable(name) and not self.blocked(name) and not self.sleeping(name)

    def runnable_busy(self) -> list[str]:
        return [n for n in self.busy() if self.runnable(n)]

    # -- moves ----------------------------------------------------------
    def begin(self, name: str, call: OpCall, op: Operation | None) -> None:
        """Invoke ``call`` on an idle actor and run it to its first point."""
        st = self.state[name]
        if op is not None:
            op.start = self.t + 1
            op.index = len(self.ops)
            self.ops.append(op)
        st.op = op if op is not None else Operation(name, call.f, call.session, call.value, self.t + 1)
        if call.message is None:
            self._log(name, "start", call=call.f, session=call.session, value=_jsonable(call.value))
        else:  # a drawn message shape: the story names it beside the id
            from sessioncheck.controlled.messages import summary

            self._log(name, "start", call=call.f, session=call.session, value=_jsonable(call.value),
                      message=summary(call.message))
        self._absorb(name, st.actor.begin(call, self.now))

    def resume(self, name: str, fault: int | None = None) -> None:
        """Perform the access ``name`` is parked at and run to its next point."""
        st = self.state[name]
        point = st.parked
        assert point is not None
        if point.kind == "sleep":
            self.now = max(self.now, st.wake)
        self.now += TICK
        if fault is None:
            self._log(name, "point", kind=point.kind, path=point.path,
                      detail=point.detail)
        stop = st.actor.resume(self.now, fault)
        if self.on_performed is not None and fault is None:
            self.on_performed(name, point)
        self._absorb(name, stop)

    def inject(self, name: str, errno_name: str) -> None:
        """Make the file call ``name`` is parked at fail with an I/O error
        instead of running.  Elsewhere (a lock, a sleep) it does nothing."""
        from sessioncheck.controlled.program import INJECTABLE

        point = self.state[name].parked
        if point is None or point.kind not in (CANCELLABLE if errno_name == "cancel" else FAULTABLE):
            return
        self.now += TICK
        self._log(name, "fault", kind=point.kind, path=point.path, detail=point.detail, errno=errno_name)
        self._absorb(name, self.state[name].actor.resume(self.now, INJECTABLE[errno_name]))

    def crash(self, name: str) -> None:
        st = self.state[name]
        point = st.parked
        st.actor.crash()
        self._log(name, "crash", kind=point.kind if point else "", path=point.path if point else "")
        self.release_all(name)
        if st.op is not None:
            st.op.status = "info"
            st.op.error = "killed (kill -9)"
            st.op.meta["error_kind"] = "crash"
        st.op = None
        st.parked = None
        st.blocked_on = None
        st.crashed = True

    def replace(self, name: str, actor: Actor) -> None:
        """A restarted actor takes the place of a crashed one."""
        self.state[name] = ActorState(actor)
        self._log(name, "restart")

    def run_alone(self, name: str, call: OpCall) -> Done:
        """Run a housekeeping call (open, close) to completion while every
        other actor is idle; returns its result."""
        self.begin(name, call, None)
        n = 0
        while self.state[name].busy:
            n += 1
            if n > self.drain_limit:
                raise Deadlock(f"{name}: {call.f} of the store did not finish within {self.drain_limit} points",
                               "livelock")
            self.resume(name)
        last = self.trace[-1]
        return Done(last["status"], last.get("value"), last.get("error"))

    def finish(self, name: str) -> bool:
        """Run ``name`` until its operation is done; False if it cannot
        get there without someone else moving first.

        While ``name`` sleeps (it waits for something another actor does,
        see the design notes), the other actors move as in the drain: the
        holder of a lock file runs and releases it.  False too when ``name``
        is blocked at a lock, or when its waiting outlasts the horizon or
        the point budget (the drain then reports what waits for what)."""
        start = self.now
        n = 0
        while self.state[name].busy:
            if not self.runnable(name) or self.blocked(name) or n > self.drain_limit:
                return False
            n += 1
            if self.sleeping(name):
                if self.now - start > self.horizon:
                    return False
                other = self._next_mover(exclude=name)
                if other is not None:
                    self.resume(other)
                    continue
            # it may go on while it stays free (runnable, not blocked, not
            # asleep) and the point budget lasts: ``drain_limit - n + 2``
            # resumes, this one included
            n += self._run(name, self.drain_limit - n + 2, drain=True) - 1
        return True

    def _next_mover(self, exclude: str | None = None) -> str | None:
        """Who moves next while sleepers wait: the free actor started most
        recently, else the sleeper that wakes first (ties by actor order);
        ``None`` when that is ``exclude`` or nobody can move."""
        names = list(self.state)
        busy = self.busy()
        free = [n for n in busy if self.free(n)]
        if free:
            pick = max(free, key=lambda n: (self.state[n].op.start, -names.index(n)))
            return None if pick == exclude else pick
        pollers = [n for n in busy if self.runnable(n)]
        if not pollers:
            return None
        pick = min(pollers, key=lambda n: (self.state[n].wake, names.index(n)))
        return None if pick == exclude else pick

    def advance(self, name: str, points: int) -> None:
        left = points
        while left > 0 and self.runnable(name):
            left -= self._run(name, left, drain=False)

    # -- running ahead ----------------------------------------------------
    def _ahead_ok(self, name: str) -> bool:
        """Whether ``name`` may take the points the scheduler would let it
        take anyway by itself (:class:`~sessioncheck.controlled.actor.Ahead`):
        its transport can, and nothing watches every single point (the
        power-loss probe snapshots files before each one; a wrapped
        ``resume`` expects to see each)."""
        return (_RUN_AHEAD[0] and self.on_performed is None and "resume" not in self.__dict__
                and type(self).resume is _RESUME and hasattr(self.state[name].actor, "run_ahead"))

    def _run(self, name: str, budget: int, drain: bool) -> int:
        """Resume ``name`` and let it go on through at most ``budget``
        points while the scheduler would let it (``advance``: runnable;
        the drain: free).  Returns the points performed.  The trace, the
        clock and the lock bookkeeping come out as ``budget`` single
        resumes with those checks between them would leave them."""
        if budget <= 1 or not self._ahead_ok(name):
            self.resume(name)
            return 1
        st = self.state[name]
        point = st.parked
        assert point is not None
        if point.kind == "sleep":
            self.now = max(self.now, st.wake)
        self.now += TICK
        self._log(name, "point", kind=point.kind, path=point.path, detail=point.detail)
        performed = [1]

        def went_on(stop: Point) -> None:
            # The actor performed the point it reached and went on: what
            # Scheduler.resume would have done for it, one more time.
            self._absorb(name, stop)
            if not (self.free(name) if drain else self.runnable(name)):
                raise AssertionError(f"actor {name} ran on past a point the scheduler would stop at: {stop}")
            performed[0] += 1
            if stop.kind == "sleep":
                self.now = max(self.now, st.wake)
            self.now += TICK
            if stop.now is not None and stop.now != self.now:
                raise AssertionError(f"actor {name} went on at t={stop.now!r}, not at t={self.now!r}")
            self._log(name, "point", kind=stop.kind, path=stop.path, detail=stop.detail)

        stop = st.actor.run_ahead(self.now, budget, drain, st.blocked_on, went_on)
        self._absorb(name, stop)
        return performed[0]

    def drain(self) -> None:
        """Let every busy actor finish, deterministically.

        A free actor (one that waits for nobody) runs until it is done,
        blocked or asleep; the most recently started goes first: a program
        that ends with "X was preempted, then Y started" means Y finishes
        while X waits, the shape of most lost-update bugs.  When no actor is
        free, the sleeper that wakes first polls once (see the design notes:
        a sleeper yields to everyone who can run)."""
        start = self.now
        spent = 0
        names = list(self.state)
        while busy := self.busy():
            spent += 1
            if spent > self.drain_limit:
                raise Deadlock(self._waits("no progress within "
                                           f"{self.drain_limit} points"), "livelock")
            free = [n for n in busy if self.free(n)]
            if free:
                name = max(free, key=lambda n: (self.state[n].op.start, -names.index(n)))
                while self.state[name].busy and self.free(name):
                    if spent >= self.drain_limit:
                        spent += 1
                        break
                    spent += self._run(name, self.drain_limit - spent, drain=True)
                continue
            pollers = [n for n in busy if self.runnable(n)]
            if not pollers:
                # Waits a PostgreSQL server holds are the server's to end: a
                # cycle among them is a deadlock it breaks itself (one
                # statement fails with 40P01, a refusal), which the harness
                # must not report first.  So one such waiter goes on and
                # waits in real time for the server; one still held after a
                # while parks again (intercept/postgres.py REPARK), and the
                # next goes on: the one given the fewest such turns, then
                # the first by name.  (What the server holds may have
                # changed since the waiters parked: a row's waiters are not
                # always woken in the order they queued.)
                held = sorted(n for n in busy if _server_breaks(self.state[n].blocked_on))
                if not held:
                    raise Deadlock(self._waits("deadlock"))
                turn = min(held, key=lambda n: self._server_turns.get(n, 0))
                self._server_turns[turn] = self._server_turns.get(turn, 0) + 1
                self.resume(turn)
                continue
            if self.now - start > self.horizon:
                raise Deadlock(self._waits(f"livelock for {self.horizon:g} virtual seconds"), "livelock")
            self.resume(min(pollers, key=lambda n: (self.state[n].wake, names.index(n))))

    def _waits(self, what: str) -> str:
        parts = []
        for n in self.busy():
            st = self.state[n]
            key = st.blocked_on
            holders = sorted(self.holders.get(key, set()) - {n}) if key is not None else []
            where = st.parked.path if st.parked else ""
            if holders:
                parts.append(f"{n} waits at {st.parked.kind} {where} for a lock held by {', '.join(holders)}")
            else:
                parts.append(f"{n} is parked at {st.parked.kind if st.parked else '?'} {where}")
        return f"{what}: " + "; ".join(parts)


def _server_breaks(key: Any) -> bool:
    """Whether the wait on ``key`` is one a server ends by itself when it is
    part of a cycle (PostgreSQL's deadlock detector), not the harness."""
    return isinstance(key, tuple) and bool(key) and key[0] == "pg"


#: Whether actors may run ahead (Scheduler._run).  Off, every point is a
#: hand-over to the scheduler and back, as before run-ahead existed; the
#: identity tests (tests/test_baton.py) compare the two.
_RUN_AHEAD = [True]


#: the plain resume: a scheduler whose resume was wrapped (in a subclass,
#: or on the class) sees every point, and its actors never run ahead
_RESUME = Scheduler.resume


def _counted(key: Any) -> bool:
    """Semaphore keys carry their capacity; every other lock is a mutex
    (or a shared lock the kernel arbitrates) held by a set of actors."""
    return isinstance(key, tuple) and bool(key) and key[0] in ("sem", "mpsem")


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    return v
