"""Mutant ``asyncio-lock-only``: an ``asyncio.Lock`` around a file read-modify-write.

The bug: the store serializes its read-modify-write with one
``asyncio.Lock`` per session, shared by every instance in the process
(a module-level dict), and awaits inside it.  Between tasks of one event
loop that is correct.  It serializes nothing across event loops: two
threads with a loop each, or two processes (two app-server workers on
one volume), each take their own lock and overwrite each other (I1, I3).

Seen in: async session stores that add ``async with self._lock:`` after a
lost-update report from one server, then deploy with several workers.

Shows with: thread, process and mixed actors, and task actors in two
processes (``--actors tasks --processes 2``); passes with task actors of
one loop (the control).
"""
from __future__ import annotations

import asyncio

from sessioncheck.protocol import SessionState
from sessioncheck.stores.reference.json_store import JsonFileStore, merge_fields

#: one asyncio.Lock per (event loop, session): an asyncio.Lock is bound to
#: the loop that first waits on it, so each loop gets its own
_LOCKS: dict = {}


def loop_lock(session_id: str) -> asyncio.Lock:
    """The asyncio.Lock of ``session_id`` on the running loop (the async
    mutants lock with it: it orders tasks of one loop, nothing else)."""
    key = (id(asyncio.get_running_loop()), session_id)
    lock = _LOCKS.get(key)
    if lock is None:
        lock = _LOCKS[key] = asyncio.Lock()
    return lock


class Store(JsonFileStore):
    """Async JSON store serialized by an asyncio.Lock only."""

    async def _mutate(self, session_id, change):
        async with loop_lock(session_id):  # BUG: one loop's lock; other loops and processes ignore it
            data = self._load(session_id)
            await asyncio.sleep(0)
            change(data)
            self._save(session_id, data)

    async def add_message(self, session_id, message):
        await self._mutate(session_id, lambda data: data["messages"].append(message))

    async def persist_state(self, session_id, fields):
        fields = dict(fields)
        await self._mutate(session_id, lambda data: merge_fields(data, fields))

    async def read(self, session_id):
        await asyncio.sleep(0)  # an async read: other requests run meanwhile
        data = self._load(session_id)
        return SessionState(messages=list(data["messages"]), metadata=dict(data["metadata"]))
