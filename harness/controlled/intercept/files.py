"""Files: every way store code reaches a file's data or its name is a point.

Points: ``open`` (``builtins.open``, ``io.open``, ``os.open``, with or
without ``dir_fd``), ``read`` (a file object's reads, ``os.read``,
``os.pread``, ``os.preadv``), ``write`` (``os.write``, ``os.pwrite``,
``os.pwritev``: unbuffered, so the data reaches the kernel at the call;
``os.sendfile`` / ``os.copy_file_range``, as ``shutil.copyfile`` uses
them, are a read of their source and a write of their destination),
``flush`` and ``close`` (buffered data reaches the kernel), ``truncate``,
``replace`` / ``rename`` / ``unlink`` (with their ``*_dir_fd`` forms),
``fsync`` / ``fdatasync``, ``sync`` (``os.sync``: every file), and the
``flush`` of an ``mmap`` of a watched file (``msync``).

A path may be ``str``, ``bytes`` or path-like, and relative to a directory
fd: it is resolved through the fds the actor opened, else through
``/proc/self/fd``, so an fd opened before the actor's context still counts.
A write, flush or close on an fd opened ``O_SYNC`` / ``O_DSYNC`` carries
the detail ``sync`` (the data is durable when the call returns); an mmap
flush carries ``msync`` (durable too).

Every patched function is installed under every name the original is
reachable by in ``builtins``, ``io``, ``_io``, ``os``, ``posix`` and
``mmap`` (:func:`install`), so ``posix.open`` or ``_io.open`` do not
sidestep a point.
"""
from __future__ import annotations

import _io
import builtins
import fcntl
import io
import mmap
import os
import posix
from typing import Any, Callable

from sessioncheck.controlled.intercept.context import (ActorContext, _abspath, _real, _shared_temps, current,
                                                       made_by_tempfile)

#: ``O_TMPFILE`` (Linux): an anonymous file in a directory, reachable by nobody else
_O_TMPFILE = getattr(os, "O_TMPFILE", 0)
_F_GETFL = fcntl.fcntl  # bound now: another interception may wrap fcntl.fcntl
_SYNC_FLAGS = getattr(os, "O_DSYNC", 0) | getattr(os, "O_SYNC", 0)
#: the attributes WatchedFile keeps for itself; every other one is the file's
_OWN = frozenset({"_f", "_ctx", "_path", "_fd"})


def _sync_detail(fd: int | None) -> str:
    """``"sync"`` when writes through ``fd`` are durable as they return."""
    if fd is None or not _SYNC_FLAGS:
        return ""
    try:
        return "sync" if _F_GETFL(fd, fcntl.F_GETFL) & os.O_DSYNC else ""
    except OSError:
        return ""


def _fd_path(ctx: ActorContext, fd: Any) -> str | None:
    """The path ``fd`` was opened at: the actor's own record, else the
    kernel's (``/proc/self/fd``, for an fd opened outside the actor)."""
    if not isinstance(fd, int):
        return None
    p = ctx.fd_paths.get(fd)
    if p is not None:
        return p
    try:
        p = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return p if p.startswith("/") else None  # "pipe:[..]", "socket:[..]"


def _watched_fd(ctx: ActorContext, fd: Any) -> str | None:
    p = _fd_path(ctx, fd)
    return p if p is not None and ctx.watches(p) else None


def _resolve(ctx: ActorContext, path: Any, dir_fd: Any = None) -> str | None:
    """Absolute ``str`` path of ``path`` (str, bytes or path-like),
    relative to ``dir_fd`` when one is given; None when it cannot be told."""
    if isinstance(path, int):
        return _fd_path(ctx, path)  # os.fsync-style APIs that take an fd as "path"
    try:
        p = os.fsdecode(os.fspath(path))
    except TypeError:
        return None
    if dir_fd is not None and not os.path.isabs(p):
        base = _fd_path(ctx, dir_fd)
        if base is None:
            return None
        p = os.path.join(base, p)
    return os.path.abspath(p)


class WatchedFile:
    """A file object whose reads, flush, truncate and close are points.

    Everything else is the wrapped file's: attribute reads *and* writes
    are forwarded (fsspec sets ``f.size`` on the file it opens), so the
    store sees what a real file object would let it do."""

    def __init__(self, f: Any, ctx: ActorContext, path: str) -> None:
        object.__setattr__(self, "_f", f)
        object.__setattr__(self, "_ctx", ctx)
        object.__setattr__(self, "_path", path)
        try:
            fd = f.fileno()
            ctx.fd_paths[fd] = path
            ctx.file_fds.add(fd)
        except (OSError, ValueError, AttributeError):
            fd = None
        object.__setattr__(self, "_fd", fd)
        if not isinstance(f, io.RawIOBase):
            # A buffered write stays in Python until flush or close (both
            # points): the file's own write is called directly, without a
            # wrapper frame per chunk (json.dump writes dozens of chunks).
            try:
                object.__setattr__(self, "write", f.write)
                object.__setattr__(self, "writelines", f.writelines)
            except AttributeError:
                pass

    def _read_point(self) -> None:
        self._ctx.point("read", self._path, "", self._fd)

    def read(self, *a: Any) -> Any:
        self._read_point()
        return self._f.read(*a)

    def read1(self, *a: Any) -> Any:
        self._read_point()
        return self._f.read1(*a)

    def readinto(self, b: Any) -> Any:
        self._read_point()
        return self._f.readinto(b)

    def readinto1(self, b: Any) -> Any:
        self._read_point()
        return self._f.readinto1(b)

    def readline(self, *a: Any) -> Any:
        self._read_point()
        return self._f.readline(*a)

    def readlines(self, *a: Any) -> Any:
        self._read_point()
        return self._f.readlines(*a)

    def __iter__(self):
        self._read_point()
        return iter(self._f.readlines())

    def __next__(self) -> Any:
        self._read_point()
        return next(self._f)

    def _write_point(self) -> None:
        # A buffered write stays in Python until flush/close (points); an
        # unbuffered one (buffering=0: a raw FileIO) reaches the kernel now.
        if isinstance(self._f, io.RawIOBase):
            self._ctx.point("write", self._path, _sync_detail(self._fd), self._fd)

    def write(self, data: Any) -> Any:
        self._write_point()
        return self._f.write(data)

    def writelines(self, lines: Any) -> Any:
        self._write_point()
        return self._f.writelines(lines)

    def flush(self) -> None:
        if not self._f.closed:
            self._ctx.point("flush", self._path, _sync_detail(self._fd), self._fd)
        self._f.flush()

    def truncate(self, *a: Any) -> Any:
        self._ctx.point("truncate", self._path, "", self._fd)
        return self._f.truncate(*a)

    def close(self) -> None:
        if self._f.closed:
            return
        if not (self._fd in self._ctx.quiet_fds and self._fd not in self._ctx.held):
            self._ctx.point("close", self._path, _sync_detail(self._fd), self._fd)
        _forget_fd(self._ctx, self._fd)
        self._f.close()

    def __enter__(self) -> "WatchedFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        if name in _OWN:  # not set yet (a copy made without __init__)
            raise AttributeError(name)
        return getattr(self._f, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self._f, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._f, name)


def _forget_fd(ctx: ActorContext, fd: int | None) -> None:
    if fd is None:
        return
    ctx.fd_paths.pop(fd, None)
    ctx.file_fds.discard(fd)
    ctx.quiet_fds.discard(fd)
    ctx.private_fds.discard(fd)
    key = ctx.held.pop(fd, None)
    if key is not None:  # closing the fd releases its flock
        ctx.events.append(("released", key))


def _open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
    ctx = current()
    if ctx is None:
        return _real["open"](file, mode, *args, **kwargs)
    if isinstance(file, int):
        path = _watched_fd(ctx, file)
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
    p = _resolve(ctx, path, dir_fd) if ctx is not None else None
    if ctx is not None and p is not None and flags & os.O_CREAT and flags & os.O_EXCL and not ctx.watches(p):
        # a lock file created exclusively outside the store's directory:
        # creating it is taking a lock (ActorContext.adopt)
        ctx.adopt(p)
    if ctx is None or p is None or not ctx.watches(p):
        return _real["os.open"](path, flags, mode, dir_fd=dir_fd)
    if (flags & 3) == os.O_RDONLY and not flags & os.O_CREAT and os.path.isdir(p):
        # A directory opened to fsync it (or as a dir_fd): opening observes nothing shared.
        fd = _real["os.open"](path, flags, mode, dir_fd=dir_fd)
        ctx.fd_paths[fd] = p
        ctx.quiet_fds.add(fd)
        return fd
    anonymous = _O_TMPFILE and (flags & _O_TMPFILE) == _O_TMPFILE
    temp = ctx.record and (anonymous or (flags & os.O_CREAT and flags & os.O_EXCL and made_by_tempfile()))
    if temp and not anonymous:
        ctx.touch(p)  # another actor's file under that name: shared, a point
        temp = p not in _shared_temps
    if temp:
        # A file under a fresh random name (or none): nobody else can
        # reach it, so making it is recorded, not a point (ActorContext.point).
        ctx.events.append(("recorded", "open", ctx.rel(p), _flags_text(flags)))
    else:
        ctx.point("open", p, _flags_text(flags))
    fd = _real["os.open"](path, flags, mode, dir_fd=dir_fd)
    ctx.fd_paths[fd] = p
    if temp:
        if anonymous:
            ctx.private_fds.add(fd)
        else:
            ctx.made_temp(p)
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
    if flags & os.O_APPEND:
        out += "+append"
    if _SYNC_FLAGS and flags & os.O_DSYNC:
        out += "+sync"
    return out


def _os_close(fd: int) -> None:
    ctx = current()
    if ctx is None or fd not in ctx.fd_paths:
        return _real["os.close"](fd)
    if not (fd in ctx.quiet_fds and fd not in ctx.held):
        ctx.point("close", ctx.fd_paths[fd], "", fd)
    _forget_fd(ctx, fd)
    return _real["os.close"](fd)


def _fd_io(kind: str, real_name: str) -> Callable:
    """``os.read``-style calls (fd first) on a watched fd are points."""
    real = _real[real_name]

    def op(fd: Any, *args: Any) -> Any:
        ctx = current()
        if ctx is not None:
            p = _watched_fd(ctx, fd)
            if p is not None:
                ctx.point(kind, p, _sync_detail(fd) if kind == "write" else "", fd)
        return real(fd, *args)

    op.__name__ = real.__name__
    op.__qualname__ = real.__name__
    op.__doc__ = real.__doc__
    return op


def _copy_op(real_name: str) -> Callable:
    """``os.sendfile(out, in, ...)`` / ``os.copy_file_range(src, dst, ...)``
    (``shutil.copyfile`` uses them): a read of the source and a write of
    the destination, each a point when its file is watched."""
    real = _real[real_name]
    out_first = real_name == "os.sendfile"

    def op(a: Any, b: Any, *args: Any, **kwargs: Any) -> Any:
        ctx = current()
        if ctx is not None:
            src, dst = (b, a) if out_first else (a, b)
            p = _watched_fd(ctx, src)
            if p is not None:
                ctx.point("read", p)
            p = _watched_fd(ctx, dst)
            if p is not None:
                ctx.point("write", p, _sync_detail(dst))
        return real(a, b, *args, **kwargs)

    op.__name__ = real.__name__
    op.__qualname__ = real.__name__
    op.__doc__ = real.__doc__
    return op


def _truncate(path: Any, length: int) -> None:
    ctx = current()
    if ctx is not None:
        p = _resolve(ctx, path)
        if p is not None and ctx.watches(p):
            ctx.point("truncate", p)
    return _real["os.truncate"](path, length)


def _path_op(kind: str, real_name: str) -> Callable:
    def op(src: Any, dst: Any, *, src_dir_fd: Any = None, dst_dir_fd: Any = None) -> None:
        ctx = current()
        if ctx is not None:
            s, d = _resolve(ctx, src, src_dir_fd), _resolve(ctx, dst, dst_dir_fd)
            if s and d and (ctx.watches(s) or ctx.watches(d)):
                ctx.touch(s)
                ctx.point(kind, d, ctx.rel(s))
                out = _real[real_name](src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
                ctx.forget_temp(s)  # renamed away: a private file no more
                ctx.forget_temp(d)
                return out
        return _real[real_name](src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)

    op.__name__ = real_name.split(".")[-1]
    return op


def _unlink_op(real_name: str) -> Callable:
    def op(path: Any, *, dir_fd: Any = None) -> None:
        ctx = current()
        if ctx is not None:
            p = _resolve(ctx, path, dir_fd)
            if p and ctx.watches(p):
                ctx.point("unlink", p)
                out = _real[real_name](path, dir_fd=dir_fd)
                ctx.forget_temp(p)
                return out
        return _real[real_name](path, dir_fd=dir_fd)

    op.__name__ = real_name.split(".")[-1]
    return op


def _fsync_op(real_name: str) -> Callable:
    def op(fd: Any) -> None:
        ctx = current()
        if ctx is not None:
            n = fd if isinstance(fd, int) else getattr(fd, "fileno", lambda: -1)()
            p = _watched_fd(ctx, n)
            if p is not None:
                ctx.point("fsync", p, "", n)
        return _real[real_name](fd)

    op.__name__ = real_name.split(".")[-1]
    return op


def _sync() -> None:
    """``os.sync()``: every file's data and every directory is durable."""
    ctx = current()
    if ctx is not None:
        ctx.point("sync", ctx.root)
    return _real["os.sync"]()


class WatchedMmap(mmap.mmap):
    """An ``mmap`` whose ``flush`` (``msync``) of a watched file is a point.

    Loads and stores through a mapping are memory accesses no call can
    see; the flush is where its data becomes durable."""

    def __new__(cls, fileno: int, *args: Any, **kwargs: Any) -> "WatchedMmap":
        m = super().__new__(cls, fileno, *args, **kwargs)
        ctx = current()
        m._sessioncheck_path = _watched_fd(ctx, fileno) if ctx is not None and fileno != -1 else None
        return m

    def flush(self, *args: Any) -> Any:
        ctx = current()
        if ctx is not None and self._sessioncheck_path is not None:
            ctx.point("flush", self._sessioncheck_path, "msync")
        return super().flush(*args)


def patches() -> dict[str, Any]:
    """Original name (a key of ``_real``) -> its replacement."""
    out: dict[str, Any] = {
        "open": _open,
        "os.open": _os_open,
        "os.close": _os_close,
        "os.replace": _path_op("replace", "os.replace"),
        "os.rename": _path_op("rename", "os.rename"),
        "os.remove": _unlink_op("os.remove"),
        "os.unlink": _unlink_op("os.unlink"),
        "os.fsync": _fsync_op("os.fsync"),
        "os.read": _fd_io("read", "os.read"),
        "os.write": _fd_io("write", "os.write"),
        "os.ftruncate": _fd_io("truncate", "os.ftruncate"),
        "os.truncate": _truncate,
        "mmap.mmap": WatchedMmap,
    }
    for name, kind in (("pread", "read"), ("preadv", "read"), ("readv", "read"),
                       ("pwrite", "write"), ("pwritev", "write"), ("writev", "write")):
        if _real.get(f"os.{name}") is not None:
            out[f"os.{name}"] = _fd_io(kind, f"os.{name}")
    for name in ("os.sendfile", "os.copy_file_range"):
        if _real.get(name) is not None:
            out[name] = _copy_op(name)
    if _real.get("os.fdatasync") is not None:
        out["os.fdatasync"] = _fsync_op("os.fdatasync")
    if _real.get("os.sync") is not None:
        out["os.sync"] = _sync
    return out


#: every module a file function is reachable from under its own name
ALIAS_MODULES = (builtins, io, _io, os, posix, mmap)


def install() -> None:
    """Replace every original file function, under every name in
    :data:`ALIAS_MODULES` that refers to it, by its point-making version."""
    by_id = {id(_real[k]): v for k, v in patches().items()}
    for module in ALIAS_MODULES:
        for attr, value in list(vars(module).items()):
            new = by_id.get(id(value))
            if new is not None:
                setattr(module, attr, new)


def unpatched_aliases() -> list[str]:
    """``module.name`` of every alias that still refers to an original
    file function (empty once :func:`install` ran)."""
    originals = {id(_real[k]): k for k in patches()}
    out = []
    for module in ALIAS_MODULES:
        for attr, value in vars(module).items():
            if id(value) in originals:
                out.append(f"{module.__name__}.{attr}")
    return out
