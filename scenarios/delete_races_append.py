"""A delete that skips the session lock races an append, and the deleted session comes back.

The story.  A store adds ``delete_session`` as an ``os.remove`` of the
session file: a delete "does not need to read anything", so it takes no
lock.  An append that already holds the lock has read the old session;
the delete removes the file and is acknowledged; then the append writes
the whole old session, plus its message, back.  The user deleted the
conversation and it is there again.

The program.  A appends m1 (acknowledged).  A begins appending m2 and is
advanced until it holds the session lock and has read the file.  B
deletes the session and then reads.  A finishes.  After an acknowledged
delete, a read may show only what was appended after the delete began
(m2 may appear, it raced the delete; m1 must not): I1 in the checker's
words, "m1 ... reappears".  A correct delete takes the lock, waits for A,
and removes the session with m2 in it.

Seen in: praisonaiagents ``DefaultSessionStore.delete_session``
(``os.remove`` without the lock, in 1.7.17; ``praisonai``), and the
``delete-unlocked`` mutant, the same pattern on the reference JSON store.
The reference JSON and SQLite stores declare no delete: the scenario does
not apply to them (reported as n/a).
"""
from __future__ import annotations

from sessioncheck.controlled.program import ModelConfig
from sessioncheck.regression import Scenario, finish, start, until, violates

PROGRAM = (
    start("A", "add"), finish("A"),  # m1 acknowledged alone
    start("A", "add"),                    # m2 begins
    until("A", "read"),                   # A holds the session lock and has read the file
    start("B", "delete"),
    start("B", "read"),                   # the delete runs to its end first, unless a lock holds it back
)

SCENARIO = Scenario(
    name="delete-races-append",
    doc=__doc__,
    mode="threads",
    config=ModelConfig(actors=2, sessions=1, delete=True),
    program=PROGRAM,
    expect={
        "mutant:delete-unlocked": violates("I1"),
        "praisonai": violates("I1"),
        "praisonai-prefix": violates("I1"),
        "sessioncheck.stores.adapters.praisonai:small_window": violates("I1"),
    },
    notes={
        "openai-agents": "an SQLite append reads nothing first: A stays parked before its transaction, so "
                         "the delete and the append do not overlap inside the database; the run checks only "
                         "that an append after a delete survives it.",
    },
)
