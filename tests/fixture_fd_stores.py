"""Test-only variants of the fd-level reference stores (controls)."""
from __future__ import annotations

from sessioncheck.stores.reference.fd_store import BytesPathStore


class NoSyncBytesPathStore(BytesPathStore):
    """BytesPathStore without ``O_SYNC``: its data is never synced (buggy)."""

    sync_flag = 0


import json  # noqa: E402
import mmap  # noqa: E402
import os  # noqa: E402

from sessioncheck.stores.mutants.unlocked_rmw import Store as UnlockedRmw  # noqa: E402


class MmapReadStore(UnlockedRmw):
    """``mutant:unlocked-rmw`` reading its session file through an ``mmap``:
    loads from a mapping are memory accesses, never a call (buggy)."""

    def _load(self, session_id):
        try:
            fd = os.open(self._path(session_id), os.O_RDONLY)
        except FileNotFoundError:
            return {"messages": [], "metadata": {}}
        try:
            size = os.fstat(fd).st_size
            if not size:
                return {"messages": [], "metadata": {}}
            with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as m:
                return json.loads(m[:])
        finally:
            os.close(fd)
