"""Correct stores that make their data durable without fsyncing it.

Both do what :class:`~sessioncheck.stores.reference.json_store.JsonFileStore`
does (a locked read-modify-write of one JSON document per session, a temp
file replaced atomically over it), with ``bytes`` paths and ``os.read`` /
``os.write`` throughout:

- :class:`BytesPathStore`: temp files are opened ``O_SYNC`` (each
  ``os.write`` is durable when it returns), the directory is fsynced
  after the replace;
- :class:`SyncAllStore`: plain writes, no fsync at all, one ``os.sync()``
  after the replace (every file and directory entry is durable).

Both pass power loss; their buggy twin is ``mutant:fsync-before-write``
(every call of the recipe, in the wrong order).
"""
from __future__ import annotations

import json
import os

from sessioncheck.stores.reference.fd_store import _decode, _Locked, _read_all, _write_all


class BytesPathStore(_Locked):
    """Bytes paths, os.read, O_SYNC temp files, atomic replace (reference)."""

    sync_flag = os.O_SYNC

    def _path(self, session_id: str) -> bytes:
        return os.fsencode(self.dir) + b"/" + session_id.encode() + b".json"

    def _load(self, session_id: str) -> dict:
        try:
            fd = os.open(self._path(session_id), os.O_RDONLY)
        except FileNotFoundError:
            return {"messages": [], "metadata": {}}
        try:
            return _decode(_read_all(fd))
        finally:
            os.close(fd)

    def _store(self, session_id: str, data: dict) -> None:
        path = self._path(session_id)
        tmp = path + b".tmp"  # under the session's lock: one writer at a time
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | self.sync_flag, 0o644)
        try:
            _write_all(fd, json.dumps(data).encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)
        self._made_durable()

    def _made_durable(self) -> None:
        dfd = os.open(os.fsencode(self.dir), os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


class SyncAllStore(BytesPathStore):
    """Plain writes, then one os.sync() after the replace (reference)."""

    sync_flag = 0

    def _made_durable(self) -> None:
        os.sync()
