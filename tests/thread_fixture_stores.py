"""Stores for tests/test_store_threads.py that the controlled engine must
refuse (exit 2), and small async stores that probe its event loop.

Importable as store specs: ``thread_fixture_stores:FlusherStore``.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading

from sessioncheck.protocol import SessionState
from sessioncheck.stores.reference.json_store import JsonFileStore


class FlusherStore(JsonFileStore):
    """Correct writes, plus a background thread that appends to a journal
    every 10 ms of real time, outliving the call that started it."""

    def __init__(self, location):
        super().__init__(location)
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, daemon=True)
        self._flusher.start()

    def _flush_loop(self) -> None:
        for _ in range(2000):  # bounded: at most 20 s of real time
            if self._stop.wait(0.01):
                return
            with open(self.dir / "journal.log", "a", encoding="utf-8") as fh:
                fh.write("tick\n")

    def close(self) -> None:
        self._stop.set()
        self._flusher.join(timeout=1.0)


def _child_work(path: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("child\n")


class ForkingStore(JsonFileStore):
    """Each add also starts a multiprocessing child (fork) that writes a file."""

    def add_message(self, session_id, message):
        super().add_message(session_id, message)
        p = multiprocessing.get_context("fork").Process(target=_child_work, args=(str(self.dir / "c.log"),))
        p.start()
        p.join(timeout=5)


class OsForkStore(JsonFileStore):
    """Each add forks with os.fork; the child exits at once."""

    def add_message(self, session_id, message):
        super().add_message(session_id, message)
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)


class SleepyAsyncStore(JsonFileStore):
    """Async methods; every add first awaits asyncio.sleep(5) (a backoff)."""

    async def add_message(self, session_id, message):
        await asyncio.sleep(5)
        JsonFileStore.add_message(self, session_id, message)

    async def read(self, session_id):
        return JsonFileStore.read(self, session_id)


class TimedHelperStore(JsonFileStore):
    """The locked write runs in asyncio.to_thread under a 1 ms wait_for: in
    virtual time the helper's work is waited for, never cut short."""

    async def add_message(self, session_id, message):
        await asyncio.wait_for(asyncio.to_thread(JsonFileStore.add_message, self, session_id, message), 0.001)

    async def read(self, session_id):
        data = await asyncio.to_thread(self._load, session_id)
        return SessionState(messages=list(data["messages"]), metadata=dict(data["metadata"]))


from concurrent.futures import ThreadPoolExecutor  # noqa: E402

ONE_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="one-worker")


class OneWorkerPoolStore(JsonFileStore):
    """The correct locked read-modify-write, in a module-level pool of ONE
    worker shared by every instance: a parked actor's work occupies it."""

    def add_message(self, session_id, message):
        ONE_WORKER.submit(JsonFileStore.add_message, self, session_id, message).result()

    def persist_state(self, session_id, fields):
        ONE_WORKER.submit(JsonFileStore.persist_state, self, session_id, dict(fields)).result()
