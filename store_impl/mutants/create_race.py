"""Mutant ``create-race``: the schema is checked, then created, in two transactions.

The bug: on first use the store asks SQLite which tables exist and then
issues ``CREATE TABLE`` for the missing ones, each statement in autocommit.
Two instances opening a new database at the same time both find no table;
the second ``CREATE TABLE`` fails with ``table messages already exists``.
Run alone the same operations never fail: the error shows only beside
another writer.

Invariant broken: E1 (an operation fails only under concurrency).

Shows with: thread and process actors, no faults needed (two actors whose
first operations overlap).

Seen in: SQLAlchemy's ``metadata.create_all()`` run by every process on
start (``checkfirst`` asks, then creates: openai-agents'
``SQLAlchemySession(create_tables=True)``); the correct counterpart is
``sqlite-checked-create`` (the check and the create in one
``BEGIN IMMEDIATE``).
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from sessioncheck.stores.reference.checked_create_store import TABLES, CheckedCreateStore, missing_tables


class Store(CheckedCreateStore):
    """SQLite, schema checked then created in autocommit (create race)."""

    def __init__(self, location: Path) -> None:  # noqa: D107 - the class docstring says it
        Path(location).mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(Path(location) / "sessions.db"), timeout=10, isolation_level=None)
        for table in missing_tables(self.conn):  # BUG: another instance may create it now
            self.conn.execute(TABLES[table])
