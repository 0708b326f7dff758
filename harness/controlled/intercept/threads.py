"""Threads a store starts belong to the actor that started them.

A store may do its I/O in a thread of its own: a ``threading.Thread`` it
starts, work it submits to a ``concurrent.futures.ThreadPoolExecutor``
(which is what ``loop.run_in_executor`` and ``asyncio.to_thread`` do), a
driver's private thread (aiosqlite).  Interception is active only in a
thread carrying an :class:`ActorContext`, so without this module such I/O
is nobody's point: an unlocked read-modify-write done there runs free and
passes, and a correct store's helper blocks for real on a lock held by a
parked actor.

Contract:

- ``threading.Thread.start`` called inside an actor gives the new thread
  the starting actor's context (captured at start, entered in ``run``);
  so does a start from the loop thread of task actors, which carries no
  context itself but names the running task's (``context.spawning``), as
  does its ``run_in_executor`` for pool work.
  A thread pool's own worker threads are not given one: they serve every
  submitter, so the context travels with each submitted call instead.
- ``ThreadPoolExecutor.submit`` called inside an actor wraps the callable:
  it runs under the submitter's context, and the worker's previous
  context is restored afterwards.  Pools shared across actors work: each
  call is a point of the actor that submitted it.  When every worker of a
  pool holds work of other actors (parked, since one actor runs at a
  time), the call runs inline in the submitting actor instead of waiting
  for the scheduler's choice (which would read as "stuck").  A pool made
  before a fork starts empty in the child (a process actor).
- The transport serializes the points of an actor's threads and reports a
  point made while the actor runs no operation (a background flusher
  outliving its operation) as unsupported (:func:`refuse`).
- ``os.fork`` and ``multiprocessing`` ``Process.start`` inside an actor
  are refused: a forked child would carry a copy of the actor's baton
  that nobody drives.

:func:`refuse` records the reason on the actor's context and raises
:class:`Unsupported`, a ``BaseException`` so that a store's ``except
Exception`` cannot swallow it; the transport turns the record into
:class:`sessioncheck.errors.UnsupportedStore` (exit 2) on the scheduler's
side.
"""
from __future__ import annotations

import _thread
import concurrent.futures
import concurrent.futures.thread
import os
import queue
import threading
import weakref
from typing import Any

from sessioncheck.controlled.intercept.context import ActorContext, Crashed, current, enter, spawning

_real_start = threading.Thread.start
_real_submit = concurrent.futures.ThreadPoolExecutor.submit
_real_fork = os.fork
_real_mp_start: dict[type, Any] = {}


class Unsupported(BaseException):
    """Raised in store code doing something the harness cannot control.

    The message is also recorded on the actor's context (``unsupported``),
    so that the transport reports it even if the store catches this."""


def refuse(message: str, ctx: ActorContext | None = None) -> None:
    """Record ``message`` as this actor's unsupported configuration and
    raise :class:`Unsupported` in the calling thread."""
    ctx = ctx if ctx is not None else current()
    if ctx is not None and not getattr(ctx, "unsupported", None):
        ctx.unsupported = message  # type: ignore[attr-defined]
    raise Unsupported(message)


def unsupported(ctx: ActorContext | None) -> str | None:
    """The unsupported-configuration message recorded on ``ctx``, if any."""
    return getattr(ctx, "unsupported", None) if ctx is not None else None


def background_message(kind: str, path: str) -> str:
    where = f"{kind} {path}".strip()
    return ("the store does I/O in a background thread outside any operation; unsupported: a thread the "
            f"store started reached an intercepted call ({where}) while its actor ran no operation (a "
            "flusher or timer outliving the call that started it). The harness can only interleave I/O "
            "that belongs to an operation: flush inside the operation (or in close()), or test the store "
            "with `sessioncheck stress`")


# -- pending helper work, per actor ------------------------------------------
# a raw lock: never cooperative, never a point
_pending_lock = _thread.allocate_lock()


def pending(ctx: ActorContext | None) -> int:
    """How many calls submitted by ``ctx``'s actor to a thread pool have
    not returned yet."""
    return getattr(ctx, "helpers_pending", 0) if ctx is not None else 0


def _count(ctx: ActorContext, delta: int) -> None:
    with _pending_lock:
        ctx.helpers_pending = getattr(ctx, "helpers_pending", 0) + delta  # type: ignore[attr-defined]


# -- threads ---------------------------------------------------------------------
def _is_pool_worker(thread: threading.Thread) -> bool:
    target = getattr(thread, "_target", None)
    return target is concurrent.futures.thread._worker


def _start(self: threading.Thread) -> None:
    ctx = current() or spawning(thread=True)
    if ctx is not None and not _is_pool_worker(self):
        run = self.run

        def run_as_actor() -> None:
            enter(ctx)
            try:
                run()
            except (Crashed, Unsupported):
                # The harness unwound this thread (the actor was shut down,
                # or it did something unsupported, already recorded): no
                # traceback on stderr.
                pass
            finally:
                enter(None)

        self.run = run_as_actor  # type: ignore[method-assign]
    return _real_start(self)


def _submit(self: concurrent.futures.ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    ctx = current() or spawning()
    if ctx is None:
        return _real_submit(self, fn, *args, **kwargs)
    with _pending_lock:
        inflight: dict = self.__dict__.setdefault("_sessioncheck_inflight", {})
        others = sum(n for c, n in inflight.items() if c is not ctx)
        saturated = others >= getattr(self, "_max_workers", 1 << 30)
        if not saturated:
            inflight[ctx] = inflight.get(ctx, 0) + 1
    if saturated:
        # Every worker of this pool holds work of another actor, and only
        # one actor runs at a time: those are parked, so this call would
        # wait for the scheduler's choice, not for the store (a false
        # "stuck").  In a real run a worker would come free; run it here,
        # in the submitting actor, as that worker would.
        return _run_inline(fn, *args, **kwargs)

    def as_actor() -> Any:
        prev = current()
        enter(ctx)
        try:
            return fn(*args, **kwargs)
        finally:
            enter(prev)
            with _pending_lock:
                inflight[ctx] -= 1
                if not inflight[ctx]:
                    del inflight[ctx]
            _count(ctx, -1)

    _count(ctx, +1)
    try:
        return _real_submit(self, as_actor)
    except BaseException:
        _count(ctx, -1)
        with _pending_lock:
            inflight[ctx] -= 1
            if not inflight[ctx]:
                del inflight[ctx]
        raise


def _run_inline(fn: Any, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
    future: concurrent.futures.Future = concurrent.futures.Future()
    try:
        future.set_result(fn(*args, **kwargs))
    except (Crashed, Unsupported):
        raise
    except BaseException as exc:  # delivered to whoever waits on the future
        future.set_exception(exc)
    return future


# -- pools across a fork -------------------------------------------------------------
#: Every thread pool made since install, to be reset in a forked child.
_pools: "weakref.WeakSet[concurrent.futures.ThreadPoolExecutor]" = weakref.WeakSet()
_real_pool_init = concurrent.futures.ThreadPoolExecutor.__init__


def _pool_init(self: concurrent.futures.ThreadPoolExecutor, *args: Any, **kwargs: Any) -> None:
    _real_pool_init(self, *args, **kwargs)
    _pools.add(self)


def _reset_pools_in_child() -> None:
    """A forked process (a process actor) has none of its parent's threads,
    but a module-level pool the parent already used still counts their
    workers as idle and would queue work for nobody.  Each process actor
    stands for a process of its own that imported the store: its pools
    start empty, as they would there."""
    for pool in list(_pools):
        pool._threads = set()  # type: ignore[attr-defined]
        pool._idle_semaphore = threading.Semaphore(0)  # type: ignore[attr-defined]
        pool._work_queue = queue.SimpleQueue()  # type: ignore[attr-defined]
        pool._shutdown_lock = _thread.allocate_lock()  # type: ignore[attr-defined]
        pool.__dict__.pop("_sessioncheck_inflight", None)


# -- child processes ---------------------------------------------------------------
FORK_MESSAGE = ("the store starts a child process ({how}) inside an operation; unsupported: the harness "
                "controls threads and its own process actors, not processes a store forks. Test such a "
                "store with `sessioncheck stress`, or run the child's work in the operation itself")


def _fork() -> int:
    if current() is not None:
        refuse(FORK_MESSAGE.format(how="os.fork"))
    return _real_fork()


def _mp_start_for(cls: type) -> Any:
    real = _real_mp_start[cls]

    def start(self: Any) -> None:
        if current() is not None:
            refuse(FORK_MESSAGE.format(how=f"{cls.__module__.split('.')[0]}.Process.start"))
        return real(self)

    start.__name__ = "start"
    return start


def install() -> None:
    """Patch Thread.start, ThreadPoolExecutor.submit, os.fork and the
    multiprocessing process start.  Called once by ``intercept.install``."""
    threading.Thread.start = _start  # type: ignore[method-assign]
    concurrent.futures.ThreadPoolExecutor.submit = _submit  # type: ignore[method-assign]
    concurrent.futures.ThreadPoolExecutor.__init__ = _pool_init  # type: ignore[method-assign]
    os.register_at_fork(after_in_child=_reset_pools_in_child)
    os.fork = _fork
    import multiprocessing.process

    classes = [multiprocessing.process.BaseProcess]
    try:
        import multiprocess.process  # the harness's own fork library: refused for stores too

        classes.append(multiprocess.process.BaseProcess)
    except ImportError:
        pass
    for cls in classes:
        if cls not in _real_mp_start:
            _real_mp_start[cls] = cls.start
            cls.start = _mp_start_for(cls)  # type: ignore[method-assign]
