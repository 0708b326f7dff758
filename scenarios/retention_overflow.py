"""More appends than the retention window: old messages must move to the archive, not vanish.

The story.  Chat stores keep a window of recent messages ("keep the last N
turns") so that prompts stay short.  Done right, older messages move to
an archive that is part of the session's durable record; done wrong, the
trimmed window is written back as the session itself and every message
older than the window is gone for good, silently.  A store declares its
window (``Capabilities.retention``) and I1 is checked against its own
durable record (archived + messages), not waived.

The program.  A appends m1..m6, one after another, then reads; B (another
instance) reads.  Six appends overflow a window of 3 (``mutant:silent-
truncate``) and of 4 (praisonai's store with ``active_window=4``:
``sessioncheck.stores.adapters.praisonai:small_window``).  No counts are needed:
every append ends before the next begins.  Stores without a window keep
all six.

Seen in: buffer-window chat memories persisted straight to the session
store; praisonaiagents' ``compact`` retention is the correct pattern
(older messages move to ``archived_messages``, a summary heads the window).
"""
from __future__ import annotations

from sessioncheck.controlled.program import ModelConfig
from sessioncheck.regression import Scenario, start, violates

APPENDS = 6

PROGRAM = (
    *(start("A", "add") for _ in range(APPENDS)),  # each start lets the previous append finish
    start("A", "read"),
    start("B", "read"),
)

SCENARIO = Scenario(
    name="retention-overflow",
    doc=__doc__,
    mode="threads",
    config=ModelConfig(actors=2, sessions=1),
    program=PROGRAM,
    expect={
        # its idempotent append compares content: the second of two equal messages is dropped
        "mutant:dedupe-by-content": violates("I1"),
        "mutant:silent-truncate": violates("I1"),
    },
    notes={
        "praisonai-prefix": "the praisonai store's default window is 100 messages, which six appends do not "
                            "reach; run sessioncheck.stores.adapters.praisonai:small_window (window 4) to overflow it.",
        "praisonai": "the praisonai store's default window is 100 messages, which six appends do not "
                     "reach; run sessioncheck.stores.adapters.praisonai:small_window (window 4) to overflow it.",
    },
)
