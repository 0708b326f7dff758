"""Mutant ``none-skipped``: the locked metadata merge skips ``None``.

The bug: a correct locked read-modify-write of metadata, except that it
copies only fields whose value is not ``None``.  Clearing a field therefore
never reaches disk, and the old value comes back on the next read.

Seen in: the PraisonAI fix for the stale overwrite (PR #1727), found by a
reviewer: clearing ``compute_instance_id`` after a shutdown was skipped, so
a resumed agent reattached to a compute instance that no longer existed.

Shows with: any actor mode, even one actor; no faults needed.
"""
from __future__ import annotations

from sessioncheck.stores.reference.json_store import JsonFileStore


class Store(JsonFileStore):
    """JSON store whose metadata merge skips fields set to None."""

    def persist_state(self, session_id, fields):
        with self._lock(session_id):
            data = self._load(session_id)
            meta = data.setdefault("metadata", {})
            for key, value in fields.items():
                if value is not None:  # BUG: None should clear the field
                    meta[key] = value
            self._save(session_id, data)
