"""Mutant ``swallowed-timeout``: a lock timeout is logged and reported as success.

The bug: the store uses a short lock timeout (so that a UI thread never
freezes), and ``persist_state`` catches ``filelock.Timeout``, logs a
warning and returns normally.  The caller is told the update was stored;
nothing was written.  ``add_message`` keeps the reference behaviour: a
timeout there raises, so the append is correctly not acknowledged.

Invariant broken: I3 (an acknowledged metadata write, e.g. a ``None``
clear, never happened: the next read shows the older value) and I6 (an
error turned into silent loss).

Shows with: thread and process actors whenever another writer holds the
session's lock for longer than the timeout (under virtual time: any
schedule that keeps the holder waiting while the other polls), no faults
needed.

Seen in: the common ``try: with lock: ... except Timeout: logger.warning
(...)`` around best-effort state saves; the warning goes to a log nobody
reads and the caller carries on as if the state were saved.
"""
from __future__ import annotations

import logging

from filelock import Timeout

from sessioncheck.stores.reference.json_store import JsonFileStore

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())  # a library's logger: silent unless the app configures logging


class Store(JsonFileStore):
    """JSON store whose persist_state swallows a lock timeout."""

    lock_timeout = 0.1  # short, so that a busy session "does not block the caller"

    def persist_state(self, session_id, fields):
        try:
            super().persist_state(session_id, fields)
        except Timeout:
            log.warning("session %s is busy; state update skipped", session_id)  # BUG: acknowledged anyway
