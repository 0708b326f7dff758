"""Mutant ``compact-in-init``: opening the store compacts every session
file without taking the session's lock.

The bug: ``__init__`` rewrites every ``*.json`` session file it finds (a
"compaction" that normalises each file: here it drops duplicate metadata
keys by rewriting the file), reading and atomically replacing each one,
but without the per-session lock that every other writer takes.  A writer
that adds a message between the compaction's read and its replace has its
message overwritten by the compacted old copy.

Invariant broken: I1 (no lost message), I3 for a concurrent persist.

Shows with: threads, processes (and mixed); no faults.  Needs a second
instance opened while another writer writes a session that already
exists: the harness must interleave an instance's opening with other
actors' operations, which it did not while every open ran alone.

Seen in: startup migrations and compactions in small agent apps (a schema
upgrade or cleanup pass over every stored file on open), written when only
one process ever opened the store.
"""
from __future__ import annotations

import json
from pathlib import Path

from sessioncheck.stores.reference.json_store import JsonFileStore


class Store(JsonFileStore):
    """JSON store whose __init__ compacts every session file without the lock."""

    def __init__(self, location: Path) -> None:
        super().__init__(location)
        for path in sorted(self.dir.glob("*.json")):
            session_id = path.name[: -len(".json")]
            # BUG: no self._lock(session_id) around this read-modify-write
            data = self._load(session_id)
            data["metadata"] = dict(data.get("metadata") or {})
            self._save(session_id, data)
