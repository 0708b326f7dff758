"""Mutant ``lockf-threads``: a POSIX record lock (``fcntl.lockf``) is the
only lock, so two threads of one process are never excluded.

The bug: every read-modify-write takes ``fcntl.lockf(fd, LOCK_EX)`` on
``<session>.json.lock``.  POSIX record locks belong to the *process*: a
second thread of the same process "takes" the lock at once, even while
the first holds it, and both write the session from the same old copy.
Between processes the lock is a real mutual exclusion.  (Closing any fd
of the lock file also drops the whole process's lock, the other classic
POSIX trap.)

Invariant broken: I1 (no lost message), I3 for concurrent metadata.

Shows with: thread actors only.  Never with processes alone, nor mixed
(one thread actor among processes has no second thread to race): there
the store is correct, and ``LockfStore`` in
``store_impl/reference/lockf_store.py`` (the same lock plus a per-process
threading lock) is correct everywhere.

Seen in: stores that replace ``flock`` by ``lockf`` "for NFS" and then
run in a threaded server (gunicorn threads, an asyncio executor); the
``fcntl`` documentation and ``man 2 fcntl`` ("record locks are not
inherited by threads ... are associated with a process") warn of it.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from typing import Iterator

from sessioncheck.stores.reference.json_store import JsonFileStore


class Store(JsonFileStore):
    """JSON store whose only lock is fcntl.lockf: excludes processes, not threads."""

    @contextmanager
    def _lock(self, session_id: str) -> Iterator[None]:  # type: ignore[override]
        fd = os.open(str(self._path(session_id)) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)  # BUG: a process-wide lock; threads pass straight through
            try:
                yield
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
