"""Interception cannot be sidestepped by another name of a patched function.

After ``install()``, no module a store can reach may still hold one of the
real functions of intercept's ``_real`` table under any attribute name: a
library calling ``sqlite3.dbapi2.connect`` (SQLAlchemy's pysqlite) or
``posix.open`` would otherwise run uncontrolled, invisible to the schedule.
"""
from __future__ import annotations

import _io
import _thread
import builtins
import fcntl
import io
import os
import posix
import sqlite3
import sqlite3.dbapi2
import threading
import time

from sessioncheck.controlled import intercept

MODULES = (sqlite3, sqlite3.dbapi2, time, os, posix, io, _io, builtins, fcntl, threading, _thread)

#: Names deliberately left bound to the real function, each with its reason.
ALLOWED = {
    # threading's own Condition.wait_for, Semaphore.acquire(timeout) and
    # Thread.join compute deadlines with _time around *real* blocking waits;
    # a virtual clock that stands still while the thread really waits would
    # turn each bounded wait into an endless one.  Store code reads the clock
    # through time.monotonic, which is patched.
    ("threading", "_time"),
    # The raw primitive under threading's own Condition, Event and Thread
    # (and the thread transport's baton): never a lock of the store's.  Store
    # code creates its locks through threading.Lock / RLock, which are
    # patched (and decide by the creating module).
    ("threading", "_allocate_lock"),
    ("_thread", "allocate_lock"),
}


def _real_functions() -> dict[int, str]:
    return {id(fn): name for name, fn in intercept._real.items() if fn is not None}


def _unpatched() -> list[str]:
    real = _real_functions()
    left = []
    for module in MODULES:
        modname = "_io" if module is _io else module.__name__
        for attr, value in vars(module).items():
            if id(value) in real and (modname, attr) not in ALLOWED:
                left.append(f"{modname}.{attr} (still the real {real[id(value)]})")
    return left


def test_no_alias_of_a_real_function_is_left_unpatched():
    intercept.install()
    left = _unpatched()
    assert not left, "unpatched aliases: " + ", ".join(left)


def test_the_allow_list_names_only_real_aliases():
    # An entry that is no longer an alias (a Python upgrade, or it got
    # patched) must leave the list, so the list stays a list of decisions.
    intercept.install()
    real = _real_functions()
    by_name = {("_io" if m is _io else m.__name__): m for m in MODULES}
    stale = [f"{m}.{a}" for m, a in ALLOWED if id(getattr(by_name[m], a, None)) not in real]
    assert not stale, stale


def test_the_scan_names_an_alias_left_unpatched():
    # The first test can fail: put the real connect back under its second
    # name (as before this was patched) and the scan names it.
    intercept.install()
    saved = sqlite3.dbapi2.connect
    sqlite3.dbapi2.connect = intercept._real["sqlite3.connect"]
    try:
        assert any(x.startswith("sqlite3.dbapi2.connect ") for x in _unpatched())
    finally:
        sqlite3.dbapi2.connect = saved
    assert _unpatched() == []
