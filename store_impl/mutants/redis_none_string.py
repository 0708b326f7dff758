"""Mutant ``redis-none-string``: metadata cleared to ``None`` is stored as the string ``"None"``.

The bug: the reference layout (a list per session, a hash of metadata,
changed in one MULTI/EXEC), but ``persist_state`` writes every field with
``HSET field str(value)``, so a field set to ``None`` is not removed: it
reads back as the string ``"None"``, a value nobody wrote.

Invariant broken: I3 (a cleared field must read as cleared).

Shows with: any mode, one actor is enough; no faults needed.

Seen in: hash-per-session stores that map every value through ``str()``
(Redis hashes hold only strings), the Redis form of ``none-skipped``.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from sessioncheck.protocol import SessionState
from sessioncheck.stores.reference.redis_store import RedisStore


class Store(RedisStore):
    """Redis hash metadata written with str(value): None becomes the string "None"."""

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        with self.redis.pipeline(transaction=True) as tx:
            tx.hset(f"{session_id}:meta", mapping={k: str(v) for k, v in fields.items()})  # the bug
            tx.execute()

    def read(self, session_id: str) -> SessionState:
        with self.redis.pipeline(transaction=True) as tx:
            tx.lrange(f"{session_id}:messages", 0, -1)
            tx.hgetall(f"{session_id}:meta")
            messages, meta = tx.execute()
        return SessionState([json.loads(m) for m in messages], dict(meta))
