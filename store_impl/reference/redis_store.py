"""The reference Redis store: correct under every test sessioncheck has.

Two keys per session: ``<session>:messages``, a list of JSON messages
(``RPUSH``, one atomic command per append), and ``<session>:meta``, a hash
of JSON-encoded metadata values.  ``persist_state`` sets and clears fields
in one ``MULTI``/``EXEC`` transaction (``HSET`` the values, ``HDEL`` the
fields set to ``None``), so no reader sees half of it; ``read`` is one
transaction too (``LRANGE`` and ``HGETALL``), a consistent snapshot;
``delete_session`` is one ``DEL`` of both keys.

Durability is the server's: the harness's private server runs with
``appendonly yes`` and ``appendfsync always``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import redis

from sessioncheck.protocol import Capabilities, Message, SessionState


_pools: dict[tuple[int, str], redis.ConnectionPool] = {}


def pool(url: str) -> redis.ConnectionPool:
    """This process's connection pool for ``url`` (an app keeps one pool,
    not one per request): instances share its idle connections, so opening
    one costs no connection handshake.  A forked child makes its own."""
    key = (os.getpid(), url)
    p = _pools.get(key)
    if p is None:
        p = _pools[key] = redis.ConnectionPool.from_url(url, decode_responses=True)
    return p


class RedisStore:
    """Redis, a list per session and a hash of metadata, MULTI/EXEC (reference)."""

    resources = ("redis",)
    capabilities = Capabilities(delete=True)

    def __init__(self, location: Path, *, redis_url: str) -> None:
        self.redis = redis.Redis(connection_pool=pool(redis_url))

    def add_message(self, session_id: str, message: Message) -> None:
        self.redis.rpush(f"{session_id}:messages", json.dumps(dict(message)))

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        key = f"{session_id}:meta"
        values = {k: json.dumps(v) for k, v in fields.items() if v is not None}
        cleared = [k for k, v in fields.items() if v is None]
        with self.redis.pipeline(transaction=True) as tx:
            if values:
                tx.hset(key, mapping=values)
            if cleared:
                tx.hdel(key, *cleared)
            tx.execute()

    def read(self, session_id: str) -> SessionState:
        with self.redis.pipeline(transaction=True) as tx:
            tx.lrange(f"{session_id}:messages", 0, -1)
            tx.hgetall(f"{session_id}:meta")
            messages, meta = tx.execute()
        return SessionState([json.loads(m) for m in messages], {k: json.loads(v) for k, v in meta.items()})

    def delete_session(self, session_id: str) -> None:
        self.redis.delete(f"{session_id}:messages", f"{session_id}:meta")

    def close(self) -> None:
        self.redis.close()  # the pool's connections stay for the next instance
