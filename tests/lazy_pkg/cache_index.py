"""A module that does file I/O when it is imported, as many libraries do
(a cache directory made and locked, an index file written and read back):
imported lazily inside a store's operation (tests/fixture_lazy_stores.py)."""
from __future__ import annotations

import json
import os
import tempfile

CACHE = os.path.join(tempfile.gettempdir(), f"sessioncheck-test-cache-{os.getpid()}")
os.makedirs(CACHE, exist_ok=True)
_marker = os.path.join(CACHE, "index.lock")
try:
    os.close(os.open(_marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))  # "the cache is mine"
except FileExistsError:
    pass
with open(os.path.join(CACHE, "index.json"), "w") as f:
    json.dump({"loaded": True}, f)
with open(os.path.join(CACHE, "index.json")) as f:
    INDEX = json.load(f)
os.unlink(_marker)


def stamp(message: dict) -> dict:
    """The message as stored: a copy (the index is only read)."""
    return dict(message) if INDEX["loaded"] else message

os.unlink(os.path.join(CACHE, "index.json"))
os.rmdir(CACHE)
