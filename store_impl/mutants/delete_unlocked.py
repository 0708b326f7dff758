"""Mutant ``delete-unlocked``: delete_session removes the file without the lock.

The bug: the store supports ``delete_session`` (``capabilities.delete``),
and deletes by unlinking the session file *without* taking the session's
lock.  A concurrent writer that holds the lock has already read the old
content; it appends its message and writes the whole old session back
after the delete was acknowledged: the deleted session comes back.

The correct delete is the reference pattern: take the same lock as every
other mutation, unlink the file, fsync the directory (so the delete
survives a power loss), release the lock.  It is shown here as
``delete_locked`` for comparison; only ``delete_session`` is called by
the harness.

Invariant broken: the model of delete (after an acknowledged delete the
session reads as empty, and only operations ordered after the delete may
show up): the old messages and metadata reappear.

Shows with: thread and process actors, no faults needed; needs a workload
that deletes while another actor writes the same session.

Seen in: file-per-session stores whose ``delete_session`` is a bare
``os.remove(path)`` next to locked writers; a common oversight because a
delete "does not need to read anything".
"""
from __future__ import annotations

import os

from sessioncheck.protocol import Capabilities
from sessioncheck.stores.reference.json_store import JsonFileStore


class Store(JsonFileStore):
    """JSON store whose delete_session unlinks the file without the lock."""

    capabilities = Capabilities(delete=True)

    def delete_session(self, session_id: str) -> None:
        try:
            os.unlink(self._path(session_id))  # BUG: not under self._lock(session_id)
        except FileNotFoundError:
            return
        self._fsync_dir()

    def delete_locked(self, session_id: str) -> None:
        """The correct delete (the reference store's), kept for comparison."""
        JsonFileStore.delete_session(self, session_id)
