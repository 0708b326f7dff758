"""Small stores that wait in ways the harness must understand
(tests/test_waits.py).  Importable as ``wait_stores:<Class>`` (conftest puts
tests/ on sys.path)."""
from __future__ import annotations

import _thread
import multiprocessing
import multiprocessing.synchronize
import threading
from contextlib import contextmanager
from typing import Iterator

from filelock import FileLock, SoftFileLock

from sessioncheck.stores.reference.json_store import JsonFileStore

# Made at import (spec resolution imports this module under interception):
# the harness makes both cooperative.
_SEM = threading.BoundedSemaphore(1)
_MP_LOCK = multiprocessing.Lock()
# A lock made with the primitive underneath threading.Lock: exactly what a
# module-level threading.Lock is when the module was imported before
# sessioncheck installed interception.  Nothing the harness can see.
_UNSEEN = _thread.allocate_lock()
# The same across processes: a multiprocessing lock built from its class,
# not through the factory the harness wraps.
_UNSEEN_MP = multiprocessing.synchronize.Lock(ctx=multiprocessing.get_context("fork"))


class SoftFileLockStore(JsonFileStore):
    """filelock.SoftFileLock (an O_EXCL lock file polled with sleep)."""

    def _lock(self, session_id):
        return SoftFileLock(str(self._path(session_id)) + ".lock", timeout=self.lock_timeout)


class SemaphoreStore(JsonFileStore):
    """A module-level BoundedSemaphore(1) orders this process's threads;
    the file lock inside it orders processes."""

    @contextmanager
    def _lock(self, session_id: str) -> Iterator[None]:  # type: ignore[override]
        with _SEM:
            with FileLock(str(self._path(session_id)) + ".lock", timeout=self.lock_timeout):
                yield


class ProcessLockStore(JsonFileStore):
    """One multiprocessing.Lock made at import, shared by every process
    actor forked after it (and every thread of the parent)."""

    @contextmanager
    def _lock(self, session_id: str) -> Iterator[None]:  # type: ignore[override]
        with _MP_LOCK:
            yield


class UnseenLockStore(JsonFileStore):
    """Correct, but its lock was made before interception: the harness
    must say it cannot see the wait (exit 2), not call the store stuck."""

    @contextmanager
    def _lock(self, session_id: str) -> Iterator[None]:  # type: ignore[override]
        with _UNSEEN:
            yield


class UnseenProcessLockStore(JsonFileStore):
    """Correct with processes, but its multiprocessing lock is invisible."""

    @contextmanager
    def _lock(self, session_id: str) -> Iterator[None]:  # type: ignore[override]
        with _UNSEEN_MP:
            yield


class SpinStore(JsonFileStore):
    """A CPU loop in store code, reaching no point: still I5 (stuck)."""

    def add_message(self, session_id, message):
        n = 0
        while True:
            n = (n * 31 + 7) % 1000003
