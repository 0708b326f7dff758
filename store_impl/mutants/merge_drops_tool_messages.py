"""Mutant ``merge-drops-tool-messages``: a metadata merge rewrites the history without its tool messages.

The bug: ``persist_state`` takes the lock, reads the session and writes it
back *normalised* through a converter that knows only chat text: it keeps
the user, assistant and system messages that have text content and drops
the rest, the tool results (``role: tool``) and an assistant message that
only calls a tool (``content: None``).  The pattern is a history passed
through a "to chat messages" conversion on its way back to disk, written
for a text-only history before tools existed.

The lock is right, so plain user messages never show it: only a model
that adds tool calls and tool results does (``Capabilities.message_kinds``
declares them, so the default model adds them; ``--messages rich`` does
the same for a store that declares none).

Invariant broken: I1 (no lost message): an acknowledged tool message is
gone after a persist, though nothing removed it.

Shows with: any actor mode, one actor is enough; needs a tool message (or
a tool call) and a later persist of the same session.
"""
from __future__ import annotations

from typing import Any, Mapping

from sessioncheck.protocol import Capabilities
from sessioncheck.stores.reference.json_store import JsonFileStore, merge_fields

TEXT_ROLES = ("user", "assistant", "system")


def chat_text(messages: list[dict]) -> list[dict]:
    """The messages a text-only chat format keeps (BUG: tools are dropped)."""
    return [m for m in messages if m.get("role") in TEXT_ROLES and isinstance(m.get("content"), str)
            and not m.get("tool_calls")]


class Store(JsonFileStore):
    """JSON store whose persist_state writes back the history without tool messages."""

    capabilities = Capabilities(message_kinds=("user", "assistant", "tool_call", "tool"))

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        with self._lock(session_id):
            data = self._load(session_id)
            merge_fields(data, fields)
            data["messages"] = chat_text(data["messages"])
            self._save(session_id, data)
