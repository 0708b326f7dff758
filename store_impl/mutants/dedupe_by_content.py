"""Mutant ``dedupe-by-content``: an idempotent append keyed by the message's content, not its id.

The bug: the store declares that messages are identified by their ``id``
field, and makes ``add_message`` idempotent (a retry lands once), but the
check compares ``role`` and ``content``: a second message that says the
same thing as an earlier one ("hello", "ok", an empty tool-call message)
is taken for a retry and never stored, though it is acknowledged.  The
pattern is de-duplication written when content was unique enough, kept
when messages gained ids of their own.

The correct store compares ids (``json-ids``).

Invariant broken: I1 (no lost message): an acknowledged message is missing
from every later read.

Shows with: any actor mode, one actor is enough; needs two messages of one
kind in one session (the model's messages share their content, only their
ids differ).
"""
from __future__ import annotations

from sessioncheck.protocol import Message
from sessioncheck.stores.reference.json_ids_store import JsonIdStore


class Store(JsonIdStore):
    """JSON id store whose add_message skips a message with the content of an earlier one."""

    def add_message(self, session_id: str, message: Message) -> None:
        with self._lock(session_id):
            data = self._load(session_id)
            if any((m.get("role"), m.get("content")) == (message.get("role"), message.get("content"))
                   for m in data["messages"]):
                return  # BUG: the same words taken for a retry
            data["messages"].append(message)
            self._save(session_id, data)
