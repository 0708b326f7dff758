"""A store that tries to end the process it runs in.

Store code runs inside an actor: a thread of the harness's own process or
a forked child.  ``sys.exit`` there raises :class:`SystemExit`, which a
thread swallows silently; ``os._exit`` in a thread ends the *harness*
with no word.  Neither may pass for a store that works.

While an actor runs store code (:func:`inside_store`), ``os._exit`` raises
:class:`StoreExit` instead of ending the process, so the actor can report
what happened (``Runner.run`` turns every ``BaseException`` that is not
the harness's own into a ``Done("died")``; the transport raises
``ActorDied``).  Outside store code ``os._exit`` is the real one.  The
harness's own exits call :func:`real_exit`.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from typing import Iterator

_local = threading.local()
_real_exit = getattr(os._exit, "__wrapped__", os._exit)


class StoreExit(BaseException):
    """``os._exit(code)`` called by store code inside an actor."""

    def __init__(self, code: object) -> None:
        super().__init__(f"os._exit({code!r})")
        self.code = code


def real_exit(code: int) -> None:
    """End this process now, whatever store code is running (the harness's
    own exits: a process actor told to leave)."""
    _real_exit(code)


def _guarded_exit(code: int) -> None:
    if getattr(_local, "depth", 0) > 0:
        raise StoreExit(code)
    _real_exit(code)


_guarded_exit.__wrapped__ = _real_exit  # type: ignore[attr-defined]


def install() -> None:
    """Put the guard in place (idempotent).  Code that bound ``os._exit``
    to a name of its own before this is not covered."""
    if os._exit is not _guarded_exit:
        os._exit = _guarded_exit  # type: ignore[assignment]


@contextmanager
def inside_store() -> Iterator[None]:
    """Mark the current thread as running store code."""
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1


def describe(exc: BaseException) -> str:
    """What a store did to end its actor, in words."""
    if isinstance(exc, StoreExit):
        return f"the store called os._exit({exc.code!r})"
    if isinstance(exc, SystemExit):
        return f"the store called sys.exit({exc.code!r})"
    return f"the store raised {type(exc).__name__}" + (f": {exc}" if str(exc) else "")


install()


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C, so every ``finally``
    reaps actors and removes run directories; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


#: signals that arrived while :func:`terminate_cleanly` was in force
_pending: list[int] = []


def _interruption(signum: int) -> BaseException:
    import signal

    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def check_signals() -> None:
    """Raise again a SIGINT/SIGTERM/SIGHUP that arrived: a handler's
    exception raised inside a gc callback, an at-fork hook or a
    ``__del__`` is printed and swallowed there, so the search calls this
    before every example and the signal is never lost."""
    if _pending:
        raise _interruption(_pending[-1])


@contextmanager
def terminate_cleanly() -> Iterator[None]:
    """While the block runs (in the main thread), SIGTERM and SIGHUP raise
    :class:`Terminated` and SIGINT ``KeyboardInterrupt``, and each is
    remembered for :func:`check_signals`.  The previous handlers come back
    afterwards.

    Where Python swallows the handler's exception (a gc callback, a
    ``__del__``) it would print it with a traceback ("Exception ignored
    in ..."); since :func:`check_signals` raises it again, that print is
    left out (``sys.unraisablehook``), and every other one is kept."""
    import signal
    import sys

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        _pending.append(signum)
        raise _interruption(signum)

    previous_hook = sys.unraisablehook

    def unraisable(info) -> None:
        if _pending and isinstance(info.exc_value, KeyboardInterrupt):
            return  # raised again by check_signals: not lost, not printed
        previous_hook(info)

    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        old[sig] = signal.signal(sig, handler)
    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
        sys.unraisablehook = previous_hook
        _pending.clear()
