"""Small SQLite stores that probe how the harness sees SQL one layer away.

Importable as store specs (``sql_layer_stores:SharedConnectionStore``);
tests/test_sql_layer.py runs them.  Each is correct unless its docstring
names its bug.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Mapping

from sessioncheck.protocol import Capabilities, Message, SessionState

SCHEMA = ("CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, session TEXT NOT NULL, "
          "content TEXT NOT NULL)",
          "CREATE TABLE IF NOT EXISTS metadata (session TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
          "PRIMARY KEY (session, key))")

# One connection per database file for every instance in the process, as
# stores keeping a module-level connection (or a connection cache) do.
_CONNS: dict[str, list] = {}  # path -> [connection, instances using it]
_CONNS_LOCK = threading.Lock()
_TX_LOCK = threading.Lock()  # one transaction at a time on a shared connection


def _shared(path: str, init: tuple[str, ...]) -> sqlite3.Connection:
    with _CONNS_LOCK:
        entry = _CONNS.get(path)
        if entry is None:
            conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
            for stmt in init:
                conn.execute(stmt)
            entry = _CONNS[path] = [conn, 0]
        entry[1] += 1
        return entry[0]


def _unshare(path: str) -> None:
    with _CONNS_LOCK:
        entry = _CONNS.get(path)
        if entry is not None:
            entry[1] -= 1
            if entry[1] == 0:
                del _CONNS[path]
                entry[0].close()


class _RowStore:
    """One row per message and per field; every mutation BEGIN IMMEDIATE."""

    capabilities = Capabilities()
    conn: sqlite3.Connection

    def _tx(self, statements: list[tuple[str, tuple]]) -> list:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            out = [self.conn.execute(sql, params).fetchall() for sql, params in statements]
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise
        return out

    def _run(self, statements: list[tuple[str, tuple]]) -> list:
        return self._tx(statements)

    def add_message(self, session_id: str, message: Message) -> None:
        self._run([("INSERT INTO messages (session, content) VALUES (?, ?)", (session_id, message["content"]))])

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        self._run([("DELETE FROM metadata WHERE session = ? AND key = ?", (session_id, k)) if v is None else
                   ("INSERT OR REPLACE INTO metadata VALUES (?, ?, ?)", (session_id, k, json.dumps(v)))
                   for k, v in fields.items()])

    def read(self, session_id: str) -> SessionState:
        rows, meta = self._run([("SELECT content FROM messages WHERE session = ? ORDER BY seq", (session_id,)),
                                ("SELECT key, value FROM metadata WHERE session = ?", (session_id,))])
        return SessionState([{"role": "user", "content": c} for (c,) in rows], {k: json.loads(v) for k, v in meta})


class SharedConnectionStore(_RowStore):
    """Every instance in a process shares one sqlite connection (correct:
    a process-wide lock keeps one transaction at a time on it, BEGIN
    IMMEDIATE serialises processes)."""

    def __init__(self, location: Path) -> None:
        Path(location).mkdir(parents=True, exist_ok=True)
        self.path = str(Path(location) / "shared.db")
        self.conn = _shared(self.path, SCHEMA)

    def _run(self, statements: list[tuple[str, tuple]]) -> list:
        with _TX_LOCK:
            return self._tx(statements)

    def close(self) -> None:
        _unshare(self.path)


class SharedConnectionRmwStore:
    """Buggy: one shared connection, one JSON blob per session, SELECT then
    upsert in autocommit with no lock: a lost update between instances of
    one process, so a thread-actor run must catch it (I1/I3)."""

    capabilities = Capabilities()

    def __init__(self, location: Path) -> None:
        Path(location).mkdir(parents=True, exist_ok=True)
        self.path = str(Path(location) / "blobs.db")
        self.conn = _shared(self.path, ("CREATE TABLE IF NOT EXISTS s (id TEXT PRIMARY KEY, data TEXT NOT NULL)",))

    def _get(self, sid: str) -> dict:
        row = self.conn.execute("SELECT data FROM s WHERE id = ?", (sid,)).fetchone()
        return json.loads(row[0]) if row else {"messages": [], "metadata": {}}

    def _put(self, sid: str, data: dict) -> None:
        self.conn.execute("INSERT INTO s VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                          (sid, json.dumps(data)))

    def add_message(self, session_id: str, message: Message) -> None:
        data = self._get(session_id)
        data["messages"].append(message)
        self._put(session_id, data)

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        data = self._get(session_id)
        for k, v in fields.items():
            if v is None:
                data["metadata"].pop(k, None)
            else:
                data["metadata"][k] = v
        self._put(session_id, data)

    def read(self, session_id: str) -> SessionState:
        data = self._get(session_id)
        return SessionState(data["messages"], data["metadata"])

    def close(self) -> None:
        _unshare(self.path)


class BusyTimeoutPragmaStore(_RowStore):
    """Correct: connects with no busy timeout and sets ``PRAGMA
    busy_timeout`` (30 s) instead, as many stores do.  A real 30 s wait in
    SQLite while the lock holder is parked would stall the run."""

    def __init__(self, location: Path) -> None:
        Path(location).mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self._database(Path(location) / "pragma.db"), timeout=0,
                                    isolation_level=None, uri=True)
        self.conn.execute("PRAGMA busy_timeout = 30000")
        self._tx([(stmt, ()) for stmt in SCHEMA])

    def _database(self, path: Path) -> str:
        return str(path)

    def close(self) -> None:
        self.conn.close()


class UriPragmaStore(BusyTimeoutPragmaStore):
    """Correct: the same, with the database named by a ``file:`` URI."""

    def _database(self, path: Path) -> str:
        return path.resolve().as_uri() + "?mode=rwc"
