"""A correct async JSON store: ``async def`` methods, the file lock taken in a helper thread.

The reference ``JsonFileStore``'s locked read-modify-write, driven from
``async def`` methods the way an asyncio application writes it: the
blocking part (try the ``filelock`` without waiting, then read, change,
write and release) runs in ``asyncio.to_thread``; when the lock is taken
by another writer the coroutine backs off with ``await asyncio.sleep(0.05)``
and tries again, up to ``lock_timeout`` seconds, then raises
``TimeoutError`` (the operation did not happen).  Reads take no lock:
``os.replace`` is atomic.

It tests that the harness awaits async store methods on a loop of the
actor's own, that the helper thread's file calls are the actor's points,
and that ``asyncio.sleep`` runs in virtual time (a retry loop never
spins and a timeout fires at its virtual moment).
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable, Mapping

from filelock import Timeout

from sessioncheck.protocol import Message, SessionState
from sessioncheck.stores.reference.json_store import JsonFileStore, merge_fields

RETRY = 0.05


class AsyncJsonStore(JsonFileStore):
    """JSON file per session, async methods, filelock in asyncio.to_thread (reference)."""

    def _try_locked(self, session_id: str, change: Callable[[dict], None]) -> bool:
        """One attempt, in the helper thread: False when the lock is taken."""
        lock = self._lock(session_id)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return False
        try:
            data = self._load(session_id)
            change(data)
            self._save(session_id, data)
        finally:
            lock.release()
        return True

    async def _mutate(self, session_id: str, change: Callable[[dict], None]) -> None:
        for _ in range(int(self.lock_timeout / RETRY) + 1):
            if await asyncio.to_thread(self._try_locked, session_id, change):
                return
            await asyncio.sleep(RETRY)
        raise TimeoutError(f"the lock of {session_id} stayed taken for {self.lock_timeout:g} s")

    async def add_message(self, session_id: str, message: Message) -> None:
        await self._mutate(session_id, lambda data: data["messages"].append(message))

    async def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        fields = dict(fields)
        await self._mutate(session_id, lambda data: merge_fields(data, fields))

    async def read(self, session_id: str) -> SessionState:
        data = await asyncio.to_thread(self._load, session_id)
        return SessionState(messages=list(data["messages"]), metadata=dict(data["metadata"]))
