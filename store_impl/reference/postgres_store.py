"""The reference PostgreSQL store: correct under every test sessioncheck has.

A row per message, a row per session with its metadata as ``jsonb``.
Every operation is one statement on an autocommit connection, so each is
its own transaction and PostgreSQL makes it atomic:

- ``add_message`` upserts the session row, bumping its ``next_seq``, and
  inserts the message with that number, in one statement: the session
  row's lock, held to the commit, orders appends by commit, so a message
  is never numbered before one that committed ahead of it.
- ``persist_state`` merges the fields into the jsonb key by key in one
  statement: ``(metadata || set) - removed``, where ``removed`` lists the
  fields given as ``None``.
- ``read`` is one statement, so messages and metadata come from one
  snapshot.

Connections come from a small per-process pool of idle connections (apps
hold a pool, not a connection per request), which also keeps a run from
paying a backend start per actor.  The store asks the harness for a
server: ``resources = ("postgres",)``, called with ``postgres_dsn``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from psycopg.types.json import Jsonb

from sessioncheck.protocol import Capabilities, Message, SessionState

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id text PRIMARY KEY,
    next_seq bigint NOT NULL DEFAULT 0,
    metadata jsonb NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS messages (
    session_id text NOT NULL,
    seq bigint NOT NULL,
    role text NOT NULL,
    content text NOT NULL,
    PRIMARY KEY (session_id, seq)
)
"""

_idle: dict[tuple[int, str], list[Any]] = {}


def connect(dsn: str) -> Any:
    """An autocommit connection to ``dsn``, reused from this process's idle
    ones when there is one (never one opened by the parent of a fork)."""
    import psycopg

    idle = _idle.setdefault((os.getpid(), dsn), [])
    while idle:
        conn = idle.pop()
        if alive(conn) and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            return conn
        conn.close()
    return psycopg.connect(dsn, autocommit=True, prepare_threshold=None)


def alive(conn: Any) -> bool:
    """Is an idle connection still connected?  Its server closing it (a
    restart, a terminated backend) makes its socket readable while nothing
    was asked: the check a pool makes before handing a connection out,
    without a round trip."""
    import select

    if conn.closed or conn.broken:
        return False
    poll = select.poll()
    poll.register(conn.fileno(), select.POLLIN | select.POLLPRI)
    return not poll.poll(0)


def fresh(dsn: str, conn: Any) -> Any:
    """``conn`` if it is still connected, else a new connection (the old one
    closed): what a store calls before each operation."""
    if conn is not None and alive(conn):
        return conn
    if conn is not None:
        conn.close()
    return connect(dsn)


def release(dsn: str, conn: Any) -> None:
    """Give a connection back; one left inside a transaction is closed."""
    import psycopg

    idle = _idle.setdefault((os.getpid(), dsn), [])
    if (not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            and len(idle) < 8):
        idle.append(conn)
    else:
        conn.close()


def create_schema(conn: Any, schema: str) -> None:
    """Create the tables once per namespace; writers opening at once
    serialise on an advisory lock (CREATE TABLE IF NOT EXISTS races)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(7240)")
        conn.execute(schema)


class PostgresStore:
    """PostgreSQL, a row per message, metadata as jsonb merged key by key (reference)."""

    capabilities = Capabilities()
    resources = ("postgres",)

    def __init__(self, location: Path, postgres_dsn: str | None = None) -> None:
        if not postgres_dsn:
            raise TypeError("PostgresStore needs postgres_dsn (the harness passes it: resources = ('postgres',))")
        self.dsn = postgres_dsn
        self.conn = self._open()
        create_schema(self.conn, SCHEMA)

    def _open(self) -> Any:
        return connect(self.dsn)

    def _live(self) -> None:
        """Before each operation: a connection its server closed (a
        restart) is replaced, as a pool's check does."""
        if not alive(self.conn):
            self.conn.close()
            self.conn = self._open()

    def add_message(self, session_id: str, message: Message) -> None:
        self._live()
        self.conn.execute(
            "WITH s AS (INSERT INTO sessions (id, next_seq) VALUES (%(s)s, 1) ON CONFLICT (id) DO UPDATE "
            "SET next_seq = sessions.next_seq + 1 RETURNING next_seq) "
            "INSERT INTO messages (session_id, seq, role, content) SELECT %(s)s, next_seq, %(r)s, %(c)s FROM s",
            {"s": session_id, "r": message["role"], "c": message["content"]})

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        self._live()
        keep = {k: v for k, v in fields.items() if v is not None}
        drop = [k for k, v in fields.items() if v is None]
        self.conn.execute(
            "INSERT INTO sessions (id, metadata) VALUES (%(s)s, %(set)s) ON CONFLICT (id) DO UPDATE "
            "SET metadata = (sessions.metadata || %(set)s) - %(drop)s::text[]",
            {"s": session_id, "set": Jsonb(keep), "drop": drop})

    def read(self, session_id: str) -> SessionState:
        self._live()
        row = self.conn.execute(
            "SELECT (SELECT metadata FROM sessions WHERE id = %(s)s), "
            "(SELECT coalesce(jsonb_agg(jsonb_build_object('role', role, 'content', content) ORDER BY seq), "
            "'[]') FROM messages WHERE session_id = %(s)s)", {"s": session_id}).fetchone()
        return SessionState(list(row[1]), dict(row[0] or {}))

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            release(self.dsn, conn)
