"""SQLite: connections whose statements, commits and rollbacks are points.

Contract
--------
- Every name the real ``connect`` is reachable by (``sqlite3.connect``,
  ``sqlite3.dbapi2.connect``: SQLAlchemy's pysqlite dialect uses the
  second) is patched by ``install()``; ``tests/test_intercept_aliases.py``
  fails when one is left.
- A connection to a file under an actor's store directory (a plain path,
  a ``PathLike``, bytes, or a ``file:`` URI with ``uri=True``), or opened
  while a store module is imported (a module-level connection), is
  *controlled*: its real busy timeout is 0, so SQLite never blocks the
  baton, and the timeout the store asked for (``connect(timeout=)`` or
  ``PRAGMA busy_timeout = N`` in milliseconds) is honoured as a poll in
  virtual time.
- A statement is a point of the actor that runs it *at call time*
  (``current()``), not of the one that opened the connection: stores share
  one connection between instances.  Outside every actor (the engine's
  final read, import time) a statement is no point; a busy database is then
  polled in real time up to the same timeout.
- A point's detail is the SQL verb and the first table it names
  (``SELECT sessions``, ``INSERT messages``, ``BEGIN``); consumers that
  need only the verb take the first word.
"""
from __future__ import annotations

import os
import re
import sqlite3
import time
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from sessioncheck.controlled.intercept import locks
from sessioncheck.controlled.intercept.context import _real, current


def _busy(exc: BaseException) -> bool:
    msg = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in msg or "busy" in msg)


class _SqlPoints:
    """Runs one SQL call as a point of the calling actor; a busy database
    becomes a poll that gives up after the connection's own timeout
    (virtual seconds inside an actor, real seconds outside)."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path, self.timeout = path, timeout

    def run(self, label: str, fn: Callable, *args: Any) -> Any:
        ctx = current()
        if ctx is None or not ctx.watches(self.path):
            return self._run_outside(fn, args)
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
                time.sleep(0.005)  # the patched sleep: a point, virtual time passes
                # every attempt is a point of its own: the one that
                # succeeds is where the statement takes effect
                ctx.point("sql", self.path, label)
                continue
            if waited:
                ctx.events.append(("acquired", key))
                ctx.events.append(("released", key))
            return out

    def _run_outside(self, fn: Callable, args: tuple) -> Any:
        # No actor runs this (or not on its own store): nothing to
        # interleave with, so a busy database can only be another process
        # of the user's; wait for it as SQLite would have.
        deadline = _real["monotonic"]() + self.timeout
        while True:
            try:
                return fn(*args)
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or _real["monotonic"]() >= deadline:
                    raise
                _real["sleep"](0.005)


# -- statement labels ----------------------------------------------------------------

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_WORD = re.compile(r'\s*([A-Za-z]+)')
#: Where the first table of a statement is named, by verb.
_TABLE_AFTER = {
    "SELECT": r"\bFROM\s+", "DELETE": r"\bFROM\s+", "WITH": r"\bFROM\s+",
    "INSERT": r"\bINTO\s+", "REPLACE": r"\bINTO\s+",
    "UPDATE": r"^\s*UPDATE\s+(?:OR\s+\w+\s+)?",
    "CREATE": r"\b(?:TABLE|ON)\s+(?:IF\s+NOT\s+EXISTS\s+)?",
    "DROP": r"\bTABLE\s+(?:IF\s+EXISTS\s+)?",
    "ALTER": r"\bTABLE\s+",
}
_NAME = r'(?:(?:"[^"]+"|`[^`]+`|\[[^\]]+\]|\w+)\.)?("[^"]+"|`[^`]+`|\[[^\]]+\]|\w+)'
_TABLE_RE = {verb: re.compile(prefix + _NAME, re.I) for verb, prefix in _TABLE_AFTER.items()}


def _sql_label(sql: str) -> str:
    """``VERB table`` for a statement (``SELECT sessions``), the verb alone
    when it names no table (``BEGIN``, ``COMMIT``, ``PRAGMA``)."""
    text = _COMMENTS.sub(" ", sql if isinstance(sql, str) else str(sql))
    m = _WORD.match(text)
    if not m:
        return ""
    verb = m.group(1).upper()
    rx = _TABLE_RE.get(verb)
    t = rx.search(text) if rx is not None else None
    if t is None:
        return verb
    table = t.group(1).strip('"`[]')
    if verb == "WITH":  # a CTE: name the statement it leads to
        inner = re.search(r"\)\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE)\b", text, re.I)
        verb = inner.group(1).upper() if inner else "SELECT"
    return f"{verb} {table}"


_BUSY_PRAGMA = re.compile(r'\bPRAGMA\s+(?:[\w"`\[\]]+\.)?busy_timeout\s*(?:=\s*|\(\s*)([+-]?\d+)', re.I)


def _busy_pragma(sql: Any) -> float | None:
    """The timeout in seconds a ``PRAGMA busy_timeout = N`` sets, else None."""
    if not isinstance(sql, str):
        return None
    found = _BUSY_PRAGMA.findall(sql)
    return max(0, int(found[-1])) / 1000.0 if found else None


def _zero_busy_timeout(conn: sqlite3.Connection) -> None:
    # A plain cursor: resetting the real timeout is no statement of the store's.
    sqlite3.Cursor(conn).execute("PRAGMA busy_timeout = 0").close()


# -- controlled classes --------------------------------------------------------------


class ControlledCursor(sqlite3.Cursor):
    """A cursor whose statements are points."""

    _sp: _SqlPoints

    def execute(self, sql: str, params: Any = ()) -> "ControlledCursor":
        self._sp.run(_sql_label(sql), super().execute, sql, params)
        self._pragma(sql)
        return self

    def executemany(self, sql: str, seq: Any) -> "ControlledCursor":
        self._sp.run(_sql_label(sql), super().executemany, sql, seq)
        self._pragma(sql)
        return self

    def executescript(self, script: str) -> "ControlledCursor":
        self._sp.run("SCRIPT", super().executescript, script)
        self._pragma(script)
        return self

    def _pragma(self, sql: Any) -> None:
        timeout = _busy_pragma(sql)
        if timeout is not None:
            self._sp.timeout = timeout
            _zero_busy_timeout(self.connection)


class _ControlledConnection:
    """Mixed into a ``sqlite3.Connection`` (sub)class: statements, commits
    and rollbacks are points.  A real subclass, because stores check the
    type (``isinstance(conn, sqlite3.Connection)``).
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
        return self.cursor().executescript(script)

    # With no transaction open, commit and rollback touch nothing shared
    # (SQLite does nothing): no point.  Connection pools roll back every
    # connection they take back, so this keeps such no-ops out of stories.
    def commit(self) -> None:
        if self.in_transaction:  # type: ignore[attr-defined]
            self._sp.run("COMMIT", super().commit)  # type: ignore[misc]

    def rollback(self) -> None:
        if self.in_transaction:  # type: ignore[attr-defined]
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


#: ``sqlite3.connect``'s parameters after ``database``, in order.
_PARAMS = ("timeout", "detect_types", "isolation_level", "check_same_thread", "factory",
           "cached_statements", "uri")


def _db_path(database: Any, uri: bool) -> str | None:
    """The absolute file path a connection opens, or None (in memory)."""
    try:
        name = os.fsdecode(os.fspath(database))
    except TypeError:
        return None
    if uri and name.startswith("file:"):
        parts = urlsplit(name)
        if parse_qs(parts.query).get("mode") == ["memory"]:
            return None
        name = unquote(parts.path) if parts.netloc in ("", "localhost") else ""
    if not name or name.startswith(":memory:"):
        return None
    return os.path.abspath(name)


def _sqlite_connect(database: Any, *args: Any, **kwargs: Any) -> Any:
    """``sqlite3.connect`` with the statements of store databases as points."""
    if len(args) > len(_PARAMS):
        return _real["sqlite3.connect"](database, *args, **kwargs)
    kw = dict(zip(_PARAMS, args))
    kw.update(kwargs)
    ctx = current()
    path = _db_path(database, bool(kw.get("uri")))
    in_actor = ctx is not None and path is not None and ctx.watches(path)
    # A connection opened while a store module is imported is a module-level
    # one that every instance (every actor of this process) may use.
    at_import = ctx is None and path is not None and locks._store_import_depth > 0
    if not (in_actor or at_import):
        return _real["sqlite3.connect"](database, *args, **kwargs)
    assert path is not None
    sp = _SqlPoints(path, float(kw.get("timeout", 5.0)))
    if in_actor:
        ctx.point("sql", path, "CONNECT")  # type: ignore[union-attr]
    kw["factory"] = _controlled(kw.get("factory") or sqlite3.Connection)
    kw["timeout"] = 0.0
    conn = _real["sqlite3.connect"](database, **kw)
    conn._sp = sp
    return conn
