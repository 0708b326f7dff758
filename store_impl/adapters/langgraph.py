"""Adapters to LangGraph's SQLite checkpointer (package langgraph-checkpoint-sqlite).

Tested with langgraph-checkpoint-sqlite 3.1.2 and langgraph-checkpoint 4.3.2
(CPython 3.11).  The ``langgraph`` package itself is not needed: the
adapters call the checkpointer the way a compiled graph does.

What they wrap: ``langgraph.checkpoint.sqlite.SqliteSaver`` on one file
database, ``<dir>/checkpoints.sqlite``, opened per instance with
``sqlite3.connect(path, check_same_thread=False)`` as the package documents.
A session is a LangGraph *thread* (``thread_id``), namespace ``""``.
Checkpoint and write ids are ``uuid6`` strings from
``langgraph.checkpoint.base.id``: time-ordered, so "latest" and the order of
writes follow real time.

A graph appends to its state in one of two ways, and each is a spec:

``langgraph`` (put_writes; insert only)
    Every thread has one root checkpoint with a fixed id that sorts before
    every real id (written with ``put``, ``INSERT OR REPLACE`` of identical
    bytes, so writing it again is harmless).  ``add_message`` =
    ``put_writes(root, [("messages", message)], task_id=<new uuid6>)``: a
    pending write per append, as each task of a super-step records its
    writes; the saver returns pending writes sorted by task id, so the
    time-ordered task id keeps append order.  ``persist_state`` = ``put`` of
    a new child checkpoint of the root whose metadata is exactly the fields
    written (``None`` kept as JSON ``null``).  ``read`` = ``list`` of the
    thread's checkpoints: messages are the root's pending writes on channel
    ``messages``; metadata is the fold of every checkpoint's metadata from
    oldest to newest, where ``null`` clears a field.  No operation reads
    before it writes, so every mutation is one SQLite transaction.

``langgraph-read-put`` (read the latest checkpoint, put a child)
    ``add_message`` = ``get_tuple`` of the latest checkpoint, then ``put`` of
    a child whose ``messages`` channel is the parent's list plus the message
    (what a node returning the whole list, or ``update_state``, does);
    ``persist_state`` = the same with the fields merged into a copy of the
    parent's metadata (``None`` removes the key).  ``read`` = the latest
    checkpoint's ``messages`` channel and metadata.  Read and put are two
    transactions with nothing between them: two writers that read the same
    parent each put a child, and the newer child hides the other append.

Capabilities: metadata yes (checkpoint metadata), delete no (``delete_thread``
exists, but the fixed root id of the put_writes mapping would let an append
that raced a delete reappear later, which is the mapping's doing, not the
store's), retention none (every checkpoint and write is kept).

Note: ``SqliteSaver`` strips ``"\\x00"`` from string metadata values and drops
what UTF-8 cannot encode (``encode("utf-8", "ignore")``).
"""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from langgraph.checkpoint.base import Checkpoint, copy_checkpoint, empty_checkpoint
from langgraph.checkpoint.base.id import uuid6

from sessioncheck.protocol import Capabilities, Message, SessionState

DB_NAME = "checkpoints.sqlite"
CHANNEL = "messages"
#: Sorts before every uuid6 the package generates (their first hex digit is
#: the high bits of a 60-bit timestamp, non-zero since 1582 + 2^56 * 100 ns).
ROOT_ID = "00000000-0000-6000-8000-000000000000"


def _thread(session_id: str, checkpoint_id: str | None = None) -> dict:
    conf: dict[str, Any] = {"thread_id": session_id, "checkpoint_ns": ""}
    if checkpoint_id is not None:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


def _child(parent: Checkpoint) -> Checkpoint:
    child = copy_checkpoint(parent)
    child["id"] = str(uuid6(clock_seq=-1))
    child["ts"] = datetime.now(timezone.utc).isoformat()
    return child


class _SaverStore:
    capabilities = Capabilities(metadata=True, delete=False, retention=None)

    def __init__(self, location: Path) -> None:
        # Imported here: the mappings below also serve the PostgreSQL saver
        # (langgraph_postgres.py), which must not need the SQLite package.
        from langgraph.checkpoint.sqlite import SqliteSaver

        Path(location).mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(Path(location) / DB_NAME), check_same_thread=False)
        self.saver = SqliteSaver(self.conn)

    def close(self) -> None:
        self.conn.close()


class PutWritesStore(_SaverStore):
    """langgraph SqliteSaver: put_writes per append on a root checkpoint, metadata as child checkpoints."""

    def _root(self) -> Checkpoint:
        root = empty_checkpoint()
        root["id"], root["ts"] = ROOT_ID, "1970-01-01T00:00:00+00:00"
        return root

    def add_message(self, session_id: str, message: Message) -> None:
        self.saver.put(_thread(session_id), self._root(), {}, {})
        self.saver.put_writes(_thread(session_id, ROOT_ID), [(CHANNEL, dict(message))],
                              task_id=str(uuid6()))

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        self.saver.put(_thread(session_id, ROOT_ID), _child(self._root()), dict(fields), {})

    def read(self, session_id: str) -> SessionState:
        tuples = list(self.saver.list(_thread(session_id)))  # newest first
        state = SessionState()
        for t in reversed(tuples):
            if t.config["configurable"]["checkpoint_id"] == ROOT_ID:
                state.messages = [v for _, ch, v in t.pending_writes or () if ch == CHANNEL]
            for key, value in t.metadata.items():
                if value is None:
                    state.metadata.pop(key, None)
                else:
                    state.metadata[key] = value
        return state


class ReadPutStore(_SaverStore):
    """langgraph SqliteSaver: read the latest checkpoint, put a child with the change."""

    def _update(self, session_id: str, message: Message | None, fields: Mapping[str, Any]) -> None:
        latest = self.saver.get_tuple(_thread(session_id))
        if latest is None:
            parent_config, parent, metadata = _thread(session_id), empty_checkpoint(), {}
        else:
            parent_config, parent, metadata = latest.config, latest.checkpoint, dict(latest.metadata)
        child = _child(parent)
        new_versions = {}
        if message is not None:
            child["channel_values"][CHANNEL] = [*parent["channel_values"].get(CHANNEL, []), dict(message)]
            new_versions[CHANNEL] = self.saver.get_next_version(
                parent["channel_versions"].get(CHANNEL), None)
            child["channel_versions"].update(new_versions)
        for key, value in fields.items():
            if value is None:
                metadata.pop(key, None)
            else:
                metadata[key] = value
        self.saver.put(parent_config, child, metadata, new_versions)

    def add_message(self, session_id: str, message: Message) -> None:
        self._update(session_id, message, {})

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        self._update(session_id, None, fields)

    def read(self, session_id: str) -> SessionState:
        latest = self.saver.get_tuple(_thread(session_id))
        if latest is None:
            return SessionState()
        return SessionState(messages=list(latest.checkpoint["channel_values"].get(CHANNEL, [])),
                            metadata=dict(latest.metadata))


def open_put_writes_store(location: Path) -> PutWritesStore:
    """langgraph SqliteSaver: put_writes with a unique task id per append."""
    return PutWritesStore(location)


def open_read_put_store(location: Path) -> ReadPutStore:
    """langgraph SqliteSaver: read the latest checkpoint, then put a child with the message."""
    return ReadPutStore(location)
