"""Task actors: asyncio tasks of one event loop, the loop the harness owns.

Two requests served by one asyncio application interleave at every
``await`` that really suspends, never in between.  Here each actor is one
task of a loop shared by all the task actors of an executor (one thread
runs it); each has its own store instance.  A task's coroutine is driven
step by step by a wrapper (:func:`_TaskLoop._drive`): every time it
suspends on a future the wrapper waits for that future to settle, with
every other task held at its gate, and then parks the task at an
``await`` point naming the coroutine and line it stopped at.  The
scheduler decides which parked task resumes, from the same program data
as thread and process actors, so shrinking, replay and stories are
unchanged.

While a task runs, the loop runs as asyncio runs it.  When it has nothing
ready, what the task's innermost await waits for decides
(:meth:`TaskActor.waits_for`, read from the await chain):

- its own I/O (a socket, a driver such as aiosqlite or redis.asyncio, a
  helper thread: ``run_in_executor``, ``asyncio.to_thread``): the loop
  waits for it for real, every other task held at its gate, so the result
  does not depend on timing;
- an asyncio lock, event, condition or queue: the task is parked at once
  at a ``lock-wait`` point, blocked until another task frees it;
- a sleep: parked at a ``sleep`` point (virtual time: when the scheduler
  resumes it the clock jumps to the timer, so a 10 s timeout costs
  nothing);
- anything else: a real wait of at most :data:`GRACE`, then parked.

Helper threads are the task's: pool work it submits through the loop and
threads its code starts (aiosqlite's connection thread) carry its context
(intercept/context.py ``spawning``), so their intercepted calls (file
calls, SQL statements, locks) are points of the task.  Such a point is
handed to the scheduler by the helper thread itself while the loop thread
waits in that task's operation (no hop through the loop), and the loop
thread is brought out of the operation (:meth:`TaskLoop._preempt`) before
it runs another task.  A ``redis.asyncio`` command is one point, taken
before it is sent (``aio.server_request``), whatever its reply does.
A psycopg 3 async statement waiting in the server for a lock another
actor holds is seen by the selector, which asks the server between slices
of the wait (``_Selector._server_wait``): the task is parked at a
``flock-wait`` point blocked on the holder's backend, its statement still
pending, as a thread actor's is (intercept/postgres.py).

File and lock calls of the loop thread itself are not points: code
between two awaits runs without interruption in asyncio, and a
synchronous store run in tasks is one atomic step per operation.

``fault`` steps with ``cancel`` cancel the task at its current await
(``Task.cancel()``), as a web server does when a client disconnects; a
helper thread the cancelled await leaves running finishes, unpaused,
before the next step.

Task actors combine with processes through hosts
(:mod:`sessioncheck.controlled.task_host`, ``--processes M``): each of M
forked processes runs one such loop with its tasks, the harness holds a
proxy per task.

Limits: tasks a store creates itself run whenever the loop runs (their
own awaits are not gates); in processes, code between two awaits is one
step with respect to the other processes too; tasks do not combine with
thread or process actors in one run, and a process of tasks is never
killed (``crash``); a synchronous call that waits for another task (a
sync psycopg statement on a row a parked task locked) holds the loop.
"""
from __future__ import annotations

import _thread
import asyncio
import contextlib
import gc
import inspect
import os
import threading
from typing import Any, Iterator

from sessioncheck.controlled import intercept
from sessioncheck.controlled.actor import ActorDied, Done, OpCall, Point, Runner, Stop, Stuck, wake
from sessioncheck.controlled.aio import DelegatingSelector, close_loop
from sessioncheck.controlled.intercept import threads
from sessioncheck.controlled.intercept.clock import real_monotonic
from sessioncheck.controlled.intercept.context import enter_spawning
from sessioncheck.errors import UnsupportedStore
from sessioncheck.protocol import StoreSpec

#: real seconds a task waits, with nothing ready, on a future of unknown
#: origin (neither I/O nor an asyncio lock, event, queue or sleep: see
#: TaskActor.waits_for) before it is parked (blocked, or on a timer)
GRACE = 0.5
#: real seconds of one slice of a wait for a statement's reply, between two
#: looks at what the server holds it on (_Selector._server_wait)
SLICE = 0.002
CANCEL = -1  # the fault code of a cancellation (program.INJECTABLE["cancel"])

_HERE = os.path.dirname(os.path.abspath(__file__))
_ASYNCIO = os.path.dirname(asyncio.__file__)
#: asyncio modules whose awaits wait for a socket (streams, sock_* calls, connecting)
_ASYNCIO_IO = ("streams.py", "selector_events.py", "base_events.py", "sslproto.py", "threads.py")
#: async drivers whose awaits wait for a socket or for their own thread
_DRIVERS = (f"{os.sep}aiosqlite{os.sep}", f"{os.sep}redis{os.sep}asyncio{os.sep}", f"{os.sep}psycopg{os.sep}",
            f"{os.sep}asyncpg{os.sep}", f"{os.sep}aiofiles{os.sep}",
            # async generators over an aiosqlite cursor (their asend hides the chain)
            f"{os.sep}langgraph{os.sep}checkpoint{os.sep}sqlite{os.sep}")


class _Selector(DelegatingSelector):
    """Delegates to a real selector; decides what the loop waits for when
    it has nothing ready (see the module docstring)."""

    def __init__(self, owner: "TaskLoop") -> None:
        super().__init__()
        self._owner = owner

    def select(self, timeout: float | None = None) -> list:
        if timeout is not None and timeout <= 0:
            return self._inner.select(0)
        owner = self._owner
        actor = owner.current
        if actor is None:
            # shutting down: never wait long (the virtual clock stands still)
            return self._inner.select(0.05 if timeout is None else min(timeout, 0.05))
        ready = self._inner.select(0)
        if actor.helper_stop is not None:
            return ready
        if actor.statement is not None:
            return self._server_wait(owner, actor, ready)
        if ready:
            return ready
        waits = actor.waits_for()
        if waits == "io" or actor.commands or owner.outstanding(actor):
            # the task's own I/O (a socket, its helper threads): its
            # completion arrives through a selected fd or the self-pipe;
            # wait for it for real (the other tasks are held at their gates)
            return self._inner.select(owner.watchdog)
        if waits == "unknown":
            ready = self._inner.select(GRACE)
            if ready:
                return ready
        owner.idle = ("timer", timeout) if timeout is not None else ("blocked", None)
        return []

    def _server_wait(self, owner: "TaskLoop", actor: "TaskActor", ready: list) -> list:
        """The task awaits a server's reply to a statement (``actor.statement``,
        registered by the driver's interception: intercept/postgres.py).
        Wait for it for real, in slices: between them, ask the server
        whether another backend's lock holds the statement; if one an actor
        holds does, leave the loop idle with the task parked on it
        (``owner.idle = ("server", point)``).  Other sockets ready meanwhile
        are served (the loop runs their callbacks) without postponing the
        question: a parked psycopg task's socket stays ready until it is
        resumed."""
        statement = actor.statement
        deadline = real_monotonic() + owner.watchdog
        while True:
            if any(key.fd == statement.fileno for key, _ in ready):
                return ready  # the reply (or part of it) is in
            if statement.blocker() is not None:
                owner.idle = ("server", Point("flock-wait", statement.path, "row lock"))
                return []
            if ready or real_monotonic() >= deadline or actor.helper_stop is not None:
                return ready
            ready = self._inner.select(SLICE)


class _Loop(asyncio.SelectorEventLoop):
    def __init__(self, owner: "TaskLoop") -> None:
        super().__init__(_Selector(owner))
        self._owner = owner
        #: run_in_executor calls whose asyncio future is not done, per actor
        self.helpers: dict = {}

    def time(self) -> float:
        return self._owner.vnow

    def task_context(self) -> "intercept.ActorContext | None":
        """The context of the task actor running now (its code runs in the
        loop thread, which has no context of its own), or None."""
        actor = self._owner.current
        return actor.ctx if actor is not None else None

    @contextlib.contextmanager
    def server_statement(self, statement: Any) -> Iterator[None]:
        """While inside, the running task awaits the reply to a statement
        a server may hold on another actor's lock: ``statement`` has
        ``fileno`` (the socket the reply comes on), ``path`` and ``label``
        (its table and verb, which name the task's awaits inside it) and
        ``blocker()`` (intercept/postgres.py ``_Waiter``), which the
        selector calls between slices of its wait (_Selector._server_wait)."""
        actor = self._owner.current
        if actor is None:
            yield
            return
        outer, actor.statement = actor.statement, statement
        try:
            yield
        finally:
            actor.statement = outer

    @contextlib.contextmanager
    def server(self, call: tuple[str, str] | None) -> Iterator[None]:
        """A server request of the running task (aio.awaiting_server): its
        first suspension is one point named by ``call``; later ones (the
        reply, which may or may not be in by then) are no points, so the
        schedule does not depend on when the reply arrives."""
        actor = self._owner.current
        if actor is None:
            yield
            return
        actor.commands.append([call, False])
        try:
            yield
        finally:
            actor.commands.pop()

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> asyncio.Future:
        actor = self._owner.current
        # the pool call is a helper of the task: its calls are the task's points
        enter_spawning(actor.ctx if actor is not None else None)
        try:
            fut = super().run_in_executor(executor, func, *args)
        finally:
            enter_spawning(None)
        self.helpers[actor] = self.helpers.get(actor, 0) + 1

        def settled(_: Any) -> None:
            n = self.helpers.pop(actor, 1) - 1
            if n:
                self.helpers[actor] = n

        fut.add_done_callback(settled)
        return fut


def _awaited_through(frame: Any) -> Any:
    """What a suspended frame awaits when the await chain does not say:
    the async generator an ``async with`` over ``@asynccontextmanager``
    steps (contextlib's ``__aenter__``/``__aexit__`` await ``anext`` of
    it), or a task it waits for by way of a future of its own (Python
    3.11's ``wait_for``, ``asyncio.wait``, ``gather``, ``shield``): the
    coroutine of the first unfinished task among its locals."""
    loc = frame.f_locals
    gen = getattr(loc.get("self"), "gen", None)
    if inspect.isasyncgen(gen) and gen.ag_await is not None:
        return gen
    for v in list(loc.values()):
        if inspect.isasyncgen(v) and v.ag_await is not None:
            return v
        for item in (v if isinstance(v, (set, frozenset, list, tuple)) else (v,)):
            if isinstance(item, asyncio.Task) and not item.done():
                return item.get_coro()
    return None


def _wake() -> None:
    """Scheduled from another thread: wakes the loop."""


#: what an operation's job returns when a helper thread already handed its
#: stop to the scheduler (TaskActor._point): nothing more to hand over
_DELIVERED = object()

class _Refused(Exception):
    pass


class TaskLoop:
    """The loop of an executor's task actors, on a thread of its own.

    The scheduler's thread hands it one job at a time (start or resume one
    task) and waits, bounded by the watchdog, for that task's next stop."""

    def __init__(self, watchdog: float = 10.0) -> None:
        self.watchdog = watchdog
        self.vnow = 0.0
        self.loop: _Loop | None = None
        self.current: "TaskActor | None" = None
        self.idle: tuple | None = None
        self.broken = False
        self._go = _thread.allocate_lock()
        self._go.acquire()
        self._back = _thread.allocate_lock()
        self._back.acquire()
        self._job: Any = None
        self._result: Any = None
        self.ident: int | None = None
        #: the task whose operation the loop thread runs now (_until_stop)
        self.inside: "TaskActor | None" = None
        self.preempt = False  # set by _preempt: leave that operation, its point was handed over
        self._thread = threading.Thread(target=self._main, name="sessioncheck-tasks", daemon=True)
        self._thread.start()

    # -- the loop's thread --------------------------------------------------
    def _main(self) -> None:
        self.ident = threading.get_ident()
        loop = self.loop = _Loop(self)
        asyncio.set_event_loop(loop)
        try:
            while True:
                self._go.acquire()
                job, self._job = self._job, None
                if job is None:
                    return
                try:
                    result = job()
                except BaseException as exc:  # noqa: BLE001 - handed to the scheduler's thread
                    result = _Refused(f"{type(exc).__name__}: {exc}")
                if result is _DELIVERED:
                    continue  # a helper thread handed its point over itself
                self._result = result
                self._back.release()
        finally:
            self._close_loop(loop)

    def _close_loop(self, loop: _Loop) -> None:
        self.current = None
        close_loop(loop)

    def outstanding(self, actor: "TaskActor") -> int:
        """Helper-thread work of ``actor`` not finished: asyncio futures of
        its ``run_in_executor`` calls, and pool calls it submitted that have
        not returned (a cancelled await leaves its thread running)."""
        assert self.loop is not None
        return self.loop.helpers.get(actor, 0) or threads.pending(actor.ctx)

    def _until_stop(self, actor: "TaskActor") -> Stop:
        loop = self.loop
        assert loop is not None
        self.current = actor
        # stepped by hand (_run_once), the loop is the running one as in run_forever
        asyncio.events._set_running_loop(loop)
        # threads it starts belong to this task (their intercepted calls are
        # its points); the loop thread's own calls are not.  Pool work only
        # through run_in_executor: plain code waiting on a pool future holds
        # the loop, so a parked pool call there would never be resumed.
        enter_spawning(actor.ctx, thread=True)
        self.inside = actor
        try:
            while actor.stop is None:
                if self.preempt and actor.delivered:
                    self.preempt = False
                    return _DELIVERED  # type: ignore[return-value]
                if actor.helper_stop is not None and actor.take_helper_stop():
                    break
                self.idle = None
                loop._run_once()  # type: ignore[attr-defined]
                if actor.stop is None and actor.helper_stop is None and self.idle is not None:
                    what, arg = self.idle
                    if what == "timer":
                        actor.stop = Point("sleep", "", f"{arg:.6g}")
                    elif what == "server":
                        # its statement waits in the server for a lock another
                        # actor holds (the waiter reported ``blocked`` on its key)
                        actor.stop = arg
                    else:
                        actor.stop = Point("lock-wait", "", f"await {actor.where()}",
                                           [("blocked", ("await", actor))])
                    actor.stop.events[:0] = actor.take_events()
                if isinstance(actor.stop, Done) and threads.pending(actor.ctx):
                    # the operation ended (cancelled) while a helper thread
                    # of it still runs, as a thread asyncio cannot cancel
                    # does: it finishes now, unpaused, before the next step
                    actor.free = True
                    actor.release_helper()
                    while threads.pending(actor.ctx):
                        loop._run_once()  # type: ignore[attr-defined]
            stop, actor.stop = actor.stop, None
            if isinstance(stop, Done):
                with actor.mutex:
                    actor.active = False
                    actor.free = False
                stop.events, actor.ctx.events = actor.ctx.events, []
            return stop
        finally:
            self.inside = None
            self.preempt = False
            enter_spawning(None, thread=True)
            asyncio.events._set_running_loop(None)
            actor.pass_gate = False
            self.current = None

    def _begin(self, actor: "TaskActor", call: OpCall, now: float) -> Stop:
        self.vnow = max(self.vnow, now)
        assert self.loop is not None
        if call.f == "open" or actor.ctx is None or actor.runner.store is None:
            actor.ctx = intercept.ActorContext(actor.name, actor.location, actor._point)
        actor.ctx.now = self.vnow
        actor.stop = None
        with actor.mutex:
            actor.active = True
        actor.task = self.loop.create_task(self._drive(actor, actor.runner.arun(actor.spec, actor.location, call)))
        return self._until_stop(actor)

    def _resume(self, actor: "TaskActor", now: float, fault: int | None) -> Stop:
        self.vnow = max(self.vnow, now)
        actor.stop = None
        if actor.helper_go is not None:
            # parked at a point of a helper thread: the task still awaits
            # that work, and stops at its gate once the work is done
            if fault == CANCEL:
                assert actor.task is not None
                actor.free = True  # the thread goes on unpaused (asyncio cannot stop it)
                actor.task.cancel()
            actor.release_helper()
        elif fault == CANCEL:
            assert actor.task is not None
            # at the gate the wrapper throws the cancellation in; while it
            # waits, the awaited future is cancelled and the coroutine reads
            # that at once
            actor.pass_gate = actor.gate is None
            actor.task.cancel()
        elif actor.gate is not None:
            actor.gate.set_result(None)
        else:
            # parked while it waited (a timer, another task): once what it
            # waits for is done it goes on without stopping at the gate
            actor.pass_gate = True
        return self._until_stop(actor)

    async def _drive(self, actor: "TaskActor", coro: Any) -> None:
        """Run ``coro`` one suspension at a time (see the module docstring)."""
        exc: BaseException | None = None
        actor.coro = coro
        while True:
            try:
                y = coro.throw(exc) if exc is not None else coro.send(None)
            except StopIteration as stop:
                actor.stop = stop.value
                actor.coro = actor.task = None
                return
            except BaseException as e:  # noqa: BLE001 - arun catches the store's; this is ours
                actor.stop = Done("error", error=f"{type(e).__name__}: {e}")
                actor.coro = actor.task = None
                return
            exc = None
            if y is not None:
                if not getattr(y, "_asyncio_future_blocking", False):
                    exc = RuntimeError(f"a task yielded {y!r}, not a future")
                    continue
                y._asyncio_future_blocking = False
                actor.waiting = y
                try:
                    await y
                except BaseException:  # noqa: BLE001 - the coroutine reads the future's outcome itself
                    pass
                actor.waiting = None
            if actor.pass_gate:
                actor.pass_gate = False
                continue
            point = Point("await", "", actor.where())
            statement = actor.statement
            if statement is not None:
                # inside a statement, its reply in: named by the statement
                point = Point("await", statement.path, statement.label or actor.where())
            if actor.commands:
                command = actor.commands[0]
                if command[1]:
                    continue  # the request's point was taken
                command[1] = True
                detail, path = command[0] or ("", "")
                point = Point("redis", path, detail)
            assert self.loop is not None
            actor.gate = self.loop.create_future()
            point.events = actor.take_events()
            actor.stop = point
            try:
                await actor.gate
            except asyncio.CancelledError as e:
                exc = e  # cancelled at this await
            actor.gate = None

    # -- the scheduler's thread -------------------------------------------
    def _preempt(self) -> None:
        """Bring the loop thread out of the operation it waits in when a
        helper thread of that task handed its point to the scheduler
        directly (TaskActor._point): the loop returns to take a job."""
        if self.inside is not None:
            self.preempt = True
            assert self.loop is not None
            self.loop.call_soon_threadsafe(_wake)

    def call(self, name: str, job: Any) -> Stop:
        if self.broken:
            raise ActorDied(f"actor {name}: the task loop was abandoned")
        self._preempt()
        self._job = job
        self._go.release()
        return self.wait(name)

    def wait(self, name: str) -> Stop:
        """The next stop, from the loop thread or a helper thread."""
        if not self._back.acquire(timeout=self.watchdog):
            from sessioncheck.controlled.waits import sample_thread

            samples = sample_thread(self._thread.ident)
            self.broken = True
            raise Stuck(name, self.watchdog, samples)
        result, self._result = self._result, None
        if isinstance(result, _Refused):
            raise ActorDied(f"actor {name}: {result}")
        return result

    def close(self) -> None:
        """End the loop's thread (cancelling what is left).  Idempotent."""
        if not self._thread.is_alive():
            return
        if self.broken:
            return  # stuck in store code: abandoned (a daemon)
        self._preempt()
        self._job = None
        wake(self._go)
        self._thread.join(timeout=2.0)


class TaskRunner(Runner):
    """:class:`Runner` with awaits: one operation as a coroutine."""

    async def _asettle(self, result: Any) -> Any:
        return await result if inspect.isawaitable(result) else result

    async def arun(self, spec: StoreSpec | None, location: str, call: OpCall) -> Done:
        from sessioncheck.controlled import exits
        from sessioncheck.controlled.actor import _describe
        from sessioncheck.controlled.refusals import chain, declared_refusals, is_refusal

        try:
            with exits.inside_store():
                value = await self._adispatch(spec, location, call)
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            refused = is_refusal(exc, declared_refusals(self.store, spec and spec.factory))
            causes = () if refused else tuple(_describe(e, location) for e in chain(exc))
            return Done("info" if refused else "error", error=_describe(exc, location), causes=causes)
        except asyncio.CancelledError:
            # cancelled (a client went away): the outcome is unknown
            return Done("info", error="CancelledError: the task was cancelled at an await")
        except BaseException as exc:  # noqa: BLE001 - a store ending its actor
            return Done("died", error=f"{exits.describe(exc)} in {call.f}")
        return Done("ok", value=value)

    async def _adispatch(self, spec: StoreSpec | None, location: str, call: OpCall) -> Any:
        from sessioncheck.controlled.actor import argument, read_value
        from sessioncheck.operations.add import ADD
        from sessioncheck.controlled.messages import identity_of

        f = call.f
        if f == "open":
            assert spec is not None
            self.store = await self._asettle(spec.open(location))  # type: ignore[arg-type]
            return None
        if f == "close":
            store, self.store = self.store, None
            close = getattr(store, "close", None)
            if callable(close):
                await self._asettle(close())
            return None
        if self.store is None:
            assert spec is not None
            self.store = await self._asettle(spec.open(location))  # type: ignore[arg-type]
        if f == "add":
            await self._asettle(self.store.add_message(call.session, argument(ADD, call)))
            return None
        if f == "persist":
            await self._asettle(self.store.persist_state(call.session, dict(call.value)))
            return None
        if f == "delete":
            await self._asettle(self.store.delete_session(call.session))
            return None
        if f == "read":
            return read_value(await self._asettle(self.store.read(call.session)), identity_of(self.store))
        raise ValueError(f"unknown call {f!r}")


class TaskActor:
    """One asyncio task of a :class:`TaskLoop` (see the module docstring)."""

    can_crash = False
    kind = "task"

    def __init__(self, name: str, spec: StoreSpec, group: TaskLoop) -> None:
        self.name = name
        self.spec = spec
        self.group = group
        self.location = ""
        self.runner = TaskRunner()
        self.task: asyncio.Task | None = None
        self.coro: Any = None
        self.gate: asyncio.Future | None = None
        self.waiting: Any = None
        self.pass_gate = False
        self.stop: Stop | None = None
        self.closed = False
        self.ctx: intercept.ActorContext | None = None
        # Serializes the points of this task's helper threads (a raw lock:
        # never cooperative, never a point itself).
        self.serial = _thread.allocate_lock()
        self.mutex = _thread.allocate_lock()  # the fields below, briefly
        self.active = False  # an operation is running (under mutex)
        self.free = False  # helper points pass without stopping (after a cancellation)
        self.abandoned = False
        #: the point a helper thread stopped at, for the loop thread to report
        self.helper_stop: Point | None = None
        #: held while a helper thread is parked at a point; released to resume it
        self.helper_go: Any = None
        self.taken = False  # the loop thread reported helper_stop (under mutex)
        #: the parked helper handed its point to the scheduler itself (_point)
        self.delivered = False
        #: server requests in progress, outermost first: [(detail, path), point taken]
        self.commands: list = []
        #: the statement whose reply the task awaits, if a server may hold
        #: it on a lock (_Loop.server_statement)
        self.statement: Any = None

    # -- helper threads of the task ----------------------------------------
    def _point(self, kind: str, path: str, detail: str) -> int | None:
        """A point of the task, reached by one of its helper threads (pool
        work it submitted, a thread it started): the thread parks until the
        scheduler resumes the task.  In the loop thread itself (never given
        the context, but a thread it runs inline may be) nothing stops."""
        if threading.get_ident() == self.group.ident:
            return None
        with self.serial:
            ctx = self.ctx
            assert ctx is not None
            with self.mutex:
                if self.abandoned:
                    raise intercept.Crashed()
                if self.free:
                    return None
                if not self.active:
                    threads.refuse(threads.background_message(kind, path), ctx)
                events, ctx.events = ctx.events, []
                go = _thread.allocate_lock()
                go.acquire()
                self.helper_go = go
                group = self.group
                direct = group.inside is self and not group.preempt
                if direct:
                    # The loop thread waits in this task's operation for
                    # this work: hand the point to the scheduler directly
                    # (no hop through the loop thread), which resumes it
                    # directly too (resume) or first brings the loop thread
                    # out (TaskLoop._preempt).
                    self.taken = self.delivered = True
                    group._result = Point(kind, path, detail, events)
                    group._back.release()
                else:
                    self.taken = False
                    self.helper_stop = Point(kind, path, detail, events)
            if direct:
                go.acquire()  # released by resume or release_helper
            else:
                self._wait_taken(go)
            if self.abandoned:
                raise intercept.Crashed()
            ctx.now = self.group.vnow
            return None

    def _wait_taken(self, go: Any) -> None:
        loop = self.group.loop
        try:
            assert loop is not None
            loop.call_soon_threadsafe(_wake)
        except RuntimeError:  # the loop is closed: the actor is gone
            self.abandoned = True
            raise intercept.Crashed() from None
        if not go.acquire(timeout=self.group.watchdog / 2):
            # The loop thread did not come back for the point: plain code
            # of the task waits for this thread synchronously (start, then
            # join), holding the loop.  Nothing else can run meanwhile, so
            # the call is no point: go on.
            with self.mutex:
                withdrawn = self.helper_go is go and not self.taken
                if withdrawn:
                    self.helper_go = self.helper_stop = None
            if not withdrawn:
                go.acquire()  # taken just now: wait for the resume

    def take_events(self) -> list:
        """The lock events the task's code reported since its last stop
        (intercept/postgres.py reports its backend's key from the loop
        thread), for the stop the loop thread reports now."""
        ctx = self.ctx
        if ctx is None or not ctx.events:
            return []
        events, ctx.events = ctx.events, []
        return events

    def take_helper_stop(self) -> bool:
        """In the loop thread: report the point a helper thread stopped at."""
        with self.mutex:
            if self.helper_stop is None:
                return False  # withdrawn (see _point)
            self.stop, self.helper_stop = self.helper_stop, None
            self.taken = True
            return True

    def release_helper(self) -> None:
        """Resume the helper thread parked at a point, if one is."""
        with self.mutex:
            go, self.helper_go = self.helper_go, None
            self.helper_stop = None
            self.taken = self.delivered = False
        if go is not None:
            go.release()

    def waits_for(self) -> str:
        """What the task's innermost await waits for: ``io`` (a socket, a
        driver's thread), ``task`` (an asyncio lock, event, condition,
        queue: only another task can end it), ``timer`` (``asyncio.sleep``)
        or ``unknown``."""
        f = self._innermost()
        if f is None:
            return "unknown"
        path = f.f_code.co_filename
        if path.startswith(_ASYNCIO):
            name = os.path.basename(path)
            if name in ("locks.py", "queues.py"):
                return "task"
            if name == "tasks.py" and f.f_code.co_name == "sleep":
                return "timer"
            if name in _ASYNCIO_IO:
                return "io"
            return "unknown"
        return "io" if any(part in path for part in _DRIVERS) else "unknown"

    def _innermost(self) -> Any:
        frame = None
        c = self.coro
        for _ in range(200):
            if c is None:
                break
            f = getattr(c, "cr_frame", None) or getattr(c, "gi_frame", None) or getattr(c, "ag_frame", None)
            if f is not None:
                frame = f
            nxt = getattr(c, "cr_await", None) or getattr(c, "gi_yieldfrom", None) or getattr(c, "ag_await", None)
            if nxt is None and frame is not None:
                nxt = _awaited_through(frame)
                if nxt is c:
                    break
            if type(nxt).__name__ == "coroutine_wrapper":
                # ``coro.__await__()`` (aiosqlite's connect and execute
                # return it from their __await__): it names its coroutine
                # only to the garbage collector
                nxt = next((r for r in gc.get_referents(nxt) if inspect.iscoroutine(r)), None)
            c = nxt
        return frame

    def ready(self) -> bool:
        """Whether what the task awaits is done (it can go on)."""
        w = self.waiting
        return w is None or w.done()

    def where(self) -> str:
        """The innermost store frame the task is suspended in: ``name file:line``."""
        frames = []
        c = self.coro
        while c is not None:
            f = getattr(c, "cr_frame", None) or getattr(c, "gi_frame", None)
            if f is not None:
                frames.append(f)
            c = getattr(c, "cr_await", None) or getattr(c, "gi_yieldfrom", None)
        for f in reversed(frames):
            path = os.path.abspath(f.f_code.co_filename)
            if not (path.startswith(_ASYNCIO) or path.startswith(_HERE)):
                return f"{f.f_code.co_name} {os.path.basename(path)}:{f.f_lineno}"
        return "the event loop"

    def begin(self, call: OpCall, now: float) -> Stop:
        return self._done(self.group.call(self.name, lambda: self.group._begin(self, call, now)))

    def resume(self, now: float, fault: int | None = None) -> Stop:
        if fault is not None and fault != CANCEL:
            fault = None  # I/O errors are injected at file calls, which tasks do not stop at
        group = self.group
        if self.delivered and fault is None and group.inside is self and not group.broken:
            # its helper thread is parked and the loop thread still waits in
            # this operation: resume the helper directly
            group.vnow = max(group.vnow, now)
            self.release_helper()
            return self._done(group.wait(self.name))
        return self._done(self.group.call(self.name, lambda: self.group._resume(self, now, fault)))

    def _done(self, stop: Stop) -> Stop:
        why = threads.unsupported(self.ctx)
        if why:
            raise UnsupportedStore(why)
        if isinstance(stop, Done) and stop.status == "died":
            raise ActorDied(f"actor {self.name}: {stop.error}")
        return stop

    def crash(self) -> None:
        raise RuntimeError("task actors cannot crash; use process actors")

    def shutdown(self) -> None:
        """Cancel the task if one is running.  The loop itself is the executor's."""
        if self.closed:
            return
        self.closed = True
        with self.mutex:
            self.abandoned = self.helper_go is not None
        if self.task is not None and not self.group.broken and self.group._thread.is_alive():
            task = self.task

            def cancel() -> Done:
                # in the loop thread, out of the operation (TaskLoop.call):
                # the parked helper thread unwinds (Crashed) while the loop
                # cancels the task
                self.release_helper()
                task.cancel()
                self.group.vnow += 1.0
                asyncio.events._set_running_loop(self.group.loop)
                try:
                    for _ in range(100):
                        if task.done():
                            break
                        self.group.loop._run_once()  # type: ignore[union-attr]
                finally:
                    asyncio.events._set_running_loop(None)
                return Done("ok")

            try:
                self.group.call(self.name, cancel)
            except (Stuck, ActorDied):
                pass
        self.release_helper()  # whatever is still parked (an abandoned loop) unwinds

    def set_location(self, location: str) -> None:
        self.location = location


def task_actor(name: str, spec: StoreSpec, group: TaskLoop | None, actors: list,
               watchdog: float) -> tuple[TaskActor, TaskLoop]:
    """A new task actor on ``group`` (the executor's loop), or on a new loop
    when that one was abandoned; then the other actors of the old loop are
    dropped from ``actors`` (the executor makes them again)."""
    if group is None or group.broken:
        for i, a in enumerate(actors):
            if isinstance(a, TaskActor):
                actors[i] = None
        group = TaskLoop(watchdog)
    return TaskActor(name, spec, group), group
