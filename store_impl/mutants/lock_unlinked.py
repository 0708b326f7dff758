"""Mutant ``lock-unlinked``: the lock file is removed when the lock is released.

The bug: the lock is an ``flock`` on ``<session>.json.lock``, and release
unlocks it and then ``os.unlink``s the lock file, "to leave no clutter".
A writer that opened the lock file before the unlink waits on the old
inode and gets it; a writer that opens the path after the unlink creates
a new inode and locks that one at once.  Both now hold "the" lock and run
their read-modify-write at the same time: one overwrites the other.

The interleaving needs three lock acquisitions: A holds; B opens the lock
file and waits; A unlocks and unlinks; B gets the old inode; A (or C)
opens the path again, creates a new inode and locks it while B holds.

Invariants broken: I1 (a lost message) and I3 (a lost metadata update).

Shows with: thread and process actors (``flock`` locks an open file
description, so even two threads with their own fds exclude each other,
and both escape through the unlink), no faults needed.

Seen in: py-filelock, whose ``UnixFileLock`` unlinked the lock file on
release from 3.20.4 until tox-dev/filelock#574 (fixed by #577, which keeps
the file); the same race was reported in portalocker's
``TemporaryFileLock`` (wolph/portalocker#115) and in review of
hand-written lock helpers that delete their lock file on exit.  The
locking here is a bare ``fcntl.flock`` on purpose, so the pattern is
explicit.
"""
from __future__ import annotations

import fcntl
import os

from sessioncheck.stores.reference.json_store import JsonFileStore


class UnlinkingLock:
    """An exclusive ``flock`` on a lock file that is deleted on release."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> "UnlinkingLock":
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self.fd)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        try:
            os.unlink(self.path)  # BUG: waiters keep the old inode, newcomers make a new one
        except FileNotFoundError:
            pass  # another holder removed it already
        finally:
            os.close(self.fd)


class Store(JsonFileStore):
    """JSON store whose flock'd lock file is unlinked on every release."""

    def _lock(self, session_id):
        return UnlinkingLock(str(self._path(session_id)) + ".lock")
