"""Adapters to PraisonAI's session persistence (praisonaiagents, praisonai).

Tested with praisonaiagents 1.7.17 and praisonai 4.7.19 (CPython 3.11).

Three specs, one real store underneath: ``DefaultSessionStore`` from
``praisonaiagents.session.store``, a JSON file per session
(``<dir>/<session>.json``) guarded by ``<session>.json.lock`` (``fcntl.flock``
with ``LOCK_NB`` polled every 50 ms, 5 s timeout), written by
``NamedTemporaryFile`` + ``os.replace`` (no fsync).  Every factory call opens
a *new* store instance on the directory, with its own in-memory cache, as a
second process or gateway would.

``praisonai``
    ``add_message`` -> ``DefaultSessionStore.add_message`` (locked
    read-modify-write); ``persist_state`` -> ``update_session_metadata``
    (locked read-modify-write of metadata; it *skips* fields whose value is
    ``None``, so a clear never reaches disk: that is the store's behaviour,
    not hidden here); ``read`` -> ``get_session``; ``delete_session`` ->
    ``delete_session`` (``os.remove`` without the lock).
``praisonai-prefix``
    The same store, ``persist_state`` in the pre-fix pattern: ``get_session``
    -> ``metadata.update(fields)`` -> ``_save_session`` (the real private
    method, which takes the lock only around the write of the copy it was
    handed): a message appended between the read and the write is lost.
``praisonai-agent``
    ``praisonai``'s ``LocalManagedAgent`` end to end.  Each store instance
    owns one agent per session (a long-lived agent, as in a gateway);
    ``persist_state`` sets the agent's own state attributes and calls
    ``_persist_state()`` (which merges the agent's *whole* state through
    ``update_session_metadata``); ``add_message`` is the agent's
    ``_persist_message``; ``read`` is a fresh agent on a fresh store calling
    ``_restore_state()``.  Only state the agent can both write and restore is
    offered (``AGENT_FIELDS``: ``compute_instance_id``, ``agent_id``,
    ``environment_id``, and ``model``, which the agent keeps in its config and
    persists inside the ``config`` entry); ``compute_provider`` is derived from an attached
    compute object and never restored, so it is left out, and other fields
    raise ``ValueError``.  The agent writes its whole state on every
    ``_persist_state``, so one actor's agent rewrites the fields it holds
    even when the call set another one.

Mapping of a read: ``messages`` are the active window without the store's
own synthetic compaction summary (a message nobody appended, marked
``metadata["compaction"]``); ``archived`` is ``archived_messages``;
``metadata`` is the session's metadata dict.

Retention, declared: the default ``compact`` policy keeps the newest
``active_window`` (100) messages in ``messages`` and moves older ones to
``archived_messages``; messages plus archive are the durable record.
``small_window`` opens the same store with ``active_window=4`` so short
workloads reach the compaction path.

One change to configuration, not to code: the store salvages a message it
failed to write into a "spill" directory under ``~/.praisonai`` (or
``$PRAISONAI_HOME``) and folds it back in on the next load.  The adapters
point that directory at ``<dir>/.spill`` so that every file the store
touches lies under the store's directory, where the harness sees it, and
runs never leave files in the user's home.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

# Imported here, before any actor runs, because the store imports them
# lazily inside methods (compaction summary, failure hooks): a first import
# inside an actor would take the interpreter's import lock mid-operation.
import praisonaiagents.context.compressor  # noqa: F401
import praisonaiagents.hooks.events  # noqa: F401
import praisonaiagents.hooks.registry  # noqa: F401
import praisonaiagents.hooks.runner  # noqa: F401
import praisonaiagents.hooks.types  # noqa: F401
from praisonaiagents.session.store import DefaultSessionStore, SessionData

try:  # praisonai (the application package) is needed by praisonai-agent only
    from praisonai.integrations.managed_local import LocalManagedAgent
except ImportError:  # pragma: no cover - depends on the installed extras
    LocalManagedAgent = None

from sessioncheck.protocol import Capabilities, Message, SessionState

RETENTION = "compact: messages beyond the active window move to archived_messages"

#: Metadata fields ``praisonai-agent`` can write and a resumed agent restores,
#: mapped to the agent attribute that holds each (``model`` lives in the
#: agent's config and is persisted inside its ``config`` entry).  All are
#: unset in a new agent; the token counters (which start at 0 and are
#: written by every ``_persist_state``) are left out so a read shows only
#: what was set.
AGENT_FIELDS = {
    "compute_instance_id": "_compute_instance_id",
    "agent_id": "agent_id",
    "environment_id": "environment_id",
    "model": "_cfg",
}


def _set_field(agent: Any, key: str, value: Any) -> None:
    if key == "model":
        agent._cfg["model"] = value
    else:
        setattr(agent, AGENT_FIELDS[key], value)


def _get_field(agent: Any, key: str) -> Any:
    return agent._cfg.get("model") if key == "model" else getattr(agent, AGENT_FIELDS[key])


class _Store(DefaultSessionStore):
    """``DefaultSessionStore`` with its spill directory under the store's own."""

    def _spill_dir(self) -> str:
        return os.path.join(self.session_dir, ".spill")


def _state(session: SessionData) -> SessionState:
    return SessionState(
        messages=[{"role": m.role, "content": m.content} for m in session.messages
                  if not (m.metadata or {}).get("compaction")],
        metadata=dict(session.metadata),
        archived=[{"role": m.role, "content": m.content} for m in session.archived_messages],
    )


def _check(ok: bool, what: str, session_id: str) -> None:
    # The store reports failure by returning False (after logging it);
    # raising makes the operation "not acknowledged" for the harness.
    if not ok:
        raise OSError(f"DefaultSessionStore.{what} returned False for session {session_id!r}")


class PraisonAIStore:
    """praisonaiagents DefaultSessionStore; persist_state = update_session_metadata."""

    capabilities = Capabilities(metadata=True, delete=True, retention=RETENTION)

    def __init__(self, location: Path, **options: Any) -> None:
        self.store = _Store(session_dir=str(location), **options)

    def add_message(self, session_id: str, message: Message) -> None:
        _check(self.store.add_message(session_id, message["role"], message["content"]),
               "add_message", session_id)

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        _check(self.store.update_session_metadata(session_id, **fields),
               "update_session_metadata", session_id)

    def read(self, session_id: str) -> SessionState:
        return _state(self.store.get_session(session_id))

    def delete_session(self, session_id: str) -> None:
        _check(self.store.delete_session(session_id), "delete_session", session_id)


class PraisonAIPrefixStore(PraisonAIStore):
    """praisonaiagents DefaultSessionStore; persist_state = get_session, update, _save_session (pre-fix)."""

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        session = self.store.get_session(session_id)
        session.metadata.update(fields)
        _check(self.store._save_session(session), "_save_session", session_id)


class TitleRefused(ValueError):
    """A title ``rename_session`` would not store as given (not a string,
    empty, or with blanks at its ends): the adapter refuses it before
    calling the store, so the write is "not acknowledged", never a
    finding of the adapter's making (declared in ``Capabilities.refusals``)."""


#: the model's register for a session's name (``sessioncheck.operations.rename.NAME``)
#: and where praisonai keeps it (``metadata["title"]``, Issue #3737)
NAME, TITLE = "name", "title"


class PraisonAIEditsStore(PraisonAIStore):
    """praisonaiagents DefaultSessionStore with its other mutators in the model:
    ``clear_session`` (clear) and ``rename_session`` (rename; the title), and
    ``set_agent_info`` for machines (the operation ``praisonai_agent_info``).

    - ``clear_messages`` -> ``clear_session``: a locked read-modify-write
      (``_modify_session_locked``) that empties ``messages`` and drops the
      compaction anchor; metadata and ``archived_messages`` stay.
    - ``rename_session(s, name)`` -> ``rename_session(s, title)``: a locked
      read-modify-write of ``metadata["title"]``; the store strips the title
      and an empty one clears it, so ``None`` is passed as the store's clear
      and any title it would change (not a ``str``, ``''``, blanks at an
      end) is refused (:class:`TitleRefused`) without calling it.  A read
      shows the title as the model's ``metadata["name"]``.
    - ``set_agent_info(s, agent_name=, user_id=)``: a locked read-modify-write
      of two attributes of the session, shown in a read's metadata under
      their own names.  It skips every falsy value (``if agent_name:``), the
      pattern of the ``None``-skipping metadata update.
    """

    capabilities = Capabilities(metadata=True, delete=True, retention=RETENTION, clear=True, rename=True,
                                refusals=(TitleRefused,))

    def clear_messages(self, session_id: str) -> None:
        _check(self.store.clear_session(session_id), "clear_session", session_id)

    def rename_session(self, session_id: str, name: Any) -> None:
        if name is not None and not (isinstance(name, str) and name and name == name.strip()):
            raise TitleRefused(f"rename_session stores a stripped, non-empty str title, not {name!r}")
        _check(self.store.rename_session(session_id, name), "rename_session", session_id)

    def set_agent_info(self, session_id: str, fields: Mapping[str, Any]) -> None:
        _check(self.store.set_agent_info(session_id, **fields), "set_agent_info", session_id)

    def read(self, session_id: str) -> SessionState:
        session = self.store.get_session(session_id)
        state = _state(session)
        if TITLE in state.metadata:
            state.metadata[NAME] = state.metadata.pop(TITLE)
        for key in AGENT_INFO:
            value = getattr(session, key, None)
            if value is not None:
                state.metadata[key] = value
        return state


#: the session attributes ``set_agent_info`` writes
AGENT_INFO = ("agent_name", "user_id")


def _register_agent_info() -> Any:
    """``praisonai_agent_info``: ``set_agent_info`` as an operation of the
    model, a register write of ``agent_name`` and ``user_id`` (``None``
    clears a field, as for ``persist_state``).  Registered on import, so a
    ``SessionMachine`` rule can start it and a report naming it replays."""
    from sessioncheck import operations

    def describe(session: str, fields: Any) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in dict(fields or {}).items())
        return f"set_agent_info({session}, {args})"

    return operations.register(operations.OperationDef(
        name="praisonai_agent_info", effect="registers", input="fields", method="set_agent_info",
        keys=AGENT_INFO, call=lambda store, session, fields: store.set_agent_info(session, dict(fields)),
        describe=describe), replace=True)


AGENT_INFO_OP = _register_agent_info()


class PraisonAIAgentStore:
    """praisonai LocalManagedAgent: _persist_state() to write, a fresh agent's _restore_state() to read."""

    capabilities = Capabilities(metadata=True, delete=False, retention=RETENTION)

    def __init__(self, location: Path) -> None:
        if LocalManagedAgent is None:
            raise RuntimeError("praisonai-agent needs the praisonai package: pip install 'sessioncheck[praisonai-agent]'")
        self.location = location
        self.store = _Store(session_dir=str(location))
        self.agents: dict[str, Any] = {}

    def _agent(self, session_id: str, store: DefaultSessionStore) -> Any:
        agent = LocalManagedAgent(session_store=store)
        agent._session_id = session_id
        return agent

    def add_message(self, session_id: str, message: Message) -> None:
        agent = self.agents.get(session_id) or self.agents.setdefault(
            session_id, self._agent(session_id, self.store))
        # _persist_message ignores the store's return value; a failed write
        # is still visible to the harness as a message missing from reads.
        agent._persist_message(message["role"], message["content"])

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None:
        unknown = sorted(set(fields) - set(AGENT_FIELDS))
        if unknown:
            raise ValueError(f"LocalManagedAgent state has no field {', '.join(unknown)}")
        agent = self.agents.get(session_id) or self.agents.setdefault(
            session_id, self._agent(session_id, self.store))
        for key, value in fields.items():
            _set_field(agent, key, value)
        agent._persist_state()

    def read(self, session_id: str) -> SessionState:
        fresh = self._agent(session_id, _Store(session_dir=str(self.location)))
        fresh._restore_state()
        state = _state(fresh._session_store.get_session(session_id))
        state.metadata = {k: _get_field(fresh, k) for k in AGENT_FIELDS
                          if _get_field(fresh, k) is not None}
        return state


def open_store(location: Path) -> PraisonAIStore:
    """praisonaiagents DefaultSessionStore (persist_state = update_session_metadata)."""
    return PraisonAIStore(location)


def open_prefix_store(location: Path) -> PraisonAIPrefixStore:
    """praisonaiagents DefaultSessionStore with the pre-fix persist pattern (get_session, update, _save_session)."""
    return PraisonAIPrefixStore(location)


def open_agent_store(location: Path) -> PraisonAIAgentStore:
    """praisonai LocalManagedAgent end to end (_persist_state / a fresh agent's _restore_state)."""
    return PraisonAIAgentStore(location)


def open_edits_store(location: Path) -> PraisonAIEditsStore:
    """praisonaiagents DefaultSessionStore with clear_session and rename_session (title) in the model."""
    return PraisonAIEditsStore(location)


def small_window(location: Path) -> PraisonAIStore:
    """praisonaiagents DefaultSessionStore, compact retention with an active window of 4 messages."""
    return PraisonAIStore(location, retention="compact", active_window=4)


def small_window_edits(location: Path) -> PraisonAIEditsStore:
    """praisonai-edits with compact retention and an active window of 4 messages (clear_session meets the archive)."""
    return PraisonAIEditsStore(location, retention="compact", active_window=4)
