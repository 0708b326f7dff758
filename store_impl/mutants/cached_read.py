"""Mutant ``cached-read``: read() is served from a per-instance cache.

The bug: once an instance has read a session, later ``read`` calls return
its in-memory copy (kept up to date with the instance's *own* writes) and
never look at the file again.  Writes are the reference locked
read-modify-write, so nothing is lost on disk; but a reader does not see
what other instances appended or changed after its first read.

Invariant broken: I1 in its read clause (an acknowledged message must be
in every read that starts after the acknowledgement) and I3 (a read
returns a metadata value that is no longer the latest).

Shows with: thread and process actors, no faults needed: A reads, B
appends, A reads again.

Seen in: stores that cache sessions in a dict "to avoid disk reads" and
assume one writer per session; common in file-per-session chat stores and
in-process session managers later shared by a second process.
"""
from __future__ import annotations

import copy

from sessioncheck.protocol import Capabilities, SessionState
from sessioncheck.stores.reference.json_store import JsonFileStore


class Store(JsonFileStore):
    """JSON store whose reads come from a per-instance cache once loaded."""

    # No delete, even if the reference gains one: the cache knows nothing of
    # deletes, and the mutant keeps to its one bug.
    capabilities = Capabilities()

    def __init__(self, location):
        super().__init__(location)
        self._cache: dict[str, SessionState] = {}

    def _save(self, session_id, data):
        super()._save(session_id, data)
        self._cache[session_id] = SessionState(
            messages=list(data["messages"]), metadata=dict(data["metadata"])
        )

    def read(self, session_id):
        if session_id not in self._cache:
            self._cache[session_id] = super().read(session_id)
        return copy.deepcopy(self._cache[session_id])  # BUG: never re-read from disk
