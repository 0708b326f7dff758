"""Mutant ``postgres-async-commit``: the store turns off synchronous commit for its own session.

The bug: the reference ``postgres`` store, but opening it runs ``SET
synchronous_commit = off`` on its connection ("commits are faster"): the
server then acknowledges a commit before its WAL record is flushed, so a
server crash (or a machine failure) can lose a write the store reported
done.  The server's own configuration still says ``synchronous_commit
on``; only the store's session does not.

Invariant broken: I6 (an acknowledged write must survive a crash).

Shows with: ``--faults server-crash`` (any actor mode), read from the
session's setting at each commit; without a crash nothing is lost.

Seen in: session and chat-history tables tuned for latency with
``synchronous_commit = off`` per connection or per role, while the
application treats a reply as a durable write.
"""
from __future__ import annotations

import psycopg

from sessioncheck.stores.reference.postgres_store import PostgresStore


class Store(PostgresStore):
    """The reference PostgreSQL store on a session with synchronous commit off."""

    def _open(self) -> psycopg.Connection:
        # a connection of its own, never the shared pool's: the setting
        # stays with the session and dies with it
        conn = psycopg.connect(self.dsn, autocommit=True, prepare_threshold=None)
        conn.execute("SET synchronous_commit = off")  # the bug
        return conn

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()
