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
``os.fsync``, ``fcntl.flock``, ``fcntl.lockf`` and ``fcntl.fcntl`` record locks,
``time.sleep`` and the clocks, ``sqlite3``
connections (execute and commit become points; a busy database becomes a
cooperative poll), redis-py commands, psycopg 3 and psycopg2 statements
(a statement waiting in the server for a parked actor's lock is a lock
wait) and ``threading.Lock`` / ``RLock`` / ``Semaphore`` / ``BoundedSemaphore`` and
``multiprocessing`` locks and semaphores created by store code
(an acquire that would block marks the actor blocked instead of blocking
the baton; a lock only one actor takes is no point).  Each under every
name it is reachable by (``posix.open``, ``_io.open``,
``sqlite3.dbapi2.connect``); the few names deliberately left are listed,
with their reasons, in ``tests/test_intercept_aliases.py``.

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

import fcntl
import sqlite3
import sys
from typing import Any
import sqlite3.dbapi2
import threading
import time

from sessioncheck.controlled.intercept import clock, files, locks, sqlite, threads
from sessioncheck.controlled.intercept import postgres as postgres_statements
from sessioncheck.controlled.intercept import psycopg2_statements
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
    # Every name a real function is reachable by (io.open is _io.open, os.X
    # is posix.X, sqlite3.connect is sqlite3.dbapi2.connect): a store, or a
    # library it uses (SQLAlchemy connects through sqlite3.dbapi2), must not
    # sidestep a point by the name it calls.  tests/test_intercept_aliases.py
    # checks that no other name is left.
    files.install()  # every alias of the file functions, dir_fd forms, fd-level I/O, os.sync, mmap flush
    fcntl.flock = locks._flock
    time.sleep = clock._sleep
    time.time = clock._clock("time", EPOCH, 1.0, False)
    time.time_ns = clock._clock("time_ns", EPOCH, 1e9, True)
    time.monotonic = clock._clock("monotonic", 1000.0, 1.0, False)
    time.monotonic_ns = clock._clock("monotonic_ns", 1000.0, 1e9, True)
    time.perf_counter = clock._clock("perf_counter", 1000.0, 1.0, False)
    time.perf_counter_ns = clock._clock("perf_counter_ns", 1000.0, 1e9, True)
    sqlite3.connect = sqlite3.dbapi2.connect = sqlite._sqlite_connect
    threading.Lock = locks._Lock
    threading.RLock = locks._RLock
    redis_commands.install()  # redis-py commands, only if it is importable
    # a store's own threads, pool work and forks (intercept/threads.py)
    threads.install()
    threading.Semaphore = locks._Semaphore
    threading.BoundedSemaphore = locks._BoundedSemaphore
    fcntl.lockf = locks._lockf
    fcntl.fcntl = locks._fcntl
    locks.install_process_locks()
    postgres_statements.install()  # psycopg 3 statements, only if it is importable
    psycopg2_statements.install()  # psycopg2 statements (SQLAlchemy's default driver), likewise
    _quiet_abandoned_finalizers()
    _installed = True


def _quiet_abandoned_finalizers() -> None:
    """An abandoned actor's finalizers end quietly.

    An actor the scheduler abandons (stuck, retired, shut down while parked)
    unwinds through :class:`Crashed` and performs no more I/O: every later
    point raises ``Crashed`` again.  A finalizer that runs as the unwinding
    drops its objects (``filelock.BaseFileLock.__del__`` releasing the lock)
    meets that too, and Python reports an exception raised in a finalizer
    as "Exception ignored in ...", with a traceback, on stderr.  That
    ``Crashed`` is the harness stopping the I/O on purpose: nothing to
    report.  Every other unraisable exception goes to the previous hook."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, Crashed):
            return
        previous(unraisable)

    sys.unraisablehook = hook
