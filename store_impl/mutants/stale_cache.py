"""Mutant ``stale-cache``: persist_state merges into the instance's cached copy.

The bug: each instance keeps an in-memory copy of every session it has
loaded (filled at its first load, replaced after each of its own writes).
``add_message`` is the reference locked read-modify-write, but
``persist_state`` takes the lock and merges the fields into the *cached*
copy instead of re-reading the file under the lock, then writes that copy
back.  Whatever other instances wrote since this instance last loaded or
wrote the session is overwritten.

Invariant broken: I1 (messages appended by other instances are lost) and
I3 (their metadata updates are undone).

Shows with: thread and process actors, no faults needed: two instances,
one read or write by A, an append by B, then a persist_state by A.

Seen in: PraisonAI's sibling fixes after the stale-overwrite fix, for a
metadata update that read a stale cache (DESIGN.md, section 1, item 4);
more generally any store that keeps a per-instance session cache and
writes it back whole.
"""
from __future__ import annotations

import copy

from sessioncheck.protocol import Capabilities
from sessioncheck.stores.reference.json_store import JsonFileStore, merge_fields


class Store(JsonFileStore):
    """JSON store whose persist_state merges into a per-instance cached copy."""

    # No delete, even if the reference gains one: the cache knows nothing of
    # deletes, and the mutant keeps to its one bug.
    capabilities = Capabilities()

    def __init__(self, location):
        super().__init__(location)
        self._cache: dict[str, dict] = {}

    def _load(self, session_id):
        data = super()._load(session_id)
        self._cache.setdefault(session_id, copy.deepcopy(data))  # first load fills it
        return data

    def _save(self, session_id, data):
        super()._save(session_id, data)
        self._cache[session_id] = copy.deepcopy(data)  # own writes keep it "fresh"

    def persist_state(self, session_id, fields):
        with self._lock(session_id):
            if session_id in self._cache:
                data = copy.deepcopy(self._cache[session_id])  # BUG: not re-read under the lock
            else:
                data = self._load(session_id)
            merge_fields(data, fields)
            self._save(session_id, data)
