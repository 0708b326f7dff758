"""A correct SQLAlchemy store on PostgreSQL through psycopg2, SQLAlchemy's
default PostgreSQL driver.

The session table layout most frameworks use: a row per session (its
next message number and its metadata as ``jsonb``) and a row per message.
Each mutation is one ``engine.begin()`` transaction that makes sure the
session row exists, locks it (``SELECT ... FOR UPDATE``), and changes what
it read: a second writer of the session waits in the server until the
first commits, then reads what it committed.  Clearing a field (``None``)
removes its key.  A read is one statement (one snapshot).

This is the control for psycopg2's points and lock waits
(``intercept/psycopg2_statements.py``): writers of one session really
block each other in the server.  ``mutant:sqlalchemy-postgres-rmw`` is
the same store reading the row without the lock.

Needs SQLAlchemy and psycopg2 (``pip install sqlalchemy psycopg2-binary``)
and a PostgreSQL server (the harness starts one: ``resources =
("postgres",)``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

from sessioncheck.errors import ConfigError
from sessioncheck.protocol import Capabilities, Message, SessionState

try:
    import psycopg2.extensions
    from sqlalchemy import URL, create_engine, text
except ImportError as exc:
    MISSING: str | None = f"{exc}; this store needs: pip install sqlalchemy psycopg2-binary"
else:
    MISSING = None

SCHEMA = """
CREATE TABLE IF NOT EXISTS sa_sessions (
    id text PRIMARY KEY,
    next_seq bigint NOT NULL DEFAULT 0,
    metadata jsonb NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS sa_messages (
    session_id text NOT NULL,
    seq bigint NOT NULL,
    role text NOT NULL,
    content text NOT NULL,
    PRIMARY KEY (session_id, seq)
)
"""


_engines: dict[tuple[int, str], Any] = {}


def engine_for(dsn: str) -> Any:
    """This process's engine for ``dsn``, as an application keeps one per
    process (never one made by the parent of a fork).  Its pool checks a
    connection before handing it out (``pool_pre_ping``), so one its server
    closed (a restart) is replaced, not failed on."""
    import os

    key = (os.getpid(), dsn)
    engine = _engines.get(key)
    if engine is None:
        # a URL whose query holds the DSN's parameters: the dialect calls
        # psycopg2.connect(**them), as for any URL
        url = URL.create("postgresql+psycopg2", query=psycopg2.extensions.parse_dsn(dsn))
        engine = _engines[key] = create_engine(url, pool_pre_ping=True)
    return engine


class SqlAlchemyPostgresStore:
    """SQLAlchemy on PostgreSQL (psycopg2), each change under its session row's lock (reference)."""

    capabilities = Capabilities()
    resources = ("postgres",)

    def __init__(self, location: Path, postgres_dsn: str | None = None) -> None:
        if MISSING:
            raise ConfigError(MISSING)
        if not postgres_dsn:
            raise TypeError(f"{type(self).__name__} needs postgres_dsn (resources = ('postgres',))")
        self.engine = engine_for(postgres_dsn)
        with self.engine.begin() as conn:
            # writers opening at once serialise (CREATE TABLE IF NOT EXISTS races)
            conn.execute(text("SELECT pg_advisory_xact_lock(7241)"))
            conn.exec_driver_sql(SCHEMA)

    def _change(self, session_id: str, change: Callable[[Any, dict], None]) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("INSERT INTO sa_sessions (id) VALUES (:s) ON CONFLICT (id) DO NOTHING"),
                         {"s": session_id})
            row = conn.execute(text("SELECT next_seq, metadata FROM sa_sessions WHERE id = :s FOR UPDATE"),
                               {"s": session_id}).one()
            change(conn, {"next_seq": row[0], "metadata": dict(row[1])})

    def add_message(self, session_id: str, message: Message) -> None:
        def append(conn: Any, row: dict) -> None:
            seq = row["next_seq"] + 1
            conn.execute(text("INSERT INTO sa_messages (session_id, seq, role, content) VALUES (:s, :n, :r, :c)"),
                         {"s": session_id, "n": seq, "r": message["role"], "c": message["content"]})
            conn.execute(text("UPDATE sa_sessions SET next_seq = :n WHERE id = :s"), {"s": session_id, "n": seq})
        self._change(session_id, append)

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        def merge(conn: Any, row: dict) -> None:
            meta = row["metadata"]
            for key, value in fields.items():
                if value is None:
                    meta.pop(key, None)
                else:
                    meta[key] = value
            conn.execute(text("UPDATE sa_sessions SET metadata = CAST(:m AS jsonb) WHERE id = :s"),
                         {"s": session_id, "m": json.dumps(meta)})
        self._change(session_id, merge)

    def read(self, session_id: str) -> SessionState:
        with self.engine.connect() as conn:
            row = conn.execute(text(
                "SELECT (SELECT metadata FROM sa_sessions WHERE id = :s), "
                "(SELECT coalesce(jsonb_agg(jsonb_build_object('role', role, 'content', content) ORDER BY seq), "
                "'[]') FROM sa_messages WHERE session_id = :s)"), {"s": session_id}).one()
        return SessionState(list(row[1]), dict(row[0] or {}))

    def close(self) -> None:
        """The engine is the process's (:func:`engine_for`): it stays, with
        its idle connections, for the next instance."""
