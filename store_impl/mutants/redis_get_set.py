"""Mutant ``redis-get-set``: Redis, one JSON blob per session, GET then SET.

The bug: a session is one string key holding its messages and metadata as
one JSON document.  A mutation GETs the blob, changes it in Python and
SETs it back: two commands, each atomic on the server, the pair not (no
WATCH, no transaction, no script).  Another writer's SET in between is
overwritten.

Invariant broken: I1 (lost appends) and I3 (lost metadata updates).

Shows with: thread and process actors, no faults needed.

Seen in: chat-history helpers that keep ``json.dumps(history)`` under one
key (``r.get(key)`` ... ``r.set(key, ...)``), the Redis form of the JSON
file rewritten without a lock.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import redis

from sessioncheck.protocol import Capabilities, Message, SessionState


class Store:
    """Redis, one JSON blob per session, GET then SET (no WATCH, no transaction)."""

    resources = ("redis",)
    capabilities = Capabilities()

    def __init__(self, location: Path, *, redis_url: str) -> None:
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)

    def _load(self, session_id: str) -> dict:
        blob = self.redis.get(session_id)
        return json.loads(blob) if blob else {"messages": [], "metadata": {}}

    def add_message(self, session_id: str, message: Message) -> None:
        data = self._load(session_id)
        data["messages"].append(dict(message))
        self.redis.set(session_id, json.dumps(data))

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        data = self._load(session_id)
        for k, v in fields.items():
            if v is None:
                data["metadata"].pop(k, None)
            else:
                data["metadata"][k] = v
        self.redis.set(session_id, json.dumps(data))

    def read(self, session_id: str) -> SessionState:
        data = self._load(session_id)
        return SessionState(data["messages"], data["metadata"])

    def close(self) -> None:
        self.redis.close()
