"""An I/O error while reading the session becomes an empty session, and the append writes it back.

The story.  A store loads a session with ``except OSError: return
empty`` (or a bare ``except Exception``), meant for "no file yet".  A
disk error (EIO) while reading is then indistinguishable from a new
session: the append that was reading adds its message to an empty list
and writes that back, and every earlier message is gone for good, while
the caller is told the append succeeded.  An I/O error must reach the
caller (I6); the session on disk must keep every acknowledged message
(I1).

The program.  A appends m1 (acknowledged).  A begins appending m2 and is
advanced to its read of the session file, which fails with EIO.  B reads.
A correct store lets the error out (m2 is not acknowledged) and the file
still holds m1.

Seen in: the widespread ``except (OSError, ValueError): return {}``
around loading a JSON state file, in file-per-session chat stores and
settings loaders (the ``eio-empty`` mutant).
"""
from __future__ import annotations

from sessioncheck.controlled.program import ModelConfig
from sessioncheck.regression import Scenario, fault, finish, start, until, violates

PROGRAM = (
    start("A", "add"), finish("A"),  # m1 acknowledged alone
    start("A", "add"),               # m2 begins
    until("A", "reading"),           # parked at its read of the session file
    fault("A", "EIO"),               # the read fails with EIO
    start("B", "read"),
)

SCENARIO = Scenario(
    name="eio-on-read-then-append",
    doc=__doc__,
    mode="threads",
    config=ModelConfig(actors=2, sessions=1, io_faults=("EIO",)),
    program=PROGRAM,
    expect={
        # its idempotent append compares content: the second of two equal messages is dropped
        "mutant:dedupe-by-content": violates("I1"),
        "mutant:eio-empty": violates("I1"),
    },
    notes={
        "sqlite": "an SQLite append reads nothing before it writes, and an SQL statement is not a file call "
                  "the harness can fail: no fault is injected, and the run checks only the append.",
    },
)
