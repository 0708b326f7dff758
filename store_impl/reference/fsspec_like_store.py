"""The reference JSON store, written the way fsspec-style code treats its files.

fsspec's ``LocalFileOpener`` and similar wrappers set attributes on the
file object they open (``f.size``, ``f.path``) and read them back.  A
harness whose file wrapper refuses attributes a real file object accepts
turns such a store into an ``AttributeError`` with one actor and no
concurrency.  This store does exactly what :class:`JsonFileStore` does,
and sets and reads attributes on every file object it opens: correct.
"""
from __future__ import annotations

import json
import os
import tempfile

from sessioncheck.stores.reference.json_store import JsonFileStore


class FsspecLikeStore(JsonFileStore):
    """JsonFileStore that annotates its file objects (reference)."""

    def _load(self, session_id):
        try:
            fh = open(self._path(session_id), "rb")
        except FileNotFoundError:
            return {"messages": [], "metadata": {}}
        with fh:
            fh.size = os.fstat(fh.fileno()).st_size
            fh.path = str(self._path(session_id))
            raw = fh.read(fh.size)
        return json.loads(raw)

    def _save(self, session_id, data):
        path = self._path(session_id)
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.path = tmp
                fh.autocommit = True
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
