"""The reference JSON store with a retention window: correct.

It keeps the last ``KEEP`` messages in ``messages`` and moves older ones
to ``archived`` in the same locked, atomic write, so the session's durable
record (``archived + messages``) never loses an acknowledged message.
The correct counterpart of ``mutant:silent-truncate``.
"""
from __future__ import annotations

from sessioncheck.protocol import Capabilities, SessionState
from sessioncheck.stores.reference.json_store import JsonFileStore

KEEP = 3


class JsonRetentionStore(JsonFileStore):
    """JSON store keeping the last 3 messages, archiving older ones (reference)."""

    capabilities = Capabilities(retention=f"keeps the last {KEEP} messages; older ones move to archived")

    def add_message(self, session_id, message):
        with self._lock(session_id):
            data = self._load(session_id)
            messages = data["messages"] + [message]
            data.setdefault("archived", []).extend(messages[:-KEEP])
            data["messages"] = messages[-KEEP:]
            self._save(session_id, data)

    def read(self, session_id):
        data = self._load(session_id)
        return SessionState(messages=list(data["messages"]), metadata=dict(data["metadata"]),
                            archived=list(data.get("archived", [])))
