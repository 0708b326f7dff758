"""Mutant ``one-file-all-sessions``: every session lives in one shared file.

The bug: all sessions are kept in ``sessions.json`` (``{session_id:
{"messages": [...], "metadata": {...}}}``), and every mutation reads the
whole file, changes its own session and atomically replaces the whole
file.  Each mutation still takes the reference *per-session* lock, so two
writers of one session are serialised, but no lock covers the shared file:
a writer of session ``a`` and a writer of session ``b`` run their
read-modify-writes at the same time, and the later one writes back its
stale copy of the other session.

Invariant broken: I1 (messages of *another* session are lost) and I3
(metadata updates of another session are undone).  One session alone is
always correct.

Shows with: thread and process actors, no faults needed, only when the
workload uses at least two sessions concurrently.

Seen in: small chat apps and bots that keep every conversation in one
``history.json`` / ``sessions.json``, often with a lock keyed by the
conversation id, written when there was a single writer.
"""
from __future__ import annotations

import json

from filelock import FileLock

from sessioncheck.protocol import Capabilities
from sessioncheck.stores.reference.json_store import JsonFileStore


class Store(JsonFileStore):
    """JSON store with every session in one file, locked per session only."""

    # No delete, even if the reference gains one: unlinking _path() here
    # would remove every session, a second bug.
    capabilities = Capabilities()

    def __init__(self, location):
        super().__init__(location)
        self._all: dict[str, dict] = {}

    def _path(self, session_id):
        return self.dir / "sessions.json"

    def _lock(self, session_id):
        # BUG: a per-session lock guarding a file shared by all sessions.
        return FileLock(str(self.dir / f"{session_id}.json.lock"), timeout=self.lock_timeout)

    def _load(self, session_id):
        try:
            with open(self._path(session_id), encoding="utf-8") as fh:
                self._all = json.load(fh)
        except FileNotFoundError:
            self._all = {}
        return self._all.get(session_id, {"messages": [], "metadata": {}})

    def _save(self, session_id, data):
        self._all[session_id] = data  # the other sessions are as of our _load
        super()._save(session_id, self._all)
