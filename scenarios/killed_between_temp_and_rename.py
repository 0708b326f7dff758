"""A writer killed after creating its temp file and before the rename.

The story.  The safe way to rewrite a session file is: write a temp file
beside it, fsync, ``os.replace`` it over the session file.  A writer
killed (OOM killer, kill -9, a container stopped) between creating the
temp file and the rename must lose only its own unacknowledged write:
the session file is the old one, whole.  What it leaves is an orphan temp
file that nothing removes (a warning, not a violation).  The naive save
(``open(path, "w")`` then ``json.dump``) truncates the live file first: a
writer killed there leaves it empty, and every acknowledged message is
gone (the next read cannot even parse it: I4).

The program.  Process actors.  A appends m1 (acknowledged).  A begins
appending m2 and is killed right after it created its temp file (the bad
store: right after it truncated the session file).  B, another process,
reads.  m1 must be there (I1, I6) and every read must parse (I4).

Seen in: the crash study of praisonaiagents' ``DefaultSessionStore``
(kill -9 before each point never lost data, but left ``tmp*.tmp`` files
behind); the naive save is the ``non-atomic-write`` mutant.
"""
from __future__ import annotations

from sessioncheck.controlled.program import ModelConfig
from sessioncheck.regression import Expect, Scenario, crash, finish, start, until, violates

PROGRAM = (
    start("A", "add"), finish("A"),  # m1 acknowledged alone
    start("A", "add"),                    # m2 begins
    until("A", "created"),                # A just created its temp file (the bad store: truncated s0.json)
    crash("A"),                           # kill -9
    start("B", "read"),                   # another process reads
)

ORPHAN = Expect(warning="left behind")

SCENARIO = Scenario(
    name="killed-between-temp-and-rename",
    doc=__doc__,
    mode="processes",
    config=ModelConfig(actors=2, sessions=1, crash=True),
    program=PROGRAM,
    expect={
        # its idempotent append compares content: the second of two equal messages is dropped
        "mutant:dedupe-by-content": violates("I1"),
        # truncates the session file in place, then writes: killed between
        # the two, the file reads back empty or torn (I4)
        "mutant:cancel-torn": violates("I4"),
        "mutant:torn-and-lost": violates("I4"),
        "json": ORPHAN,
        "praisonai": ORPHAN,
        "praisonai-prefix": ORPHAN,
        "praisonai-agent": ORPHAN,
        "sessioncheck.stores.adapters.praisonai:small_window": ORPHAN,
        "mutant:non-atomic-write": violates("I4"),
    },
    notes={
        "openai-agents": "there is no temp file and no rename: A is killed inside its transaction, after "
                         "its first INSERT and before COMMIT; the run checks that the uncommitted append "
                         "vanishes cleanly.",
        "sqlite": "there is no temp file and no rename: A is killed inside its transaction, after its "
                  "INSERT and before COMMIT; the run checks that the uncommitted append vanishes cleanly.",
    },
)
