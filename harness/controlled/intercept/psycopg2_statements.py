"""PostgreSQL through psycopg2: the same points and lock waits as psycopg 3.

psycopg2 is a C extension: its connection and cursor types cannot be
patched in place.  So ``psycopg2.connect`` (the name SQLAlchemy's
``postgresql+psycopg2`` dialect, and most code, calls) is replaced: it
passes a ``connection_factory`` of its own, a subclass of the caller's
(``psycopg2.extensions.connection`` by default), whose cursors are a
subclass of the caller's cursor factory.  Every connection is made so,
inside an actor or not (a pool may hand an actor a connection made before
the actors ran); outside an actor its methods are the caller's own.

Points, as in ``intercept/postgres.py``: ``execute`` / ``executemany`` of a
cursor (kind ``sql``, path the table, detail the verb: ``UPDATE``,
``SELECT FOR UPDATE``), ``commit`` and ``rollback`` of a connection inside
a transaction.  A ``commit`` or ``rollback`` on an idle connection ends
nothing (SQLAlchemy's pool rolls back every connection it takes back) and
is not a point.  ``with conn:`` ends through the same methods.  Reads of
the system catalogs, ``SHOW`` and ``SET`` (what SQLAlchemy asks on
connecting) are not points, nor is the end of a transaction that ran only
those (``postgres.unshared``).

Lock waits.  A psycopg2 statement blocks inside libpq, out of Python's
reach, unless a *wait callback* is set (``set_wait_callback``, the hook
gevent and eventlet use): then psycopg2 runs every connection
asynchronously underneath and calls the callback to wait.  The callback is
process-wide, so it is set only while a connection an actor used is open
(from the first statement of an actor on it to its close): for any other connection it
is psycopg2's own ``wait_select`` loop; for an actor's connection it is the
same loop polling every millisecond, asking the server (a monitor
connection, after a few milliseconds without an answer) whether the
statement waits for another actor's lock, and parking the actor at a
``flock-wait`` point if so, exactly as for psycopg 3
(``postgres._Waiter``).  A real deadlock is the server's to break (40P01):
a refusal, as a serialization failure (40001) is.

What a wait callback changes (psycopg2's documentation on "green"
support): psycopg2 refuses ``COPY`` and large objects while one is set, in
every thread of the process; outside an actor those calls run with the
callback taken away for their duration (the contract probe runs outside
the actors).  An actor calling them (``copy_expert``, ``copy_from``, ``copy_to``,
``lobject``) ends the run as a configuration the harness cannot run
(exit 2, ``threads.refuse``), never as a finding about the store.

Durability.  The session's ``synchronous_commit`` is read after connecting
and after a statement that may change it, as for psycopg 3; a transaction
that commits under ``off`` is reported ``not-durable``.
"""
from __future__ import annotations

import _thread
import re
import select
from typing import Any, Callable

from sessioncheck.controlled.intercept import postgres as pg
from sessioncheck.controlled.intercept.context import current

_orig: dict[str, Callable] = {}
# actors' connections open in this process; the wait callback is set while
# there is one (a raw lock: threading's is the harness's patched one)
_open = [0]
_open_lock = _thread.allocate_lock()
_types: dict[tuple, type] = {}  # (caller's factory, ours) -> the subclass combining them
_monitors: dict[tuple, Any] = {}  # (pid, thread id, dsn) -> that actor thread's monitor


# -- naming and holding ------------------------------------------------------------

def _status(conn: Any) -> int:
    return conn.info.transaction_status


def _inside(conn: Any) -> bool:
    from psycopg2 import extensions as ext

    return _status(conn) in (ext.TRANSACTION_STATUS_INTRANS, ext.TRANSACTION_STATUS_INERROR)


def _monitor(conn: Any) -> Any:
    """This actor thread's monitor connection to ``conn``'s server: a plain
    autocommit psycopg2 connection, never an actor's."""
    import os
    import threading

    import psycopg2

    key = (os.getpid(), threading.get_ident(), conn._sc_dsn)
    mon = _monitors.get(key)
    if mon is None or mon.closed:
        mon = _orig["connect"](conn._sc_dsn, application_name=pg.MONITOR_NAME)
        mon.autocommit = True
        _monitors[key] = mon
    return mon


def _ask(conn: Any, sql: str, params: Any) -> list:
    import os
    import threading

    import psycopg2

    try:
        cur = _monitor(conn).cursor()
        cur.execute(sql, params)
        return cur.fetchall()
    except psycopg2.Error as exc:
        # a broken monitor (its server was restarted) is made anew next time
        mon = _monitors.pop((os.getpid(), threading.get_ident(), conn._sc_dsn), None)
        if mon is not None:
            mon.close()
        raise pg.NoMonitor(str(exc)) from exc


def _after(ctx: Any, conn: Any, sql: str = "") -> None:
    """As ``postgres._after`` (the same ``report_holding``); a transaction
    that ended ends with it the note that it ran a point."""
    inside = _inside(conn)
    if not inside:
        conn._sc_shared = False
    pg.report_holding(ctx, conn, conn.get_backend_pid(), inside, lambda q, p: _ask(conn, q, p), sql)


def _sync_commit(conn: Any) -> str:
    """The session's synchronous_commit, read without opening a transaction
    (autocommit for the one statement when the connection is idle)."""
    import psycopg2

    try:
        idle = not _inside(conn)
        was = conn.autocommit
        if idle and not was:
            conn.autocommit = True
        try:
            cur = _orig["cursor"](conn)
            cur.execute("SHOW synchronous_commit")
            return str(cur.fetchone()[0])
        finally:
            if idle and not was:
                conn.autocommit = False
    except psycopg2.Error:
        return ""


def _run(ctx: Any, conn: Any, fn: Callable, sql: str = "", label: str = "") -> Any:
    lax = conn._sc_sync_commit == "off"
    done = False
    try:
        out = fn()
        done = True
        return out
    finally:
        if done:
            if lax and not _inside(conn) and not (label or pg.describe(sql)[1]).startswith("ROLLBACK"):
                ctx.events.append(("not-durable", "synchronous_commit off"))
            if sql and pg._SYNC_WORDS.search(sql):
                conn._sc_sync_watch = True
                conn._sc_sync_commit = _sync_commit(conn)
            elif not _inside(conn) and conn._sc_sync_watch:
                conn._sc_sync_commit = _sync_commit(conn)
        _after(ctx, conn, sql)


# -- the subclasses ----------------------------------------------------------------

class _Cursor:
    """Mixed into the caller's cursor class: statements are points."""

    def execute(self, query: Any, vars: Any = None) -> Any:  # noqa: A002 - psycopg2's name
        return self._sc_statement(super().execute, query, vars)

    def executemany(self, query: Any, vars_list: Any) -> Any:
        return self._sc_statement(super().executemany, query, vars_list)

    def copy_expert(self, *args: Any, **kwargs: Any) -> Any:
        _no_green("cursor.copy_expert")
        return _blocking(super().copy_expert, *args, **kwargs)

    def copy_from(self, *args: Any, **kwargs: Any) -> Any:
        _no_green("cursor.copy_from")
        return _blocking(super().copy_from, *args, **kwargs)

    def copy_to(self, *args: Any, **kwargs: Any) -> Any:
        _no_green("cursor.copy_to")
        return _blocking(super().copy_to, *args, **kwargs)

    def _sc_statement(self, fn: Callable, query: Any, args: Any) -> Any:
        conn = self.connection
        ctx = current()
        if ctx is None or not getattr(conn, "_sc_ready", False):
            return fn(query, args)
        _used_by_an_actor(conn)
        sql = query.decode(errors="replace") if isinstance(query, (bytes, bytearray)) else str(query)
        table, label = pg.describe(sql)
        if not pg.unshared(table, label):
            if table and table != "advisory lock":
                conn._sc_table = table
            conn._sc_shared = True  # its transaction ends at a point
            ctx.point("sql", table, label)
        return _run(ctx, conn, lambda: fn(query, args), sql)


class _Connection:
    """Mixed into the caller's connection class: its cursors are ours,
    commit and rollback inside a transaction are points."""

    _sc_ready = False  # set once connected: the connect's own waits are not watched
    _sc_held: Any = None
    _sc_table = ""
    _sc_shared = False  # the transaction open ran a statement that was a point
    _sc_advisory = False
    _sc_sync_commit = ""
    _sc_sync_watch = False
    _sc_dsn = ""
    _sc_counted = False  # used by an actor: counted in _open (closing uncounts it)

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        import psycopg2.extensions as ext

        base = kwargs.get("cursor_factory") or self.cursor_factory or ext.cursor
        kwargs["cursor_factory"] = _combined(base, _Cursor)
        return super().cursor(*args, **kwargs)

    def lobject(self, *args: Any, **kwargs: Any) -> Any:
        _no_green("connection.lobject")
        return _blocking(super().lobject, *args, **kwargs)

    def commit(self) -> None:
        self._sc_end(super().commit, "COMMIT")

    def rollback(self) -> None:
        self._sc_end(super().rollback, "ROLLBACK")

    def _sc_end(self, fn: Callable, label: str) -> None:
        ctx = current()
        if ctx is None or not self._sc_ready or not _inside(self):
            return fn()
        _used_by_an_actor(self)
        if self._sc_shared:
            ctx.point("sql", self._sc_table, label)
        return _run(ctx, self, fn, label=label)

    def close(self) -> None:
        held, ctx = self._sc_held, current()
        mon_ok = held is not None and ctx is not None and pg._parked_count() > 0
        super().close()
        if self._sc_counted:
            self._sc_counted = False
            _green(-1)
        if held is None or ctx is None:
            return
        self._sc_held = None
        ctx.events.append(("released", held))
        if mon_ok:
            pg.settle_after_close(lambda q, p: _ask(self, q, p), held[1])


def _green(n: int) -> None:
    """Count an actor's connection opened (+1) or closed (-1); the wait
    callback is set from the first to the last."""
    import psycopg2.extensions as ext

    with _open_lock:
        before = _open[0]
        _open[0] = max(0, before + n)
        if before == 0 and _open[0] > 0:
            ext.set_wait_callback(_wait)
        elif before > 0 and _open[0] == 0:
            ext.set_wait_callback(None)


def _blocking(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Outside an actor, a call psycopg2 refuses while a wait callback is
    set runs with none (the actors' connections keep theirs afterwards)."""
    import psycopg2.extensions as ext

    with _open_lock:
        cb = ext.get_wait_callback()
        if cb is not None:
            ext.set_wait_callback(None)
        try:
            return fn(*args, **kwargs)
        finally:
            if cb is not None:
                ext.set_wait_callback(cb)


def _no_green(what: str) -> None:
    if current() is None:
        return
    from sessioncheck.controlled.intercept.threads import refuse

    refuse(f"psycopg2 {what} cannot run under the controlled engine: the wait callback that lets it see a "
           "statement waiting in the server makes psycopg2 refuse COPY and large objects; use stress for "
           "this store, or psycopg 3")


def _combined(base: type, mixin: type) -> type:
    if issubclass(base, mixin):
        return base
    key = (base, mixin)
    cls = _types.get(key)
    if cls is None:
        cls = _types[key] = type(f"Controlled{base.__name__}", (mixin, base), {})
    return cls


def _connect(dsn: Any = None, connection_factory: Any = None, cursor_factory: Any = None, **kwargs: Any) -> Any:
    """Every connection is made of our classes, inside an actor or not: an
    application's engine may connect before the actors run (the contract
    probe, a module-level engine) and hand that connection to an actor
    later, whose statements must still be points."""
    import psycopg2.extensions as ext

    ctx = current()
    # An actor's connections carry its name, so the server's views
    # (pg_stat_activity, the blocker query) say whose backend holds what.
    if ctx is not None and "application_name" not in kwargs and "application_name" not in str(dsn or ""):
        kwargs["application_name"] = f"sessioncheck {ctx.name}"
    factory = _combined(connection_factory or ext.connection, _Connection)
    conn = _orig["connect"](dsn, connection_factory=factory, cursor_factory=cursor_factory, **kwargs)
    conn._sc_dsn = ext.make_dsn(dsn, **{k: v for k, v in kwargs.items() if k != "async_"})
    conn._sc_sync_commit = _sync_commit(conn)
    conn._sc_ready = True
    return conn


def _used_by_an_actor(conn: Any) -> None:
    """From a connection's first statement inside an actor to its close,
    the wait callback is set (so a statement waiting in the server is
    seen); a connection only ever used outside actors never sets it."""
    if not conn._sc_counted:
        conn._sc_counted = True
        _green(+1)


# -- waiting -------------------------------------------------------------------

def _wait(conn: Any) -> None:
    """The process's psycopg2 wait callback: psycopg2's own poll loop; for
    an actor's connection it also asks, between polls, whether the server
    holds the statement on another actor's lock, and parks the actor."""
    import psycopg2.extensions as ext

    ctx = current()
    watch = ctx is not None and getattr(conn, "_sc_ready", False)
    waiter = pg._Waiter(ctx, conn, me=conn.get_backend_pid(), ask=lambda q, p: _ask(conn, q, p)) if watch else None
    try:
        while True:
            try:
                state = conn.poll()
            except KeyboardInterrupt:
                conn.cancel()  # as psycopg2.extras.wait_select: the server stops, the caller sees why
                continue
            if state == ext.POLL_OK:
                return
            fd = conn.fileno()
            if state == ext.POLL_READ:
                ready = select.select([fd], [], [], 0.001 if watch else None)[0]
            elif state == ext.POLL_WRITE:
                ready = select.select([], [fd], [], 0.001 if watch else None)[1]
            else:
                raise conn.OperationalError(f"bad state from poll: {state}")
            if not ready and waiter is not None:
                waiter.check()
    finally:
        if waiter is not None:
            waiter.done()


def install() -> bool:
    """Patch psycopg2 if it is importable; False if it is not."""
    if _orig:
        return True
    try:
        import psycopg2
        import psycopg2.extensions as ext
    except ImportError:
        return False
    from sessioncheck.controlled.intercept import locks

    _orig["connect"] = psycopg2.connect
    _orig["cursor"] = ext.connection.cursor
    psycopg2.connect = _connect
    locks.INFRASTRUCTURE = (*locks.INFRASTRUCTURE, "psycopg2")
    return True
