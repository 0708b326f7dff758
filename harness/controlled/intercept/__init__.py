"""Preemption points inside unmodified store code.

Design notes
------------
The controlled engine lets one actor run at a time.  An actor may be
preempted only where it touches the shared medium, so this module patches
the functions through which store code reaches files, locks, time and
SQLite, and turns each call into a *point*: the actor reports what it is
about to do and waits until the scheduler lets it go on.  Between two
points an actor touches only private memory, so points at shared accesses
are enough to express every interleaving that can change the outcome.

What is patched (ENGINE-NOTES.md, "Traps"): ``builtins.open`` *and*
``io.open`` (``tempfile``, ``pathlib`` and ``os.fdopen`` go through
``io.open``), ``os.open`` / ``os.close`` (``mkstemp``, filelock),
``os.replace`` / ``os.rename`` / ``os.remove`` / ``os.unlink``,
``os.fsync``, ``fcntl.flock``, ``time.sleep`` and the clocks, ``sqlite3``
connections (execute and commit become points; a busy database becomes a
cooperative poll) and ``threading.Lock`` / ``RLock`` created by store code
(an acquire that would block marks the actor blocked instead of blocking
the baton).

Patching is process-wide but *active* only in a thread that carries an
:class:`ActorContext` (a thread-local), and file calls count only under the
actor's store directory, so the scheduler, Hypothesis and pytest run
untouched.  ``install()`` must run before the store's module is imported:
names bound at import time (``from os import replace``) keep whatever they
were bound to.

Writes are not points: Python buffers them, and the data reaches the
operating system at ``flush`` / ``close``, which are points.
"""
from __future__ import annotations

import _thread
import builtins
import fcntl
import io
import os
import sqlite3
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
EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z


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
        self._point = point
        self.fd_paths: dict[int, str] = {}
        self.file_fds: set[int] = set()  # fds owned by a file object
        self.quiet_fds: set[int] = set()  # read-only fds: closing them is private
        self.events: list[tuple] = []
        self.now = 0.0  # virtual seconds, set by the transport at each resume
        self.held: dict[int, tuple] = {}  # fd -> lock key it holds

    def watches(self, path: str) -> bool:
        return path == self.root or path.startswith(self.root + os.sep)

    def rel(self, path: str) -> str:
        if path == self.root:
            return "."
        return path[len(self.root) + 1:] if self.watches(path) else path

    def point(self, kind: str, path: str = "", detail: str = "") -> None:
        err = self._point(kind, self.rel(path) if path else "", detail)
        if err:
            raise OSError(err, f"{os.strerror(err)} (injected)", path or None)


def current() -> ActorContext | None:
    return getattr(_local, "ctx", None)


def enter(ctx: ActorContext | None) -> None:
    _local.ctx = ctx


def _abspath(file: Any) -> str | None:
    try:
        return os.path.abspath(os.fspath(file))
    except TypeError:
        return None


# -- files ----------------------------------------------------------------


class WatchedFile:
    """A file object whose read, flush and close are points."""

    __slots__ = ("_f", "_ctx", "_path", "_fd")

    def __init__(self, f: Any, ctx: ActorContext, path: str) -> None:
        self._f = f
        self._ctx = ctx
        self._path = path
        try:
            self._fd = f.fileno()
            ctx.fd_paths[self._fd] = path
            ctx.file_fds.add(self._fd)
        except (OSError, ValueError, AttributeError):
            self._fd = None

    def read(self, *a: Any) -> Any:
        self._ctx.point("read", self._path)
        return self._f.read(*a)

    def readline(self, *a: Any) -> Any:
        self._ctx.point("read", self._path)
        return self._f.readline(*a)

    def readlines(self, *a: Any) -> Any:
        self._ctx.point("read", self._path)
        return self._f.readlines(*a)

    def __iter__(self):
        self._ctx.point("read", self._path)
        return iter(self._f.readlines())

    def write(self, data: Any) -> Any:
        return self._f.write(data)

    def writelines(self, lines: Any) -> Any:
        return self._f.writelines(lines)

    def flush(self) -> None:
        if not self._f.closed:
            self._ctx.point("flush", self._path)
        self._f.flush()

    def truncate(self, *a: Any) -> Any:
        self._ctx.point("truncate", self._path)
        return self._f.truncate(*a)

    def close(self) -> None:
        if self._f.closed:
            return
        if not (self._fd in self._ctx.quiet_fds and self._fd not in self._ctx.held):
            self._ctx.point("close", self._path)
        _forget_fd(self._ctx, self._fd)
        self._f.close()

    def __enter__(self) -> "WatchedFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def _forget_fd(ctx: ActorContext, fd: int | None) -> None:
    if fd is None:
        return
    ctx.fd_paths.pop(fd, None)
    ctx.file_fds.discard(fd)
    ctx.quiet_fds.discard(fd)
    key = ctx.held.pop(fd, None)
    if key is not None:  # closing the fd releases its flock
        ctx.events.append(("released", key))


def _open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
    ctx = current()
    if ctx is None:
        return _real["open"](file, mode, *args, **kwargs)
    if isinstance(file, int):
        path = ctx.fd_paths.get(file)
        f = _real["open"](file, mode, *args, **kwargs)
        return f if path is None else WatchedFile(f, ctx, path)
    path = _abspath(file)
    if path is None or not ctx.watches(path):
        return _real["open"](file, mode, *args, **kwargs)
    if kwargs.get("opener") is not None or len(args) >= 6:
        # NamedTemporaryFile passes the directory as the "file" and creates
        # the real one in its opener, through os.open (itself a point).
        f = _real["open"](file, mode, *args, **kwargs)
        fd = f.fileno()
        return WatchedFile(f, ctx, ctx.fd_paths.get(fd, path))
    ctx.point("open", path, mode)
    wf = WatchedFile(_real["open"](file, mode, *args, **kwargs), ctx, path)
    if wf._fd is not None and not any(c in mode for c in "wax+"):
        ctx.quiet_fds.add(wf._fd)
    return wf


def _os_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: Any = None) -> int:
    ctx = current()
    p = _abspath(path) if dir_fd is None else None
    if ctx is None or p is None or not ctx.watches(p):
        return _real["os.open"](path, flags, mode, dir_fd=dir_fd)
    if (flags & 3) == os.O_RDONLY and not flags & os.O_CREAT and os.path.isdir(p):
        # A directory opened to fsync it: opening observes nothing shared.
        fd = _real["os.open"](path, flags, mode)
        ctx.fd_paths[fd] = p
        ctx.quiet_fds.add(fd)
        return fd
    ctx.point("open", p, _flags_text(flags))
    fd = _real["os.open"](path, flags, mode)
    ctx.fd_paths[fd] = p
    if (flags & 3) == os.O_RDONLY and not flags & (os.O_CREAT | os.O_TRUNC):
        ctx.quiet_fds.add(fd)
    return fd


def _flags_text(flags: int) -> str:
    acc = flags & 3
    out = {os.O_RDONLY: "r", os.O_WRONLY: "w", os.O_RDWR: "rw"}.get(acc, "?")
    if flags & os.O_CREAT:
        out += "+create"
    if flags & os.O_TRUNC:
        out += "+trunc"
    if flags & os.O_EXCL:
        out += "+excl"
    return out


def _os_close(fd: int) -> None:
    ctx = current()
    if ctx is None or fd not in ctx.fd_paths:
        return _real["os.close"](fd)
    if not (fd in ctx.quiet_fds and fd not in ctx.held):
        ctx.point("close", ctx.fd_paths[fd])
    _forget_fd(ctx, fd)
    return _real["os.close"](fd)


def _path_op(kind: str, real_name: str) -> Callable:
    def op(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        ctx = current()
        if ctx is not None:
            s, d = _abspath(src), _abspath(dst)
            if s and d and (ctx.watches(s) or ctx.watches(d)):
                ctx.point(kind, d, ctx.rel(s))
        return _real[real_name](src, dst, *args, **kwargs)

    op.__name__ = real_name.split(".")[-1]
    return op


def _unlink_op(real_name: str) -> Callable:
    def op(path: Any, *args: Any, **kwargs: Any) -> None:
        ctx = current()
        if ctx is not None:
            p = _abspath(path)
            if p and ctx.watches(p):
                ctx.point("unlink", p)
        return _real[real_name](path, *args, **kwargs)

    op.__name__ = real_name.split(".")[-1]
    return op


def _fsync_op(real_name: str) -> Callable:
    def op(fd: Any) -> None:
        ctx = current()
        n = fd if isinstance(fd, int) else getattr(fd, "fileno", lambda: -1)()
        if ctx is not None and n in ctx.fd_paths:
            ctx.point("fsync", ctx.fd_paths[n])
        return _real[real_name](fd)

    op.__name__ = real_name.split(".")[-1]
    return op


# -- locks ----------------------------------------------------------------


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
    """

    def __init__(self, reentrant: bool = False) -> None:
        self._lock = _thread.allocate_lock()
        self._reentrant = reentrant
        self._owner: int | None = None
        self._count = 0
        self._key = ("tlock", id(self))

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = _thread.get_ident()
        if self._reentrant and self._owner == me:
            self._count += 1
            return True
        ctx = current()
        if ctx is None:
            ok = self._lock.acquire(blocking, timeout)
        else:
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


# -- time -----------------------------------------------------------------


def _sleep(seconds: float) -> None:
    ctx = current()
    if ctx is None:
        return _real["sleep"](seconds)
    ctx.point("sleep", "", repr(max(0.0, float(seconds))))
    return None


def _clock(real_name: str, offset: float, scale: float, as_int: bool) -> Callable:
    real = _real[real_name]

    def clock() -> Any:
        ctx = current()
        if ctx is None:
            return real()
        v = (offset + ctx.now) * scale
        return int(v) if as_int else v

    clock.__name__ = real_name
    return clock


# -- sqlite ---------------------------------------------------------------


def _busy(exc: BaseException) -> bool:
    msg = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in msg or "busy" in msg)


class _SqlPoints:
    """Runs one SQL call as a point; a busy database becomes a poll in
    virtual time that gives up after the connection's own timeout."""

    def __init__(self, ctx: ActorContext, path: str, timeout: float) -> None:
        self.ctx, self.path, self.timeout = ctx, path, timeout

    def run(self, label: str, fn: Callable, *args: Any) -> Any:
        ctx = self.ctx
        ctx.point("sql", self.path, label)
        start = ctx.now
        key = ("sqlite", self.path)
        waited = False
        while True:
            try:
                out = fn(*args)
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or ctx.now - start >= self.timeout:
                    raise
                ctx.events.append(("blocked", key))
                waited = True
                time.sleep(0.005)
                # every attempt is a point of its own: the one that
                # succeeds is where the statement takes effect
                ctx.point("sql", self.path, label)
                continue
            if waited:
                ctx.events.append(("acquired", key))
                ctx.events.append(("released", key))
            return out


def _sql_label(sql: str) -> str:
    words = sql.strip().split(None, 1)
    return words[0].upper() if words else ""


class ControlledCursor(sqlite3.Cursor):
    """A cursor whose statements are points."""

    _sp: _SqlPoints

    def execute(self, sql: str, params: Any = ()) -> "ControlledCursor":
        self._sp.run(_sql_label(sql), super().execute, sql, params)
        return self

    def executemany(self, sql: str, seq: Any) -> "ControlledCursor":
        self._sp.run(_sql_label(sql), super().executemany, sql, seq)
        return self


class _ControlledConnection:
    """Mixed into a ``sqlite3.Connection`` (sub)class: statements, commits
    and rollbacks are points.  A real subclass, because stores check the
    type (``isinstance(conn, sqlite3.Connection)``).

    The real connection has a busy timeout of 0, so SQLite never blocks the
    baton; the timeout the store asked for is honoured in virtual time.
    """

    _sp: _SqlPoints

    def cursor(self, factory: Any = ControlledCursor) -> Any:
        cur = super().cursor(factory)  # type: ignore[misc]
        cur._sp = self._sp
        return cur

    def execute(self, sql: str, params: Any = ()) -> Any:
        return self.cursor().execute(sql, params)

    def executemany(self, sql: str, seq: Any) -> Any:
        return self.cursor().executemany(sql, seq)

    def executescript(self, script: str) -> Any:
        return self._sp.run("SCRIPT", super().executescript, script)  # type: ignore[misc]

    def commit(self) -> None:
        self._sp.run("COMMIT", super().commit)  # type: ignore[misc]

    def rollback(self) -> None:
        self._sp.run("ROLLBACK", super().rollback)  # type: ignore[misc]

    def close(self) -> None:
        self._sp.run("CLOSE", super().close)  # type: ignore[misc]

    def __exit__(self, exc_type: Any, *rest: Any) -> bool:
        # The C __exit__ commits without going through commit(): route it.
        if exc_type is None:
            self.commit()
        else:
            self.rollback()
        return False


_controlled_classes: dict[type, type] = {}


def _controlled(factory: type) -> type:
    cls = _controlled_classes.get(factory)
    if cls is None:
        cls = _controlled_classes[factory] = type(f"Controlled{factory.__name__}",
                                                  (_ControlledConnection, factory), {})
    return cls


def _sqlite_connect(database: Any, timeout: float = 5.0, *args: Any, **kwargs: Any) -> Any:
    ctx = current()
    path = _abspath(database) if not str(database).startswith(":memory:") else None
    if ctx is None or path is None or not ctx.watches(path):
        return _real["sqlite3.connect"](database, timeout, *args, **kwargs)
    sp = _SqlPoints(ctx, path, float(timeout))
    ctx.point("sql", path, "CONNECT")
    kwargs["factory"] = _controlled(kwargs.get("factory") or sqlite3.Connection)
    conn = _real["sqlite3.connect"](database, 0.0, *args, **kwargs)
    conn._sp = sp
    return conn


# -- installation -----------------------------------------------------------


def install() -> None:
    """Patch the process once.  Idempotent; cheap outside actors."""
    global _installed
    if _installed:
        return
    builtins.open = _open
    io.open = _open
    os.open = _os_open
    os.close = _os_close
    os.replace = _path_op("replace", "os.replace")
    os.rename = _path_op("rename", "os.rename")
    os.remove = _unlink_op("os.remove")
    os.unlink = _unlink_op("os.unlink")
    os.fsync = _fsync_op("os.fsync")
    if _real["os.fdatasync"] is not None:
        os.fdatasync = _fsync_op("os.fdatasync")
    fcntl.flock = _flock
    time.sleep = _sleep
    time.time = _clock("time", EPOCH, 1.0, False)
    time.time_ns = _clock("time_ns", EPOCH, 1e9, True)
    time.monotonic = _clock("monotonic", 1000.0, 1.0, False)
    time.monotonic_ns = _clock("monotonic_ns", 1000.0, 1e9, True)
    time.perf_counter = _clock("perf_counter", 1000.0, 1.0, False)
    time.perf_counter_ns = _clock("perf_counter_ns", 1000.0, 1e9, True)
    sqlite3.connect = _sqlite_connect
    threading.Lock = _Lock
    threading.RLock = _RLock
    _installed = True


def real_sleep(seconds: float) -> None:
    _real["sleep"](seconds)


def real_monotonic() -> float:
    return _real["monotonic"]()

