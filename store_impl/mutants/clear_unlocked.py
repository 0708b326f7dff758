"""Mutant ``clear-unlocked``: clear_messages is a read-modify-write without the lock.

The bug: ``clear_messages`` reads the session, empties its message list
and writes the session back, all without the session's lock.  It races
the locked writers both ways: a writer that read the session before the
clear writes its old messages back after the clear was acknowledged (the
cleared messages reappear), and the clear's write-back of the metadata it
read undoes a ``persist_state`` that landed in between.

The correct clear takes the same lock as every other mutation
(``JsonFileStore.clear_messages``).

Invariants broken: I1 (a message acknowledged before an acknowledged clear
reappears after it) or I3 (a field written during the clear goes back to
its old value).

Shows with: thread and process actors, no faults needed; needs a clear
and a write of one session in flight together.
"""
from __future__ import annotations

from sessioncheck.protocol import Capabilities
from sessioncheck.stores.reference.json_store import JsonFileStore


class Store(JsonFileStore):
    """JSON store whose clear_messages rewrites the session without the lock."""

    capabilities = Capabilities(pop=True, clear=True)

    def clear_messages(self, session_id: str) -> None:
        data = self._load(session_id)  # BUG: no self._lock(session_id) around the read-modify-write
        if not data["messages"]:
            return
        data["messages"] = []
        self._save(session_id, data)
