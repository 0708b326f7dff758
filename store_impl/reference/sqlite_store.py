"""The reference SQLite store: correct under every test sessioncheck has.

One row per message, one row per metadata field, one database file for
all sessions.  Every mutation is one ``BEGIN IMMEDIATE`` transaction, so
writers serialise on SQLite's own file lock; a read is one transaction, so
it sees a consistent snapshot of messages and metadata.  Clearing a field
(``None``) deletes its row.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any, Mapping

from sessioncheck.protocol import Capabilities, Message, SessionState

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    session TEXT NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS metadata (
    session TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (session, key)
);
"""


class SqliteStore:
    """SQLite file, one row per message, BEGIN IMMEDIATE transactions (reference)."""

    capabilities = Capabilities()

    def __init__(self, location: Path) -> None:
        Path(location).mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(Path(location) / "sessions.db"), timeout=10, isolation_level=None)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in filter(str.strip, SCHEMA.split(";")):
                self.conn.execute(stmt)
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def _write(self, statements: list[tuple[str, tuple]]) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in statements:
                self.conn.execute(sql, params)
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def add_message(self, session_id: str, message: Message) -> None:
        self._write([(
            "INSERT INTO messages (session, role, content) VALUES (?, ?, ?)",
            (session_id, message.get("role", "user"), message["content"]),
        )])

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        stmts = []
        for key, value in fields.items():
            if value is None:
                stmts.append(("DELETE FROM metadata WHERE session = ? AND key = ?", (session_id, key)))
            else:
                stmts.append((
                    "INSERT OR REPLACE INTO metadata (session, key, value) VALUES (?, ?, ?)",
                    (session_id, key, json.dumps(value)),
                ))
        self._write(stmts)

    def read(self, session_id: str) -> SessionState:
        self.conn.execute("BEGIN")
        try:
            rows = self.conn.execute(
                "SELECT role, content FROM messages WHERE session = ? ORDER BY seq", (session_id,)
            ).fetchall()
            meta = self.conn.execute(
                "SELECT key, value FROM metadata WHERE session = ?", (session_id,)
            ).fetchall()
        finally:
            self.conn.execute("COMMIT")
        return SessionState(
            messages=[{"role": r, "content": c} for r, c in rows],
            metadata={k: json.loads(v) for k, v in meta},
        )

    def close(self) -> None:
        self.conn.close()
