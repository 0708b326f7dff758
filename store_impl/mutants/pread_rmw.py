"""Mutant ``pread-rmw``: a cached fd read and rewritten in place, with no lock.

The bug: every instance keeps one fd per session open and does its
read-modify-write with ``os.pread`` / ``os.pwrite`` / ``os.ftruncate``
on it, without the lock the correct :class:`PreadStore` takes.  Two
writers that read the same version both write their copy back: one
message or field is lost (I1, I3); a read between a longer ``pwrite`` and
its ``ftruncate`` can also see a torn document (I4).

Seen in: stores that keep a file open "for speed" and treat ``pwrite`` at
offset 0 as an atomic save (log-structured side files, small embedded
key-value stores written by hand).  No ``open()``/``read()`` of a file
object ever happens, so a harness that only watches file objects never
preempts it.

Shows with: thread and process actors, no faults needed.
"""
from __future__ import annotations

from sessioncheck.stores.reference.fd_store import PreadStore


class Store(PreadStore):
    """PreadStore whose read-modify-writes and reads take no lock."""

    def _update(self, session_id, change):
        data = self._load(session_id)  # BUG: no lock around the read-modify-write
        change(data)
        self._store(session_id, data)

    def _read_unlocked(self, session_id):
        return self._load(session_id)  # BUG: reads an in-place rewrite without the lock
