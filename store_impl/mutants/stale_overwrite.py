"""Mutant ``stale-overwrite``: persist_state writes back a stale full copy.

The bug: ``persist_state`` reads the whole session *without* the lock,
changes the metadata, then takes the lock and writes the whole (by now
possibly stale) copy back.  A message another writer appended between the
read and the write is silently overwritten: lost.

Seen in: PraisonAI's session store before PR #1727 (``get_session`` ->
``metadata.update`` -> ``_save_session``); users saw chat history vanish
when the gateway and the agent wrote to one session.

Shows with: thread and process actors, no faults needed.
"""
from __future__ import annotations

from sessioncheck.stores.reference.json_store import JsonFileStore


class Store(JsonFileStore):
    """JSON store whose persist_state writes back a copy read outside the lock."""

    def persist_state(self, session_id, fields):
        data = self._load(session_id)  # BUG: read outside the lock
        data.setdefault("metadata", {}).update(fields)
        with self._lock(session_id):
            self._save(session_id, data)  # BUG: whole stale copy written back
