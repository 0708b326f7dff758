"""Mutant ``postgres-wrong-row-lock``: ``SELECT ... FOR UPDATE`` on the latest message, not the session.

The bug: ``add_message`` numbers each message itself, in a transaction:
it locks the session's latest message row (``SELECT seq ... ORDER BY seq
DESC LIMIT 1 FOR UPDATE``), inserts ``seq + 1`` and commits, upserting so
that a retried append is idempotent.  The lock is real, and a second
writer does wait for it, but it guards the wrong row: once the first
writer commits, the second one's locked row is still the *old* latest
message (READ COMMITTED re-checks the row it waited for, not the query),
so it computes the same number and its upsert overwrites the first
writer's message.  On a session with no message yet there is no row to
lock at all.  Locking the session's own row (as ``postgres-row-lock``
does) serialises the appends.

Invariant broken: I1 (an acknowledged message is overwritten).

Shows with: thread and process actors, no faults needed; the second
writer blocks inside the server on the first one's row lock.

Seen in: "lock the last row, then insert the next" sequence numbering in
event and message tables (a known PostgreSQL pitfall: FOR UPDATE cannot
lock rows that do not exist yet, and under READ COMMITTED a waiter sees
the row it locked, not the rows inserted while it waited).
"""
from __future__ import annotations

from sessioncheck.protocol import Message
from sessioncheck.stores.reference.postgres_store import PostgresStore


class Store(PostgresStore):
    """PostgreSQL store whose appends lock the latest message row instead of the session row."""

    def add_message(self, session_id: str, message: Message) -> None:
        with self.conn.transaction():
            row = self.conn.execute("SELECT seq FROM messages WHERE session_id = %s ORDER BY seq DESC LIMIT 1 "
                                    "FOR UPDATE", (session_id,)).fetchone()
            seq = (row[0] if row else 0) + 1
            self.conn.execute("INSERT INTO messages (session_id, seq, role, content) VALUES (%s, %s, %s, %s) "
                              "ON CONFLICT (session_id, seq) DO UPDATE SET role = excluded.role, "
                              "content = excluded.content", (session_id, seq, message["role"], message["content"]))
