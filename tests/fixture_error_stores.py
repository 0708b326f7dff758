"""Stores that raise on purpose, to test how the harness tells a failure
that shows only beside other actors (E1) from one that shows alone (a
configuration error) and from an error ``--allow-errors`` names."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sessioncheck.stores.mutants.create_race import Store as CreateRace
from sessioncheck.stores.reference.json_store import JsonFileStore


class PersistAlwaysFails(JsonFileStore):
    """persist_state raises on every call, with or without other actors."""

    def persist_state(self, session_id, fields):
        raise KeyError(f"no column for {sorted(fields)}")


class StoreUnavailable(Exception):
    """A store's own error type, raised ``from`` the driver's."""


class WrappedCreateRace(CreateRace):
    """The create race, the sqlite3 error wrapped in the store's own type:
    only the cause says "already exists"."""

    def __init__(self, location: Path) -> None:
        try:
            super().__init__(location)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable("could not prepare the database") from exc


class CloseAlwaysFails(JsonFileStore):
    """close() raises on every call, with or without other actors."""

    def close(self):
        raise RuntimeError("close: flush target missing")


class CloseFailsBesideOthers(JsonFileStore):
    """Each open instance leaves a marker; close() raises when another
    instance's marker is there (a store that assumes it is the only
    process on its directory): it fails only beside other actors."""

    def __init__(self, location: Path) -> None:
        super().__init__(location)
        self._marker = Path(location) / f"open-{id(self)}-{os.getpid()}"
        self._marker.write_text("")

    def close(self):
        others = [p for p in self._marker.parent.glob("open-*") if p != self._marker]
        self._marker.unlink()
        if others:
            raise RuntimeError(f"close: {len(others)} other instance(s) still open")
