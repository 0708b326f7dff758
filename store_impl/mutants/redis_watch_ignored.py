"""Mutant ``redis-watch-ignored``: optimistic WATCH/MULTI whose failed EXEC counts as success.

The bug: a mutation WATCHes the session's key, GETs the JSON blob, and
writes the changed blob in ``MULTI``/``SET``/``EXEC``, as the Redis
documentation's check-and-set recipe says.  When another writer changed
the key in between, the server aborts the EXEC and redis-py raises
``WatchError``; the recipe retries there, this store swallows it and
returns as if the write had happened: the operation is acknowledged and
lost.

Invariant broken: I1 (an acknowledged append is missing) and I3 (an
acknowledged metadata update is missing).

Shows with: thread and process actors, no faults needed.

Seen in: ``except WatchError: pass`` (or a log line) where the retry loop
belongs; retry loops with a bound that return normally when it is hit.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

import redis

from sessioncheck.protocol import Capabilities, Message, SessionState


class Store:
    """Redis WATCH/MULTI check-and-set that treats a WatchError as success."""

    resources = ("redis",)
    capabilities = Capabilities()

    def __init__(self, location: Path, *, redis_url: str) -> None:
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)

    def _update(self, session_id: str, change: Callable[[dict], None]) -> None:
        with self.redis.pipeline() as pipe:
            try:
                pipe.watch(session_id)
                blob = pipe.get(session_id)
                data = json.loads(blob) if blob else {"messages": [], "metadata": {}}
                change(data)
                pipe.multi()
                pipe.set(session_id, json.dumps(data))
                pipe.execute()
            except redis.WatchError:
                pass  # the bug: another writer won; this write was never applied

    def add_message(self, session_id: str, message: Message) -> None:
        self._update(session_id, lambda data: data["messages"].append(dict(message)))

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        def change(data: dict) -> None:
            for k, v in fields.items():
                if v is None:
                    data["metadata"].pop(k, None)
                else:
                    data["metadata"][k] = v

        self._update(session_id, change)

    def read(self, session_id: str) -> SessionState:
        blob = self.redis.get(session_id)
        data = json.loads(blob) if blob else {"messages": [], "metadata": {}}
        return SessionState(data["messages"], data["metadata"])

    def close(self) -> None:
        self.redis.close()
