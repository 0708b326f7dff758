"""SQLite store that creates its schema on first use, checked and created
in one transaction: correct (the counterpart of ``mutant:create-race``).

SQLAlchemy's ``metadata.create_all()`` asks the database which tables
exist and then issues ``CREATE TABLE`` for the missing ones.  Done in one
``BEGIN IMMEDIATE`` transaction, as here, a second instance opening the
same file at the same time waits for SQLite's write lock and then finds
the tables there.  Everything else is the reference ``sqlite`` store.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from sessioncheck.stores.reference.sqlite_store import SqliteStore

TABLES = {
    "messages": "CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL, "
                "role TEXT NOT NULL, content TEXT NOT NULL)",
    "metadata": "CREATE TABLE metadata (session TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
                "PRIMARY KEY (session, key))",
}


def missing_tables(conn: sqlite3.Connection) -> list[str]:
    """The schema's tables the database does not have yet."""
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    return [t for t in TABLES if t not in have]


class CheckedCreateStore(SqliteStore):
    """SQLite, schema checked and created on first use in one BEGIN IMMEDIATE (correct)."""

    def __init__(self, location: Path) -> None:  # noqa: D107 - the class docstring says it
        Path(location).mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(Path(location) / "sessions.db"), timeout=10, isolation_level=None)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for table in missing_tables(self.conn):
                self.conn.execute(TABLES[table])
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
