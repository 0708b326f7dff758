"""Mutant ``non-atomic-write``: the session file is truncated and rewritten in place.

The bug: ``_save`` opens the session file with ``open(path, "w")`` (which
truncates it at once) and writes the JSON into it, under the lock, instead
of writing a temp file and renaming it over the session file.  Between the
truncation and the last write the file is empty or half-written:

- a lock-free reader (``read`` takes no lock, as in the reference store)
  sees an empty or torn file and cannot parse it;
- a writer killed in that window leaves the file empty or torn, and every
  acknowledged message in it is gone.

Invariants broken: I4 (no torn state) with any concurrent reader; I1 and
I6 (durability) after a crash mid-write.  The data is fsynced before the
call returns, so an acknowledged write is durable: the only bug is that
the update is not atomic.

Shows with: thread and process actors with concurrent reads, no faults
needed (torn read); process actors with crash faults (everything lost);
power loss mid-write as well.

Seen in: the most common way to save JSON (``with open(p, "w") as f:
json.dump(data, f)``), in many file-per-session chat stores and config
savers; the usual fix is temp file + ``os.replace``.
"""
from __future__ import annotations

import json
import os

from sessioncheck.stores.reference.json_store import JsonFileStore


class Store(JsonFileStore):
    """JSON store that truncates and rewrites the session file in place."""

    def _save(self, session_id, data):
        # BUG: "w" truncates the live file first; readers and crashes see the gap.
        with open(self._path(session_id), "w", encoding="utf-8") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
