"""Mutant ``fsync-before-write``: the fsync comes before the write it should make durable.

The bug: ``_save`` creates its temp file, calls ``os.fsync`` on it, and
only then ``os.write``s the data, closes it, replaces the session file and
fsyncs the directory.  Every call of the durable recipe is there, in the
wrong order: the rename is durable, the data behind it is not.  After a
power loss the session file is empty or as of an older sync (I6; I4 when
the empty file does not parse).

Seen in: refactorings that move the write into a helper called after the
"open + fsync" block, and the ordering bugs ALICE (Pillai et al., OSDI
2014) reports in real applications: the calls are present, their order
is not the one durability needs.

Shows with: any actor mode, one actor, under power-loss faults only.
"""
from __future__ import annotations

import json
import os
import tempfile

from sessioncheck.stores.reference.json_store import JsonFileStore


class Store(JsonFileStore):
    """JSON store that fsyncs its temp file before writing it."""

    def _save(self, session_id, data):
        path = self._path(session_id)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fsync(fd)  # BUG: syncs the still-empty file ...
            os.write(fd, json.dumps(data).encode())  # ... and writes after it
            os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        self._fsync_dir()
