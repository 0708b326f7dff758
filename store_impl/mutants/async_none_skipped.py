"""Mutant ``async-none-skipped``: the async metadata merge skips ``None``.

The bug: ``none-skipped`` in an ``async def`` store: a locked
read-modify-write (an ``asyncio.Lock``, awaits inside it) that copies only
the fields whose value is not ``None``, so clearing a field never reaches
disk and the old value comes back (I3).

Seen in: the PraisonAI stale-overwrite fix (PR #1727), ported to an async
store.

Shows with: task actors, and any mode where one loop's lock holds (even
one actor); no faults needed.
"""
from __future__ import annotations

import asyncio

from sessioncheck.protocol import SessionState
from sessioncheck.stores.mutants.asyncio_lock_only import loop_lock
from sessioncheck.stores.reference.json_store import JsonFileStore



class Store(JsonFileStore):
    """Async JSON store whose metadata merge skips fields set to None."""

    async def add_message(self, session_id, message):
        async with loop_lock(session_id):
            data = self._load(session_id)
            await asyncio.sleep(0)
            data["messages"].append(message)
            self._save(session_id, data)

    async def persist_state(self, session_id, fields):
        async with loop_lock(session_id):
            data = self._load(session_id)
            await asyncio.sleep(0)
            meta = data.setdefault("metadata", {})
            for key, value in fields.items():
                if value is not None:  # BUG: None should clear the field
                    meta[key] = value
            self._save(session_id, data)

    async def read(self, session_id):
        await asyncio.sleep(0)  # an async read: other requests run meanwhile
        data = self._load(session_id)
        return SessionState(messages=list(data["messages"]), metadata=dict(data["metadata"]))
