"""Preemption points inside unmodified store code.

Design notes
------------
The controlled engine lets one actor run at a time.  An actor may be
preempted only where it touches the shared medium, so this module patches
the functions through which store code reaches files, locks, time and
SQLite, and turns each call into a *point*: the actor reports what it is
about to do and waits until the scheduler lets it go on.  Between two
points an actor touches only private memory, so points at shared accesses
are enough to express every interleaving that can change the outcome.

What is patched (ENGINE-NOTES.md, "Traps"): ``builtins.open`` *and*
``io.open`` (``tempfile``, ``pathlib`` and ``os.fdopen`` go through
``io.open``), ``os.open`` / ``os.close`` (``mkstemp``, filelock),
``os.replace`` / ``os.rename`` / ``os.remove`` / ``os.unlink``,
``os.fsync``, ``fcntl.flock``, ``time.sleep`` and the clocks, ``sqlite3``
connections (execute and commit become points; a busy database becomes a
cooperative poll) and ``threading.Lock`` / ``RLock`` created by store code
(an acquire that would block marks the actor blocked instead of blocking
the baton).

Patching is process-wide but *active* only in a thread that carries an
:class:`ActorContext` (a thread-local), and file calls count only under the
actor's store directory, so the scheduler, Hypothesis and pytest run
untouched.  ``install()`` must run before the store's module is imported:
names bound at import time (``from os import replace``) keep whatever they
were bound to.

Writes are not points: Python buffers them, and the data reaches the
operating system at ``flush`` / ``close``, which are points.
"""
from __future__ import annotations

import builtins
import fcntl
import io
import os
import sqlite3
import threading
import time

from sessioncheck.controlled.intercept import clock, files, locks, sqlite
from sessioncheck.controlled.intercept import postgres as postgres_statements
from sessioncheck.controlled.intercept import redis as redis_commands
from sessioncheck.controlled.intercept.clock import real_monotonic, real_sleep
from sessioncheck.controlled.intercept.context import EPOCH, ActorContext, Crashed, _real, current, enter
from sessioncheck.controlled.intercept.locks import CooperativeLock, importing_store

__all__ = ["EPOCH", "ActorContext", "Crashed", "CooperativeLock", "current", "enter", "importing_store",
           "install", "real_monotonic", "real_sleep", "_real"]

_installed = False

def install() -> None:
    """Patch the process once.  Idempotent; cheap outside actors."""
    global _installed
    if _installed:
        return
    builtins.open = files._open
    io.open = files._open
    os.open = files._os_open
    os.close = files._os_close
    os.replace = files._path_op("replace", "os.replace")
    os.rename = files._path_op("rename", "os.rename")
    os.remove = files._unlink_op("os.remove")
    os.unlink = files._unlink_op("os.unlink")
    os.fsync = files._fsync_op("os.fsync")
    if _real["os.fdatasync"] is not None:
        os.fdatasync = files._fsync_op("os.fdatasync")
    fcntl.flock = locks._flock
    time.sleep = clock._sleep
    time.time = clock._clock("time", EPOCH, 1.0, False)
    time.time_ns = clock._clock("time_ns", EPOCH, 1e9, True)
    time.monotonic = clock._clock("monotonic", 1000.0, 1.0, False)
    time.monotonic_ns = clock._clock("monotonic_ns", 1000.0, 1e9, True)
    time.perf_counter = clock._clock("perf_counter", 1000.0, 1.0, False)
    time.perf_counter_ns = clock._clock("perf_counter_ns", 1000.0, 1e9, True)
    sqlite3.connect = sqlite._sqlite_connect
    threading.Lock = locks._Lock
    threading.RLock = locks._RLock
    redis_commands.install()  # redis-py commands, only if it is importable
    postgres_statements.install()  # psycopg 3 statements, only if it is importable
    _installed = True
