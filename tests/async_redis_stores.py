"""Async Redis stores (``redis.asyncio``) for tests/test_redis.py.

``AsyncRedisStore``: the reference layout (RPUSH per message, metadata
hash changed in one MULTI/EXEC) with ``async def`` methods.
``AsyncGetSetStore``: one JSON blob per session, GET then SET: a lost
update the story names by its commands.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import redis.asyncio as aredis

from sessioncheck.protocol import Capabilities, Message, SessionState


class AsyncRedisStore:
    resources = ("redis",)
    capabilities = Capabilities(delete=False)

    def __init__(self, location: Path, *, redis_url: str) -> None:
        self.redis = aredis.Redis.from_url(redis_url, decode_responses=True)

    async def add_message(self, session_id: str, message: Message) -> None:
        await self.redis.rpush(f"{session_id}:messages", json.dumps(dict(message)))

    async def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        async with self.redis.pipeline(transaction=True) as tx:
            values = {k: json.dumps(v) for k, v in fields.items() if v is not None}
            cleared = [k for k, v in fields.items() if v is None]
            if values:
                tx.hset(f"{session_id}:meta", mapping=values)
            if cleared:
                tx.hdel(f"{session_id}:meta", *cleared)
            await tx.execute()

    async def read(self, session_id: str) -> SessionState:
        async with self.redis.pipeline(transaction=True) as tx:
            tx.lrange(f"{session_id}:messages", 0, -1)
            tx.hgetall(f"{session_id}:meta")
            messages, meta = await tx.execute()
        return SessionState([json.loads(m) for m in messages], {k: json.loads(v) for k, v in meta.items()})

    async def close(self) -> None:
        await self.redis.aclose()


class AsyncGetSetStore(AsyncRedisStore):
    async def _load(self, session_id: str) -> dict:
        raw = await self.redis.get(session_id)
        return json.loads(raw) if raw else {"messages": [], "metadata": {}}

    async def add_message(self, session_id: str, message: Message) -> None:
        blob = await self._load(session_id)
        blob["messages"].append(dict(message))
        await self.redis.set(session_id, json.dumps(blob))

    async def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        blob = await self._load(session_id)
        for k, v in fields.items():
            if v is None:
                blob["metadata"].pop(k, None)
            else:
                blob["metadata"][k] = v
        await self.redis.set(session_id, json.dumps(blob))

    async def read(self, session_id: str) -> SessionState:
        blob = await self._load(session_id)
        return SessionState(blob["messages"], blob["metadata"])
