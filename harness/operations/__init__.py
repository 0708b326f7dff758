"""Operations as plug-ins: one small definition per operation.

An :class:`OperationDef` says how to call an operation on a store instance
(``call``, ``output``), what it does to the specification (``effect``, one
of :data:`EFFECTS`), which capability a store declares to have it in its
model (``capability``), and how a story names it (``describe``).  The
checker works on effects, never on names, so any mix of defined operations
is decided the same way (``sessioncheck.checking.checker``).

The built-in operations are defined here the same way, one module each
(``add``, ``persist``, ``read``, ``delete``, ``pop``, ``clear``,
``rename``).  A user
defines their own with :func:`register` and starts it from a rule of a
``sessioncheck.SessionMachine`` subclass.

Effects on the specification of one session (an append-only list of
messages and a map of last-writer-wins registers):

- ``append``: the input (a message id) is appended to the list;
- ``registers``: the input (a dict of fields) is merged into the
  registers, ``None`` clearing a field;
- ``remove_last``: the last message is removed; the output is its id, or
  ``None`` when the list was empty;
- ``clear``: every message is removed; the registers stay;
- ``delete``: the messages and every register are removed;
- ``read``: nothing changes; the output is the state, and while other
  operations are in flight it may show any of their outcomes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

EFFECTS = ("append", "registers", "remove_last", "clear", "delete", "read")
#: effects that change the state (what a power-loss probe follows)
MUTATIONS = ("append", "registers", "remove_last", "clear", "delete")
#: effects that remove messages
REMOVALS = ("remove_last", "clear", "delete")
#: what the engine draws as an operation's input
INPUTS = ("message", "fields", "none")


@dataclass(frozen=True)
class OperationDef:
    """One operation.

    ``call(store, session_id, value)`` calls the store (it may return an
    awaitable; the actor awaits it); ``output(result)`` turns what the call
    returned into plain history data (a read's state, a popped message's
    id); for an operation with ``input="message"``, ``value`` is the
    message dict (``{"role": "user", "content": "m1"}`` by default, a
    drawn shape with ``--messages rich``) and the history holds its id;
    ``capability`` is the ``Capabilities`` attribute that puts the
    operation in a store's model (``None``: always in); ``method`` is the
    store method behind it, for messages; ``input`` is what the engine
    draws for it (:data:`INPUTS`)."""

    name: str
    effect: str
    call: Callable[[Any, str, Any], Any]
    method: str
    input: str = "none"
    capability: str | None = None
    output: Callable[[Any], Any] = lambda result: None
    describe: Callable[[str, Any], str] | None = None
    #: the register keys a ``fields`` operation writes (``None``: the
    #: model's metadata fields)
    keys: tuple[str, ...] | None = None
    #: ``output`` for an operation whose output names messages:
    #: ``output_identity(result, identity)`` reads them by the store's
    #: identity field (``Capabilities.message_identity``); used instead
    #: of ``output`` when set
    output_identity: Callable[[Any, str], Any] | None = None

    def __post_init__(self) -> None:
        if self.effect not in EFFECTS:
            raise ValueError(f"operation {self.name!r}: effect must be one of {', '.join(EFFECTS)}")
        if self.input not in INPUTS:
            raise ValueError(f"operation {self.name!r}: input must be one of {', '.join(INPUTS)}")
        if self.name in ("open", "close") or not self.name.isidentifier():
            raise ValueError(f"operation name {self.name!r} must be an identifier other than open/close")

    def text(self, session: str, value: Any) -> str:
        """The call as a story prints it."""
        if self.describe is not None:
            return self.describe(session, value)
        return f"{self.method}({session})" if value is None else f"{self.method}({session}, {value!r})"


_REGISTRY: dict[str, OperationDef] = {}


def register(op: OperationDef, *, replace: bool = False) -> OperationDef:
    """Add ``op`` to the registry (by name).  Registering another
    definition under a taken name raises ``ValueError`` unless ``replace``."""
    old = _REGISTRY.get(op.name)
    if old is not None and old is not op and not replace:
        raise ValueError(f"an operation named {op.name!r} is already registered")
    _REGISTRY[op.name] = op
    return op


def get(name: str) -> OperationDef:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown operation {name!r}") from None


def find(name: str) -> OperationDef | None:
    return _REGISTRY.get(name)


def effect_of(name: str) -> str | None:
    op = _REGISTRY.get(name)
    return op.effect if op is not None else None


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


from sessioncheck.operations import add, persist, read, delete, pop, clear, rename  # noqa: E402,F401

#: the built-in operations, in model order
BUILTIN = ("add", "persist", "read", "delete", "pop", "clear", "rename")
