"""Mutant ``to-thread-rmw``: an async store's read-modify-write in ``asyncio.to_thread``, unlocked.

The bug: the store's methods are ``async def``; each mutation hands the
blocking read-modify-write of the session file to ``asyncio.to_thread``
and awaits it, with no lock (the write is a temp file and an atomic
``os.replace``).  Awaiting does not serialize anything: two writers (two
requests, two processes) that read the same version both write back their
own copy, and a message or a field is lost (I1, I3).

Seen in: async chat backends wrapping a sync JSON session store with
``await asyncio.to_thread(store.save, ...)`` (the usual "don't block the
event loop" advice), trusting the event loop to serialize writers.
The correct twin is ``sessioncheck.stores.reference.async_store``.

Shows with: task, thread and process actors, no faults needed (with
tasks, the helper thread's file calls are points of the awaiting task).  Before the
harness made helper-thread work a point of the awaiting actor, it passed.
"""
from __future__ import annotations

import asyncio

from sessioncheck.protocol import SessionState
from sessioncheck.stores.reference.json_store import JsonFileStore, merge_fields


class Store(JsonFileStore):
    """Async JSON store whose read-modify-writes run unlocked in asyncio.to_thread."""

    def _append(self, session_id, message):
        data = self._load(session_id)  # BUG: no lock around the read-modify-write
        data["messages"].append(message)
        self._save(session_id, data)

    def _merge(self, session_id, fields):
        data = self._load(session_id)  # BUG: no lock around the read-modify-write
        merge_fields(data, fields)
        self._save(session_id, data)

    async def add_message(self, session_id, message):
        await asyncio.to_thread(self._append, session_id, message)

    async def persist_state(self, session_id, fields):
        await asyncio.to_thread(self._merge, session_id, dict(fields))

    async def read(self, session_id):
        data = await asyncio.to_thread(self._load, session_id)
        return SessionState(messages=list(data["messages"]), metadata=dict(data["metadata"]))
