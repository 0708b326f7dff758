"""Mutant ``eio-empty``: an I/O error on read becomes an empty session.

The bug: ``_load`` catches every ``OSError`` (not only
``FileNotFoundError``) and returns an empty session.  An ``EIO`` or
``EACCES`` while reading is thus indistinguishable from "no session yet":
a read shows an empty history, and the next ``add_message`` or
``persist_state`` writes the empty session plus its own change back,
erasing every earlier message for good.

Invariants broken: I6 (an I/O error must reach the caller, never turn
into silent data loss) and then I1 (acknowledged messages gone).

Shows with: any actor mode, even one actor, under io-error faults on the
read of the session file (open or read).  No interleaving needed.

Seen in: the widespread ``except (OSError, ValueError): return {}`` (or
bare ``except Exception``) around loading a JSON state file, meant for
"file missing or corrupt"; common in file-per-session stores and
settings loaders.
"""
from __future__ import annotations

from sessioncheck.stores.reference.json_store import JsonFileStore


class Store(JsonFileStore):
    """JSON store that treats any OSError on read as an empty session."""

    def _load(self, session_id):
        try:
            return super()._load(session_id)
        except OSError:  # BUG: EIO/EACCES taken for "no session yet"
            return {"messages": [], "metadata": {}}
