"""Locks: flock on an inode, POSIX record and OFD locks (lockf, fcntl),
threading locks and semaphores, and multiprocessing locks made cooperative."""
from __future__ import annotations

import _thread
import errno
import fcntl
import os
import struct
import threading
import time
from typing import Any

from sessioncheck.controlled.intercept.context import _real, current


def _inode_key(fd: int) -> tuple:
    st = os.fstat(fd)
    return ("inode", st.st_dev, st.st_ino)


def _flock(fd: Any, operation: int) -> None:
    ctx = current()
    n = fd if isinstance(fd, int) else fd.fileno()
    if ctx is None or not ctx.adopt_fd(n):
        return _real["flock"](fd, operation)
    path = ctx.fd_paths[n]
    if operation & fcntl.LOCK_UN:
        ctx.point("unlock", path, "", n)
        _real["flock"](n, operation)
        key = ctx.held.pop(n, None)
        if key is not None:
            ctx.events.append(("released", key))
        return None
    key = _inode_key(n)
    ctx.point("flock", path, "nb" if operation & fcntl.LOCK_NB else "", n)
    while True:
        try:
            _real["flock"](n, operation | fcntl.LOCK_NB)
        except BlockingIOError:
            ctx.events.append(("blocked", key))
            if operation & fcntl.LOCK_NB:
                raise
            # A blocking flock becomes a wait at a point: the scheduler
            # resumes this actor only once the holder released the lock.
            ctx.point("flock-wait", path)
            continue
        ctx.held[n] = key
        ctx.events.append(("acquired", key))
        return None


class CooperativeLock:
    """A ``threading.Lock`` that, inside an actor, never blocks the baton.

    Outside actors it behaves exactly like the real lock.  Inside, an
    acquire that would block reports the actor blocked and waits at a
    point; the scheduler resumes it when the holder releases.

    An acquire is a preemption point only once a second actor has taken
    the lock (or is taking it now): a lock only one actor ever takes (a
    connection pool's mutex inside one store instance) orders nothing
    between actors, so a point there would only lengthen stories and
    searches.  Blocking, and the lock events the scheduler needs, are the
    same either way.  Takers are counted per run (per store location), so
    a module-level lock shared by every run decides the same way in each
    run and a replay meets the same points.
    """

    def __init__(self, reentrant: bool = False) -> None:
        self._lock = _thread.allocate_lock()
        self._reentrant = reentrant
        self._owner: int | None = None
        self._count = 0
        self._key = ("tlock", id(self))
        self._run = ""  # the store location of the run the takers belong to
        self._takers: set[str] = set()  # actors of that run that took it (or tried)

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = _thread.get_ident()
        if self._reentrant and self._owner == me:
            self._count += 1
            return True
        ctx = current()
        if ctx is None:
            ok = self._lock.acquire(blocking, timeout)
        else:
            if ctx.root != self._run:
                self._run, self._takers = ctx.root, set()
            self._takers.add(ctx.name)
            if len(self._takers) > 1:
                ctx.point("lock", "", "threading lock")
            deadline = None if timeout is None or timeout < 0 else ctx.now + timeout
            while not (ok := self._lock.acquire(False)):
                ctx.events.append(("blocked", self._key))
                if not blocking:
                    break
                if deadline is not None:
                    if ctx.now >= deadline:
                        break
                    time.sleep(min(0.01, deadline - ctx.now))
                else:
                    ctx.point("lock-wait", "", "threading lock")
            if ok:
                ctx.events.append(("acquired", self._key))
        if ok:
            self._owner, self._count = me, 1
        return ok

    def release(self) -> None:
        if self._reentrant and self._count > 1:
            self._count -= 1
            return
        self._owner, self._count = None, 0
        self._lock.release()
        ctx = current()
        if ctx is not None:
            ctx.events.append(("released", self._key))

    def locked(self) -> bool:
        return self._lock.locked()

    __enter__ = acquire

    def __exit__(self, *exc: Any) -> None:
        self.release()

    # threading.Condition support for RLock
    def _is_owned(self) -> bool:
        return self._owner == _thread.get_ident()


_store_import_depth = 0

#: Packages whose own locks never guard the store's shared state; making
#: them cooperative would only add points (and filelock's per-instance
#: locks are private to one actor anyway).
INFRASTRUCTURE = ("filelock", "logging", "threading", "queue", "concurrent", "asyncio", "hypothesis",
                  "sessioncheck", "multiprocess", "multiprocessing", "dill", "importlib", "weakref", "_weakrefset", "sqlite3",
                  "tempfile", "random", "functools", "collections", "contextlib", "selectors", "subprocess")


def _cooperative_here() -> bool:
    """A lock is made cooperative when store code creates it, at import
    (a module-level lock shared by every instance in the process) or inside
    an actor, and the creating module is not infrastructure."""
    if current() is None and not _store_import_depth:
        return False
    import sys

    module = sys._getframe(2).f_globals.get("__name__", "")
    if module.startswith("sessioncheck.stores."):
        return True  # the built-in stores are store code like any other
    return module.split(".")[0] not in INFRASTRUCTURE


def _Lock() -> Any:
    if _cooperative_here():
        return CooperativeLock()
    return _real["Lock"]()


def _RLock() -> Any:
    if _cooperative_here():
        return CooperativeLock(reentrant=True)
    return _real["RLock"]()


class importing_store:
    """Context manager: locks created while a store module is imported
    (module-level locks) are cooperative too."""

    def __enter__(self) -> None:
        global _store_import_depth
        _store_import_depth += 1

    def __exit__(self, *exc: Any) -> None:
        global _store_import_depth
        _store_import_depth -= 1


# -- POSIX record locks (lockf, fcntl F_SETLK*) and OFD locks ------------------
#
# A POSIX record lock belongs to a *process*: threads of one process never
# conflict (a second thread's lockf succeeds at once), and closing any fd
# of the file releases the process's locks on it.  An OFD lock belongs to
# an open file description, like flock.  The kernel decides every
# conflict: each call here is the real non-blocking try, so those
# semantics are the kernel's own; what the harness adds is a point before
# the try and, for a blocking form, a wait point instead of blocking the
# baton (as ``_flock`` does).  Record and OFD locks conflict with each
# other (flock locks are separate), hence one key per inode for both.

_real_lockf = fcntl.lockf
_real_fcntl = fcntl.fcntl
_BUSY = (errno.EAGAIN, errno.EACCES)
_SETLK = {fcntl.F_SETLK: fcntl.F_SETLK, fcntl.F_SETLKW: fcntl.F_SETLK}
if hasattr(fcntl, "F_OFD_SETLK"):
    _SETLK.update({fcntl.F_OFD_SETLK: fcntl.F_OFD_SETLK, fcntl.F_OFD_SETLKW: fcntl.F_OFD_SETLK})
_BLOCKING_SETLK = {c for c in (fcntl.F_SETLKW, getattr(fcntl, "F_OFD_SETLKW", None)) if c is not None}


def _record_key(fd: int) -> tuple:
    st = os.fstat(fd)
    return ("record", st.st_dev, st.st_ino)


def _record_lock(ctx: Any, n: int, unlock: bool, blocking: bool, detail: str, try_: Any) -> Any:
    """One record lock call made by an actor: ``try_()`` is the real
    non-blocking call (raising ``OSError`` EAGAIN/EACCES when busy)."""
    path = ctx.fd_paths[n]
    if unlock:
        ctx.point("unlock", path, detail)
        out = try_()
        key = ctx.held.pop(n, None)
        if key is not None:
            ctx.events.append(("released", key))
        return out
    key = _record_key(n)
    ctx.point("flock", path, detail if blocking else detail + " nb")
    while True:
        try:
            out = try_()
        except OSError as exc:
            if exc.errno not in _BUSY:
                raise
            ctx.events.append(("blocked", key))
            if not blocking:
                raise
            ctx.point("flock-wait", path, detail)
            continue
        ctx.held[n] = key
        ctx.events.append(("acquired", key))
        return out


def _lockf(fd: Any, cmd: int, len: int = 0, start: int = 0, whence: int = 0) -> Any:  # noqa: A002
    ctx = current()
    n = fd if isinstance(fd, int) else fd.fileno()
    if ctx is None or not ctx.adopt_fd(n):
        return _real_lockf(fd, cmd, len, start, whence)
    blocking = not cmd & fcntl.LOCK_NB
    return _record_lock(ctx, n, bool(cmd & fcntl.LOCK_UN), blocking, "lockf",
                        lambda: _real_lockf(n, cmd | fcntl.LOCK_NB if not cmd & fcntl.LOCK_UN else cmd,
                                            len, start, whence))


def _fcntl(fd: Any, cmd: int, arg: Any = 0) -> Any:
    ctx = current()
    if ctx is None or cmd not in _SETLK:
        return _real_fcntl(fd, cmd, arg)
    n = fd if isinstance(fd, int) else fd.fileno()
    if not isinstance(arg, (bytes, bytearray)) or not ctx.adopt_fd(n):
        return _real_fcntl(fd, cmd, arg)
    l_type = struct.unpack_from("h", arg)[0]
    ofd = cmd not in (fcntl.F_SETLK, fcntl.F_SETLKW)
    return _record_lock(ctx, n, l_type == fcntl.F_UNLCK, cmd in _BLOCKING_SETLK, "ofd" if ofd else "fcntl",
                        lambda: _real_fcntl(n, _SETLK[cmd], arg))


# -- semaphores ----------------------------------------------------------------
#
# A semaphore's key carries its capacity: the scheduler counts acquisitions
# minus releases across actors and holds a waiter back only while that
# count is at the capacity (``Scheduler.blocked``).  A threading semaphore
# lives in one process (its key names the pid); a multiprocessing one is
# shared by every process forked after it was made (its key names the
# kernel semaphore), and a process killed while holding it does not give
# it back (the scheduler keeps its count).

_RealSemaphore = threading.Semaphore
_RealBoundedSemaphore = threading.BoundedSemaphore


class _CooperativeWait:
    """Acquire by non-blocking tries, waiting at points in between."""

    _what = "semaphore"

    def _shared(self, ctx: Any) -> bool:
        """Whether an acquire by ``ctx``'s actor is a preemption point
        (always, unless a subclass knows every taker: see
        :class:`CooperativeSemaphore`)."""
        return True

    def _key(self) -> tuple:
        raise NotImplementedError

    def _try(self) -> bool:
        raise NotImplementedError

    def _block(self, timeout: Any) -> bool:
        raise NotImplementedError

    def _cooperative_acquire(self, blocking: bool = True, timeout: Any = None) -> bool:
        ctx = current()
        if ctx is None:
            return self._block(timeout) if blocking else self._try()
        if self._shared(ctx):
            ctx.point("lock", "", self._what)
        deadline = None if timeout is None or timeout < 0 else ctx.now + timeout
        key = self._key()
        while not (ok := self._try()):
            ctx.events.append(("blocked", key))
            if not blocking:
                break
            if deadline is not None:
                if ctx.now >= deadline:
                    break
                time.sleep(min(0.01, deadline - ctx.now))
            else:
                ctx.point("lock-wait", "", self._what)
        if ok:
            ctx.events.append(("acquired", key))
        return ok

    def _released(self, n: int = 1) -> None:
        ctx = current()
        if ctx is not None:
            key = self._key()
            ctx.events.extend([("released", key)] * n)


class CooperativeSemaphore(_CooperativeWait):
    """A ``threading.Semaphore`` (or ``BoundedSemaphore``) made by store
    code: outside actors the real one, inside a cooperative wait."""

    def __init__(self, value: int = 1, bounded: bool = False) -> None:
        self._sem = (_RealBoundedSemaphore if bounded else _RealSemaphore)(value)
        self._capacity = value
        self._what = "bounded semaphore" if bounded else "semaphore"
        self._run = ""  # as CooperativeLock: the takers of the current run
        self._takers: set[str] = set()

    def _shared(self, ctx: Any) -> bool:
        """As :class:`CooperativeLock`: an acquire is a point only once a
        second actor of this run has taken (or tried) the semaphore.  It
        lives in one process, so every taker is seen here (a process
        lock's takers are in other processes: it always points)."""
        if ctx.root != self._run:
            self._run, self._takers = ctx.root, set()
        self._takers.add(ctx.name)
        return len(self._takers) > 1

    def _key(self) -> tuple:
        return ("sem", os.getpid(), id(self), self._capacity)

    def _try(self) -> bool:
        return self._sem.acquire(False)

    def _block(self, timeout: Any) -> bool:
        return self._sem.acquire(True, timeout)

    def acquire(self, blocking: bool = True, timeout: Any = None) -> bool:
        return self._cooperative_acquire(blocking, timeout)

    def release(self, n: int = 1) -> None:
        self._sem.release(n)
        self._released(n)

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


class _Semaphore(_RealSemaphore):
    """``threading.Semaphore`` once installed: still a class (store code
    may subclass it); made directly by store code, a cooperative one."""

    def __new__(cls, value: int = 1) -> Any:
        if cls is _Semaphore and _cooperative_here():
            return CooperativeSemaphore(value)
        return super().__new__(cls)


class _BoundedSemaphore(_RealBoundedSemaphore):
    """``threading.BoundedSemaphore`` once installed (see :class:`_Semaphore`)."""

    def __new__(cls, value: int = 1) -> Any:
        if cls is _BoundedSemaphore and _cooperative_here():
            return CooperativeSemaphore(value, bounded=True)
        return super().__new__(cls)


class CooperativeProcessLock(_CooperativeWait):
    """A ``multiprocessing`` (or ``multiprocess``) Lock, RLock, Semaphore or
    BoundedSemaphore made by store code.  Process actors forked after it was
    made share the kernel semaphore; the key names it, so the scheduler sees
    a holder in one process actor and a waiter in another."""

    def __init__(self, inner: Any, capacity: int, what: str) -> None:
        self._inner = inner
        self._capacity = capacity
        self._what = what

    def _key(self) -> tuple:
        return ("mpsem", self._inner._semlock.handle, self._capacity)

    def _try(self) -> bool:
        return self._inner.acquire(False)

    def _block(self, timeout: Any) -> bool:
        return self._inner.acquire(True, timeout)

    def acquire(self, block: bool = True, timeout: Any = None) -> bool:
        return self._cooperative_acquire(block, timeout)

    def release(self) -> None:
        self._inner.release()
        self._released()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _process_factory(real: Any, kind: str) -> Any:
    """Wrap a context's Lock/RLock/Semaphore/BoundedSemaphore factory."""

    def make(*args: Any, **kwargs: Any) -> Any:
        cooperative = _cooperative_here()
        inner = real(*args, **kwargs)
        if not cooperative:
            return inner
        if kind in ("Lock", "RLock"):
            capacity = 1
        else:
            # args[0] is the context (this is its method)
            capacity = int(args[1] if len(args) > 1 else kwargs.get("value", 1))
        return CooperativeProcessLock(inner, capacity, f"{kind} from multiprocessing")

    make.__name__ = kind
    make.__wrapped__ = real  # type: ignore[attr-defined]
    return make


def install_process_locks() -> None:
    """Make the ``multiprocessing`` and ``multiprocess`` lock factories
    cooperative for store code: the context methods and the module-level
    names bound to the default context."""
    import importlib

    for package in ("multiprocessing", "multiprocess"):
        try:
            mod = importlib.import_module(package)
            context = importlib.import_module(package + ".context")
        except ImportError:
            continue
        for kind in ("Lock", "RLock", "Semaphore", "BoundedSemaphore"):
            real = getattr(context.BaseContext, kind)
            if getattr(real, "__wrapped__", None) is None:
                # a plain function as the method: its caller is the store's frame
                setattr(context.BaseContext, kind, _process_factory(real, kind))
            setattr(mod, kind, getattr(context._default_context, kind))
