"""Mutant ``executor-rmw``: an unlocked read-modify-write in a thread pool.

The bug: ``add_message`` and ``persist_state`` submit the read-modify-write
of the session file to a module-level ``ThreadPoolExecutor`` and wait for
it, but the worker takes no lock (the write itself is a temp file and an
atomic ``os.replace``).  Two writers that read the same version both write
back their own copy: a message or a field is lost (I1, I3).

Seen in: sync stores that move blocking file I/O "off the request thread"
into a pool and take the pool for a serializer; it is not one: a pool
with several workers runs two submissions at once, and other processes
have pools of their own.  The correct twin is
``sessioncheck.stores.reference.executor_store``.

Shows with: thread and process actors, no faults needed.  Before the
harness made pool work a point of the submitting actor, it passed (no
point was ever reached).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sessioncheck.stores.reference.json_store import JsonFileStore, merge_fields

POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="executor-rmw")


class Store(JsonFileStore):
    """JSON store whose read-modify-writes run unlocked in a thread pool."""

    def _append(self, session_id, message):
        data = self._load(session_id)  # BUG: no lock around the read-modify-write
        data["messages"].append(message)
        self._save(session_id, data)

    def _merge(self, session_id, fields):
        data = self._load(session_id)  # BUG: no lock around the read-modify-write
        merge_fields(data, fields)
        self._save(session_id, data)

    def add_message(self, session_id, message):
        POOL.submit(self._append, session_id, message).result()

    def persist_state(self, session_id, fields):
        POOL.submit(self._merge, session_id, dict(fields)).result()

    def read(self, session_id):
        return POOL.submit(JsonFileStore.read, self, session_id).result()
