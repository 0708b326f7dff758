"""A store that imports a module lazily, on a path neither the contract
probe nor the warm-up takes (the second message of a session): the import
happens inside the first example that appends twice."""
from __future__ import annotations

from sessioncheck.stores.mutants.unlocked_rmw import Store as UnlockedRmw
from sessioncheck.stores.reference.json_store import JsonFileStore


class LazyImportStore(JsonFileStore):
    """The reference JSON store; the second append to a session imports lazy_pkg.cache_index (correct)."""

    def add_message(self, session_id, message):
        if self._load(session_id)["messages"]:
            from lazy_pkg import cache_index  # lazily, the first time it is needed

            message = cache_index.stamp(message)
        super().add_message(session_id, message)


class LazyImportUnlocked(UnlockedRmw):
    """The unlocked read-modify-write mutant with the same lazy import (buggy)."""

    def add_message(self, session_id, message):
        if self._load(session_id)["messages"]:
            from lazy_pkg import cache_index

            message = cache_index.stamp(message)
        super().add_message(session_id, message)
