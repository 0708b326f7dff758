"""What every interception shares: the real functions, the actor context
of the current thread, and the virtual epoch."""
from __future__ import annotations

import fcntl
import io
import mmap
import os
import sqlite3
import sys
import threading
import time
from typing import Any, Callable

_real = {
    "open": io.open,
    "os.open": os.open,
    "os.close": os.close,
    "os.replace": os.replace,
    "os.rename": os.rename,
    "os.remove": os.remove,
    "os.unlink": os.unlink,
    "os.fsync": os.fsync,
    "os.fdatasync": getattr(os, "fdatasync", None),
    "os.sync": getattr(os, "sync", None),
    "os.read": os.read,
    "os.write": os.write,
    "os.pread": getattr(os, "pread", None),
    "os.pwrite": getattr(os, "pwrite", None),
    "os.preadv": getattr(os, "preadv", None),
    "os.pwritev": getattr(os, "pwritev", None),
    "os.readv": getattr(os, "readv", None),
    "os.writev": getattr(os, "writev", None),
    "os.sendfile": getattr(os, "sendfile", None),
    "os.copy_file_range": getattr(os, "copy_file_range", None),
    "os.ftruncate": os.ftruncate,
    "os.truncate": os.truncate,
    "mmap.mmap": mmap.mmap,
    "flock": fcntl.flock,
    "sleep": time.sleep,
    "time": time.time,
    "time_ns": time.time_ns,
    "monotonic": time.monotonic,
    "monotonic_ns": time.monotonic_ns,
    "perf_counter": time.perf_counter,
    "perf_counter_ns": time.perf_counter_ns,
    "sqlite3.connect": sqlite3.connect,
    "Lock": threading.Lock,
    "RLock": threading.RLock,
}

_local = threading.local()
_installed = False

#: Virtual epoch: ``time.time()`` inside actors is EPOCH + virtual seconds,
#: the same in every run so that stores stamping messages stay replayable.
#: It lies ahead of the real clock on purpose: code the harness runs
#: outside any actor (the contract probe, the final read) sees real time,
#: and a library keeping a never-go-backwards clock in module state (the
#: uuid6 ids of LangGraph's savers) would otherwise pin every forked actor
#: to the probe's real timestamp, so that the ids of two processes sort
#: by their random bits: appends made one after the other read back in
#: the wrong order (a false I2).
EPOCH = 2_051_222_400.0  # 2035-01-01T00:00:00Z


class Crashed(BaseException):
    """Raised inside a thread actor that the scheduler abandons (never
    caught by store code written as ``except Exception``)."""


class ActorContext:
    """Per-actor interception state, owned by the actor's thread.

    ``point(kind, path, detail)`` is provided by the transport (thread or
    process actor): it reports the point, waits for the baton and returns
    the scheduler's reply: ``None`` to go on, or an errno to raise as an
    injected I/O fault.  ``events`` collects lock events between points;
    the transport sends them with the next point.
    """

    def __init__(self, name: str, root: str, point: Callable[[str, str, str], int | None]) -> None:
        self.name = name
        self.root = os.path.abspath(root)
        self.real_root = os.path.realpath(root)
        self._point = point
        self.fd_paths: dict[int, str] = {}
        self.file_fds: set[int] = set()  # fds owned by a file object
        self.quiet_fds: set[int] = set()  # read-only fds: closing them is private
        self.events: list[tuple] = []
        self.now = 0.0  # virtual seconds, set by the transport at each resume
        self.held: dict[int, tuple] = {}  # fd -> lock key it holds
        #: lock files outside the store's directory (:meth:`adopt`), as
        #: spelled and resolved
        self.lock_paths: set[str] = set()

    def watches(self, path: str | bytes) -> bool:
        """Whether ``path`` (absolute, ``str`` or ``bytes``) is under the
        store's directory, spelled as given or with symlinks resolved (as
        ``/proc/self/fd`` reports it), or is a lock file the actor locked
        or created exclusively elsewhere (:meth:`adopt`)."""
        path = os.fsdecode(path)
        for root in (self.root, self.real_root):
            if path == root or path.startswith(root + os.sep):
                return True
        return bool(self.lock_paths) and (path in self.lock_paths or os.path.realpath(path) in self.lock_paths)

    def adopt(self, path: str, fd: int | None = None) -> bool:
        """Model ``path``, a file outside the store's directory the actor
        locks (an ``flock``, ``lockf`` or ``fcntl`` lock on ``fd``) or
        creates with ``O_EXCL``: a lock kept elsewhere (a sibling lock
        directory, a fixed path) orders the actors as one inside does.
        From then on its opens, closes and unlinks are points and locks on
        it are lock events.  False for what is not a regular file's path."""
        if not path.startswith("/"):
            return False  # "pipe:[..]", "socket:[..]"
        if fd is not None:
            try:
                import stat

                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return False
            except OSError:
                return False
            self.fd_paths[fd] = path
        self.lock_paths.update((path, os.path.realpath(path)))
        return True

    def adopt_fd(self, fd: int) -> bool:
        """:meth:`adopt` for a lock call on an fd the actor has no record
        of (opened outside the store's directory): its path from the kernel."""
        if fd in self.fd_paths:
            return True
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return False
        return self.adopt(path, fd)

    def rel(self, path: str | bytes) -> str:
        path = os.fsdecode(path)
        for root in (self.root, self.real_root):
            if path == root:
                return "."
            if path.startswith(root + os.sep):
                return path[len(root) + 1:]
        if path in self.lock_paths:
            # a lock file elsewhere, named from the store's directory
            return os.path.relpath(os.path.realpath(path), self.real_root)
        return path

    def point(self, kind: str, path: str = "", detail: str = "") -> None:
        if kind not in _WAITS and importing():
            # A module imported lazily inside an operation runs its own
            # code once per process (the first example, not the next):
            # its I/O, and importlib's writing of .pyc files, is not the
            # store's shared access.  A wait still is a point, and so is a
            # sleep: an import that blocks on (or polls for) a lock a parked
            # actor holds needs the baton.
            return
        err = self._point(kind, self.rel(path) if path else "", detail)
        if err:
            raise OSError(err, f"{os.strerror(err)} (injected)", path or None)


#: points that stay points inside an import: where an actor waits for
#: another (scheduler.WAITS), and a sleep (a poll for a lock it cannot see)
_WAITS = ("flock-wait", "lock-wait", "sleep")
_IMPORTLIB = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


def importing() -> bool:
    """Is the calling thread executing an import (a frame of importlib's
    bootstrap on its stack: finding, loading, running a module's body,
    writing its .pyc)?"""
    f: Any = sys._getframe(1)
    while f is not None:
        if f.f_code.co_filename in _IMPORTLIB:
            return True
        f = f.f_back
    return False


def current() -> ActorContext | None:
    return getattr(_local, "ctx", None)


def enter(ctx: ActorContext | None) -> None:
    _local.ctx = ctx


def spawning(thread: bool = False) -> ActorContext | None:
    """The context given to work started from this thread while the thread
    itself runs uncontrolled: the loop thread of task actors
    (controlled/task_actor.py), whose own calls are not points but whose
    helpers' calls are points of the task they serve.  Pool work
    (``thread=False``) and threads (``thread=True``) are set apart: the
    loop gives pool work a context only through ``run_in_executor``."""
    return getattr(_local, "spawn_threads" if thread else "spawn", None)


def enter_spawning(ctx: ActorContext | None, thread: bool = False) -> None:
    setattr(_local, "spawn_threads" if thread else "spawn", ctx)


def _abspath(file: Any) -> str | None:
    """``file`` (str, bytes or path-like) as an absolute ``str`` path."""
    try:
        return os.path.abspath(os.fsdecode(os.fspath(file)))
    except TypeError:
        return None
