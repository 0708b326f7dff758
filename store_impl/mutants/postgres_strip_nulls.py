"""Mutant ``postgres-strip-nulls``: a jsonb merge that strips the nulls it is given.

The bug: ``persist_state`` merges the fields into the session's ``jsonb``
metadata in one atomic statement, ``metadata || jsonb_strip_nulls(new)``.
Stripping the nulls from the *incoming* fields looks like tidying up (no
``null`` values stored), but it drops exactly the fields the caller asked
to clear, so the old value stays: ``None`` never clears.  (The correct
statement removes those keys: ``(metadata || set) - removed``.)

Invariant broken: I3 (a field cleared to None reads back its old value).

Shows with: thread and process actors, no faults and no concurrency
needed: one writer setting then clearing a field shows it.

Seen in: the seed's bug (the JSON store whose merge skips None, fixed in
PraisonAI PR #1727), written in SQL; ``jsonb_strip_nulls`` in metadata
merges is a common idiom in Postgres-backed session tables.
"""
from __future__ import annotations

from typing import Any, Mapping

from psycopg.types.json import Jsonb

from sessioncheck.stores.reference.postgres_store import PostgresStore


class Store(PostgresStore):
    """PostgreSQL store whose jsonb metadata merge strips nulls, so None never clears."""

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        self.conn.execute(
            "INSERT INTO sessions (id, metadata) VALUES (%(s)s, jsonb_strip_nulls(%(new)s)) "
            "ON CONFLICT (id) DO UPDATE SET metadata = sessions.metadata || jsonb_strip_nulls(%(new)s)",
            {"s": session_id, "new": Jsonb(dict(fields))})
