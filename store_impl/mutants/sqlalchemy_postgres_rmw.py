"""Mutant ``sqlalchemy-postgres-rmw``: SQLAlchemy on PostgreSQL (psycopg2),
SELECT then INSERT-or-UPDATE inside ``engine.begin()``, without a row lock.

The bug: each change reads the session row (its message counter and its
metadata), creates it if there was none, changes what it read in Python
and writes it back, in one transaction, trusting the transaction to
serialise it: the shape of ORM code that does ``row = session.get(...)``,
then ``session.add(...)`` or an assignment, then commits.  At PostgreSQL's
default isolation, READ COMMITTED, a plain ``SELECT`` takes no lock: two
writers read the same counter and the same metadata, and the second
commit overwrites the first (its metadata change is lost, or its message
collides on the counter and the insert fails).  The fix is the reference
store's (``sqlalchemy-postgres``): create the row first, then read it
``FOR UPDATE``.

Invariant broken: I3 (a lost metadata update) and E1 (an append that
fails only beside another: the counter's primary key refuses it).

Shows with: thread and process actors, no faults needed.

Seen in: ORM session tables with a "last sequence number" or a JSON
metadata column updated as ``row.metadata = merged`` inside
``with Session.begin():``.
"""
from __future__ import annotations

from typing import Any, Callable

from sessioncheck.stores.reference.sqlalchemy_postgres_store import SqlAlchemyPostgresStore


class Store(SqlAlchemyPostgresStore):
    """SQLAlchemy on PostgreSQL (psycopg2), SELECT then INSERT-or-UPDATE, no row lock."""

    def _change(self, session_id: str, change: Callable[[Any, dict], None]) -> None:
        from sqlalchemy import text  # installed: the reference's __init__ checked

        with self.engine.begin() as conn:
            # BUG: the read takes no lock, so what is written back may be stale
            row = conn.execute(text("SELECT next_seq, metadata FROM sa_sessions WHERE id = :s"),
                               {"s": session_id}).first()
            if row is None:
                conn.execute(text("INSERT INTO sa_sessions (id) VALUES (:s) ON CONFLICT (id) DO NOTHING"),
                             {"s": session_id})
                row = (0, {})
            change(conn, {"next_seq": row[0], "metadata": dict(row[1])})
