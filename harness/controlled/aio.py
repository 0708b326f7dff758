"""An actor's event loop: ``async def`` store methods, run in virtual time.

A store written with ``async def`` (or whose methods return awaitables) is
driven by the harness on one event loop per actor.  The loop lives as
long as the actor's :class:`~sessioncheck.controlled.actor.Runner`: it
persists across that actor's operations, because drivers such as
aiosqlite bind their connections to the loop that opened them, and it is
closed at shutdown.

Virtual time drives the loop:

- ``loop.time()`` reads the actor's virtual clock (the same monotonic
  clock the patched ``time.monotonic`` shows inside the actor).
- When the loop would block with nothing ready and a timer pending
  (``asyncio.sleep``, ``wait_for``, ``asyncio.timeout``, ``call_later``),
  the wait becomes a ``sleep`` point of the actor for exactly as long as
  the next timer is away; the scheduler lets virtual time pass (and other
  actors run) and the timer then fires.  A 10 s lock timeout costs
  nothing and fires at t=10, and a retry loop does not spin.
- When helper-thread work of this actor is outstanding (a
  ``run_in_executor`` / ``asyncio.to_thread`` call, or pool work the actor
  submitted), the loop waits for that work for real: the helper's
  intercepted calls are the actor's points (intercept/threads.py), and
  firing a timer while they run would depend on the machine's speed.
- With nothing pending at all (only real sockets), the loop waits for
  real I/O; the transport's watchdog bounds it.

Limit: work handed to a helper *thread* the store started itself (not a
pool), such as aiosqlite's connection thread, is not counted as
outstanding: its calls are still the actor's points and the loop waits
for its completion for real, but a timer pending at the same moment
(``wait_for`` around such a call) becomes a sleep point and may fire
before the work is done.
"""
from __future__ import annotations

import asyncio
import contextlib
import inspect
import selectors
from typing import Any, AsyncIterator, Iterator

from sessioncheck.controlled.intercept import clock, threads
from sessioncheck.controlled.intercept.context import current


class DelegatingSelector(selectors.BaseSelector):
    """A real selector underneath (``_inner``); subclasses decide how
    ``select`` waits, everything else is the real selector's."""

    def __init__(self) -> None:
        self._inner = selectors.DefaultSelector()

    # -- plain delegation ---------------------------------------------------
    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def close(self) -> None:
        self._inner.close()

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.get_key(fileobj)

    def get_map(self) -> Any:
        return self._inner.get_map()


class _VirtualSelector(DelegatingSelector):
    """Delegates to a real selector; turns timed waits into sleep points."""

    def __init__(self, loop_ref: list) -> None:
        super().__init__()
        self._loop_ref = loop_ref

    def select(self, timeout: float | None = None) -> list:
        if timeout is not None and timeout <= 0:
            return self._inner.select(0)
        ctx = current()
        if ctx is None:
            return self._inner.select(timeout)
        ready = self._inner.select(0)
        if ready:
            return ready
        loop = self._loop_ref[0]
        if (loop is not None and (loop.helpers or loop.in_flight)) or threads.pending(ctx):
            # Outstanding helper-thread work: its completion arrives through
            # the loop's self-pipe.  Wait for it for real.
            return self._inner.select(None)
        if timeout is None:
            return self._inner.select(None)
        # Nothing ready, a timer pending: a sleep point until that timer.
        clock._sleep(timeout)
        return self._inner.select(0)



class ActorLoop(asyncio.SelectorEventLoop):
    """The event loop of one actor (see the module docstring)."""

    def __init__(self) -> None:
        ref: list = [None]
        super().__init__(_VirtualSelector(ref))
        ref[0] = self
        #: run_in_executor calls whose asyncio future is not done yet
        self.helpers = 0
        #: server requests whose reply is awaited for real (awaiting_server)
        self.in_flight = 0

    def time(self) -> float:
        # The patched monotonic clock: virtual inside the actor, real
        # outside it (at shutdown, from the scheduler's thread).
        import time

        return time.monotonic()

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> asyncio.Future:
        fut = super().run_in_executor(executor, func, *args)
        self.helpers += 1

        def settled(_: Any) -> None:
            self.helpers -= 1

        # The count drops in the loop's thread, once the result is in the
        # loop: there is no moment where the work is done but the loop
        # does not know it yet.
        fut.add_done_callback(settled)
        return fut


@contextlib.contextmanager
def awaiting_server() -> Iterator[None]:
    """While inside, the running actor loop waits for socket I/O for real:
    a reply a server owes is not a timed wait, so a read timeout pending
    meanwhile must not fire in virtual time.  No-op on any other loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if not isinstance(loop, ActorLoop):
        yield
        return
    loop.in_flight += 1
    try:
        yield
    finally:
        loop.in_flight -= 1


@contextlib.asynccontextmanager
async def server_request(call: tuple[str, str] | None) -> AsyncIterator[None]:
    """A request to a server (``call``: detail and path of its point) made
    outside any actor thread: on the loop of task actors it is one point
    of the running task, taken before the request is sent, and its reply
    is awaited for real however often it suspends
    (:meth:`sessioncheck.controlled.task_actor._Loop.server`); on any
    other loop nothing changes."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    server = getattr(loop, "server", None)
    if server is None:
        yield
        return
    with server(call):
        await asyncio.sleep(0)  # the point (the task's gate), before the request
        yield


class AsyncRunner:
    """Runs awaitables to completion on an actor's own, persistent loop."""

    def __init__(self) -> None:
        self.loop: ActorLoop | None = None

    def run(self, awaitable: Any) -> Any:
        if self.loop is None or self.loop.is_closed():
            self.loop = ActorLoop()
        asyncio.set_event_loop(self.loop)
        try:
            return self.loop.run_until_complete(_wrap(awaitable))
        finally:
            asyncio.set_event_loop(None)

    def close(self) -> None:
        """Cancel what is left, stop the default executor (without waiting
        for a helper the harness abandoned), close the loop.  Idempotent."""
        loop, self.loop = self.loop, None
        if loop is None or loop.is_closed():
            return
        close_loop(loop)


def close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the loop's tasks (waiting at most 1 s), stop its default
    executor without waiting for a helper the harness abandoned, close it.
    Never raises: the loop may be in any state."""
    try:
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=1.0))
        loop.run_until_complete(loop.shutdown_asyncgens())
    except BaseException:  # noqa: BLE001 - shutting down whatever state it is in
        pass
    executor = getattr(loop, "_default_executor", None)
    if executor is not None:
        executor.shutdown(wait=False, cancel_futures=True)
    try:
        loop.close()
    except BaseException:  # noqa: BLE001
        pass


async def _wrap(awaitable: Any) -> Any:
    return await awaitable


class Uncontrolled:
    """Awaits store results outside any actor (the engine's final read, the
    crash-state reads) on one private loop in real time, so that an async
    store's fresh instance keeps one loop from open to close.  Callable on
    any result: a plain value is returned as it is.  ``close()`` ends the
    loop; use as a context manager."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def __call__(self, result: Any) -> Any:
        if not inspect.isawaitable(result):
            return result
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(_wrap(result))

    def __enter__(self) -> "Uncontrolled":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
