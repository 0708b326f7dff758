"""The reference SQLAlchemy store: SQLAlchemy 2 Core over SQLite, correct
under every test sessioncheck has.

One row per message (``messages``), one row per metadata field
(``metadata``), one database file for all sessions, as most agent
frameworks lay a session table out.  The pysqlite driver's own transaction
handling is switched off (it would start transactions late, after a
``SELECT``), and every ``engine.begin()`` block emits ``BEGIN IMMEDIATE``:
the documented SQLAlchemy recipe for serialisable SQLite transactions.  So
writers serialise on SQLite's file lock, and a read sees one snapshot of
messages and metadata.  Clearing a field (``None``) deletes its row.

Needs the ``sql`` extra (``pip install sessioncheck[sql]``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from sessioncheck.errors import ConfigError
from sessioncheck.protocol import Capabilities, Message, SessionState

try:  # the sql extra; without it the store is still listed, and says what to install
    from sqlalchemy import (Column, Integer, MetaData, String, Table, Text, and_, create_engine, delete, event,
                            insert, select)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert
except ImportError as exc:
    MISSING: str | None = f"{exc}; the SQLAlchemy stores need: pip install 'sessioncheck[sql]'"
else:
    MISSING = None
    schema = MetaData()
    messages = Table(
        "messages", schema,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("session", String, nullable=False, index=True),
        Column("role", String, nullable=False),
        Column("content", Text, nullable=False),
    )
    metadata_table = Table(
        "metadata", schema,
        Column("session", String, primary_key=True),
        Column("key", String, primary_key=True),
        Column("value", Text, nullable=False),
    )


def serialisable_engine(path: Path) -> Any:
    """An engine on ``path`` whose transactions are ``BEGIN IMMEDIATE``."""
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 10})

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy, not pysqlite, begins

    @event.listens_for(engine, "begin")
    def _begin_immediate(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class SqlAlchemyStore:
    """SQLAlchemy 2 Core over SQLite, BEGIN IMMEDIATE transactions (reference)."""

    capabilities = Capabilities(delete=True)

    def __init__(self, location: Path) -> None:
        if MISSING:
            raise ConfigError(MISSING)
        Path(location).mkdir(parents=True, exist_ok=True)
        self.engine = serialisable_engine(Path(location) / "sessions.db")
        with self.engine.begin() as conn:
            schema.create_all(conn)

    def add_message(self, session_id: str, message: Message) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(messages).values(session=session_id, role=message.get("role", "user"),
                                                 content=message["content"]))

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        with self.engine.begin() as conn:
            for key, value in fields.items():
                where = and_(metadata_table.c.session == session_id, metadata_table.c.key == key)
                if value is None:
                    conn.execute(delete(metadata_table).where(where))
                    continue
                stmt = sqlite_insert(metadata_table).values(session=session_id, key=key, value=json.dumps(value))
                conn.execute(stmt.on_conflict_do_update(index_elements=["session", "key"],
                                                        set_={"value": stmt.excluded.value}))

    def delete_session(self, session_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(messages).where(messages.c.session == session_id))
            conn.execute(delete(metadata_table).where(metadata_table.c.session == session_id))

    def read(self, session_id: str) -> SessionState:
        with self.engine.begin() as conn:
            rows = conn.execute(select(messages.c.role, messages.c.content)
                                .where(messages.c.session == session_id).order_by(messages.c.seq)).all()
            meta = conn.execute(select(metadata_table.c.key, metadata_table.c.value)
                                .where(metadata_table.c.session == session_id)).all()
        return SessionState(messages=[{"role": r, "content": c} for r, c in rows],
                            metadata={k: json.loads(v) for k, v in meta})

    def close(self) -> None:
        self.engine.dispose()
