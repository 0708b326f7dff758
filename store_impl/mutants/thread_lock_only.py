"""Mutant ``thread-lock-only``: a threading lock where a file lock is needed.

The bug: every read-modify-write is guarded by one module-level
``threading.Lock`` (created at import) instead of a lock on the shared
file.  Threads of one process share that lock, so with thread actors the
store is correct.  Each OS process has its own copy of the module, hence
its own lock: two processes run their read-modify-write at the same time
and the later write overwrites the earlier one's message.

Invariant broken: I1 (no lost message), and I3 for concurrent metadata
updates: the later whole-file write wins.

Shows with: process actors (and mixed), no faults needed.  Never with
thread actors alone: there the lock is a real mutual exclusion.

Seen in: a common pattern in single-process servers that later grow a
second process (a worker, a CLI, a second gateway replica): an
``asyncio.Lock`` or ``threading.Lock`` around file writes, written when
all writers were threads of one process.
"""
from __future__ import annotations

import threading

from sessioncheck.stores.reference.json_store import JsonFileStore

# BUG: one lock per process, shared by every instance and session of this
# process, invisible to every other process.
_LOCK = threading.Lock()


class Store(JsonFileStore):
    """JSON store guarded by a process-wide threading lock, not a file lock."""

    def _lock(self, session_id):
        return _LOCK  # BUG: excludes threads of this process only
