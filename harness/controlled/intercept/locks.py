"""Locks: flock on an inode, and threading locks made cooperative."""
from __future__ import annotations

import _thread
import fcntl
import os
import time
from typing import Any

from sessioncheck.controlled.intercept.context import _real, current


def _inode_key(fd: int) -> tuple:
    st = os.fstat(fd)
    return ("inode", st.st_dev, st.st_ino)


def _flock(fd: Any, operation: int) -> None:
    ctx = current()
    n = fd if isinstance(fd, int) else fd.fileno()
    if ctx is None or n not in ctx.fd_paths:
        return _real["flock"](fd, operation)
    path = ctx.fd_paths[n]
    if operation & fcntl.LOCK_UN:
        ctx.point("unlock", path)
        _real["flock"](n, operation)
        key = ctx.held.pop(n, None)
        if key is not None:
            ctx.events.append(("released", key))
        return None
    key = _inode_key(n)
    ctx.point("flock", path, "nb" if operation & fcntl.LOCK_NB else "")
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
                  "sessioncheck", "multiprocess", "dill", "importlib", "weakref", "_weakrefset", "sqlite3",
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
