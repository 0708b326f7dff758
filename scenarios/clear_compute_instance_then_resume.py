"""A cleared compute_instance_id comes back when a new process resumes the session.

The story.  PraisonAI's fix for the stale write-back (PR #1727) made the
metadata update a locked merge, but the merge copied only fields whose
value was not ``None``.  An agent that shut down its compute instance
persisted ``compute_instance_id=None``; the clear never reached disk, and
the next process to resume the session restored the id of a compute
instance that no longer existed and tried to reattach to it.  Nothing
tested clearing a field.  Found by a reviewer of the fix.

The program.  A persists ``compute_instance_id='v1'``, then
``compute_instance_id=None``, then reads (so the clear is acknowledged
before anything else happens).  B, another OS process with its own store
instance, resumes: it reads the session.  B must see no compute instance
(I3: a read returns the latest write, and writing ``None`` clears).  No
counts are needed: every operation runs to its end before the next one
starts, so the program means the same on every store.

Seen in: praisonaiagents ``DefaultSessionStore.update_session_metadata``
(``praisonai``) and, end to end, praisonai ``LocalManagedAgent``
``_persist_state`` / ``_restore_state`` (``praisonai-agent``).
"""
from __future__ import annotations

from sessioncheck.controlled.program import ModelConfig
from sessioncheck.regression import Scenario, start, violates

PROGRAM = (
    start("A", "persist", compute_instance_id="fresh"),  # attach v1
    start("A", "persist", compute_instance_id="none"),   # v1 acknowledged; shut down: clear it
    start("A", "read"),                                  # the clear is acknowledged
    start("B", "read"),                                  # a new process resumes the session
)

SCENARIO = Scenario(
    name="clear-compute-instance-then-resume",
    doc=__doc__,
    mode="processes",
    config=ModelConfig(actors=2, sessions=1),
    program=PROGRAM,
    expect={
        "mutant:none-skipped": violates("I3"),
        "mutant:async-none-skipped": violates("I3"),
        # the clear reads back as the text "None": the field was not cleared (I3)
        "mutant:redis-none-string": violates("I3"),
        "mutant:postgres-strip-nulls": violates("I3"),
        "praisonai": violates("I3"),
        "praisonai-agent": violates("I3"),
        "sessioncheck.stores.adapters.praisonai:small_window": violates("I3"),
    },
)
