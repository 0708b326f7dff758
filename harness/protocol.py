"""The store protocol: the one small interface every backend implements.

A *store factory* is called with a location (a directory shared by every
writer) and returns a *store instance*.  Each actor opens its own instance
on the same location, as separate writers do in real life; instances never
share memory on purpose.

Contract of an instance (what the harness relies on, in call order):

- ``add_message(session_id, message)`` appends one message and returns
  ``None`` once it is acknowledged (durable as far as the store promises).
  Raising means "not acknowledged": the message may or may not be there.
- ``persist_state(session_id, fields)`` merges ``fields`` into the session's
  metadata.  A value of ``None`` clears that field: later reads show
  ``None`` or no field at all.  Fields not named are left as they are.
- ``read(session_id)`` returns a :class:`SessionState` with the messages in
  order and the metadata.  A session never written reads as empty.
- ``delete_session(session_id)`` only if ``capabilities.delete`` is true.
- ``pop_message(session_id)`` only if ``capabilities.pop``: removes the
  session's last message and returns it (``None`` when there is none).
- ``clear_messages(session_id)`` only if ``capabilities.clear``: removes
  every message of the session and keeps its metadata.
- ``close()`` is optional; it is called once when the actor is done.

A message is a dict with ``role`` and ``content``; the harness makes every
``content`` unique and uses it as the message's identity, unless the store
names a field of its own (``Capabilities.message_identity``): then every
message carries its id in that field, ``content`` is not unique, and reads
must give the field back.  With ``--messages rich`` the model also adds
assistant, system, tool-call and tool messages
(:mod:`sessioncheck.controlled.messages`).

Capabilities are declared on the instance (or its class) as a
``capabilities`` attribute, never guessed.

Resources.  A store that keeps its data in a server asks for it: its
factory declares ``resources = ("redis",)`` (an attribute of the class or
function) and is then called as ``factory(location, redis_url=URL)``.  The
harness starts the server once per campaign (:mod:`sessioncheck.servers`),
gives every run an empty namespace (the URL's database, emptied between
runs) and stops the server afterwards.  Every instance of one run gets the
same URL; the location is still a fresh directory per run.  Resources known
today: ``redis`` (keyword ``redis_url``, a ``redis://`` or ``unix://`` URL
for ``redis.Redis.from_url``) and ``postgres`` (keyword ``postgres_dsn``, a
libpq connection string for ``psycopg.connect``, whose ``search_path`` is
the run's own schema: tables created without a schema name land there).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, runtime_checkable


Message = dict  # {"role": str, "content": str}


@dataclass
class SessionState:
    """What one read of a session returned.

    ``archived`` holds messages the store moved out of ``messages`` by its
    own retention policy; the durable record of the session is
    ``archived + messages`` and invariant I1 is checked against it.
    """

    messages: list[Message] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    archived: list[Message] = field(default_factory=list)

    def message_ids(self, identity: str = "content") -> list[str]:
        """The identities (field ``identity``, ``content`` by default) of
        the durable record, in order."""
        return [str(m.get(identity)) for m in [*self.archived, *self.messages]]


@dataclass(frozen=True)
class Capabilities:
    """What a store declares about itself.

    - ``metadata``: ``persist_state`` is supported (otherwise the model
      never calls it).
    - ``delete``: ``delete_session`` is supported.
    - ``pop``: ``pop_message`` is supported (remove and return the last message).
    - ``clear``: ``clear_messages`` is supported (remove every message).
    - ``rename``: ``rename_session(session_id, name)`` is supported (set
      the session's name, read back as ``metadata["name"]``).
    - ``retention``: a short description of the store's retention policy
      when it moves old messages to ``SessionState.archived``; ``None`` if
      it keeps every message.
    - ``refusals``: exception types (besides ``OSError``, ``TimeoutError``
      and SQLite's busy/locked errors, always refusals) that mean "refused,
      not done": the operation may or may not have taken effect, and the
      checker treats it so, instead of reporting it.  Looked for anywhere
      in the exception's chain (``__cause__``, ``__context__``, ``.orig``).
    - ``metadata_fields``: the metadata fields the model writes with
      ``persist_state`` (the ones the store keeps); empty: the model's
      default two, ``compute_instance_id`` and ``model``.
    - ``message_identity``: the message field that tells messages apart
      (``content``, the default, or one of the store's own such as ``id``);
      the model writes each message's id there and reads ids from it.
    - ``message_kinds``: the message kinds (:mod:`sessioncheck.controlled.
      messages`) the model adds, as declared fields drive the metadata:
      the shapes the store takes (``("user", "assistant", "tool_call",
      "tool")`` for a chat history with tools); empty: the model's kinds
      (``--messages``: plain ``user`` messages by default).
    - ``metadata_values``: a Hypothesis strategy of the values the store
      keeps (JSON data), drawn beside the model's value kinds; ``None`` is
      always mixed in (a clear).  Drawn values go into programs and
      reports as literals (:mod:`sessioncheck.controlled.values`).
    """

    metadata: bool = True
    delete: bool = False
    pop: bool = False
    clear: bool = False
    rename: bool = False
    retention: str | None = None
    refusals: tuple[type, ...] = ()
    metadata_fields: tuple[str, ...] = ()
    message_identity: str = "content"
    message_kinds: tuple[str, ...] = ()
    metadata_values: Any = None


@runtime_checkable
class SessionStore(Protocol):
    def add_message(self, session_id: str, message: Message) -> None: ...

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None: ...

    def read(self, session_id: str) -> SessionState: ...


StoreFactory = Callable[[Path], SessionStore]

def capabilities_of(store: Any) -> Capabilities:
    caps = getattr(store, "capabilities", None)
    return caps if isinstance(caps, Capabilities) else Capabilities()


@dataclass(frozen=True)
class StoreSpec:
    """A resolved store spec: its name as the user wrote it and its factory."""

    name: str
    factory: StoreFactory
    module: str

    @property
    def resources(self) -> tuple[str, ...]:
        """The servers the factory asks for (``resources = ("redis",)``);
        :func:`sessioncheck.specs.resolve` binds their addresses, so
        ``factory(location)`` is all a caller ever writes."""
        return tuple(getattr(self.factory, "resources", ()) or ())

    def open(self, location: Path) -> SessionStore:
        return self.factory(location)

    def describe(self) -> str:
        doc = (self.factory.__doc__ or "").strip().splitlines()
        return doc[0] if doc else self.name
