"""redis.asyncio under the harness: each command a point, replies awaited for real.

Two small async stores on the harness's private Redis: one that reads
the list and writes it back (``GET`` then ``SET``) must be caught losing
an append; one that appends with ``RPUSH`` must pass, and its reply
waits must be real waits, not sleep points: redis.asyncio reads every
reply under a timer (``socket_timeout``), and a sleep point would let
virtual time run past it and fail a read whose reply is merely late.
Skipped where redis-server or redis-py is missing.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sessioncheck import servers
from sessioncheck.protocol import Capabilities, SessionState
from sessioncheck.specs import name_of
from sessioncheck.verify import verify

WHY = servers.unavailable("redis") if "redis" in servers.KINDS else "no redis resource"
pytestmark = pytest.mark.skipif(bool(WHY), reason=WHY or "")
redis_asyncio = pytest.importorskip("redis.asyncio")


class _AsyncStore:
    resources = ("redis",)
    capabilities = Capabilities(metadata=False, delete=False, retention=None)
    #: seconds redis.asyncio waits for each reply (loop time)
    socket_timeout = 5.0

    def __init__(self, location: Path, *, redis_url: str) -> None:
        self.redis = redis_asyncio.Redis.from_url(redis_url, decode_responses=True,
                                                  socket_timeout=self.socket_timeout)

    def persist_state(self, session_id, fields):
        raise NotImplementedError

    async def close(self) -> None:
        await self.redis.aclose()


class GetSetStore(_AsyncStore):
    """Reads the whole list and writes it back: two commands, a lost update."""

    async def add_message(self, session_id, message):
        raw = await self.redis.get(session_id)
        await self.redis.set(session_id, json.dumps([*json.loads(raw or "[]"), dict(message)]))

    async def read(self, session_id):
        return SessionState(json.loads(await self.redis.get(session_id) or "[]"))


class RpushStore(_AsyncStore):
    """One RPUSH per append, a transaction per read."""

    async def add_message(self, session_id, message):
        await self.redis.rpush(session_id, json.dumps(dict(message)))

    async def read(self, session_id):
        async with self.redis.pipeline(transaction=True) as tx:
            tx.lrange(session_id, 0, -1)
            (items,) = await tx.execute()
        return SessionState([json.loads(i) for i in items])


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_get_then_set_over_redis_asyncio_is_caught(mode, tmp_path):
    r = verify(name_of(GetSetStore), mode=mode, budget=120, max_examples=60, seed=0, report_dir=tmp_path,
               save_report=False)
    assert r.found, r.summary()
    assert r.outcome.violations[0].invariant == "I1", r.story
    assert "GET" in r.story and "SET" in r.story, r.story


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_rpush_over_redis_asyncio_passes_and_replies_are_awaited_for_real(mode, tmp_path):
    r = verify(name_of(RpushStore), mode=mode, budget=120, max_examples=100, seed=0, report_dir=tmp_path,
               save_report=False)
    assert not r.found, r.story
    # the reply waits were real, not sleep points that let the timeout fire
    assert "redis" in r.coverage.kinds and "sleep" not in r.coverage.kinds, r.coverage.kinds
