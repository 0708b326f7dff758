"""Files: open, os.open/close, replace, rename, unlink and fsync as points."""
from __future__ import annotations

import os
from typing import Any, Callable

from sessioncheck.controlled.intercept.context import ActorContext, _abspath, _real, current


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
