"""Adapters driven natively through their async API (awaited by the harness).

Kept apart from the synchronous adapters of the same packages
(``openai_agents.py``, ``langgraph.py``): here nothing bridges the async
API to a synchronous call.  Each method is ``async def`` and awaits the
package's own coroutines, so under ``--actors tasks`` two requests of one
web process interleave at the package's real awaits, and the work the
package hands to a thread (``asyncio.to_thread``, aiosqlite's connection
thread) is made of points of the task that awaits it.  With thread and
process actors each actor's loop awaits them the same way.

``openai-agents-native``
    ``agents.SQLiteSession`` on ``<dir>/agents.db`` (openai-agents 0.24.0),
    the same mapping as ``openai-agents`` (``add_items``, ``get_items``,
    ``clear_session``), but awaited on the running loop: every call runs its
    SQLite work in ``asyncio.to_thread`` on the loop's default pool, under
    the session's ``threading.Lock``, as in an application.  Sessions are
    constructed and closed in ``asyncio.to_thread`` too: the constructor
    takes the lock shared by every session of the file, and taken on the
    loop it would block every request while another's thread holds it.

``langgraph-async`` / ``langgraph-async-read-put``
    ``langgraph.checkpoint.sqlite.aio.AsyncSqliteSaver`` over one
    ``aiosqlite`` connection per instance (opened on first use, on the loop
    that uses it), on ``<dir>/checkpoints.sqlite``; the two mappings of
    ``langgraph.py`` (put_writes per append on a fixed root; read the latest
    checkpoint, put a child), with ``aput`` / ``aput_writes`` / ``alist`` /
    ``aget_tuple``.

Capabilities as their synchronous twins.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Mapping

from sessioncheck.protocol import Capabilities, Message, SessionState


class NativeSQLiteSessionStore:
    """openai-agents SQLiteSession awaited natively (to_thread on the loop's pool)."""

    capabilities = Capabilities(metadata=False, delete=True, retention=None)

    def __init__(self, location: Path) -> None:
        Path(location).mkdir(parents=True, exist_ok=True)
        self.db_path = Path(location) / "agents.db"
        self.sessions: dict[str, Any] = {}

    async def _session(self, session_id: str) -> Any:
        from agents.memory.sqlite_session import SQLiteSession

        if session_id not in self.sessions:
            # Opened in a thread: the constructor creates the table under a
            # lock shared by every session of the file, which on the loop
            # would block every other request while another's thread holds it.
            self.sessions[session_id] = await asyncio.to_thread(SQLiteSession, session_id, self.db_path)
        return self.sessions[session_id]

    async def add_message(self, session_id: str, message: Message) -> None:
        await (await self._session(session_id)).add_items([dict(message)])

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        raise NotImplementedError("SQLiteSession has no session metadata (capabilities.metadata is False)")

    async def read(self, session_id: str) -> SessionState:
        items = await (await self._session(session_id)).get_items()
        return SessionState(messages=[dict(item) for item in items])

    async def delete_session(self, session_id: str) -> None:
        await (await self._session(session_id)).clear_session()

    async def close(self) -> None:
        sessions = list(self.sessions.values())
        self.sessions.clear()
        for session in sessions:
            await asyncio.to_thread(session.close)


class _AsyncSaverStore:
    capabilities = Capabilities(metadata=True, delete=False, retention=None)

    def __init__(self, location: Path) -> None:
        Path(location).mkdir(parents=True, exist_ok=True)
        self.path = str(Path(location) / "checkpoints.sqlite")
        self.conn: Any = None
        self.saver: Any = None

    async def _saver(self) -> Any:
        if self.saver is None:
            import aiosqlite
            from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

            self.conn = await aiosqlite.connect(self.path)
            self.saver = AsyncSqliteSaver(self.conn)
        return self.saver

    async def close(self) -> None:
        conn, self.conn, self.saver = self.conn, None, None
        if conn is not None:
            await conn.close()


class AsyncPutWritesStore(_AsyncSaverStore):
    """langgraph AsyncSqliteSaver: aput_writes per append on a root checkpoint."""

    async def add_message(self, session_id: str, message: Message) -> None:
        from langgraph.checkpoint.base.id import uuid6

        from sessioncheck.stores.adapters.langgraph import CHANNEL, ROOT_ID, PutWritesStore, _thread

        saver = await self._saver()
        await saver.aput(_thread(session_id), PutWritesStore._root(None), {}, {})  # type: ignore[arg-type]
        await saver.aput_writes(_thread(session_id, ROOT_ID), [(CHANNEL, dict(message))], task_id=str(uuid6()))

    async def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        from sessioncheck.stores.adapters.langgraph import ROOT_ID, PutWritesStore, _child, _thread

        saver = await self._saver()
        await saver.aput(_thread(session_id, ROOT_ID), _child(PutWritesStore._root(None)),  # type: ignore[arg-type]
                         dict(fields), {})

    async def read(self, session_id: str) -> SessionState:
        from sessioncheck.stores.adapters.langgraph import CHANNEL, ROOT_ID, _thread

        saver = await self._saver()
        tuples = [t async for t in saver.alist(_thread(session_id))]  # newest first
        state = SessionState()
        for t in reversed(tuples):
            if t.config["configurable"]["checkpoint_id"] == ROOT_ID:
                state.messages = [v for _, ch, v in t.pending_writes or () if ch == CHANNEL]
            for key, value in t.metadata.items():
                if value is None:
                    state.metadata.pop(key, None)
                else:
                    state.metadata[key] = value
        return state


class AsyncReadPutStore(_AsyncSaverStore):
    """langgraph AsyncSqliteSaver: read the latest checkpoint, put a child with the change."""

    async def _update(self, session_id: str, message: Message | None, fields: Mapping[str, Any]) -> None:
        from langgraph.checkpoint.base import empty_checkpoint

        from sessioncheck.stores.adapters.langgraph import CHANNEL, _child, _thread

        saver = await self._saver()
        latest = await saver.aget_tuple(_thread(session_id))
        if latest is None:
            parent_config, parent, metadata = _thread(session_id), empty_checkpoint(), {}
        else:
            parent_config, parent, metadata = latest.config, latest.checkpoint, dict(latest.metadata)
        child = _child(parent)
        new_versions = {}
        if message is not None:
            child["channel_values"][CHANNEL] = [*parent["channel_values"].get(CHANNEL, []), dict(message)]
            new_versions[CHANNEL] = saver.get_next_version(parent["channel_versions"].get(CHANNEL), None)
            child["channel_versions"].update(new_versions)
        for key, value in fields.items():
            if value is None:
                metadata.pop(key, None)
            else:
                metadata[key] = value
        await saver.aput(parent_config, child, metadata, new_versions)

    async def add_message(self, session_id: str, message: Message) -> None:
        await self._update(session_id, message, {})

    async def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        await self._update(session_id, None, fields)

    async def read(self, session_id: str) -> SessionState:
        from sessioncheck.stores.adapters.langgraph import CHANNEL, _thread

        saver = await self._saver()
        latest = await saver.aget_tuple(_thread(session_id))
        if latest is None:
            return SessionState()
        return SessionState(messages=list(latest.checkpoint["channel_values"].get(CHANNEL, [])),
                            metadata=dict(latest.metadata))


def open_native_sqlite_session(location: Path) -> NativeSQLiteSessionStore:
    """openai-agents SQLiteSession awaited natively (to_thread on the loop's pool)."""
    return NativeSQLiteSessionStore(location)


def open_async_put_writes_store(location: Path) -> AsyncPutWritesStore:
    """langgraph AsyncSqliteSaver (aiosqlite): aput_writes with a unique task id per append."""
    return AsyncPutWritesStore(location)


def open_async_read_put_store(location: Path) -> AsyncReadPutStore:
    """langgraph AsyncSqliteSaver (aiosqlite): read the latest checkpoint, then put a child."""
    return AsyncReadPutStore(location)
