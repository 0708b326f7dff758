"""Thread actors: one OS thread per actor, a baton of two raw locks.

Only one thread runs at a time.  The scheduler releases the actor's
``_go`` lock and waits on ``_back``; the actor, at its next point, records
where it is, releases ``_back`` and waits on ``_go``.  Raw
``_thread`` locks are the cheapest hand-off CPython has (the notes
measured 65k round trips per second).

Running ahead (:meth:`ThreadActor.run_ahead`): where the scheduler would
let the actor continue anyway (:class:`~sessioncheck.controlled.actor.Ahead`)
the point is a function call in the actor's own thread; the baton goes
back only where the scheduler has something to decide.  The points passed
that way are handed to the scheduler, in order, with the one it stops at.

A thread cannot be killed: thread actors cannot crash (``can_crash`` is
false).  A thread that reaches no point within the watchdog's bound is
abandoned (it is a daemon) and reported as :class:`Stuck`.
"""
from __future__ import annotations

import _thread
import threading
from typing import Any

from sessioncheck.controlled import intercept
from sessioncheck.controlled.actor import ActorDied, Ahead, Done, OpCall, Point, Runner, Stop, Stuck, wake
from sessioncheck.controlled.intercept import threads
from sessioncheck.errors import UnsupportedStore
from sessioncheck.protocol import StoreSpec


class _Refused:
    """What an actor posts instead of a point or a result when the store did
    something unsupported (:func:`threads.refuse`)."""

    def __init__(self, message: str) -> None:
        self.message = message


class ThreadActor:
    can_crash = False
    kind = "thread"

    def __init__(self, name: str, spec: StoreSpec, watchdog: float = 10.0) -> None:
        self.name = name
        self.spec = spec
        self.watchdog = watchdog
        self.location = ""
        self._go = _thread.allocate_lock()
        self._go.acquire()
        self._back = _thread.allocate_lock()
        self._back.acquire()
        self._call: OpCall | None = None
        self._stop: Stop | None = None
        self._reply: tuple[float, int | None] = (0.0, None)
        self._abandoned = False
        self._ctx: intercept.ActorContext | None = None
        # Serializes the points of this actor's threads (a raw lock: never
        # cooperative, never a point itself).
        self._mutex = _thread.allocate_lock()
        self._active = False  # an operation is running (under _mutex)
        self._refused: str | None = None
        #: while running ahead (run_ahead): the budget, and the points the
        #: actor performed and went on from, in order
        self._ahead: Ahead | None = None
        self._ran: list[Point] = []
        self._runner = Runner()
        #: record accesses to private temporary files instead of making
        #: them points (intercept.ActorContext.is_private); the executor decides
        self.record = False
        self._thread = threading.Thread(target=self._main, name=f"sessioncheck-{name}", daemon=True)
        self._thread.start()

    # -- inside the actor thread ------------------------------------------
    def _main(self) -> None:
        try:
            self._serve()
        finally:
            self._runner.close()

    def _serve(self) -> None:
        while True:
            self._go.acquire()
            call = self._call
            if call is None or self._abandoned:
                return
            ctx = self._ctx
            if call.f == "open" or ctx is None or self._runner.store is None:
                ctx = self._ctx = intercept.ActorContext(self.name, self.location, self._point)
                ctx.record = self.record
                intercept.enter(ctx)
            ctx.now = self._reply[0]
            with self._mutex:
                self._active = True
            try:
                done = self._runner.run(self.spec, self.location, call)
            except intercept.Crashed:
                return
            except threads.Unsupported:
                done = None
            with self._mutex:
                # Posting the result and ending the operation is one step:
                # a helper thread's point after it is a background point.
                self._active = False
                why = threads.unsupported(ctx)
                if why or done is None:
                    self._stop = _Refused(why or "unsupported")
                else:
                    done.events, ctx.events = ctx.events, []
                    self._stop = done
                self._back.release()
            if self._abandoned:  # shut down while a helper thread held the baton
                return

    def _point(self, kind: str, path: str, detail: str) -> int | None:
        # Any thread of this actor may get here (the actor's own, one the
        # store started, pool work it submitted): one at a time holds the
        # baton, so the points of one actor are serialized.
        with self._mutex:
            ctx = self._ctx
            assert ctx is not None
            if self._abandoned:
                raise intercept.Crashed()
            if not self._active:
                # Nobody waits for this point: record the reason, which the
                # next call reports, and unwind the thread.
                self._refused = self._refused or threads.background_message(kind, path)
                threads.refuse(self._refused, ctx)
            why = threads.unsupported(ctx)
            if why:
                self._stop = _Refused(why)
            else:
                events, ctx.events = ctx.events, []
                stop = Point(kind, path, detail, events)
                ahead = self._ahead
                if ahead is not None and ahead.take(kind, detail, events):
                    # the scheduler would let it go on: no hand-over
                    stop.now = ctx.now = ahead.now
                    self._ran.append(stop)
                    return None
                self._stop = stop
            self._back.release()
            self._go.acquire()
            if self._abandoned or why:
                raise intercept.Crashed()
            now, fault = self._reply
            ctx.now = now
            return fault

    # -- the scheduler's side ---------------------------------------------
    def _transfer(self, went_on: Any = None) -> Stop:
        self._go.release()
        seen = 0
        while not self._back.acquire(timeout=self.watchdog):
            # Running ahead, every point it reaches is progress: the
            # watchdog bounds the time between two points, as without.
            reached = len(self._ran)
            if reached > seen:
                seen = reached
                continue
            from sessioncheck.controlled.waits import sample_thread

            # where it is stuck, before anything wakes it
            samples = sample_thread(self._thread.ident)
            # (a bounded wait: the stuck thread may be anywhere)
            locked = self._mutex.acquire(timeout=1.0)
            self._abandoned = True
            ran, self._ran = list(self._ran), []
            if locked:
                self._mutex.release()
            if went_on is not None:
                for stop in ran:
                    went_on(stop)
            raise Stuck(self.name, self.watchdog, samples)
        self._hand_over(went_on)
        stop = self._stop
        assert stop is not None
        if isinstance(stop, _Refused):
            self._refused = stop.message
            raise UnsupportedStore(stop.message)
        if isinstance(stop, Done) and stop.status == "died":
            # the store tried to end its actor (sys.exit, os._exit, a
            # BaseException): never a pass, and said at once, not after a
            # watchdog period
            raise ActorDied(f"actor {self.name}: {stop.error}")
        return stop

    def _check(self) -> None:
        # Sticky: once the store did something unsupported, every later
        # call on this actor says so at once (Hypothesis replays it).
        why = self._refused or threads.unsupported(self._ctx)
        if why:
            self._refused = why
            raise UnsupportedStore(why)

    def begin(self, call: OpCall, now: float) -> Stop:
        self._check()
        self._call = call
        self._reply = (now, None)
        return self._transfer()

    def resume(self, now: float, fault: int | None = None) -> Stop:
        self._check()
        self._reply = (now, fault)
        return self._transfer()

    def run_ahead(self, now: float, budget: int, drain: bool, blocked_on: Any, went_on: Any) -> Stop:
        """Resume, and let the actor go on by itself through the points
        :class:`~sessioncheck.controlled.actor.Ahead` allows, at most
        ``budget`` in all; ``went_on(point)`` is called in the caller's
        thread for each point it went on from, in order (also when the
        run ends in an exception), and the point or result it stopped at
        is returned."""
        self._check()
        self._ran = []
        self._ahead = Ahead(now, budget, drain, blocked_on)
        self._reply = (now, None)
        try:
            return self._transfer(went_on)
        finally:
            self._ahead = None

    def _hand_over(self, went_on: Any) -> None:
        if went_on is None:
            return
        # The actor has handed the baton back (it is parked holding its
        # mutex, or done): nobody appends now.
        ran, self._ran = self._ran, []
        for stop in ran:
            went_on(stop)

    def crash(self) -> None:
        raise RuntimeError("thread actors cannot crash; use process actors")

    def shutdown(self) -> None:
        """End the thread.  Safe to call twice and after :class:`Stuck`."""
        if self._abandoned:
            return
        self._abandoned = True
        self._call = None
        # Parked at a point, it wakes and unwinds through Crashed; idle, it
        # sees no call and returns.  Either way it performs no more I/O.
        wake(self._go)
        self._thread.join(timeout=1.0)
        self._close_fds()

    def _close_fds(self) -> None:
        # An operation unwound by Crashed skipped its own closes.
        ctx = self._ctx
        if ctx is None or self._thread.is_alive():
            return
        for fd in set(ctx.fd_paths) - ctx.file_fds:
            try:
                intercept._real["os.close"](fd)
            except OSError:
                pass
        ctx.fd_paths.clear()

    def set_location(self, location: str) -> None:
        self.location = location
