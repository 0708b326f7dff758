"""Mutant ``pop-races-append``: pop_message reads outside the lock and writes back a stale list.

The bug: ``pop_message`` reads the session, then takes the lock and writes
back *the list it read* minus its last message.  An append that lands
between the read and the write is overwritten: the pop removes the message
it returns, and the new message, acknowledged to its writer, is dropped
with it.  (openai-agents' ``pop_item`` asks which one goes when a pop
races an append; the answer must be "the last at the pop's instant",
never both.)

The correct pop is the reference pattern: read, drop the last, write back,
all under the session's lock (``JsonFileStore.pop_message``).

Invariant broken: I1 (no lost message): an acknowledged message vanishes
though no pop returned it and nothing cleared the session.  Also I3 (a
metadata field reverts): the stale copy written back holds the metadata
as read, so a ``persist_state`` landing in between is undone.

Shows with: thread and process actors, no faults needed; needs a pop and
an append of one session in flight together.
"""
from __future__ import annotations

from sessioncheck.protocol import Capabilities, Message
from sessioncheck.stores.reference.json_store import JsonFileStore


class Store(JsonFileStore):
    """JSON store whose pop_message writes back a list read before the lock."""

    capabilities = Capabilities(pop=True, clear=True)

    def pop_message(self, session_id: str) -> Message | None:
        data = self._load(session_id)  # BUG: read before the lock is taken
        if not data["messages"]:
            return None
        last = data["messages"].pop()
        with self._lock(session_id):
            self._save(session_id, data)  # a message appended since the read is dropped
        return last
