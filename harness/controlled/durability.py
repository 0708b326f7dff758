"""Power loss: what is durable, computed from the file operations seen.

``kill -9`` does not model power loss: the kernel still writes the page
cache.  The persistence model here is the pessimistic one POSIX promises,
as ALICE (OSDI 2014) and LazyFS (VLDB 2024) assume:

- a file's *data* is durable as of the ``fsync`` / ``fdatasync`` that
  *follows* its write: the file's content at the moment the sync is
  called, never a write made after it; a write through an fd opened
  ``O_SYNC`` / ``O_DSYNC`` (and an ``mmap`` flush) is durable when it
  returns; ``os.sync()`` makes every file and directory durable as they
  are when it is called; data never synced is lost (the file reads back
  empty, or as of its last sync);
- a *directory entry* (a create, a rename or replace, an unlink) is
  durable only once its directory was fsynced (or ``os.sync()`` ran).

After every acknowledged mutation the harness materialises two crash
states and reads them with a fresh store instance:

- ``strict``: directory entries as of the last directory fsync, contents
  as of the last file fsync (every unsynced operation dropped);
- ``entries-first``: every directory entry as it is now, contents as of the
  last file fsync (the rename reached the disk, the data did not: the
  classic zero-length file of ext4 with delayed allocation, or XFS).

Each crash state must hold every *acknowledged* mutation (I6), and it
must parse (I4).  Reads made before the power loss are not promises:
data a reader saw from a write that was never acknowledged may be gone.
SQLite's own fsyncs happen in C and cannot be seen; its files are trusted
to be durable as of each statement it completes (true for its default
``synchronous`` settings).
"""
from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sessioncheck.controlled.actor import Point

SQLITE_SUFFIXES = ("", "-wal", "-journal", "-shm")


@dataclass
class DurableState:
    root: str
    content: dict[int, bytes] = field(default_factory=dict)  # inode -> durable data
    entries: dict[str, dict[str, int]] = field(default_factory=dict)  # dir (relative) -> name -> inode

    def _abs(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel not in ("", ".") else self.root

    def before(self, point: Point) -> None:
        """Called just before an actor performs ``point``: a sync makes
        durable what is on file *now*, not what the actor writes after it
        (the actor runs on to its next point before :meth:`performed`)."""
        if point.kind == "fsync":
            path = self._abs(point.path)
            if os.path.isdir(path):
                self._snapshot_dir(path)
            else:
                self._snapshot_file(path)
        elif point.kind == "sync":  # os.sync(): everything, as it is now
            for dirpath, _, files in os.walk(self.root):
                self._snapshot_dir(dirpath)
                for f in files:
                    p = os.path.join(dirpath, f)
                    if os.path.isfile(p) and not os.path.islink(p):
                        self._snapshot_file(p)

    def performed(self, point: Point) -> None:
        """Called after an actor performed ``point``."""
        if point.kind in ("write", "flush", "close") and point.detail in ("sync", "msync"):
            # O_SYNC / O_DSYNC write, or msync: durable as the call returns
            path = self._abs(point.path)
            if os.path.isfile(path):
                self._snapshot_file(path)
        elif point.kind == "sql":
            base = os.path.join(self.root, point.path)
            for suffix in SQLITE_SUFFIXES:
                p = base + suffix
                if os.path.exists(p):
                    ino = self._snapshot_file(p)
                    if ino is not None:
                        rel = os.path.relpath(os.path.dirname(p), self.root)
                        self.entries.setdefault(rel, {})[os.path.basename(p)] = ino

    def _snapshot_file(self, path: str) -> int | None:
        try:
            with open(path, "rb") as fh:
                ino = os.fstat(fh.fileno()).st_ino
                self.content[ino] = fh.read()
            return ino
        except OSError:
            return None

    def _snapshot_dir(self, path: str) -> None:
        rel = os.path.relpath(path, self.root)
        names = {}
        for entry in os.scandir(path):
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode):
                names[entry.name] = st.st_ino
        self.entries[rel] = names

    def _current_entries(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for dirpath, _, files in os.walk(self.root):
            rel = os.path.relpath(dirpath, self.root)
            out[rel] = {}
            for f in files:
                try:
                    st = os.lstat(os.path.join(dirpath, f))
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    out[rel][f] = st.st_ino
        return out

    def materialise(self, model: str, into: str) -> None:
        """Write the crash state ``model`` (strict / entries-first) into ``into``."""
        entries = self.entries if model == "strict" else self._current_entries()
        for rel, names in entries.items():
            d = os.path.join(into, rel)
            os.makedirs(d, exist_ok=True)
            for name, ino in names.items():
                Path(d, name).write_bytes(self.content.get(ino, b""))


MODELS = ("strict", "entries-first")


def crash_reads(state: DurableState, spec, sessions: list[str], scratch: str | None) -> list[tuple[str, str, object]]:
    """Read every session from each crash state with a fresh instance.

    Returns ``(model, session, value-or-exception)`` triples; the value is
    a read's plain result (``sessioncheck.controlled.actor.read_value``)."""
    from sessioncheck.controlled.actor import read_value
    from sessioncheck.controlled.messages import identity_of
    from sessioncheck.controlled.aio import Uncontrolled

    out = []
    for model in MODELS:
        d = tempfile.mkdtemp(prefix="sessioncheck-powerloss-", dir=scratch)
        settle = Uncontrolled()  # an async store's calls are awaited
        try:
            state.materialise(model, d)
            try:
                store = settle(spec.open(Path(d)))
            except Exception as exc:  # noqa: BLE001 - a state the store cannot open
                out.extend((model, s, exc) for s in sessions)
                continue
            try:
                for s in sessions:
                    try:
                        out.append((model, s, read_value(settle(store.read(s)), identity_of(store))))
                    except Exception as exc:  # noqa: BLE001
                        out.append((model, s, exc))
            finally:
                close = getattr(store, "close", None)
                if callable(close):
                    settle(close())
        finally:
            settle.close()
            shutil.rmtree(d, ignore_errors=True)
    return out
