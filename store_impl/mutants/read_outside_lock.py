"""Mutant ``read-outside-lock``: add_message reads the session before it locks.

The bug: ``add_message`` loads the session, *then* takes the lock, appends
to the copy it read and writes it back under the lock.  The write is
serialised, but the read is not: a message another writer appended between
this read and this lock is overwritten by the stale copy.

Invariant broken: I1 (no lost message); also I3, since a metadata update
made in the same window is overwritten too.

Shows with: thread and process actors, no faults needed.

Seen in: a common half-fix of an unlocked read-modify-write, where the lock
is added around the write only (``data = load(); with lock: save(data +
[msg])``); the PraisonAI stale overwrite (DESIGN.md, section 1) is the
same shape in ``persist_state``.
"""
from __future__ import annotations

from sessioncheck.stores.reference.json_store import JsonFileStore


class Store(JsonFileStore):
    """JSON store whose add_message reads the session before taking the lock."""

    def add_message(self, session_id, message):
        data = self._load(session_id)  # BUG: read before the lock
        with self._lock(session_id):
            data["messages"].append(message)
            self._save(session_id, data)
