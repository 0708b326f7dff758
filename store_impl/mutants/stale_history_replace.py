"""Mutant ``stale-history-replace``: the whole history is replaced from an old list.

The bug: each instance keeps the list of messages it last read (at its
first use of the session, or its latest ``read``), as an agent keeps its
``chat_history`` in memory.  ``add_message`` takes the lock, re-reads the
file for the metadata, but replaces the messages with *its own list* plus
the new message.  Every message other instances appended since that list
was read is dropped.

Invariant broken: I1 (messages appended by other instances are lost; a
re-read under the lock does not help when the history written is the
old list).

Shows with: thread and process actors, no faults needed: A reads, B
appends, A appends.

Seen in: agent frameworks that hold the conversation in memory and save
it with a "replace history" mutator (``set_history(messages)`` /
``save(chat_history)``); PraisonAI's sibling fixes after the stale
overwrite covered other mutators written in this read-whole/write-whole
pattern (DESIGN.md, section 1, item 4).
"""
from __future__ import annotations

from sessioncheck.protocol import Capabilities
from sessioncheck.stores.reference.json_store import JsonFileStore


class Store(JsonFileStore):
    """JSON store whose add_message writes its own earlier history list back."""

    # No delete, even if the reference gains one: the kept list knows nothing
    # of deletes, and the mutant keeps to its one bug.
    capabilities = Capabilities()

    def __init__(self, location):
        super().__init__(location)
        self._history: dict[str, list] = {}

    def read(self, session_id):
        state = super().read(session_id)
        self._history[session_id] = list(state.messages)
        return state

    def add_message(self, session_id, message):
        with self._lock(session_id):
            data = self._load(session_id)
            history = self._history.setdefault(session_id, list(data["messages"]))
            history.append(message)
            data["messages"] = list(history)  # BUG: the list read earlier, not data["messages"]
            self._save(session_id, data)
