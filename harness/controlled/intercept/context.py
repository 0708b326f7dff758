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
        #: whether accesses to this actor's private temporary files are
        #: recorded instead of being points (:meth:`point`); the transport
        #: turns it on where the scheduler reads recorded accesses
        self.record = False
        #: temporary files this actor made (``tempfile``: a fresh random
        #: name, created exclusively), absolute paths, until renamed away
        #: or unlinked
        self.private: set[str] = set()
        #: fds of anonymous files this actor made (``O_TMPFILE``)
        self.private_fds: set[int] = set()

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

    def point(self, kind: str, path: str = "", detail: str = "", fd: int | None = None) -> None:
        """A point before an access to ``path`` (absolute; ``fd``: the fd
        the access goes through, if any).  An access to a private
        temporary file (:meth:`is_private`) is *recorded* instead: it is
        told to the scheduler with the next point or result (an event
        ``("recorded", kind, path, detail)``, a trace entry of its own),
        but it is no place where the schedule can switch actors."""
        if kind not in _WAITS and importing():
            # A module imported lazily inside an operation runs its own
            # code once per process (the first example, not the next):
            # its I/O, and importlib's writing of .pyc files, is not the
            # store's shared access.  A wait still is a point, and so is a
            # sleep: an import that blocks on (or polls for) a lock a parked
            # actor holds needs the baton.
            return
        if self.record and kind not in _WAITS and self.is_private(kind, path, fd):
            self.events.append(("recorded", kind, self.rel(path) if path else "", detail))
            return
        err = self._point(kind, self.rel(path) if path else "", detail)
        if err:
            raise OSError(err, f"{os.strerror(err)} (injected)", path or None)

    # -- private temporary files ------------------------------------------
    def is_private(self, kind: str, path: str, fd: int | None = None) -> bool:
        """Whether an access to ``path`` (through ``fd``) touches only a
        file no other actor can have touched: an anonymous file of this
        actor's (``O_TMPFILE``), or a temporary file it made, except its
        rename, replace or unlink (the moment it becomes shared, or goes).

        A second actor touching the path makes it shared for good, from
        that access on (that access is a point).  The record of who made
        what is per process: between thread actors a second actor's touch
        is seen; a process actor's temporary file stays private to it
        whatever another process does, and the other actor's own accesses
        to it are points (it did not make it), so what it can see of the
        file is how its maker left it at its last point."""
        if fd is not None and fd in self.private_fds:
            return True
        if not path:
            return False
        if path in self.private:
            if path in _shared_temps:
                self.private.discard(path)
                return False
            return kind not in ("replace", "rename", "unlink")
        self.touch(path)
        return False

    def touch(self, path: str) -> None:
        """``path`` is accessed by this actor: if another actor made it as
        its temporary file, it is shared from now on."""
        owner = _temp_owners.get(path)
        if owner is not None and owner != self.name:
            _shared_temps.add(path)

    def made_temp(self, path: str) -> None:
        """This actor created ``path`` as a temporary file (exclusively,
        under a fresh name): its accesses are private from now on."""
        if len(_temp_owners) > 4096:  # left behind by killed writers, older runs
            _temp_owners.clear()
            _shared_temps.clear()
        _temp_owners[path] = self.name
        self.private.add(path)

    def forget_temp(self, path: str) -> None:
        """``path`` was renamed away or unlinked: whatever gets that name
        later is no temporary file of anyone's."""
        if path in self.private or path in _temp_owners:
            self.private.discard(path)
            _temp_owners.pop(path, None)
            _shared_temps.discard(path)


#: who made each private temporary file (absolute path -> actor name), and
#: the ones a second actor touched, across the thread actors of this process
_temp_owners: dict[str, str] = {}
_shared_temps: set[str] = set()

#: whether process actors forked now record their private temporary files'
#: accesses (the executor sets it around a fork; the child keeps its copy)
RECORD_PRIVATE = [False]

_TEMPFILE = os.path.splitext(__import__("tempfile").__file__)[0]


def made_by_tempfile(depth: int = 6) -> bool:
    """Is a caller within ``depth`` frames of the intercepted call the
    ``tempfile`` module (``mkstemp``, ``NamedTemporaryFile``,
    ``TemporaryFile``): a file under a fresh random name nobody else knows?"""
    f: Any = sys._getframe(2)
    while f is not None and depth > 0:
        if os.path.splitext(f.f_code.co_filename)[0] == _TEMPFILE:
            return True
        f = f.f_back
        depth -= 1
    return False


#: points that stay points inside an import: where an actor waits for
#: another (scheduler.WAITS), and a sleep (a poll for a lock it cannot see)
_WAITS = ("flock-wait", "lock-wait", "sleep")
_IMPORTLIB = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


try:
    from _frozen_importlib import _module_locks as _IMPORTS_UNDER_WAY
except ImportError:  # another implementation: always walk the stack
    _IMPORTS_UNDER_WAY = None


def importing() -> bool:
    """Is the calling thread executing an import (a frame of importlib's
    bootstrap on its stack: finding, loading, running a module's body,
    writing its .pyc)?"""
    if _IMPORTS_UNDER_WAY is not None and not _IMPORTS_UNDER_WAY:
        # importlib holds a lock per module being imported, in any thread,
        # and drops it when the import ends: none held, no import under way
        # (the stack walk below costs a frame per caller at every point)
        return False
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
