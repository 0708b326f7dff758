"""A correct JSON store whose lock is a lock file created with ``O_EXCL``.

The pattern (lockfile-style locks, ``filelock.SoftFileLock``, many
hand-written stores): ``os.open(path + ".lock", O_CREAT | O_EXCL)``
succeeds for exactly one writer; the others get ``FileExistsError`` and
retry after ``time.sleep(0.01)``; the holder releases by unlinking the lock
file.  Every read-modify-write runs under that lock and replaces the
session file atomically with fsyncs, as the reference ``json`` store does.

What the harness must understand: the waiter's sleep is a wait for the
holder, a lock the harness does not see.  A scheduler that runs the waiter
alone polls until its horizon and reports a livelock (I5) on this correct
store; ``sessioncheck.controlled.scheduler`` lets a sleeper yield to the
other actors, so the holder runs and unlinks the file.

A writer killed while it holds the lock (kill -9) leaves the lock file
behind, as every ``O_EXCL`` lock does: later writers of that session wait
``lock_timeout`` (virtual) seconds and raise ``TimeoutError``, a refusal.
Nothing acknowledged is lost, and reads take no lock.
"""
from __future__ import annotations

import os
import time

from sessioncheck.stores.reference.json_store import JsonFileStore


class ExclLock:
    """An ``O_EXCL`` lock file, polled every ``poll`` seconds."""

    def __init__(self, path: str, timeout: float, poll: float = 0.01) -> None:
        self.path = path
        self.timeout = timeout
        self.poll = poll

    def __enter__(self) -> "ExclLock":
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"lock file {self.path} still exists after {self.timeout:g} s") from None
                time.sleep(self.poll)
                continue
            os.close(fd)
            return self

    def __exit__(self, *exc: object) -> None:
        os.unlink(self.path)


class ExclLockStore(JsonFileStore):
    """JSON store guarded by an O_EXCL lock file retried with sleep (reference)."""

    lock_timeout = 2.0

    def _lock(self, session_id: str) -> ExclLock:  # type: ignore[override]
        return ExclLock(str(self._path(session_id)) + ".lock", self.lock_timeout)


Store = ExclLockStore
