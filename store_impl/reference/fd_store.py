"""Correct stores that reach their files below Python's file objects.

Each one does what :class:`~sessioncheck.stores.reference.json_store.JsonFileStore`
does (one JSON document per session, every mutation a read-modify-write
under ``<session>.json.lock``, durable before it is acknowledged), through
another set of calls, so that the harness is shown to see every one:

- :class:`PreadStore`: one cached fd per session, read with ``os.pread``
  and rewritten in place with ``os.pwrite`` + ``os.ftruncate`` + ``os.fsync``;
  reads take the lock too (an in-place write is not atomic).
- :class:`DirFdStore`: a cached directory fd; every file is opened,
  replaced and unlinked *relative to it* (``os.open(dir_fd=...)``,
  ``os.replace(src_dir_fd=..., dst_dir_fd=...)``), read with ``os.read``.

Their buggy twins are ``mutant:pread-rmw`` and ``mutant:dir-fd-rmw`` (no
lock).  Durable without an fsync of their data: ``osync_store.py``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from filelock import FileLock

from sessioncheck.protocol import Capabilities, Message, SessionState
from sessioncheck.stores.reference.json_store import merge_fields

EMPTY: dict = {"messages": [], "metadata": {}}


def _decode(raw: bytes) -> dict:
    return json.loads(raw) if raw else {"messages": [], "metadata": {}}


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _Locked:
    """What every store here shares: the lock and the protocol on top of
    ``_load`` / ``_store``."""

    capabilities = Capabilities()
    lock_timeout = 10.0

    def __init__(self, location: Path) -> None:
        self.dir = Path(location)
        self.dir.mkdir(parents=True, exist_ok=True)

    def _lock(self, session_id: str) -> FileLock:
        return FileLock(str(self.dir / f"{session_id}.json.lock"), timeout=self.lock_timeout)

    def _load(self, session_id: str) -> dict:
        raise NotImplementedError

    def _store(self, session_id: str, data: dict) -> None:
        raise NotImplementedError

    def _update(self, session_id: str, change) -> None:
        with self._lock(session_id):
            data = self._load(session_id)
            change(data)
            self._store(session_id, data)

    def add_message(self, session_id: str, message: Message) -> None:
        self._update(session_id, lambda d: d["messages"].append(message))

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        self._update(session_id, lambda d: merge_fields(d, fields))

    def read(self, session_id: str) -> SessionState:
        data = self._read_unlocked(session_id)
        return SessionState(messages=list(data["messages"]), metadata=dict(data["metadata"]))

    def _read_unlocked(self, session_id: str) -> dict:
        return self._load(session_id)

    def _fsync_dir(self) -> None:
        dfd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


class PreadStore(_Locked):
    """One cached fd per session, pread / pwrite in place, locked (reference)."""

    def __init__(self, location: Path) -> None:
        super().__init__(location)
        self._fds: dict[str, int] = {}

    def _fd(self, session_id: str) -> int:
        fd = self._fds.get(session_id)
        if fd is None:
            fd = self._fds[session_id] = os.open(self.dir / f"{session_id}.json", os.O_RDWR | os.O_CREAT, 0o644)
            self._fsync_dir()  # the file's name is durable before anything is acknowledged in it
        return fd

    def _load(self, session_id: str) -> dict:
        fd = self._fd(session_id)
        return _decode(os.pread(fd, os.fstat(fd).st_size, 0))

    def _store(self, session_id: str, data: dict) -> None:
        fd = self._fd(session_id)
        raw = json.dumps(data).encode()
        os.pwrite(fd, raw, 0)
        os.ftruncate(fd, len(raw))
        os.fsync(fd)

    def _read_unlocked(self, session_id: str) -> dict:
        with self._lock(session_id):  # an in-place rewrite is not atomic: read under the lock
            return self._load(session_id)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


class DirFdStore(_Locked):
    """Every file reached relative to a cached directory fd, locked (reference)."""

    def __init__(self, location: Path) -> None:
        super().__init__(location)
        self._dfd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)

    def _load(self, session_id: str) -> dict:
        try:
            fd = os.open(f"{session_id}.json", os.O_RDONLY, dir_fd=self._dfd)
        except FileNotFoundError:
            return {"messages": [], "metadata": {}}
        try:
            return _decode(_read_all(fd))
        finally:
            os.close(fd)

    def _store(self, session_id: str, data: dict) -> None:
        name = f"{session_id}.json"
        tmp = f".{name}.{os.getpid()}.{id(self):x}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=self._dfd)
        try:
            try:
                _write_all(fd, json.dumps(data).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=self._dfd, dst_dir_fd=self._dfd)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=self._dfd)
            except OSError:
                pass
            raise
        os.fsync(self._dfd)

    def close(self) -> None:
        if self._dfd is not None:
            os.close(self._dfd)
            self._dfd = None
