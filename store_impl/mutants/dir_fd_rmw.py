"""Mutant ``dir-fd-rmw``: read-modify-write relative to a directory fd, with no lock.

The bug: the store keeps its directory open and reaches every file
relative to it (``os.open(name, dir_fd=d)``, ``os.read``, then a temp
file and ``os.replace(tmp, name, src_dir_fd=d, dst_dir_fd=d)``), like the
correct :class:`DirFdStore`, but takes no lock around the read-modify-write.
Two writers that read the same version both replace the file with their
copy: one message or field is lost (I1, I3).

Seen in: code hardened against path races (``openat``-style APIs, as
``shutil.rmtree`` and secure-temp-file helpers use) that is then used
from several workers, trusting the atomic replace to make it safe.  No
call takes a path under the store's directory, so a harness that matches
paths only never preempts it.

Shows with: thread and process actors, no faults needed.
"""
from __future__ import annotations

from sessioncheck.stores.reference.fd_store import DirFdStore


class Store(DirFdStore):
    """DirFdStore whose read-modify-writes take no lock."""

    def _update(self, session_id, change):
        data = self._load(session_id)  # BUG: no lock around the read-modify-write
        change(data)
        self._store(session_id, data)
