"""Mutant ``sqlalchemy-rmw``: SQLAlchemy session table with a JSON blob,
SELECT, modify in Python, UPDATE/INSERT back, no lock.

The bug: every session is one row whose ``data`` column holds all its
messages and metadata as JSON.  A mutation SELECTs the blob, changes it in
Python and writes it back inside ``engine.begin()``, trusting the
transaction to serialise it.  With the pysqlite driver's default
transaction handling, the transaction starts only at the first write
(a deferred ``BEGIN`` before the ``UPDATE``), so the ``SELECT`` runs
outside it: another writer's commit between the two is overwritten.

Invariant broken: I1 (lost appends) and I3 (lost metadata updates).

Shows with: thread and process actors, no faults needed.

Seen in: "JSON column" chat-history tables written through an ORM or
SQLAlchemy Core (``session.messages = json.dumps(history)``), where the
``with engine.begin():`` block is taken for a lock.

Needs the ``sql`` extra (``pip install sessioncheck[sql]``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from sessioncheck.protocol import Capabilities, Message, SessionState
from sessioncheck.errors import ConfigError
from sessioncheck.stores.reference.sqlalchemy_store import MISSING

if not MISSING:
    from sqlalchemy import Column, MetaData, String, Table, Text, create_engine, select, update
    from sqlalchemy.dialects.sqlite import insert

    schema = MetaData()
    sessions = Table("sessions", schema, Column("id", String, primary_key=True),
                     Column("data", Text, nullable=False))


class Store:
    """SQLAlchemy, one JSON blob per session, SELECT then UPDATE/INSERT."""

    capabilities = Capabilities()

    def __init__(self, location: Path) -> None:
        if MISSING:
            raise ConfigError(MISSING)
        Path(location).mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(f"sqlite:///{Path(location) / 'blobs.db'}", connect_args={"timeout": 10})
        # the table is created race-free (a second writer opening at once
        # must not fail): the bug of this mutant is the read-modify-write
        with self.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS sessions "
                                 "(id VARCHAR NOT NULL PRIMARY KEY, data TEXT NOT NULL)")

    def _change(self, session_id: str, change: Any) -> None:
        with self.engine.begin() as conn:
            row = conn.execute(select(sessions.c.data).where(sessions.c.id == session_id)).first()
            data = json.loads(row[0]) if row else {"messages": [], "metadata": {}}  # BUG: read ...
            change(data)
            blob = json.dumps(data)
            if row is None:  # ... and write back, with nothing holding others off in between
                stmt = insert(sessions).values(id=session_id, data=blob)
                conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_={"data": stmt.excluded.data}))
            else:
                conn.execute(update(sessions).where(sessions.c.id == session_id).values(data=blob))

    def add_message(self, session_id: str, message: Message) -> None:
        self._change(session_id, lambda d: d["messages"].append(message))

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        def merge(d: dict) -> None:
            for key, value in fields.items():
                if value is None:
                    d["metadata"].pop(key, None)
                else:
                    d["metadata"][key] = value
        self._change(session_id, merge)

    def read(self, session_id: str) -> SessionState:
        with self.engine.connect() as conn:
            row = conn.execute(select(sessions.c.data).where(sessions.c.id == session_id)).first()
        data = json.loads(row[0]) if row else {"messages": [], "metadata": {}}
        return SessionState(messages=data["messages"], metadata=data["metadata"])

    def close(self) -> None:
        self.engine.dispose()
