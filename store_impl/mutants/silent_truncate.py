"""Mutant ``silent-truncate``: retention drops old messages instead of archiving them.

The bug: the store declares a retention window ("keeps the last 3
messages; older ones move to archived"), but its trim simply cuts the
list: messages older than the window are dropped, not moved to the
session's ``archived`` list.  A store with retention must keep every
acknowledged message in its durable record (``archived + messages``).

Invariant broken: I1, checked against the store's own durable record
(DESIGN.md, section 2): the 4th append silently removes the 1st message.

Shows with: any actor mode, even one actor, no faults needed: visible in
a sequential run with more than 3 appends to one session.

Seen in: chat memory windows ("keep the last N turns") that persist the
trimmed window as the session itself, so older turns are gone for good;
common in agent frameworks' buffer-window memories written straight to
the session store.
"""
from __future__ import annotations

from sessioncheck.protocol import Capabilities
from sessioncheck.stores.reference.json_store import JsonFileStore

KEEP = 3


class Store(JsonFileStore):
    """JSON store with a 3-message window that drops, not archives, old messages."""

    capabilities = Capabilities(retention=f"keeps the last {KEEP} messages; older ones move to archived")

    def add_message(self, session_id, message):
        with self._lock(session_id):
            data = self._load(session_id)
            data["messages"] = (data["messages"] + [message])[-KEEP:]  # BUG: older ones dropped
            self._save(session_id, data)
