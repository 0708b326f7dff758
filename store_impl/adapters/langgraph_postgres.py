"""Adapters to LangGraph's PostgreSQL checkpointer (package langgraph-checkpoint-postgres).

Tested with langgraph-checkpoint-postgres 3.2.0, langgraph-checkpoint 4.3.2,
psycopg 3.3.9 and psycopg-pool 3.3.3 (CPython 3.11), on the harness's
private PostgreSQL (``resources = ("postgres",)``: the factory gets
``postgres_dsn``, whose ``search_path`` is the run's own schema).

What they wrap: ``langgraph.checkpoint.postgres.PostgresSaver`` on one
connection per instance, opened as the package's ``from_conn_string`` does
(``autocommit=True, prepare_threshold=0, row_factory=dict_row``, no
pipeline).  The two ways a graph appends are the ones of the SQLite saver,
with the same code (:mod:`.langgraph`): ``langgraph-postgres`` (a
``put_writes`` per append on a fixed root checkpoint, metadata as child
checkpoints) and ``langgraph-postgres-read-put`` (``get_tuple`` of the
latest checkpoint, then ``put`` of a child with the change).  ``put`` is
one transaction of two statements (blobs ``INSERT ... ON CONFLICT DO
NOTHING``, the checkpoint ``INSERT ... ON CONFLICT DO UPDATE``, in a
pipeline); ``put_writes`` one ``executemany`` upsert; reads are
autocommit ``SELECT``s.

``setup()`` (the package's migrations: ``CREATE TABLE IF NOT EXISTS`` and
a row per migration in ``checkpoint_migrations``) is documented as a step
the user runs once before first use.  Every instance opens on a fresh
namespace, so the adapter runs it on open under a session advisory lock
keyed by the schema, taken with ``pg_try_advisory_lock`` and polled (not
a transaction, not a blocking wait: a migration is ``CREATE INDEX
CONCURRENTLY``, which waits for every open transaction, including one
blocked on the lock): concurrent first opens of a deployment are the
deployment's business, not the saver's; the lock makes "once" hold.

Capabilities as for the SQLite saver: metadata yes, delete no, retention
none.
"""
from __future__ import annotations

import time
from pathlib import Path

from sessioncheck.stores.adapters import langgraph

#: Key of the advisory lock that serialises ``setup()`` across instances.
SETUP_LOCK = 7243
#: Seconds an opener waits for another one's ``setup()``.
SETUP_WAIT = 30.0


class _PostgresSaverStore:
    def __init__(self, location: Path, *, postgres_dsn: str) -> None:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row

        self.conn = psycopg.Connection.connect(postgres_dsn, autocommit=True, prepare_threshold=0,
                                               row_factory=dict_row)
        try:
            self.saver = PostgresSaver(self.conn)
            self._lock_setup()
            try:
                self.saver.setup()
            finally:
                self.conn.execute("SELECT pg_advisory_unlock(%s, hashtext(current_schema()))", (SETUP_LOCK,))
        except BaseException:
            self.conn.close()
            raise

    def _lock_setup(self) -> None:
        # A session-level lock, tried and polled rather than waited for: a
        # migration is CREATE INDEX CONCURRENTLY, which cannot run in a
        # transaction and waits for every open transaction to end, so a
        # second opener blocked inside pg_advisory_lock would deadlock it.
        deadline = time.monotonic() + SETUP_WAIT
        while not self.conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(current_schema()))",
                                    (SETUP_LOCK,)).fetchone()["pg_try_advisory_lock"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"another instance held the setup lock for {SETUP_WAIT} s")
            time.sleep(0.01)

    def close(self) -> None:
        self.conn.close()


class PutWritesStore(_PostgresSaverStore, langgraph.PutWritesStore):
    """langgraph PostgresSaver: put_writes per append on a root checkpoint, metadata as child checkpoints."""


class ReadPutStore(_PostgresSaverStore, langgraph.ReadPutStore):
    """langgraph PostgresSaver: read the latest checkpoint, put a child with the change."""


def open_put_writes_store(location: Path, *, postgres_dsn: str) -> PutWritesStore:
    """langgraph PostgresSaver: put_writes with a unique task id per append."""
    return PutWritesStore(location, postgres_dsn=postgres_dsn)


def open_read_put_store(location: Path, *, postgres_dsn: str) -> ReadPutStore:
    """langgraph PostgresSaver: read the latest checkpoint, then put a child with the message."""
    return ReadPutStore(location, postgres_dsn=postgres_dsn)


open_put_writes_store.resources = ("postgres",)  # type: ignore[attr-defined]
open_read_put_store.resources = ("postgres",)  # type: ignore[attr-defined]
