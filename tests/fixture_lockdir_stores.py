"""JSON stores whose lock files live outside the store's directory, in a
directory next to it (``<location>/../session-locks``): a correct one and
one whose ``persist_state`` takes no lock."""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from filelock import FileLock

from sessioncheck.stores.reference.excl_lock_store import ExclLock
from sessioncheck.stores.reference.json_store import JsonFileStore, merge_fields


def lock_dir(location: Path) -> Path:
    """Where the lock files of the store at ``location`` go: a directory
    beside it, shared by every store there; one lock per location and
    session."""
    d = Path(location).resolve().parent / "session-locks"
    d.mkdir(exist_ok=True)
    return d


class LockDirStore(JsonFileStore):
    """The reference JSON store, its flock lock files in a sibling directory (correct)."""

    def __init__(self, location: Path) -> None:
        super().__init__(location)
        self.locks = lock_dir(location)

    def _lock(self, session_id: str) -> FileLock:
        return FileLock(str(self.locks / f"{Path(self.dir).name}-{session_id}.lock"), timeout=self.lock_timeout)


class ExclLockDirStore(LockDirStore):
    """The same with O_EXCL lock files (created, then unlinked) in the sibling directory (correct)."""

    lock_timeout = 2.0

    def _lock(self, session_id: str) -> ExclLock:  # type: ignore[override]
        return ExclLock(str(self.locks / f"{Path(self.dir).name}-{session_id}.lock"), self.lock_timeout)


class FlockDirStore(LockDirStore):
    """The same with a blocking ``fcntl.flock`` on a lock file in the sibling directory (correct)."""

    @contextmanager
    def _lock(self, session_id: str) -> Iterator[None]:  # type: ignore[override]
        fd = os.open(str(self.locks / f"{Path(self.dir).name}-{session_id}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the fd releases the flock


class FlockDirPersistUnlocked(FlockDirStore):
    """BUG: persist_state rewrites the session file without taking the flock."""

    def persist_state(self, session_id, fields):
        data = self._load(session_id)
        merge_fields(data, fields)
        self._save(session_id, data)


class LockDirPersistUnlocked(LockDirStore):
    """BUG: persist_state rewrites the session file without taking the lock."""

    def persist_state(self, session_id, fields):
        data = self._load(session_id)
        merge_fields(data, fields)
        self._save(session_id, data)




class SoftLockStore(JsonFileStore):
    """The reference JSON store locked with ``filelock.SoftFileLock`` (an
    O_EXCL lock file, unlinked on release) next to each session (correct)."""

    def _lock(self, session_id: str):  # type: ignore[override]
        from filelock import SoftFileLock

        return SoftFileLock(str(self._path(session_id)) + ".lock", timeout=self.lock_timeout)


class SoftLockPersistUnlocked(SoftLockStore):
    """BUG: persist_state rewrites the session file without the soft lock."""

    def persist_state(self, session_id, fields):
        data = self._load(session_id)
        merge_fields(data, fields)
        self._save(session_id, data)
