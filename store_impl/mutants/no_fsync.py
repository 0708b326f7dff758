"""Mutant ``no-fsync``: atomic rename, but nothing is ever fsynced.

The bug: ``_save`` writes a temp file and ``os.replace``s it over the
session file (so no reader ever sees a torn file, and kill -9 loses
nothing: the kernel still writes its page cache), but never fsyncs the
temp file nor the directory before acknowledging.  After a power loss the
rename may survive while the data does not (an empty or old file), or the
rename itself may be lost: an acknowledged message is gone.

Invariant broken: I6 (durability of acknowledged operations) and I1 on the
state that survives; I4 too when the surviving file is empty.

Shows with: any actor mode, even one actor, under power-loss faults only.
Crash (kill -9) and thread/process interleavings alone do not show it.

Seen in: the common "atomic write" recipe (temp file + rename) copied
without its fsync calls.  ALICE (Pillai et al., OSDI 2014) reports crash
vulnerabilities of this kind (rename-based updates without the fsyncs
that order them) in widely used applications.
"""
from __future__ import annotations

import json
import os
import tempfile

from sessioncheck.stores.reference.json_store import JsonFileStore


class Store(JsonFileStore):
    """JSON store with atomic replace but no fsync of file or directory."""

    def _save(self, session_id, data):
        path = self._path(session_id)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh)  # BUG: no flush + fsync of the data
            os.replace(tmp, path)  # BUG: and no fsync of the directory after
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
