"""PostgreSQL through psycopg 3: statements, commits and rollbacks are points,
and a statement that waits for a lock held by a parked actor is a lock wait.

Design notes
------------
Points.  ``Cursor.execute`` / ``executemany`` (which ``Connection.execute``
goes through), ``Connection.commit`` / ``rollback`` and the end of a
``with conn.transaction():`` block are points of kind ``sql``, named by verb
and table: path ``sessions``, detail ``SELECT FOR UPDATE``.  The table is
the point's path, so the systematic pass's reduction sees which operations
touch the same table.  ``BEGIN`` and connecting are not points (they
change nothing another writer can see), nor is anything a connection pool
(``psycopg_pool``) does on its own behalf.

Blocking inside the server.  An actor that runs a statement while another
actor's transaction holds the row it needs would block in libpq, holding the
baton the holder needs to go on: a real hang.  So ``Connection.wait`` (the
loop every psycopg call runs to talk to the server) is replaced, for an
actor's connections, by psycopg's own poll loop with one addition: when the
server has not answered within a few milliseconds, the actor asks a monitor
connection of its own what its backend waits for (``pg_blocking_pids``).
Blocked by another backend, it reports a lock event ``blocked`` keyed on
that backend, ``("pg", pid)``, and parks at a wait point (``flock-wait`` on
the table, with the statement still pending in the server) that the
scheduler treats like any lock wait: it runs the holder, and resumes the
waiter once the holder reported the key ``released``; the waiter then reads
its answer.  Every actor reports its own backend's key ``acquired`` while
its connection is inside a transaction (or holds a session advisory lock,
or has a statement parked) and ``released`` when it is back to idle, so the
scheduler always knows who holds what.  A wait in a cycle (the blocker
waits, directly or not, for us) is never parked: that is a real deadlock,
the server's to break (40P01), and this actor waits for it in real time
(the private server's ``deadlock_timeout`` is 50 ms).

Determinism.  A waiter's statement finishes in the server as soon as the
holder's lock is released, while the waiter is still parked.  So that what
a later statement sees does not depend on how fast that happens, an actor
that just ended a transaction waits (real time, bounded) until no other
backend of the run is running unblocked; this costs one monitor query, and
only while some actor has a statement parked (a counter shared by every
actor through memory mapped before the actors fork).

Refusals.  A deadlock (40P01), a serialization failure (40001), a lock or
statement timeout and a lost connection are ``psycopg.OperationalError``:
the operation is not acknowledged, like an ``OSError`` from a file store.

Async connections (``psycopg.AsyncConnection``) have the same points,
awaited (see "psycopg.AsyncConnection" below); lock waits are seen on an
actor's own loop (thread and process actors) and among task actors, from
the task loop's selector.
psycopg2 (SQLAlchemy's default PostgreSQL driver) has the same points and
lock waits through ``intercept/psycopg2_statements.py``, which reuses the
naming, the waiter and the settling here.

Durability.  ``synchronous_commit`` is a session setting no other
connection can read, so each actor connection keeps what it is: read
(through libpq, no point) when it connects and again after any statement
that may change it (``SET``, ``SET LOCAL``, ``set_config``, ``RESET``);
a transaction that ends under ``off`` is reported as event ``not-durable``
on its operation, which ``--faults server-crash`` flags (I6) when the
operation was acknowledged before a kill.
"""
from __future__ import annotations

import mmap
import re
import struct
import sys
import threading
from typing import Any, Callable

from sessioncheck.controlled.intercept.clock import real_monotonic, real_sleep
from sessioncheck.controlled.intercept.context import current

#: Real seconds a statement may take before the actor asks the server what
#: it waits for, and between two such questions.  A lock wait costs about
#: this much; a slow statement on a loaded machine costs one question.
PROMPT = 0.005
#: Real seconds an actor waits for a blocker that is not a parked actor (a
#: deadlock the server is breaking, another client of a user's server).  The
#: actor's watchdog reports anything longer as stuck.
OUTSIDE_WAIT = 30.0
#: Real seconds a resumed waiter still held by the backend it parked on
#: waits before it parks on it again (see _Waiter.blocker): longer than the
#: private server's deadlock_timeout (50 ms), so a cycle the server breaks
#: is broken while the waiter waits.
REPARK = 0.2
#: Real seconds a quiesce waits for a woken waiter's statement to finish.
QUIESCE_WAIT = 2.0
MONITOR_NAME = "sessioncheck-monitor"

_orig: dict[str, Callable] = {}
_local = threading.local()
# Statements parked in a wait, counted across forked actors: memory mapped
# here, at install(), before any actor process forks.
_parked = mmap.mmap(-1, 8)
_COUNT = struct.Struct("q")


def _parked_add(n: int) -> None:
    # Only the actor holding the baton ever runs this: no race.
    (v,) = _COUNT.unpack_from(_parked, 0)
    _COUNT.pack_into(_parked, 0, max(0, v + n))


def clear_parked() -> None:
    """Between runs: no actor has a statement parked."""
    _COUNT.pack_into(_parked, 0, 0)


def _parked_count() -> int:
    return _COUNT.unpack_from(_parked, 0)[0]


# -- naming a statement --------------------------------------------------------

_NAME = r'((?:"[^"]+"|[\w$]+)(?:\s*\.\s*(?:"[^"]+"|[\w$]+))?)'
_WHERE = {
    "SELECT": re.compile(r"\bFROM\s+(?:ONLY\s+)?" + _NAME, re.I),
    "INSERT": re.compile(r"\bINTO\s+" + _NAME, re.I),
    "UPDATE": re.compile(r"\bUPDATE\s+(?:ONLY\s+)?" + _NAME, re.I),
    "DELETE": re.compile(r"\bFROM\s+(?:ONLY\s+)?" + _NAME, re.I),
    "MERGE": re.compile(r"\bINTO\s+" + _NAME, re.I),
    "TRUNCATE": re.compile(r"\bTRUNCATE\s+(?:TABLE\s+)?(?:ONLY\s+)?" + _NAME, re.I),
    "LOCK": re.compile(r"\bLOCK\s+(?:TABLE\s+)?(?:ONLY\s+)?" + _NAME, re.I),
    "CREATE": re.compile(r"\b(?:TABLE|INDEX)\s+(?:IF\s+NOT\s+EXISTS\s+)?" + _NAME
                         + r"(?:\s+ON\s+(?:ONLY\s+)?" + _NAME + ")?", re.I),
    "ALTER": re.compile(r"\bTABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?" + _NAME, re.I),
    "DROP": re.compile(r"\bTABLE\s+(?:IF\s+EXISTS\s+)?" + _NAME, re.I),
}
_MAIN = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE)\b", re.I)
_LOCKING = re.compile(r"\bFOR\s+(NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b", re.I)
_ADVISORY = re.compile(r"\bpg_(try_)?advisory_(xact_)?(lock|unlock)", re.I)


def _table(raw: str) -> str:
    name = raw.split(".")[-1].strip().strip('"')
    return name.lower() if not raw.strip().endswith('"') else name


def describe(sql: str) -> tuple[str, str]:
    """(table, label) of a statement: ``("sessions", "SELECT FOR UPDATE")``.

    The label is the SQL verb (with its row-locking clause); the table is
    the first one the verb acts on, unqualified, or "" when there is none
    (an advisory lock is named ``advisory lock``)."""
    text = sql.lstrip(" \t\r\n(")
    words = text.split(None, 1)
    verb = words[0].upper().rstrip(";") if words else ""
    if verb == "WITH":
        m = _MAIN.search(text)
        verb = m.group(1).upper() if m else "SELECT"
    label = verb
    if verb == "SELECT":
        lock = _LOCKING.search(text)
        if lock:
            label = "SELECT FOR " + " ".join(lock.group(1).upper().split())
    if _ADVISORY.search(text):
        return "advisory lock", label
    rx = _WHERE.get(verb)
    m = rx.search(text) if rx else None
    if m is None:
        return "", label
    if verb == "CREATE" and m.lastindex and m.lastindex >= 2 and m.group(2):
        return _table(m.group(2)), label  # CREATE INDEX ... ON table
    return _table(m.group(1)), label


#: Verbs of statements that change nothing another connection can see.
_PRIVATE_VERBS = ("SELECT", "SHOW", "SET", "RESET")


def unshared(table: str, label: str) -> bool:
    """A statement no other actor's run can tell apart from not having
    run: a read of the system catalogs or of nothing (``SELECT version()``,
    the type lookups a driver or SQLAlchemy makes on connecting), ``SHOW``,
    ``SET``.  It runs without a point (its lock waits are still seen), and
    a transaction that ran only such statements ends without one: they
    would only lengthen every story and the search."""
    return label in _PRIVATE_VERBS and (not table or table.startswith("pg_") or table == "information_schema")


def _sql_text(query: Any, conn: Any) -> str:
    if isinstance(query, str):
        return query
    if isinstance(query, (bytes, bytearray)):
        return bytes(query).decode(errors="replace")
    try:
        return query.as_string(conn)
    except Exception:  # noqa: BLE001 - a Template or something newer: unnamed
        return str(query)


# -- the monitor connection ----------------------------------------------------

def _conninfo(conn: Any) -> str:
    from psycopg.conninfo import make_conninfo

    params = {}
    for opt in conn.pgconn.info:
        if opt.val is not None and opt.keyword not in (b"application_name", b"fallback_application_name"):
            params[opt.keyword.decode()] = opt.val.decode()
    return make_conninfo("", **params)


def _monitor(conn: Any) -> Any:
    """This actor thread's monitor connection to ``conn``'s server."""
    import psycopg

    key = _conninfo(conn)
    mons = getattr(_local, "monitors", None)
    if mons is None or getattr(_local, "monitors_pid", None) != _getpid():
        mons = _local.monitors = {}
        _local.monitors_pid = _getpid()
    mon = mons.get(key)
    if mon is None or mon.closed or mon.broken:  # broken: its server was restarted (--faults server-crash)
        mon = _orig["Connection.connect"](psycopg.Connection, key, autocommit=True,
                                          application_name=MONITOR_NAME)
        mon._sc_private = True
        mons[key] = mon
    return mon


def _getpid() -> int:
    import os

    return os.getpid()


def _query(mon: Any, sql: str, params: tuple) -> list:
    cur = mon.cursor()
    _orig["Cursor.execute"](cur, sql, params)
    return cur.fetchall()


class NoMonitor(Exception):
    """The actor cannot ask its server what its backend waits for (the
    server went away, a user's server refuses a second connection)."""


def _ask(conn: Any, sql: str, params: Any) -> list:
    import psycopg

    try:
        return _query(_monitor(conn), sql, params)
    except psycopg.Error as exc:
        raise NoMonitor(str(exc)) from exc


def _ask_on(mon: Any, sql: str, params: Any) -> list:
    import psycopg

    try:
        return _query(mon, sql, params)
    except psycopg.Error as exc:
        raise NoMonitor(str(exc)) from exc


_BLOCKERS = """
WITH RECURSIVE g(pid, depth) AS (
    SELECT unnest(pg_blocking_pids(%(me)s)), 1
  UNION
    SELECT unnest(pg_blocking_pids(g.pid)), g.depth + 1 FROM g WHERE g.depth < 8)
SELECT g.pid, min(g.depth), bool_or(cardinality(pg_blocking_pids(g.pid)) > 0),
       coalesce(min(a.application_name), '')
  FROM g LEFT JOIN pg_stat_activity a ON a.pid = g.pid GROUP BY g.pid
"""

_RUNNING = """
SELECT count(*) FROM pg_stat_activity
 WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> %s
   AND backend_type = 'client backend' AND application_name <> %s
   AND state = 'active' AND cardinality(pg_blocking_pids(pid)) = 0
"""


# -- holding: what the scheduler knows about this actor's backend --------------

def _after(ctx: Any, conn: Any, sql: str = "") -> None:
    """Report this connection's key acquired or released, as its state now
    says, and let woken waiters settle after a release."""
    import psycopg

    if getattr(conn, "_sc_private", False):
        return
    status = conn.pgconn.transaction_status
    inside = status in (psycopg.pq.TransactionStatus.INTRANS, psycopg.pq.TransactionStatus.INERROR)
    report_holding(ctx, conn, conn.pgconn.backend_pid, inside, lambda q, p: _ask(conn, q, p), sql)


def report_holding(ctx: Any, conn: Any, pid: int, inside: bool, ask: Callable[[str, Any], list],
                   sql: str = "") -> None:
    """After a statement (any driver): ``conn``'s backend key ``("pg", pid)``
    is held while it is ``inside`` a transaction or holds a session advisory
    lock (``sql`` may have taken or freed one: ``ask`` the server), released
    when neither; after a release the waiters it woke settle first."""
    if sql and _ADVISORY.search(sql) and not re.search(r"advisory_xact", sql, re.I):
        try:
            n = ask("SELECT count(*) FROM pg_locks WHERE pid = %s AND locktype = 'advisory' AND granted",
                    (pid,))[0][0]
        except NoMonitor:
            n = 0
        conn._sc_advisory = n > 0
    holding = inside or getattr(conn, "_sc_advisory", False)
    held = getattr(conn, "_sc_held", None)
    if holding and held is None:
        conn._sc_held = ("pg", pid)
        ctx.events.append(("acquired", conn._sc_held))
    elif not holding and held is not None:
        conn._sc_held = None
        ctx.events.append(("released", held))
    if not holding and _parked_count() > 0:
        try:
            settle(ask, pid)
        except NoMonitor:
            pass  # the server went away: the statement that follows says so


def settle_after_close(ask: Callable[[str, Any], list], pid: int) -> None:
    """The server frees a closed connection's locks when its backend exits,
    after close() returned: wait (bounded) for that, then for the waiters
    it wakes to settle."""
    try:
        deadline = real_monotonic() + QUIESCE_WAIT
        while (ask("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))[0][0]
               and real_monotonic() < deadline):
            real_sleep(0.0005)
        settle(ask, pid)
    except NoMonitor:
        pass


def _quiesce(conn: Any) -> None:
    """Wait until no other backend runs unblocked: a waiter this actor's
    release woke has finished its statement or waits again."""
    import psycopg

    try:
        _settle(_monitor(conn), conn.pgconn.backend_pid)
    except psycopg.Error:
        pass  # the server went away: the statement that follows says so


def _settle(mon: Any, me: int) -> None:
    settle(lambda sql, params: _query(mon, sql, params), me)


def settle(ask: Callable[[str, Any], list], me: int) -> None:
    """Wait (real time, at most QUIESCE_WAIT) until no backend of the run
    but ``me`` runs unblocked; ``ask`` queries a monitor connection."""
    deadline = real_monotonic() + QUIESCE_WAIT
    while ask(_RUNNING, (me, MONITOR_NAME))[0][0] and real_monotonic() < deadline:
        real_sleep(0.0005)  # not psycopg 3's: psycopg2 settles here too


def _run(ctx: Any, conn: Any, fn: Callable, args: tuple, kwargs: dict, sql: str = "", label: str = "") -> Any:
    lax = getattr(conn, "_sc_sync_commit", "") == "off"
    done = False
    try:
        out = fn(*args, **kwargs)
        done = True
        return out
    finally:
        if done:
            _durability(ctx, conn, sql, label, lax)
        _after(ctx, conn, sql)


# -- durability of a commit: the session's synchronous_commit -------------------

#: Statements that may change the session's synchronous_commit.
_SYNC_WORDS = re.compile(r"synchronous_commit|\bRESET\s+ALL\b|\bDISCARD\s+ALL\b", re.I)


def _show_sync_commit(conn: Any) -> str:
    """The connection's synchronous_commit, asked through libpq (no point,
    no transaction opened); "" if the connection cannot say now."""
    import psycopg

    if conn.pgconn.transaction_status not in (psycopg.pq.TransactionStatus.IDLE,
                                              psycopg.pq.TransactionStatus.INTRANS):
        return getattr(conn, "_sc_sync_commit", "")
    try:
        res = conn.pgconn.exec_(b"SHOW synchronous_commit")
    except psycopg.Error:
        return ""
    if res.status != psycopg.pq.ExecStatus.TUPLES_OK or not res.ntuples:
        return ""
    return (res.get_value(0, 0) or b"").decode()


def _durability(ctx: Any, conn: Any, sql: str, label: str, lax: bool) -> None:
    """After a call that succeeded: a transaction it ended under the
    session's ``synchronous_commit = off`` is acknowledged before its WAL
    is flushed, reported as event ``not-durable`` (the server-crash check
    reads it); a statement that may change the setting has it read again,
    and so has the end of a transaction after such a statement (``SET
    LOCAL`` ends with it)."""
    import psycopg

    idle = conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
    if lax and idle and not (label or describe(sql)[1]).startswith("ROLLBACK"):
        ctx.events.append(("not-durable", "synchronous_commit off"))
    if sql and _SYNC_WORDS.search(sql):
        conn._sc_sync_watch = True
        conn._sc_sync_commit = _show_sync_commit(conn)
    elif idle and getattr(conn, "_sc_sync_watch", False):
        conn._sc_sync_commit = _show_sync_commit(conn)


class _Waiter:
    """What one statement's wait has seen: whether the actor parked, on
    which backend, and since when an unparked blocker has held it."""

    def __init__(self, ctx: Any, conn: Any, me: int | None = None,
                 ask: Callable[[str, Any], list] | None = None) -> None:
        self.ctx, self.conn = ctx, conn
        self.me = conn.pgconn.backend_pid if me is None else me
        #: runs a query on this actor's monitor connection; raises
        #: NoMonitor when there is none (the driver's module supplies it:
        #: psycopg 3 here, psycopg2 in intercept/psycopg2_statements.py)
        self.ask = ask or (lambda sql, params: _ask(conn, sql, params))
        self.next = real_monotonic() + PROMPT
        self.parked_on: tuple | None = None
        self.counted = False
        self.outside_since: float | None = None
        #: when the actor, parked on ``parked_on``, was resumed to find it
        #: still blocking (None while parked, or when it did not)
        self.resumed_at: float | None = None
        #: (waits, application_name, pid) of the backend the statement was
        #: last seen waiting for (what a stuck report names), None if none
        self.seen: tuple | None = None

    def check(self) -> None:
        """The statement has not finished: ask the server what it waits for,
        and park the actor if another backend's lock holds it."""
        if self.blocker() is not None:
            self.ctx.point("flock-wait", getattr(self.conn, "_sc_table", ""), "row lock")

    def blocker(self) -> tuple | None:
        """The statement has not finished: ask the server (at most every
        PROMPT seconds) what it waits for.  Held by another backend's lock
        the actor should park on: that backend's key ``("pg", pid)``, with
        the events ``acquired`` (its own backend, if not reported yet) and
        ``blocked`` added to the actor's events; the caller parks the actor
        at a ``flock-wait`` point.  None: wait on in real time (the reply
        may be in, the statement runs, or a deadlock the server breaks)."""
        now = real_monotonic()
        if now < self.next:
            return None
        self.next = now + PROMPT
        try:
            rows = self.ask(_BLOCKERS, {"me": self.me})
        except NoMonitor:
            return None  # no monitor: wait in real time, the watchdog bounds it
        direct = [(waits, name, pid) for pid, depth, waits, name in rows if depth == 1 and pid != self.me]
        self.seen = min(direct) if direct else None
        if not direct or any(pid == self.me for pid, _, _, _ in rows):
            # running, or in a deadlock the server will break: real time
            return None
        # A holder that waits for nobody first, then by actor name (its
        # connection's application_name): the same choice in every run,
        # whatever the backends' pids.
        holder = min(direct)[2]
        key = ("pg", holder)
        if key == self.parked_on:
            # Resumed, yet the same backend still blocks: the scheduler
            # knows no actor holding it (nothing parked holds it: it moves
            # on its own), or every actor looked blocked to it: a deadlock
            # the server breaks in deadlock_timeout, or a picture of waits
            # the server changed since (a row's waiters woken in another
            # order than they queued).  Wait in real time for REPARK, then
            # park again on it so the scheduler can run someone else; past
            # OUTSIDE_WAIT in all, wait on (the watchdog reports what blocks).
            self.outside_since = self.outside_since or now
            self.resumed_at = self.resumed_at or now
            if now - self.resumed_at < REPARK or now - self.outside_since >= OUTSIDE_WAIT:
                return None
        else:
            self.outside_since = None
        self.resumed_at = None
        ctx, conn = self.ctx, self.conn
        if getattr(conn, "_sc_held", None) is None:
            conn._sc_held = ("pg", self.me)  # a statement in flight holds what it took
            ctx.events.append(("acquired", conn._sc_held))
        ctx.events.append(("blocked", key))
        if not self.counted:
            _parked_add(1)
            self.counted = True
        self.parked_on = key
        return key

    def done(self) -> None:
        if self.counted:
            _parked_add(-1)
            self.counted = False


def _wait(self: Any, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
    """``Connection.wait`` for an actor's connection: psycopg's poll loop
    (``waiting.wait_poll``), which between polls asks whether the server
    holds the statement on another actor's lock, and parks the actor."""
    ctx = current()
    if ctx is None or getattr(self, "_sc_private", False) or timeout is not None:
        return _orig["Connection.wait"](self, gen, interval, timeout)
    import select

    from psycopg import waiting

    fileno = self.pgconn.socket
    waiter = _Waiter(ctx, self)
    try:
        s = next(gen)
        poll = select.poll()
        poll.register(fileno, waiting._poll_evmasks[s])
        while True:
            evs = poll.poll(1)
            if not evs:
                gen.send(waiting.READY_NONE)
                waiter.check()
                continue
            ev = evs[0][1]
            ready = (waiting.READY_R if ev & select.POLLIN else 0) | (waiting.READY_W if ev & select.POLLOUT else 0)
            if not ready and ev & waiting.POLL_BAD:
                waiting._check_fd_closed(fileno)
                raise waiting.e.OperationalError("connection socket closed")
            s = gen.send(ready)
            poll.modify(fileno, waiting._poll_evmasks[s])
    except StopIteration as ex:
        return ex.value
    finally:
        waiter.done()


# -- the patches ----------------------------------------------------------------

def _private_caller() -> bool:
    """A call made by a connection pool on its own behalf (not a point)."""
    f = sys._getframe(2)
    for _ in range(4):
        if f is None:
            return False
        if f.f_globals.get("__name__", "").startswith("psycopg_pool"):
            return True
        f = f.f_back
    return False


def _controlled(obj_conn: Any) -> Any:
    ctx = current()
    if ctx is None or getattr(obj_conn, "_sc_private", False) or _private_caller():
        return None
    return ctx


def _cursor_call(name: str) -> Callable:
    orig = _orig[name]

    def call(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        conn = self._conn
        ctx = _controlled(conn)
        if ctx is None:
            return orig(self, query, *args, **kwargs)
        sql = _sql_text(query, conn)
        table, label = describe(sql)
        if table and table != "advisory lock":
            conn._sc_table = table
        ctx.point("sql", table, label)
        return _run(ctx, conn, orig, (self, query, *args), kwargs, sql)

    call.__wrapped__ = orig  # type: ignore[attr-defined]
    call.__name__ = orig.__name__
    return call


def _conn_call(name: str, label: str) -> Callable:
    orig = _orig[name]

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        ctx = _controlled(self)
        if ctx is None:
            return orig(self, *args, **kwargs)
        table = getattr(self, "_sc_table", "")
        ctx.point("sql", table, label)
        return _run(ctx, self, orig, (self, *args), kwargs, label=label)

    call.__wrapped__ = orig  # type: ignore[attr-defined]
    return call


def _tx_exit(self: Any, exc_type: Any, exc_val: Any, exc_tb: Any) -> Any:
    orig = _orig["Transaction.__exit__"]
    conn = self._conn
    ctx = _controlled(conn)
    if ctx is None or conn.closed:
        return orig(self, exc_type, exc_val, exc_tb)
    commit = not exc_val and not self.force_rollback
    if getattr(self, "_outer_transaction", True):
        label = "COMMIT" if commit else "ROLLBACK"
    else:
        label = "RELEASE SAVEPOINT" if commit else "ROLLBACK TO SAVEPOINT"
    table = getattr(conn, "_sc_table", "")
    ctx.point("sql", table, label)
    return _run(ctx, conn, orig, (self, exc_type, exc_val, exc_tb), {}, label=label)


def _tx_enter(self: Any) -> Any:
    out = _orig["Transaction.__enter__"](self)
    ctx = _controlled(self._conn)
    if ctx is not None:
        _after(ctx, self._conn)
    return out


def _close(self: Any) -> None:
    held = getattr(self, "_sc_held", None)
    ctx = current()
    if held is None or ctx is None or getattr(self, "_sc_private", False):
        return _orig["Connection.close"](self)
    import psycopg

    mon = _monitor(self) if _parked_count() > 0 else None
    _orig["Connection.close"](self)
    self._sc_held = None
    ctx.events.append(("released", held))
    if mon is not None:
        settle_after_close(lambda q, p: _ask_on(mon, q, p), held[1])


def _connect(cls: Any, conninfo: str = "", **kwargs: Any) -> Any:
    # An actor's connections carry its name, so the server's own views
    # (pg_stat_activity) say whose backend holds what.
    ctx = current()
    if ctx is not None and "application_name" not in kwargs and "application_name" not in conninfo:
        kwargs["application_name"] = f"sessioncheck {ctx.name}"
    conn = _orig["Connection.connect"](cls, conninfo, **kwargs)
    if ctx is not None:
        # what its options (a DSN's -c synchronous_commit=off, a role's
        # setting) made of the session's commit durability
        conn._sc_sync_commit = _show_sync_commit(conn)
    return conn


# -- psycopg.AsyncConnection -----------------------------------------------------
#
# The same points, awaited: a point (synchronous, as redis.asyncio's) before
# each statement, commit and rollback, then the call awaited inside
# ``awaiting_server`` (a reply the server owes is real I/O, never virtual
# time).  On an actor's own loop (thread and process actors) the statement
# is waited for by the synchronous poll loop above, so a lock wait is seen
# through pg_blocking_pids and parked exactly as for a sync connection: the
# loop runs nothing else of this actor meanwhile (one operation per actor).
#
# On the task actors' shared loop (controlled/task_actor.py) a task's points
# are its awaits, so statements are no points of their own; what is added
# there is what the scheduler needs to see lock waits among tasks:
#
# - Holding.  The task's backend key is reported ``acquired`` *before* each
#   statement is sent (not only after it, as for an actor thread): a task
#   parks at the await inside a statement, after its reply arrived and
#   before psycopg read it, so a lock the statement took is held while the
#   task is parked there and the scheduler must know it by then.  After the
#   statement the key is released if the connection is idle again.
# - Waiting.  While a statement's reply is awaited, the task's waiter
#   (``_Waiter``) is registered with the loop (``server_statement``).  The
#   loop thread is then in the loop's selector (psycopg's ``wait_async``
#   awaits a future its ``add_reader`` callback settles), so that is where
#   the question is asked: between slices of the real wait, the selector
#   asks the server what the task's backend waits for.  Held by a backend
#   another actor holds, the task leaves the loop parked at a
#   ``flock-wait`` point, blocked on that key, with its statement still
#   pending in the server; resumed once the holder released it, it reads
#   its answer.  The question is asked even while other sockets are ready:
#   a task parked at an await of psycopg's keeps its reader registered
#   with its reply unread (the await resumes only when the task does), so
#   the selector is seldom idle while any psycopg task is parked.
# - Naming.  An await of the task inside a statement (after its reply
#   arrived, before psycopg read it) is a point of kind ``await`` named by
#   the statement and its table (path ``tdocs``, detail ``SELECT FOR
#   UPDATE``), not by psycopg's line: the story says which statement the
#   task had just run, and the systematic pass sees that two tasks' points
#   touch the same table.

def _on_actor_loop() -> bool:
    import asyncio

    from sessioncheck.controlled.aio import ActorLoop

    try:
        return isinstance(asyncio.get_running_loop(), ActorLoop)
    except RuntimeError:
        return False


def _task_loop() -> Any:
    """The running loop if it is the task actors' (it has
    ``task_context``), else None."""
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return loop if hasattr(loop, "task_context") else None


def _task_context() -> Any:
    """The context of the task actor running now on the task actors'
    loop, or None (no such loop, or shutting down)."""
    loop = _task_loop()
    return loop.task_context() if loop is not None else None


def _acontrolled(conn: Any) -> tuple[Any, bool]:
    """(context, on the task loop) for an async call on ``conn``: an actor
    thread's context, or the running task actor's; (None, False) for a
    private connection, a pool's own call, or no actor."""
    ctx = current()
    task = ctx is None
    if task:
        ctx = _task_context()
    if ctx is None or getattr(conn, "_sc_private", False) or _private_caller():
        return None, False
    return ctx, task


def _hold(ctx: Any, conn: Any) -> None:
    """A task's statement is about to be sent: its backend may take locks
    from now on (see "Holding" above)."""
    if getattr(conn, "_sc_held", None) is None and not conn.closed:
        conn._sc_held = ("pg", conn.pgconn.backend_pid)
        ctx.events.append(("acquired", conn._sc_held))


async def _await_wait(self: Any, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
    if getattr(self, "_sc_private", False) or timeout is not None:
        pass
    elif current() is not None and _on_actor_loop():
        return _wait(self, gen, interval, timeout)
    else:
        loop = _task_loop()
        ctx = loop.task_context() if loop is not None else None
        if ctx is not None:
            waiter = _Waiter(ctx, self)
            # what the task's loop needs (task_actor._Loop.server_statement):
            # the socket its reply comes on, the table and the statement
            waiter.fileno = self.pgconn.socket
            waiter.path = getattr(self, "_sc_table", "")
            waiter.label = getattr(self, "_sc_label", "")
            try:
                with loop.server_statement(waiter):
                    return await _orig["AsyncConnection.wait"](self, gen, interval, timeout)
            finally:
                waiter.done()
    from sessioncheck.controlled.aio import awaiting_server

    with awaiting_server():
        return await _orig["AsyncConnection.wait"](self, gen, interval, timeout)


async def _arun(ctx: Any, conn: Any, fn: Callable, args: tuple, kwargs: dict, sql: str = "",
                label: str = "", task: bool = False) -> Any:
    from sessioncheck.controlled.aio import awaiting_server

    lax = getattr(conn, "_sc_sync_commit", "") == "off"
    done = False
    if task:
        _hold(ctx, conn)
    try:
        with awaiting_server():
            out = await fn(*args, **kwargs)
        done = True
        return out
    finally:
        if done:
            _durability(ctx, conn, sql, label, lax)
        _after(ctx, conn, sql)


def _acursor_call(name: str) -> Callable:
    orig = _orig[name]

    async def call(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        conn = self._conn
        ctx, task = _acontrolled(conn)
        if ctx is None:
            return await orig(self, query, *args, **kwargs)
        sql = _sql_text(query, conn)
        table, label = describe(sql)
        if table and table != "advisory lock":
            conn._sc_table = table
        if task:
            conn._sc_label = label
        else:
            ctx.point("sql", table, label)
        return await _arun(ctx, conn, orig, (self, query, *args), kwargs, sql, task=task)

    call.__wrapped__ = orig  # type: ignore[attr-defined]
    call.__name__ = orig.__name__
    return call


def _aconn_call(name: str, label: str) -> Callable:
    orig = _orig[name]

    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        ctx, task = _acontrolled(self)
        if ctx is None:
            return await orig(self, *args, **kwargs)
        if task:
            self._sc_label = label
        else:
            ctx.point("sql", getattr(self, "_sc_table", ""), label)
        return await _arun(ctx, self, orig, (self, *args), kwargs, label=label, task=task)

    call.__wrapped__ = orig  # type: ignore[attr-defined]
    return call


async def _atx_exit(self: Any, exc_type: Any, exc_val: Any, exc_tb: Any) -> Any:
    orig = _orig["AsyncTransaction.__aexit__"]
    conn = self._conn
    ctx, task = _acontrolled(conn)
    if ctx is None or conn.closed:
        return await orig(self, exc_type, exc_val, exc_tb)
    commit = not exc_val and not self.force_rollback
    if getattr(self, "_outer_transaction", True):
        label = "COMMIT" if commit else "ROLLBACK"
    else:
        label = "RELEASE SAVEPOINT" if commit else "ROLLBACK TO SAVEPOINT"
    if task:
        conn._sc_label = label
    else:
        ctx.point("sql", getattr(conn, "_sc_table", ""), label)
    return await _arun(ctx, conn, orig, (self, exc_type, exc_val, exc_tb), {}, label=label, task=task)


async def _atx_enter(self: Any) -> Any:
    ctx, task = _acontrolled(self._conn)
    if task:
        _hold(ctx, self._conn)  # BEGIN (or SAVEPOINT) is sent now
        self._conn._sc_label = "BEGIN"
    out = await _orig["AsyncTransaction.__aenter__"](self)
    if ctx is not None:
        _after(ctx, self._conn)
    return out


async def _aclose(self: Any) -> None:
    held = getattr(self, "_sc_held", None)
    ctx = (current() or _task_context()) if held is not None else None
    if ctx is None or getattr(self, "_sc_private", False):
        return await _orig["AsyncConnection.close"](self)
    mon = _monitor(self) if _parked_count() > 0 else None
    await _orig["AsyncConnection.close"](self)
    self._sc_held = None
    ctx.events.append(("released", held))
    if mon is not None:
        settle_after_close(lambda q, p: _ask_on(mon, q, p), held[1])


async def _aconnect(cls: Any, conninfo: str = "", **kwargs: Any) -> Any:
    ctx = current() or _task_context()
    if ctx is not None and "application_name" not in kwargs and "application_name" not in conninfo:
        kwargs["application_name"] = f"sessioncheck {ctx.name}"
    from sessioncheck.controlled.aio import awaiting_server

    with awaiting_server():  # its poll loop's timeouts are real time, as its I/O
        conn = await _orig["AsyncConnection.connect"](cls, conninfo, **kwargs)
    if ctx is not None:
        conn._sc_sync_commit = _show_sync_commit(conn)
    return conn


def _install_async(psycopg: Any) -> None:
    C, Conn, T = psycopg.AsyncCursor, psycopg.AsyncConnection, psycopg.AsyncTransaction
    _orig["AsyncCursor.execute"] = C.execute
    _orig["AsyncCursor.executemany"] = C.executemany
    _orig["AsyncConnection.commit"] = Conn.commit
    _orig["AsyncConnection.rollback"] = Conn.rollback
    _orig["AsyncConnection.close"] = Conn.close
    _orig["AsyncConnection.connect"] = Conn.connect.__func__
    _orig["AsyncConnection.wait"] = Conn.wait
    _orig["AsyncTransaction.__aexit__"] = T.__aexit__
    _orig["AsyncTransaction.__aenter__"] = T.__aenter__
    Conn.wait = _await_wait
    C.execute = _acursor_call("AsyncCursor.execute")
    C.executemany = _acursor_call("AsyncCursor.executemany")
    Conn.commit = _aconn_call("AsyncConnection.commit", "COMMIT")
    Conn.rollback = _aconn_call("AsyncConnection.rollback", "ROLLBACK")
    Conn.close = _aclose
    _aconnect.__wrapped__ = _orig["AsyncConnection.connect"]  # type: ignore[attr-defined]
    Conn.connect = classmethod(_aconnect)
    T.__aexit__ = _atx_exit
    T.__aenter__ = _atx_enter


def install() -> bool:
    """Patch psycopg 3 if it is importable; False if it is not."""
    if _orig:
        return True
    try:
        import psycopg
    except ImportError:
        return False
    from sessioncheck.controlled.intercept import context, locks

    _orig["sleep"] = context._real["sleep"]
    C, Conn, T = psycopg.Cursor, psycopg.Connection, psycopg.Transaction
    _orig["Cursor.execute"] = C.execute
    _orig["Cursor.executemany"] = C.executemany
    _orig["Connection.commit"] = Conn.commit
    _orig["Connection.rollback"] = Conn.rollback
    _orig["Connection.close"] = Conn.close
    _orig["Connection.connect"] = Conn.connect.__func__
    _orig["Transaction.__exit__"] = T.__exit__
    _orig["Transaction.__enter__"] = T.__enter__
    _orig["Connection.wait"] = Conn.wait
    Conn.wait = _wait
    C.execute = _cursor_call("Cursor.execute")
    C.executemany = _cursor_call("Cursor.executemany")
    Conn.commit = _conn_call("Connection.commit", "COMMIT")
    Conn.rollback = _conn_call("Connection.rollback", "ROLLBACK")
    Conn.close = _close
    _connect.__wrapped__ = _orig["Connection.connect"]  # type: ignore[attr-defined]
    Conn.connect = classmethod(_connect)
    psycopg.connect = Conn.connect
    T.__exit__ = _tx_exit
    T.__enter__ = _tx_enter
    _install_async(psycopg)
    # psycopg's own locks (one per connection) are private to the actor
    # using the connection: never points.
    locks.INFRASTRUCTURE = (*locks.INFRASTRUCTURE, "psycopg", "psycopg_pool", "psycopg_binary", "psycopg_c")
    # A refused statement (deadlock, serialization failure, lock timeout, lost
    # connection) is not acknowledged: sessioncheck.controlled.refusals reads
    # its SQLSTATE.
    return True
