"""The reference JSON store for messages that carry an identity of their own.

Chat histories with tools hold messages whose ``content`` names nothing:
every greeting says "hello", an assistant message that calls a tool has no
content at all.  Such stores tell messages apart by an ``id`` field.  This
store declares it (``Capabilities(message_identity="id")``) and the model
adds every message with its id in that field, in every shape a chat
history with tools holds (user, assistant, system, a tool call, the tool's
result, unicode).

It is :class:`~sessioncheck.stores.reference.json_store.JsonFileStore`
(one file per session, every mutation a locked read-modify-write) with
one change that only an id makes possible: ``add_message`` is idempotent,
a message whose id the session holds already is not added again (a
client's retry after a lost acknowledgement lands once).
"""
from __future__ import annotations

from sessioncheck.protocol import Capabilities, Message
from sessioncheck.stores.reference.json_store import JsonFileStore

#: the message shapes this store takes (the 100 KB ``large`` kind is left
#: to ``--messages rich`` on stores without declared kinds: it only slows
#: this one down)
KINDS = ("user", "assistant", "system", "tool_call", "tool", "unicode")


class JsonIdStore(JsonFileStore):
    """JSON store whose messages are identified by their ``id`` field (reference)."""

    capabilities = Capabilities(pop=True, clear=True, message_identity="id", message_kinds=KINDS)

    def add_message(self, session_id: str, message: Message) -> None:
        with self._lock(session_id):
            data = self._load(session_id)
            if any(m.get("id") == message["id"] for m in data["messages"]):
                return  # a retry of a message already added
            data["messages"].append(message)
            self._save(session_id, data)
