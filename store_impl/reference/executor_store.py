"""A correct JSON store whose work runs in an executor thread.

The reference ``JsonFileStore`` with every call submitted to a
module-level ``concurrent.futures.ThreadPoolExecutor`` and waited for:
the shape of a store that keeps blocking file I/O off its caller's thread
(a web handler handing work to a pool, a sync facade over a worker pool).
The locked read-modify-write (``filelock`` held *inside* the worker) is the
reference one, so the store is correct.  The pool is shared by every
instance in the process, as such pools are.

It tests that the harness treats pool work as part of the operation that
submitted it: the worker's file calls are points of the submitting actor,
and a worker waiting for the file lock waits at a point the scheduler
sees (before, the harness reported this store I5 "stuck").
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping

from sessioncheck.protocol import Message, SessionState
from sessioncheck.stores.reference.json_store import JsonFileStore

#: One pool for every instance in the process (actors of one process share it).
POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="executor-store")


class ExecutorStore(JsonFileStore):
    """JSON file per session; every call runs in a shared thread pool (reference)."""

    def _in_pool(self, fn: Any, *args: Any) -> Any:
        return POOL.submit(fn, *args).result()

    def add_message(self, session_id: str, message: Message) -> None:
        self._in_pool(JsonFileStore.add_message, self, session_id, message)

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        self._in_pool(JsonFileStore.persist_state, self, session_id, fields)

    def read(self, session_id: str) -> SessionState:
        return self._in_pool(JsonFileStore.read, self, session_id)
