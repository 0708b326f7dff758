"""Mutant ``redis-aof-off``: the store turns the server's append-only file off.

The bug: the reference store, but opening it runs ``CONFIG SET appendonly
no`` ("the append-only file is slow"): from then on the server keeps what
it acknowledges in memory only, and a server crash loses it.

Invariant broken: I6 (an acknowledged write must survive a crash).

Shows with: ``--faults server-crash`` (any actor mode); without a crash
nothing is lost.

Seen in: deployments tuned for throughput that run Redis as a session
store with persistence off, or ``appendfsync no`` / ``everysec``, while
the application treats a reply as a durable write.
"""
from __future__ import annotations

from pathlib import Path

from sessioncheck.stores.reference.redis_store import RedisStore


class Store(RedisStore):
    """The reference Redis store on a server whose append-only file it turned off."""

    def __init__(self, location: Path, *, redis_url: str) -> None:
        super().__init__(location, redis_url=redis_url)
        self.redis.config_set("appendonly", "no")  # the bug
