"""Mutant ``postgres-select-update``: a JSON blob per session, SELECT then UPDATE.

The bug: every session is one row whose ``doc`` column holds all its
messages and metadata as one JSON document.  A mutation SELECTs the
document, changes it in Python and UPDATEs it back, on a connection at
PostgreSQL's default isolation, READ COMMITTED: the SELECT takes no lock,
so another writer's UPDATE between the two is overwritten (a lost
update).  Wrapping the pair in a READ COMMITTED transaction would not help
either; only a row lock (``SELECT ... FOR UPDATE``), an atomic UPDATE, or
SERIALIZABLE does.

Invariant broken: I1 (lost appends) and I3 (lost metadata updates).

Shows with: thread and process actors, no faults needed.

Seen in: chat backends that keep the history in a ``jsonb`` column and
update it with ``json.dumps(history)`` (the Redis GET-then-SET store of
issue 15, in SQL), trusting the database to serialise what is a
read-modify-write in application code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from psycopg.types.json import Jsonb

from sessioncheck.protocol import Capabilities, Message, SessionState
from sessioncheck.stores.reference.postgres_store import connect, create_schema, release

SCHEMA = "CREATE TABLE IF NOT EXISTS session_docs (id text PRIMARY KEY, doc jsonb NOT NULL)"


class Store:
    """PostgreSQL, one JSON blob per session, SELECT then UPDATE under READ COMMITTED."""

    capabilities = Capabilities()
    resources = ("postgres",)

    def __init__(self, location: Path, postgres_dsn: str) -> None:
        self.dsn = postgres_dsn
        self.conn = connect(postgres_dsn)
        create_schema(self.conn, SCHEMA)

    def _load(self, session_id: str) -> dict:
        row = self.conn.execute("SELECT doc FROM session_docs WHERE id = %s", (session_id,)).fetchone()
        return row[0] if row else {"messages": [], "metadata": {}}

    def _save(self, session_id: str, doc: dict) -> None:
        cur = self.conn.execute("UPDATE session_docs SET doc = %s WHERE id = %s", (Jsonb(doc), session_id))
        if cur.rowcount == 0:  # a new session
            self.conn.execute("INSERT INTO session_docs (id, doc) VALUES (%s, %s) "
                              "ON CONFLICT (id) DO UPDATE SET doc = excluded.doc", (session_id, Jsonb(doc)))

    def add_message(self, session_id: str, message: Message) -> None:
        doc = self._load(session_id)
        doc["messages"].append(dict(message))
        self._save(session_id, doc)

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        doc = self._load(session_id)
        for k, v in fields.items():
            if v is None:
                doc["metadata"].pop(k, None)
            else:
                doc["metadata"][k] = v
        self._save(session_id, doc)

    def read(self, session_id: str) -> SessionState:
        doc = self._load(session_id)
        return SessionState(doc["messages"], doc["metadata"])

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            release(self.dsn, conn)
