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
