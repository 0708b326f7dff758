"""A whole-session write-back of a stale copy erases a foreign append (PraisonAI PR #1727).

The story.  PraisonAI's ``persist_state`` read the whole session
(``get_session``), changed its metadata, and wrote the whole session back
(``_save_session``).  The gateway and the agent loop write to one session
with two store instances: when the gateway appended a message between the
agent's read and its write-back, the write-back restored the old message
list and the acknowledged message was gone.  Users saw chat history
vanish.  The fix (PR #1727) made the metadata update one locked
read-modify-write of the file as it is under the lock.

The interleaving.  A appends m1 and is acknowledged (the session has
history).  B begins ``persist_state`` and gets as far as having read the
session; A appends m2 and is acknowledged; A reads (and sees m2); only
then does B write.  A store with the bug writes B's stale copy back and
m2 is lost (I1); a correct store either made B read under a lock that
holds m2 back until B is done, or re-reads under the lock when it writes.

Seen in: PraisonAI ``DefaultSessionStore`` before PR #1727
(``praisonai-prefix`` replays the pre-fix persist on the real package).
"""
from __future__ import annotations

from sessioncheck.controlled.program import ModelConfig
from sessioncheck.regression import Scenario, finish, start, until, violates

PROGRAM = (
    start("A", "add"), finish("A"),      # m1 acknowledged alone: the session has history
    start("B", "persist", model="fresh"),
    until("B", "read"),                       # B holds its copy of the session, before its next lock or write
    start("A", "add"),                        # m2 begins
    start("A", "read"),                       # m2 runs to its end first, unless a lock holds it back
    # The drain runs the most recently started operation first: A's read,
    # then B's write-back, then anything a lock held back.
)

SCENARIO = Scenario(
    name="pr1727-stale-write-back",
    doc=__doc__,
    mode="threads",
    config=ModelConfig(actors=2, sessions=1),
    program=PROGRAM,
    expect={
        # its idempotent append compares content: the second of two equal messages is dropped
        "mutant:dedupe-by-content": violates("I1"),
        "mutant:stale-overwrite": violates("I1"),
        "mutant:sqlite-rmw": violates("I1"),
        "mutant:sqlalchemy-rmw": violates("I1"),
        "mutant:postgres-select-update": violates("I1"),
        "praisonai-prefix": violates("I1"),
        # The same shape on the other side: the append reads without the
        # lock and writes its stale copy back over B's metadata (I3), or
        # nobody locks at all (I1).
        "mutant:read-outside-lock": violates("I3"),
        "mutant:unlocked-rmw": violates("I1"),
        # the same bug read through os.read relative to a directory fd,
        # and through os.pread on a cached fd
        "mutant:dir-fd-rmw": violates("I1"),
        "mutant:pread-rmw": violates("I1"),
        # the same read-modify-write done in a helper thread the store
        # waits for: its points are the calling actor's
        "mutant:executor-rmw": violates("I1"),
        # the async mutants: an asyncio.Lock (or none) does not order two
        # threads, each on a loop of its own: the stale copy is written back
        "mutant:async-stale-write": violates("I1"),
        "mutant:asyncio-lock-only": violates("I1"),
        "mutant:async-none-skipped": violates("I1"),
        "mutant:cancel-torn": violates("I1"),
        "mutant:torn-and-lost": violates("I1"),
        "mutant:to-thread-rmw": violates("I1"),
        # the same write-back through Redis: GET, then SET of the stale blob;
        # and a check-and-set whose failed EXEC is taken for success
        "mutant:redis-get-set": violates("I1"),
        "mutant:redis-watch-ignored": violates("I3"),
        # B's instance opens inside its persist: the compaction in
        # __init__ reads s0 without the lock and writes it back after m2.
        "mutant:compact-in-init": violates("I1"),
        # lockf does not exclude two threads of one process: B's persist
        # and A's append run their read-modify-writes at once.
        "mutant:lockf-threads": violates("I1"),
        # LangGraph read-then-put: B's checkpoint is a child of the parent
        # it read; A's newer checkpoint hides it, and B's metadata is gone.
        "langgraph-read-put": violates("I3"),
    },
    notes={
        "sqlite": "the reference SQLite persist_state writes rows without reading the session, so there "
                  "is no stale copy to take: B stays parked before its transaction, and the run checks "
                  "only that an append made while a persist is pending survives it.",
    },
)
