"""Mutant ``unlocked-rmw``: read-modify-write with no lock at all.

The bug: ``add_message`` and ``persist_state`` read the session file,
change the copy and write it back (still through a temp file and an atomic
``os.replace``, so no reader ever sees a torn file), but without taking any
lock.  Two writers that read the same version both write back their own
copy; the later replace silently drops the other's message or field.

Seen in: naive file-per-session stores, such as early JSON session stores
of agent frameworks and chat UIs that "save the conversation" from each
worker without a lock, trusting the atomic rename to make it safe.

Shows with: thread and process actors, no faults needed; in free-running
stress within a few hundred operations.
"""
from __future__ import annotations

from sessioncheck.stores.reference.json_store import JsonFileStore, merge_fields


class Store(JsonFileStore):
    """JSON store whose read-modify-writes take no lock (atomic replace only)."""

    def add_message(self, session_id, message):
        data = self._load(session_id)  # BUG: no lock around the read-modify-write
        data["messages"].append(message)
        self._save(session_id, data)

    def persist_state(self, session_id, fields):
        data = self._load(session_id)  # BUG: no lock around the read-modify-write
        merge_fields(data, fields)
        self._save(session_id, data)
