"""Mutant ``stale-close``: ``close()`` writes the instance's cached copy of
every session it read back to disk.

The bug: ``read`` keeps the state it loaded in a per-instance cache
"so nothing read is lost on shutdown", and ``close()`` writes every cached
session back (under the lock, atomically, with fsyncs: the write itself is
careful).  Writes made after the read, by this instance or any other, are
not in the cached copy, so closing undoes them.

Invariant broken: I1 (no lost message) and I3: with one actor and no
concurrency at all (read s0, add m1, close: m1 is gone).

Shows with: any actor mode (one actor is enough); no faults.  Needs a
read, then a write of the same session, then the instance's ``close()``
before the state is checked: the harness must close instances before its
final read, which it did not while ``close()`` ran after it.

Seen in: flush-on-exit caches (a ``close()``, ``__del__`` or ``atexit``
hook persisting an in-memory dict of sessions) next to write-through
operations that never update that dict.
"""
from __future__ import annotations

from pathlib import Path

from sessioncheck.protocol import SessionState
from sessioncheck.stores.reference.json_store import JsonFileStore


class Store(JsonFileStore):
    """JSON store whose close() writes back the sessions it read, as read."""

    def __init__(self, location: Path) -> None:
        super().__init__(location)
        self._cache: dict[str, dict] = {}

    def read(self, session_id: str) -> SessionState:
        data = self._load(session_id)
        self._cache[session_id] = {"messages": list(data["messages"]), "metadata": dict(data["metadata"])}
        return SessionState(messages=list(data["messages"]), metadata=dict(data["metadata"]))

    def close(self) -> None:
        for session_id, data in sorted(self._cache.items()):
            with self._lock(session_id):
                self._save(session_id, data)  # BUG: a stale copy replaces what was written since
        self._cache.clear()
