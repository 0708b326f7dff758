"""Test-only variants of the fd-level reference stores (controls)."""
from __future__ import annotations

from sessioncheck.stores.reference.osync_store import BytesPathStore


class NoSyncBytesPathStore(BytesPathStore):
    """BytesPathStore without ``O_SYNC``: its data is never synced (buggy)."""

    sync_flag = 0


import json  # noqa: E402
import mmap  # noqa: E402
import os  # noqa: E402

from sessioncheck.stores.mutants.unlocked_rmw import Store as UnlockedRmw  # noqa: E402


class MmapReadStore(UnlockedRmw):
    """``mutant:unlocked-rmw`` reading its session file through an ``mmap``:
    loads from a mapping are memory accesses, never a call (buggy)."""

    def _load(self, session_id):
        try:
            fd = os.open(self._path(session_id), os.O_RDONLY)
        except FileNotFoundError:
            return {"messages": [], "metadata": {}}
        try:
            size = os.fstat(fd).st_size
            if not size:
                return {"messages": [], "metadata": {}}
            with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as m:
                return json.loads(m[:])
        finally:
            os.close(fd)


import shutil  # noqa: E402
import time  # noqa: E402

from sessioncheck.stores.reference.json_store import JsonFileStore  # noqa: E402


class ExclLockCopyStore(JsonFileStore):
    """An ``O_EXCL`` lock file (retried with a sleep) and a pid/object-id
    named temp file that is copied over the session file, then unlinked
    (correct without power loss while uncontended; its names are what
    the story tests look at)."""

    def _lock(self, session_id):
        store = self
        lock = str(self._path(session_id)) + ".lock"

        class Lock:
            def __enter__(self):
                for _ in range(1000):
                    try:
                        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                    except FileExistsError:
                        time.sleep(0.01)
                        continue
                    os.write(fd, str(os.getpid()).encode())
                    os.close(fd)
                    return self
                raise TimeoutError(lock)

            def __exit__(self, *exc):
                os.unlink(lock)

        del store
        return Lock()

    def _save(self, session_id, data):
        path = self._path(session_id)
        tmp = f"{path}.{os.getpid()}.{id(self):x}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        shutil.copyfile(tmp, path)
        os.unlink(tmp)


import dbm.dumb  # noqa: E402
import shelve  # noqa: E402

from filelock import FileLock  # noqa: E402

from sessioncheck.protocol import SessionState  # noqa: E402
from sessioncheck.stores.reference.json_store import merge_fields  # noqa: E402


class ShelveStore:
    """One ``shelve`` on ``dbm.dumb`` (bytes paths inside), every call
    under one file lock (correct without power loss: dbm.dumb never
    fsyncs)."""

    def __init__(self, location):
        from pathlib import Path

        self.dir = Path(location)
        self._lock = FileLock(str(self.dir / "db.lock"), timeout=10)

    def _db(self):
        return shelve.Shelf(dbm.dumb.open(str(self.dir / "db"), "c"))

    def _update(self, session_id, change):
        with self._lock:
            with self._db() as db:
                data = db.get(session_id, {"messages": [], "metadata": {}})
                change(data)
                db[session_id] = data

    def add_message(self, session_id, message):
        self._update(session_id, lambda d: d["messages"].append(message))

    def persist_state(self, session_id, fields):
        self._update(session_id, lambda d: merge_fields(d, fields))

    def read(self, session_id):
        with self._lock:
            with self._db() as db:
                data = db.get(session_id, {"messages": [], "metadata": {}})
        return SessionState(messages=list(data["messages"]), metadata=dict(data["metadata"]))


import tempfile  # noqa: E402


class MmapAfterFsyncStore(JsonFileStore):
    """fsyncs its temp file, *then* stores the data through a shared
    mapping (no msync), replaces and fsyncs the directory (buggy: the data
    reached the file after its only sync; no call shows the stores)."""

    def _save(self, session_id, data):
        path = self._path(session_id)
        raw = json.dumps(data).encode()
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.ftruncate(fd, len(raw))
            os.fsync(fd)  # BUG: before the data is in the file
            with mmap.mmap(fd, len(raw)) as m:
                m[:] = raw
            os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        self._fsync_dir()
