"""SQLite: connections whose statements, commits and rollbacks are points."""
from __future__ import annotations

import sqlite3
import time
from typing import Any, Callable

from sessioncheck.controlled.intercept.context import ActorContext, _abspath, _real, current


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
