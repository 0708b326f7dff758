"""Stores that exist only to test the harness's liveness reports (I5).

Not mutants of a session store: they deadlock or hang on purpose.
"""
from __future__ import annotations

import fcntl
import os
import queue
from pathlib import Path

from sessioncheck.stores.reference.json_store import JsonFileStore


class DeadlockStore(JsonFileStore):
    """add_message locks a then b; persist_state locks b then a (blocking flock)."""

    def _locked(self, first: str, second: str, fn):
        fds = []
        try:
            for name in (first, second):
                fd = os.open(self.dir / name, os.O_RDWR | os.O_CREAT)
                fds.append(fd)
                fcntl.flock(fd, fcntl.LOCK_EX)
            fn()
        finally:
            for fd in reversed(fds):
                os.close(fd)

    def add_message(self, session_id, message):
        def go():
            data = self._load(session_id)
            data["messages"].append(message)
            self._save(session_id, data)
        self._locked("a.lock", "b.lock", go)

    def persist_state(self, session_id, fields):
        def go():
            data = self._load(session_id)
            data["metadata"].update({k: v for k, v in fields.items() if v is not None})
            for k, v in fields.items():
                if v is None:
                    data["metadata"].pop(k, None)
            self._save(session_id, data)
        self._locked("b.lock", "a.lock", go)


_forever: "queue.Queue[None]" = queue.Queue()


class HangingStore(JsonFileStore):
    """add_message waits on a queue nobody fills: it blocks where the
    harness has no preemption point."""

    def add_message(self, session_id, message):
        _forever.get(timeout=60)


class RaisingFactory:
    """A factory that fails: a configuration error, not a violation."""

    def __new__(cls, location: Path):
        raise RuntimeError("cannot connect to the session database")


class SlowSqliteRmw:
    """The sqlite-rmw mutant (SELECT then UPDATE in autocommit), every call
    made slow by a fixed amount of real CPU work (tens of ms) the virtual clock cannot skip: a
    search whose every run costs real seconds, for the budget's bound."""

    def __new__(cls, location: Path):
        import hashlib

        from sessioncheck.stores.mutants.sqlite_rmw import Store

        class Slow(Store):
            def _burn(self):
                # a fixed amount of work: the harness's clock is virtual
                for _ in range(int(os.environ.get("SLOW_STORE_WORK", "40000"))):
                    hashlib.sha1(b"x" * 256).digest()

            def add_message(self, session_id, message):
                self._burn()
                return super().add_message(session_id, message)

            def persist_state(self, session_id, fields):
                self._burn()
                return super().persist_state(session_id, fields)

            def read(self, session_id):
                self._burn()
                return super().read(session_id)

        return Slow(location)
