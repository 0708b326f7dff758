"""What every actor has in common, whatever carries its baton.

An *actor* is one writer of the shared location: it owns its own store
instance and runs one operation at a time.  Seen from the scheduler an
actor is a coroutine: ``begin(task)`` runs a task until its first point,
``resume()`` runs it to the next point, and each returns a :class:`Stop`:
either a :class:`Point` (parked before a shared access) or :class:`Done`.

The transport (``thread_actor``, ``process_actor``) only moves the baton;
the code that runs *inside* an actor is here, so both transports run the
same thing.
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from sessioncheck import operations
from sessioncheck.controlled.messages import identity_of
from sessioncheck.controlled.refusals import REFUSALS, chain, declared_refusals, is_refusal
from sessioncheck.protocol import SessionState, StoreSpec


@dataclass(frozen=True)
class OpCall:
    """One operation as the actor sees it (ids and values already chosen)."""

    f: str  # an operation's name (sessioncheck.operations), or open | close
    session: str = ""
    value: Any = None  # message id for add, fields for persist
    #: for an operation adding a message: the message, when the model
    #: draws shapes (``None``: the plain ``{"role": "user", "content": id}``)
    message: dict | None = None


@dataclass
class Point:
    kind: str
    path: str
    detail: str
    events: list = field(default_factory=list)
    #: for a point an actor went on from by itself (:class:`Ahead`): the
    #: virtual time it went on with, which the scheduler checks
    now: float | None = field(default=None, compare=False, repr=False)


@dataclass
class Done:
    status: str  # ok | info | error
    value: Any = None
    error: str | None = None
    events: list = field(default_factory=list)
    #: for an error, "Type: message" of every exception in its chain
    #: (refusals.chain), outermost first: what ``allow_errors`` matches
    causes: tuple = ()


Stop = Point | Done


class Stuck(Exception):
    """An actor reached no point within the watchdog's bound (I5)."""

    def __init__(self, actor: str, seconds: float, samples: list | None = None) -> None:
        super().__init__(f"actor {actor} reached no preemption point within {seconds:g} s")
        self.actor = actor
        self.seconds = seconds
        #: the actor thread's stack sampled when the watchdog fired
        #: (``sessioncheck.controlled.waits``), innermost frame last
        self.samples = samples or []


class ActorDied(Exception):
    """A process actor exited or its channel broke outside a planned crash."""


class Actor(Protocol):
    name: str
    can_crash: bool

    def begin(self, call: OpCall, now: float) -> Stop: ...

    def resume(self, now: float, fault: int | None = None) -> Stop: ...

    def crash(self) -> None: ...

    def shutdown(self) -> None: ...


# -- running inside the actor ---------------------------------------------------

#: Exceptions that say "this operation did not happen, or may not have":
#: the store refused (lock timeout, busy database, an I/O error), found
#: anywhere in the exception's chain (:mod:`sessioncheck.controlled.refusals`),
#: plus the types the store declares in ``Capabilities.refusals``.  Anything
#: else escaping a store is reported as I4: the store met a state it could
#: not handle (a torn file, an unexpected shape) or crashed on a bug.
UNAVAILABLE = REFUSALS


def wake(baton: Any) -> None:
    """Release a raw baton lock on the way out (an actor's shutdown), where
    it may be released already: a signal that arrived in the middle of a
    hand-over (after the release, before the actor took it) leaves it so.
    The waiter wakes either way; a second release must not raise and turn
    the signal's exit into a traceback (exit 1, which says "violation")."""
    try:
        baton.release()
    except RuntimeError:  # released already: the actor has its wake-up
        pass


class Runner:
    """Owns one store instance inside an actor and runs calls on it."""

    def __init__(self) -> None:
        self.store: Any = None
        self._aio: Any = None  # the actor's event loop, made on first use

    def _settle(self, result: Any) -> Any:
        """``async def`` store methods (and methods returning awaitables)
        are awaited, on this actor's own loop (controlled/aio.py)."""
        if not inspect.isawaitable(result):
            return result
        if self._aio is None:
            from sessioncheck.controlled.aio import AsyncRunner

            self._aio = AsyncRunner()
        return self._aio.run(result)

    def close(self) -> None:
        """Close the actor's event loop, if it has one."""
        if self._aio is not None:
            self._aio.close()

    def run(self, spec: StoreSpec | None, location: str, call: OpCall) -> Done:
        """Run one call.  A ``BaseException`` the store lets out (``sys.exit``,
        ``os._exit``, ``KeyboardInterrupt``, ``GeneratorExit``) is
        ``Done("died")``: the transport reports the actor as ended
        (``ActorDied``), never as a pass.  The harness's own unwinding
        (``intercept.Crashed``) goes through."""
        from sessioncheck.controlled import exits
        from sessioncheck.controlled.intercept.context import Crashed
        from sessioncheck.controlled.intercept.threads import Unsupported

        try:
            with exits.inside_store():
                value = self._dispatch(spec, location, call)
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            refused = is_refusal(exc, declared_refusals(self.store, spec and spec.factory))
            causes = () if refused else tuple(_describe(e, location) for e in chain(exc))
            return Done("info" if refused else "error", error=_describe(exc, location), causes=causes)
        except (Crashed, Unsupported):
            raise  # the harness's own unwinding, and a store it cannot run (exit 2)
        except BaseException as exc:  # noqa: BLE001 - a store ending its actor
            known = operations.find(call.f)
            where = "the factory" if call.f == "open" else known.method if known else call.f
            return Done("died", error=f"{exits.describe(exc)} in {where}")
        return Done("ok", value=value)

    def _dispatch(self, spec: StoreSpec | None, location: str, call: OpCall) -> Any:
        f = call.f
        if f == "open":
            assert spec is not None
            self.store = self._settle(spec.open(location))  # type: ignore[arg-type]
            return None
        if f == "close":
            store, self.store = self.store, None
            close = getattr(store, "close", None)
            if callable(close):
                self._settle(close())
            return None
        if self.store is None:
            # The instance opens inside the actor's first operation, so its
            # points interleave with the other actors' (engine.Executor.run).
            assert spec is not None
            self.store = spec.open(location)  # type: ignore[arg-type]
        if f == "read":  # the commonest call, without the registry's indirection
            return read_value(self._settle(self.store.read(call.session)), identity_of(self.store))
        op = operations.get(f)
        result = self._settle(op.call(self.store, call.session, argument(op, call)))
        return output_of(op, result, self.store)


def argument(op: Any, call: OpCall) -> Any:
    """What ``op.call`` receives: for an operation adding a message, the
    message (the plain one built from the id unless the model drew one);
    else the call's value."""
    if op.input != "message":
        return call.value
    return call.message if call.message is not None else {"role": "user", "content": call.value}


def output_of(op: Any, result: Any, store: Any) -> Any:
    """``op``'s output as history data, reading message ids through the
    store's identity field (``Capabilities.message_identity``)."""
    if op.output_identity is not None:
        return op.output_identity(result, identity_of(store))
    return op.output(result)


def read_value(state: Any, identity: str = "content") -> dict:
    """A read's result as plain data: ``{"messages": [ids], "metadata": {}}``,
    each message by its ``identity`` field.

    Raises TypeError when the store returned something that is not a
    session state (reported as I4)."""
    if not isinstance(state, SessionState):
        if isinstance(state, dict) and "messages" in state:
            state = SessionState(state.get("messages") or [], state.get("metadata") or {})
        else:
            raise TypeError(f"read() returned {type(state).__name__}, not a SessionState")
    meta = {k: v for k, v in (state.metadata or {}).items() if v is not None}
    return {"messages": state.message_ids(identity), "metadata": _plain(meta)}


def _plain(v: Any) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return repr(v)


def _describe(exc: BaseException, location: str) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text.replace(os.path.abspath(location) + os.sep, "").replace(os.path.abspath(location), ".")


# -- running ahead: points the scheduler would let the actor take anyway --------

#: the blocking waits (scheduler.WAITS): at one the scheduler must look
#: at who holds what before the actor may go on
_WAITS = ("flock-wait", "lock-wait")
_TICK = 1e-6  # scheduler.TICK


class Ahead:
    """A run-ahead budget, kept inside the actor (thread or process).

    The scheduler lets an actor continue through a run of points in two
    places: ``advance`` (continue while it is *runnable*) and the drain
    (continue while it is *free*: runnable, not blocked, not asleep).
    Both decisions depend only on this actor's parked point and lock
    events while no other actor moves, so the actor can take the easy
    ones itself, as a function call at the point, with no hand-off:

    - advance: go on past any point that is not a blocking wait;
    - drain: go on past a point that is neither a blocking wait nor a
      sleep, while no lock attempt of this actor is left failed.

    Anything else (a wait, a sleep in the drain, a failed attempt, the end
    of the budget) stops and hands the point to the scheduler, which
    decides as it always did.  :meth:`take` also gives the virtual time
    the scheduler would have given on resuming it, by the same arithmetic
    (``Scheduler.resume``), so the actor's clock reads the same.
    """

    __slots__ = ("now", "left", "drain", "blocked_on")

    def __init__(self, now: float, budget: int, drain: bool, blocked_on: Any) -> None:
        self.now = now
        self.left = budget - 1  # the first point is performed on the hand-over
        self.drain = drain
        self.blocked_on = blocked_on

    def take(self, kind: str, detail: str, events: list) -> bool:
        """At a point just reached: True if the actor goes on at once (its
        clock then reads ``self.now``), False to hand it to the scheduler."""
        for ev in events:  # as Scheduler._absorb keeps ActorState.blocked_on
            if ev[0] == "acquired" and self.blocked_on == ev[1]:
                self.blocked_on = None
            elif ev[0] == "blocked":
                self.blocked_on = ev[1]
        if self.left <= 0 or kind in _WAITS:
            return False
        now = self.now
        if kind == "sleep":
            if self.drain:
                return False
            try:
                now = max(now, now + float(detail or 0))
            except (TypeError, ValueError):
                return False  # the scheduler says what a bad sleep means
        elif self.drain and self.blocked_on is not None:
            return False
        self.left -= 1
        self.now = now + _TICK
        return True
