"""Adapter to the OpenAI Agents SDK's ``SQLiteSession`` (package openai-agents).

Tested with openai-agents 0.24.0 (CPython 3.11, SQLite 3 from the stdlib).

What it wraps: ``agents.SQLiteSession`` on one file database,
``<dir>/agents.db``, shared by every session and every instance.  One
``SQLiteSession`` object is bound to one session id, so an adapter instance
keeps one per session it has touched.

Mapping:

- ``add_message`` -> ``await session.add_items([message])`` (one
  transaction: ``INSERT OR IGNORE`` of the session row, ``INSERT`` of the
  item, ``UPDATE`` of ``updated_at``, ``commit``);
- ``read`` -> ``await session.get_items()`` (every item, in insertion
  order);
- ``delete_session`` -> ``await session.clear_session()`` (deletes the
  session's items and its session row in one transaction);
- ``persist_state``: the store has no session metadata.  The capability is
  declared (``metadata=False``) so the model never asks for it; calling it
  raises.

Capabilities: ``Capabilities(metadata=False, delete=True, retention=None)``;
the store keeps every item (``get_items()`` with no limit).

Async: the API is ``async``, and every method runs its SQLite work through
``asyncio.to_thread``, i.e. on the event loop's default thread pool, a
thread the harness does not control.  The adapter therefore runs each call
synchronously on a private event loop per instance whose default executor
runs the submitted function *inline*, in the calling (actor) thread: the
store's own code, lock and SQL are unchanged, they just run in the thread
that called the adapter, so every SQLite call and lock acquisition is seen
by the harness.  No thread is started.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path
from typing import Any, Mapping

from agents.memory.sqlite_session import SQLiteSession

from sessioncheck.protocol import Capabilities, Message, SessionState

DB_NAME = "agents.db"


class InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """A default executor that runs each submitted call in the caller's thread.

    ``asyncio`` accepts only ``ThreadPoolExecutor`` instances as a loop's
    default executor; this one never starts a worker.
    """

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # delivered to the awaiting coroutine
            future.set_exception(exc)
        return future


class OpenAIAgentsStore:
    """openai-agents SQLiteSession on a file database (append only, no metadata)."""

    capabilities = Capabilities(metadata=False, delete=True, retention=None)

    def __init__(self, location: Path) -> None:
        Path(location).mkdir(parents=True, exist_ok=True)
        self.db_path = Path(location) / DB_NAME
        self.loop = asyncio.new_event_loop()
        self.loop.set_default_executor(InlineExecutor(max_workers=1))
        self.sessions: dict[str, SQLiteSession] = {}

    def _session(self, session_id: str) -> SQLiteSession:
        if session_id not in self.sessions:
            self.sessions[session_id] = SQLiteSession(session_id, self.db_path)
        return self.sessions[session_id]

    def add_message(self, session_id: str, message: Message) -> None:
        self.loop.run_until_complete(self._session(session_id).add_items([dict(message)]))

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        raise NotImplementedError("SQLiteSession has no session metadata (capabilities.metadata is False)")

    def read(self, session_id: str) -> SessionState:
        items = self.loop.run_until_complete(self._session(session_id).get_items())
        return SessionState(messages=[dict(item) for item in items])

    def delete_session(self, session_id: str) -> None:
        self.loop.run_until_complete(self._session(session_id).clear_session())

    def close(self) -> None:
        # Closing releases the process-wide lock registry entry that
        # SQLiteSession keeps per database path.
        for session in self.sessions.values():
            session.close()
        self.sessions.clear()
        self.loop.close()


def open_store(location: Path) -> OpenAIAgentsStore:
    """openai-agents SQLiteSession on a file database (append only, no metadata)."""
    return OpenAIAgentsStore(location)


class OpenAIAgentsEditsStore(OpenAIAgentsStore):
    """SQLiteSession with its two other mutators in the model: ``pop_item``
    (remove and return the last item) and ``clear_session`` (remove every
    item; the session has no metadata, so clear and delete coincide)."""

    capabilities = Capabilities(metadata=False, delete=True, retention=None, pop=True, clear=True)

    def pop_message(self, session_id: str) -> Any:
        item = self.loop.run_until_complete(self._session(session_id).pop_item())
        return None if item is None else dict(item)

    def clear_messages(self, session_id: str) -> None:
        self.loop.run_until_complete(self._session(session_id).clear_session())


def open_edits_store(location: Path) -> OpenAIAgentsEditsStore:
    """openai-agents SQLiteSession with pop_item and clear_session."""
    return OpenAIAgentsEditsStore(location)


# -- the async extensions: AsyncSQLiteSession and SQLAlchemySession ----------------
#
# Both are driven natively through their async API: the adapter's methods
# are ``async def`` and the harness awaits them on the actor's own event
# loop (controlled/aio.py), so the store's real helper threads run: the
# aiosqlite connection thread, which the harness counts as the actor's
# (intercept/threads.py).  Nothing is made inline.


class AsyncSQLiteStore:
    """openai-agents AsyncSQLiteSession (aiosqlite) on a file database (append only, no metadata).

    Tested with openai-agents 0.24.0 and aiosqlite 0.22.1.  One
    ``AsyncSQLiteSession`` per session id, each with its own aiosqlite
    connection (and thread) to ``<dir>/agents.db``: ``add_message`` ->
    ``await add_items([message])`` (one transaction, ``commit``), ``read`` ->
    ``await get_items()``, ``delete_session`` -> ``await clear_session()``,
    ``close`` -> ``await close()`` of every session.
    """

    capabilities = Capabilities(metadata=False, delete=True, retention=None)

    def __init__(self, location: Path) -> None:
        Path(location).mkdir(parents=True, exist_ok=True)
        self.db_path = Path(location) / DB_NAME
        self.sessions: dict[str, Any] = {}

    def _session(self, session_id: str) -> Any:
        from agents.extensions.memory.async_sqlite_session import AsyncSQLiteSession

        if session_id not in self.sessions:
            self.sessions[session_id] = AsyncSQLiteSession(session_id, self.db_path)
        return self.sessions[session_id]

    async def add_message(self, session_id: str, message: Message) -> None:
        await self._session(session_id).add_items([dict(message)])

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        raise NotImplementedError("AsyncSQLiteSession has no session metadata (capabilities.metadata is False)")

    async def read(self, session_id: str) -> SessionState:
        items = await self._session(session_id).get_items()
        return SessionState(messages=[dict(item) for item in items])

    async def delete_session(self, session_id: str) -> None:
        await self._session(session_id).clear_session()

    async def close(self) -> None:
        sessions, self.sessions = list(self.sessions.values()), {}
        for session in sessions:
            await session.close()


class SQLAlchemyStore:
    """openai-agents SQLAlchemySession over sqlite+aiosqlite (append only, no metadata).

    Tested with openai-agents 0.24.0, SQLAlchemy 2.1 and aiosqlite 0.22.1.
    One async engine per instance on ``<dir>/agents.db`` (``create_tables``
    on), one ``SQLAlchemySession`` per session id sharing it:
    ``add_message`` -> ``await add_items([message])``, ``read`` -> ``await
    get_items()``, ``delete_session`` -> ``await clear_session()``,
    ``close`` -> ``await engine.dispose()``.
    """

    capabilities = Capabilities(metadata=False, delete=True, retention=None)

    def __init__(self, location: Path) -> None:
        Path(location).mkdir(parents=True, exist_ok=True)
        self.db_path = Path(location) / DB_NAME
        self.engine: Any = None
        self.sessions: dict[str, Any] = {}

    def _session(self, session_id: str) -> Any:
        from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession
        from sqlalchemy.ext.asyncio import create_async_engine

        if self.engine is None:
            self.engine = create_async_engine(f"sqlite+aiosqlite:///{self.db_path}")
        if session_id not in self.sessions:
            self.sessions[session_id] = SQLAlchemySession(session_id, engine=self.engine, create_tables=True)
        return self.sessions[session_id]

    async def add_message(self, session_id: str, message: Message) -> None:
        await self._session(session_id).add_items([dict(message)])

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        raise NotImplementedError("SQLAlchemySession has no session metadata (capabilities.metadata is False)")

    async def read(self, session_id: str) -> SessionState:
        items = await self._session(session_id).get_items()
        return SessionState(messages=[dict(item) for item in items])

    async def delete_session(self, session_id: str) -> None:
        await self._session(session_id).clear_session()

    async def close(self) -> None:
        engine, self.engine = self.engine, None
        self.sessions.clear()
        if engine is not None:
            await engine.dispose()


def open_async_sqlite_store(location: Path) -> AsyncSQLiteStore:
    """openai-agents AsyncSQLiteSession (aiosqlite) on a file database (append only, no metadata)."""
    return AsyncSQLiteStore(location)


def open_sqlalchemy_store(location: Path) -> SQLAlchemyStore:
    """openai-agents SQLAlchemySession over sqlite+aiosqlite (append only, no metadata)."""
    return SQLAlchemyStore(location)


# -- RedisSession on the harness's private Redis ------------------------------------


class RedisSessionStore:
    """openai-agents RedisSession (redis.asyncio) on the harness's Redis (append only, no metadata).

    Tested with openai-agents 0.24.0 and redis-py 8.1.0.  One
    ``redis.asyncio`` client per instance, from the URL the harness passes
    (``resources = ("redis",)``), shared by one ``RedisSession`` per session
    id (the package's documented ``redis_client=`` form, default key prefix
    ``agents:session``, no TTL): ``add_message`` -> ``await
    add_items([message])`` (a ``WATCH``ed ``MULTI``/``EXEC``: ``HSET`` of the
    session hash, ``RPUSH`` of the item), ``read`` -> ``await
    get_items()`` (``LRANGE``), ``delete_session`` -> ``await
    clear_session()`` (``DEL`` of the session's keys), ``close`` -> ``await
    aclose()`` of the client (the sessions do not own it).
    """

    resources = ("redis",)
    capabilities = Capabilities(metadata=False, delete=True, retention=None)

    def __init__(self, location: Path, *, redis_url: str) -> None:
        import redis.asyncio

        self.client = redis.asyncio.Redis.from_url(redis_url)
        self.sessions: dict[str, Any] = {}

    def _session(self, session_id: str) -> Any:
        from agents.extensions.memory.redis_session import RedisSession

        if session_id not in self.sessions:
            self.sessions[session_id] = RedisSession(session_id, redis_client=self.client)
        return self.sessions[session_id]

    async def add_message(self, session_id: str, message: Message) -> None:
        await self._session(session_id).add_items([dict(message)])

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        raise NotImplementedError("RedisSession has no session metadata (capabilities.metadata is False)")

    async def read(self, session_id: str) -> SessionState:
        items = await self._session(session_id).get_items()
        return SessionState(messages=[dict(item) for item in items])

    async def delete_session(self, session_id: str) -> None:
        await self._session(session_id).clear_session()

    async def close(self) -> None:
        self.sessions.clear()
        await self.client.aclose()


def open_redis_store(location: Path, *, redis_url: str) -> RedisSessionStore:
    """openai-agents RedisSession (redis.asyncio) on the harness's Redis (append only, no metadata)."""
    return RedisSessionStore(location, redis_url=redis_url)


open_redis_store.resources = ("redis",)  # type: ignore[attr-defined]
