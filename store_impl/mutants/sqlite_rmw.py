"""Mutant ``sqlite-rmw``: SQLite blob store, SELECT then UPDATE outside a transaction.

The bug: every session is one row holding all its messages and metadata
as one JSON blob.  A mutation SELECTs the blob, changes it in Python and
writes it back, on an autocommit connection (``isolation_level=None``,
no ``BEGIN IMMEDIATE``): the SELECT and the write are two separate
transactions, so another connection's write in between is overwritten.
SQLite's own locking makes each statement atomic, not the pair.

Invariant broken: I1 (lost appends) and I3 (lost metadata updates).

Shows with: thread and process actors, no faults needed.

Seen in: "JSON column" session tables in many chat backends (a
``messages`` TEXT column updated with ``json.dumps(history)``), where the
database is trusted to serialise what is really a read-modify-write in
application code.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Mapping

from sessioncheck.protocol import Capabilities, Message, SessionState


class Store:
    """SQLite, one JSON blob per session, SELECT then UPDATE in autocommit."""

    capabilities = Capabilities()

    def __init__(self, location: Path) -> None:
        Path(location).mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(Path(location) / "blobs.db"), timeout=10, isolation_level=None)
        self.conn.execute("CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, data TEXT NOT NULL)")

    def _get(self, session_id: str) -> dict:
        row = self.conn.execute("SELECT data FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return json.loads(row[0]) if row else {"messages": [], "metadata": {}}

    def _put(self, session_id: str, data: dict) -> None:
        self.conn.execute(
            "INSERT INTO sessions (id, data) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
            (session_id, json.dumps(data)),
        )

    def add_message(self, session_id: str, message: Message) -> None:
        data = self._get(session_id)  # BUG: no transaction spans this SELECT ...
        data["messages"].append(message)
        self._put(session_id, data)  # ... and this write

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        data = self._get(session_id)  # BUG: same read-modify-write race
        for key, value in fields.items():
            if value is None:
                data["metadata"].pop(key, None)
            else:
                data["metadata"][key] = value
        self._put(session_id, data)

    def read(self, session_id: str) -> SessionState:
        data = self._get(session_id)
        return SessionState(messages=data["messages"], metadata=data["metadata"])

    def close(self) -> None:
        self.conn.close()
