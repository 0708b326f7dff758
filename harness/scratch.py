"""Where the harness puts what it makes and removes: run locations, probe
and warm-up directories, private servers' data."""
from __future__ import annotations

import os


def scratch_dir() -> str | None:
    """``$SESSIONCHECK_TMPDIR``, else ``/dev/shm`` (real files and real
    locks, but an fsync costs nothing there; what is durable is the
    harness's own model, not the disk's), else the system temporary
    directory (``None``, as ``tempfile`` takes it)."""
    env = os.environ.get("SESSIONCHECK_TMPDIR")
    if env:
        return env
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        return "/dev/shm"
    return None
