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
- ``close()`` is optional; it is called once when the actor is done.

A message is a dict with ``role`` and ``content``; the harness makes every
``content`` unique and uses it as the message's identity.

Capabilities are declared on the instance (or its class) as a
``capabilities`` attribute, never guessed.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, runtime_checkable

from .errors import ConfigError

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

    def message_ids(self) -> list[str]:
        """The identities (``content``) of the durable record, in order."""
        return [str(m.get("content")) for m in [*self.archived, *self.messages]]


@dataclass(frozen=True)
class Capabilities:
    """What a store declares about itself.

    - ``metadata``: ``persist_state`` is supported (otherwise the model
      never calls it).
    - ``delete``: ``delete_session`` is supported.
    - ``retention``: a short description of the store's retention policy
      when it moves old messages to ``SessionState.archived``; ``None`` if
      it keeps every message.
    """

    metadata: bool = True
    delete: bool = False
    retention: str | None = None


@runtime_checkable
class SessionStore(Protocol):
    def add_message(self, session_id: str, message: Message) -> None: ...

    def persist_state(self, session_id: str, fields: Mapping[str, Any]) -> None: ...

    def read(self, session_id: str) -> SessionState: ...


StoreFactory = Callable[[Path], SessionStore]

#: Built-in store names and where their factories live.  Mutants are named
#: ``mutant:<name>`` and live in ``store_impl/mutant_<name>.py`` (dashes
#: become underscores) with a ``Store`` class.
BUILTIN = {
    "json": "store_impl.json_store:JsonFileStore",
    "sqlite": "store_impl.sqlite_store:SqliteStore",
    "json-delete": "store_impl.json_store:JsonFileStoreWithDelete",
    "json-retention": "store_impl.json_retention_store:JsonRetentionStore",
}


def capabilities_of(store: Any) -> Capabilities:
    caps = getattr(store, "capabilities", None)
    return caps if isinstance(caps, Capabilities) else Capabilities()


def mutant_names() -> list[str]:
    """Every mutant in the gallery, by its spec name (without ``mutant:``)."""
    import store_impl

    here = Path(store_impl.__file__).parent
    return sorted(p.stem[len("mutant_"):].replace("_", "-") for p in here.glob("mutant_*.py"))


@dataclass(frozen=True)
class StoreSpec:
    """A resolved store spec: its name as the user wrote it and its factory."""

    name: str
    factory: StoreFactory
    module: str

    def open(self, location: Path) -> SessionStore:
        return self.factory(location)

    def describe(self) -> str:
        doc = (self.factory.__doc__ or "").strip().splitlines()
        return doc[0] if doc else self.name


def resolve(spec: str) -> StoreSpec:
    """Turn a spec into a factory, or raise :class:`ConfigError`.

    A spec is a built-in name (``json``, ``sqlite``), ``mutant:<name>``, an
    adapter name from ``store_impl.adapters``, or ``package.module:factory``.
    Only this function imports code named by the user.
    """
    spec = spec.strip()
    if not spec:
        raise ConfigError("empty store spec; try --store json")
    target = BUILTIN.get(spec)
    if target is None and spec.startswith("mutant:"):
        name = spec[len("mutant:"):]
        if name not in mutant_names():
            raise ConfigError(
                f"unknown mutant {name!r}; known mutants: {', '.join(mutant_names())}"
            )
        target = f"store_impl.mutant_{name.replace('-', '_')}:Store"
    if target is None:
        from store_impl import adapters

        adapter = adapters.ADAPTERS.get(spec)
        if adapter is not None:
            target = adapters.load(spec)
    if target is None:
        if ":" not in spec:
            known = ", ".join([*BUILTIN, "mutant:<name>", *_adapter_names()])
            raise ConfigError(
                f"unknown store {spec!r}; use one of {known}, or package.module:factory"
            )
        target = spec
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"store spec {spec!r} must look like package.module:factory")
    from . import intercept

    # Interception goes in before the store's module is imported, so names
    # it binds at import time are the patched ones, and its module-level
    # locks are cooperative (ENGINE-NOTES, trap 2).
    intercept.install()
    try:
        with intercept.importing_store():
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r} for store {spec!r}: {exc}") from None
    except Exception as exc:  # a module that fails while importing
        raise ConfigError(
            f"importing {module_name!r} for store {spec!r} raised {type(exc).__name__}: {exc}"
        ) from None
    factory = module
    for part in attr.split("."):
        factory = getattr(factory, part, None)
        if factory is None:
            raise ConfigError(f"{module_name!r} has no attribute {attr!r} (store {spec!r})")
    if not callable(factory):
        raise ConfigError(f"{target!r} is not callable; a store factory takes a directory")
    return StoreSpec(name=spec, factory=factory, module=module_name)


def _adapter_names() -> list[str]:
    try:
        from store_impl import adapters
    except ImportError:
        return []
    return list(adapters.ADAPTERS)


def probe(spec: StoreSpec, location: Path) -> Capabilities:
    """Open one instance on an empty location to check the factory works.

    Raises :class:`ConfigError` naming the failure, so that a factory that
    raises is a configuration error (exit 2), not a violation.
    """
    try:
        store = spec.open(location)
    except Exception as exc:
        raise ConfigError(
            f"store {spec.name!r}: factory raised {type(exc).__name__}: {exc}"
        ) from None
    missing = [m for m in ("add_message", "persist_state", "read") if not callable(getattr(store, m, None))]
    if missing:
        raise ConfigError(
            f"store {spec.name!r}: instance of {type(store).__name__} lacks {', '.join(missing)}"
        )
    caps = capabilities_of(store)
    close = getattr(store, "close", None)
    if callable(close):
        close()
    return caps
