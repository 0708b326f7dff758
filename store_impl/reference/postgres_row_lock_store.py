"""A correct PostgreSQL blob store: the read-modify-write under the session's row lock.

Every session is one row whose ``doc`` holds its messages and metadata as
one JSON document, as in ``mutant:postgres-select-update``, but a
mutation is one transaction that makes sure the row exists, locks it
(``SELECT ... FOR UPDATE``), changes the document and UPDATEs it: a
second writer of the same session waits inside the server until the
first commits, then reads the committed document.  A read is one
statement (one snapshot).

This is the fix of ``postgres-select-update`` and
``postgres-wrong-row-lock``, and the gallery's control for server-side
lock waits: writers of one session really block each other in the server.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from psycopg.types.json import Jsonb

from sessioncheck.protocol import Capabilities, Message, SessionState
from sessioncheck.stores.reference.postgres_store import connect, create_schema, fresh, release

SCHEMA = "CREATE TABLE IF NOT EXISTS session_docs (id text PRIMARY KEY, doc jsonb NOT NULL)"
EMPTY = {"messages": [], "metadata": {}}


class PostgresRowLockStore:
    """PostgreSQL, one JSON blob per session, changed under SELECT ... FOR UPDATE of its row (reference)."""

    capabilities = Capabilities()
    resources = ("postgres",)

    def __init__(self, location: Path, postgres_dsn: str) -> None:
        self.dsn = postgres_dsn
        self.conn = connect(postgres_dsn)
        create_schema(self.conn, SCHEMA)

    def _change(self, session_id: str, change: Callable[[dict], None]) -> None:
        self.conn = fresh(self.dsn, self.conn)
        with self.conn.transaction():
            self.conn.execute("INSERT INTO session_docs (id, doc) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING",
                              (session_id, Jsonb(EMPTY)))
            doc = self.conn.execute("SELECT doc FROM session_docs WHERE id = %s FOR UPDATE",
                                    (session_id,)).fetchone()[0]
            change(doc)
            self.conn.execute("UPDATE session_docs SET doc = %s WHERE id = %s", (Jsonb(doc), session_id))

    def add_message(self, session_id: str, message: Message) -> None:
        self._change(session_id, lambda doc: doc["messages"].append(dict(message)))

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        def merge(doc: dict) -> None:
            for k, v in fields.items():
                if v is None:
                    doc["metadata"].pop(k, None)
                else:
                    doc["metadata"][k] = v
        self._change(session_id, merge)

    def read(self, session_id: str) -> SessionState:
        self.conn = fresh(self.dsn, self.conn)
        row = self.conn.execute("SELECT doc FROM session_docs WHERE id = %s", (session_id,)).fetchone()
        doc = row[0] if row else EMPTY
        return SessionState(list(doc["messages"]), dict(doc["metadata"]))

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            release(self.dsn, conn)
