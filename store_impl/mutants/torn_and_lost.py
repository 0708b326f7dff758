"""Mutant ``torn-and-lost``: two bugs in one store, a torn write and a lost append.

The bugs:

- ``_save`` truncates the session file and rewrites it in place
  (``open(path, "w")``, as ``non-atomic-write``): a lock-free ``read``
  during a write sees an empty or half-written file (I4, or E1 when the
  read raises on it);
- ``add_message`` is a read-modify-write without the lock (as
  ``unlocked-rmw``): two appends that read the same version both write
  their own copy back, and one message is lost (I1).

``persist_state`` keeps the reference store's lock.  A search that stops
at its first violation reports one of the two bugs; ``--keep-going``
reports both, each shrunk on its own.

Shows with: thread and process actors, no faults needed.

Seen in: the hand-rolled JSON session file that is both saved in place
and appended to from several workers without a lock.
"""
from __future__ import annotations

from sessioncheck.stores.mutants.non_atomic_write import Store as NonAtomicWrite


class Store(NonAtomicWrite):
    """BUG 1 (inherited): ``_save`` truncates the live file and rewrites it
    in place, so a concurrent reader sees the gap.  BUG 2: appends without
    the lock."""

    def add_message(self, session_id, message):
        # BUG 2: no lock around the read-modify-write: a concurrent append is lost.
        data = self._load(session_id)
        data["messages"].append(message)
        self._save(session_id, data)
