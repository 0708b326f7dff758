"""Mutant ``cancel-torn``: truncate, await, write.

The bug: the store rewrites the session file in place: it truncates it,
awaits (an async file API, here ``asyncio.sleep(0)``) and then writes the
new contents, all under an ``asyncio.Lock`` (correct for tasks of one
loop).  A task cancelled at that await (the client went away) leaves an
empty file: every acknowledged message is gone and later reads fail to
parse (I1, I4).

Seen in: aiofiles-based stores writing ``async with aiofiles.open(path,
"w")`` followed by ``await f.write(...)``, under a web framework that
cancels the handler on disconnect.

Shows with: task actors and ``--faults cancel``.
"""
from __future__ import annotations

import asyncio
import json
import os

from sessioncheck.protocol import SessionState
from sessioncheck.stores.mutants.asyncio_lock_only import loop_lock
from sessioncheck.stores.reference.json_store import JsonFileStore, merge_fields



class Store(JsonFileStore):
    """Async JSON store that rewrites the file in place around an await."""

    async def _mutate(self, session_id, change):
        async with loop_lock(session_id):
            data = self._load(session_id)
            change(data)
            path = self._path(session_id)
            with open(path, "w", encoding="utf-8") as fh:  # truncates
                await asyncio.sleep(0)  # BUG: a cancellation here leaves the file empty
                json.dump(data, fh)
                fh.flush()
                os.fsync(fh.fileno())

    async def add_message(self, session_id, message):
        await self._mutate(session_id, lambda data: data["messages"].append(message))

    async def persist_state(self, session_id, fields):
        fields = dict(fields)
        await self._mutate(session_id, lambda data: merge_fields(data, fields))

    async def read(self, session_id):
        async with loop_lock(session_id):
            data = self._load(session_id)
        return SessionState(messages=list(data["messages"]), metadata=dict(data["metadata"]))
