"""The reference JSON-file store: correct under every test sessioncheck has.

One file ``<session>.json`` per session holding ``{"messages": [...],
"metadata": {...}}``.  Every mutation is a locked read-modify-write:

1. take ``<session>.json.lock`` with ``filelock`` (an ``flock`` on Unix);
2. read the file *under the lock* (never a cached or earlier copy);
3. write the new state to a temp file in the same directory, flush and
   fsync it, ``os.replace`` it over the session file, fsync the directory;
4. release the lock.

Reads take no lock: ``os.replace`` is atomic, so a reader sees the old or
the new file, never a half-written one.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

from filelock import FileLock

from sessioncheck.protocol import Capabilities, Message, SessionState


def merge_fields(data: dict, fields: Mapping[str, Any]) -> None:
    """Merge ``fields`` into ``data["metadata"]``; ``None`` clears a field."""
    meta = data.setdefault("metadata", {})
    for key, value in fields.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value


class JsonFileStore:
    """JSON file per session, filelock, atomic replace, fsync (reference)."""

    capabilities = Capabilities()
    lock_timeout = 10.0

    def __init__(self, location: Path) -> None:
        self.dir = Path(location)
        self.dir.mkdir(parents=True, exist_ok=True)

    # -- helpers --------------------------------------------------------
    def _path(self, session_id: str) -> Path:
        return self.dir / f"{session_id}.json"

    def _lock(self, session_id: str) -> FileLock:
        return FileLock(str(self._path(session_id)) + ".lock", timeout=self.lock_timeout)

    def _load(self, session_id: str) -> dict:
        try:
            with open(self._path(session_id), encoding="utf-8") as fh:
                data = json.load(fh)
        except FileNotFoundError:
            return {"messages": [], "metadata": {}}
        return data

    def _save(self, session_id: str, data: dict) -> None:
        path = self._path(session_id)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        dfd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    # -- the protocol ---------------------------------------------------
    def add_message(self, session_id: str, message: Message) -> None:
        with self._lock(session_id):
            data = self._load(session_id)
            data["messages"].append(message)
            self._save(session_id, data)

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        with self._lock(session_id):
            data = self._load(session_id)
            merge_fields(data, fields)
            self._save(session_id, data)

    def read(self, session_id: str) -> SessionState:
        data = self._load(session_id)
        return SessionState(messages=list(data["messages"]), metadata=dict(data["metadata"]))

    def delete_session(self, session_id: str) -> None:
        """Remove the session under its lock; a missing session is a no-op.

        The lock file stays: unlinking a locked file would split waiters
        across inodes (the ``lock-unlinked`` mutant).  Declared only by
        :class:`JsonFileStoreWithDelete`, so that the plain reference store's
        model stays focused on appends and metadata (``pop_message`` and
        ``clear_messages`` likewise, by :class:`JsonFileStoreWithPop`)."""
        with self._lock(session_id):
            try:
                os.unlink(self._path(session_id))
            except FileNotFoundError:
                return
            self._fsync_dir()


    def pop_message(self, session_id: str) -> Message | None:
        """Remove and return the last message, under the session's lock
        (read, drop the last, write back: all one critical section)."""
        with self._lock(session_id):
            data = self._load(session_id)
            if not data["messages"]:
                return None
            last = data["messages"].pop()
            self._save(session_id, data)
            return last

    def rename_session(self, session_id: str, name: str | None) -> None:
        """Set the session's name (``metadata["name"]``; ``None`` clears
        it), merged into the metadata under the lock as persist_state is."""
        self.persist_state(session_id, {"name": name})

    def clear_messages(self, session_id: str) -> None:
        """Remove every message, keeping the metadata, under the lock."""
        with self._lock(session_id):
            data = self._load(session_id)
            if not data["messages"]:
                return
            data["messages"] = []
            self._save(session_id, data)


class JsonFileStoreWithDelete(JsonFileStore):
    """The reference JSON store with delete_session in the model (reference)."""

    capabilities = Capabilities(delete=True)


class JsonFileStoreWithPop(JsonFileStore):
    """The reference JSON store with pop_message and clear_messages in the model (reference)."""

    capabilities = Capabilities(pop=True, clear=True)


class JsonFileStoreWithEdits(JsonFileStore):
    """The reference JSON store with pop_message, clear_messages and
    rename_session in the model (reference)."""

    capabilities = Capabilities(pop=True, clear=True, rename=True)
