"""Mutant ``rename-overwrites-metadata``: rename_session writes back a stale copy of the whole metadata.

The bug: ``rename_session`` reads the session's metadata, then takes the
lock and writes back *that copy* with the new name.  A ``persist_state``
that lands between the read and the write is overwritten: its fields,
acknowledged to their writer, revert to what they were before.  (agno's
``rename_session`` loads the session, sets the name and upserts it whole.)

The correct rename merges the one field under the lock
(``JsonFileStore.rename_session``).

Invariant broken: I2 (metadata last-writer-wins): a read after both shows
the old value of a field a persist acknowledged later than the rename's read.

Shows with: thread and process actors, no faults needed; needs a rename
and a persist of one session in flight together.
"""
from __future__ import annotations

from sessioncheck.protocol import Capabilities
from sessioncheck.stores.reference.json_store import JsonFileStore


class Store(JsonFileStore):
    """JSON store whose rename_session writes back metadata read before the lock."""

    capabilities = Capabilities(pop=True, clear=True, rename=True)

    def rename_session(self, session_id: str, name: str | None) -> None:
        metadata = dict(self._load(session_id)["metadata"])  # BUG: read before the lock is taken
        if name is None:
            metadata.pop("name", None)
        else:
            metadata["name"] = name
        with self._lock(session_id):
            data = self._load(session_id)
            data["metadata"] = metadata  # a persist since the read is reverted
            self._save(session_id, data)
