"""Mutant ``async-stale-write``: load, await, save the stale copy.

The bug: an ``async def`` store loads the session, awaits something (a
token count, a call to a summarizer, here ``asyncio.sleep(0)``) and then
saves the copy it loaded.  Another request served by the same event loop
that appended in between is overwritten (I1, I3).  No thread lock and no
``asyncio.Lock`` is taken; the file write itself is atomic.

Seen in: async chat backends: ``history = await store.load(sid)``, an
await later ``await store.save(sid, history + [msg])``, the seed's stale
overwrite in async form.  The correct twin is
``sessioncheck.stores.reference.async_native_store``.

Shows with: task actors (two requests of one loop), thread and process
actors too; no faults needed.
"""
from __future__ import annotations

import asyncio

from sessioncheck.protocol import SessionState
from sessioncheck.stores.reference.json_store import JsonFileStore, merge_fields


class Store(JsonFileStore):
    """Async JSON store that saves the copy it loaded before an await."""

    async def add_message(self, session_id, message):
        data = self._load(session_id)
        await asyncio.sleep(0)  # BUG: another request may save in between
        data["messages"].append(message)
        self._save(session_id, data)

    async def persist_state(self, session_id, fields):
        data = self._load(session_id)
        await asyncio.sleep(0)  # BUG: another request may save in between
        merge_fields(data, dict(fields))
        self._save(session_id, data)

    async def read(self, session_id):
        await asyncio.sleep(0)  # an async read: other requests run meanwhile
        data = self._load(session_id)
        return SessionState(messages=list(data["messages"]), metadata=dict(data["metadata"]))
