"""Correct JSON stores locked with POSIX record locks and OFD locks.

``LockfStore`` takes ``fcntl.lockf`` (a POSIX record lock) on
``<session>.json.lock`` around every read-modify-write, and *also* a
per-process ``threading.Lock`` (made at import): a POSIX record lock
belongs to the process, so it never excludes two threads of one process
(``mutant:lockf-threads`` is the same store without the threading lock).
``OfdLockStore`` takes an open-file-description lock
(``fcntl.fcntl(fd, F_OFD_SETLKW, ...)``): it belongs to the descriptor
each writer opened, so it excludes threads and processes alike.

Both release by unlocking and closing the lock file; the kernel releases
the lock of a writer killed with ``kill -9``.  The session file is
replaced atomically with fsyncs, as in the reference ``json`` store.
"""
from __future__ import annotations

import fcntl
import os
import struct
import threading
from contextlib import contextmanager
from typing import Iterator

from sessioncheck.stores.reference.json_store import JsonFileStore

#: One per process: threads of this process take turns before lockf,
#: which only excludes other processes.
_THREADS = threading.Lock()


class LockfStore(JsonFileStore):
    """JSON store: per-process threading lock + fcntl.lockf lock file (reference)."""

    @contextmanager
    def _lock(self, session_id: str) -> Iterator[None]:  # type: ignore[override]
        with _THREADS:
            fd = os.open(str(self._path(session_id)) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.lockf(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


def _flock_struct(l_type: int) -> bytes:
    # struct flock on Linux: l_type, l_whence (short), l_start, l_len (off_t), l_pid (pid_t)
    return struct.pack("hhqqi4x", l_type, os.SEEK_SET, 0, 0, 0)


class OfdLockStore(JsonFileStore):
    """JSON store: an OFD lock (fcntl F_OFD_SETLKW) on a lock file (reference)."""

    @contextmanager
    def _lock(self, session_id: str) -> Iterator[None]:  # type: ignore[override]
        fd = os.open(str(self._path(session_id)) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLKW, _flock_struct(fcntl.F_WRLCK))
            try:
                yield
            finally:
                fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _flock_struct(fcntl.F_UNLCK))
        finally:
            os.close(fd)
