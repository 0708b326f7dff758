"""The messages a model adds, by *kind*: the program names a kind (data,
cheap to draw and shrink), the engine turns it into a message dict.

A message's *identity* is the field that tells one message from another:
``content`` by default (the harness makes every ``content`` unique), or a
field of the store's own (``Capabilities.message_identity``, e.g. ``id``).
The engine writes the message's id (``m1``, ``m2``, ...) into that field;
every read is turned into ids through the same field
(:meth:`sessioncheck.protocol.SessionState.message_ids`), so the checker
decides I1 and I2 on ids whatever the message looks like.  With an
identity of the store's own, ``content`` is no longer unique (every
message of a kind says the same thing, a tool call says nothing): a store
that tells messages apart by their content is then caught losing or
merging them.

``PLAIN`` (the default, as cheap as ever) is one kind, ``user``:
``{"role": "user", "content": "m1"}``, the message every earlier version
added.  ``RICH`` adds the other roles (``assistant``, ``system``), an
assistant message with a tool call (``tool_call``: ``tool_calls`` in the
OpenAI chat format, ``content`` ``None`` unless it is the identity), the
tool's result (``tool``: ``tool_call_id`` naming the call), a unicode
message (its id is unicode too) and a 100 KB one (``large``: 100 KB of
content, or beside the content when the content is the identity).

A user's own kind: :func:`register` a function ``build(mid, identity)``
returning the message dict (it must put ``mid`` in the ``identity``
field).  A program names kinds, never code: a report naming a kind not
registered in the process that replays it is refused.
"""
from __future__ import annotations

from typing import Any, Callable

#: the field that names a message unless the store declares its own
IDENTITY = "content"
PLAIN = ("user",)  # shrinks toward a plain user message
RICH = PLAIN + ("assistant", "system", "tool_call", "tool", "unicode", "large")
#: message sets by the name ``--messages`` takes
SETS = {"plain": PLAIN, "rich": RICH}
LARGE_CHARS = 100_000

Builder = Callable[[str, str], dict]


def _text(kind: str, mid: str, identity: str, text: str) -> Any:
    """The content: the id when content is the identity, else ``text``
    (the same for every message of the kind: content names nothing)."""
    return mid if identity == "content" else text


def message_id(kind: str, n: int) -> str:
    """The id of the ``n``-th message when it is of ``kind``: ``m<n>``,
    with unicode in it for the ``unicode`` kind (a store must give an id
    back exactly, whatever its characters)."""
    return f"m{n}·ünï✓😀中" if kind == "unicode" else f"m{n}"


def _call_id(mid: str) -> str:
    return f"call_{mid}"


def _builtin(kind: str, mid: str, identity: str) -> dict:
    if kind == "user":
        msg: dict = {"role": "user", "content": _text(kind, mid, identity, "hello")}
    elif kind == "assistant":
        msg = {"role": "assistant", "content": _text(kind, mid, identity, "hi, how can I help?")}
    elif kind == "system":
        msg = {"role": "system", "content": _text(kind, mid, identity, "You are a helpful assistant.")}
    elif kind == "tool_call":
        msg = {"role": "assistant", "content": mid if identity == "content" else None,
               "tool_calls": [{"id": _call_id(mid), "type": "function",
                               "function": {"name": "lookup", "arguments": '{"query": "weather", "n": 1}'}}]}
    elif kind == "tool":
        msg = {"role": "tool", "tool_call_id": _call_id(mid), "content": _text(kind, mid, identity, '{"ok": true}')}
    elif kind == "unicode":  # the id itself is unicode (message_id): it must come back exactly
        msg = {"role": "user", "content": _text(kind, mid, identity, "ünïcødé ✓ 😀 中文 \u202eǝ")}
    elif kind == "large":
        # 100 KB of content; when content is the identity it stays the id
        # and the 100 KB ride in a field beside it
        if identity == "content":
            msg = {"role": "user", "content": mid, "attachment": "x" * LARGE_CHARS}
        else:
            msg = {"role": "user", "content": "x" * LARGE_CHARS}
    else:
        raise ValueError(f"unknown message kind {kind!r}")
    if identity != "content":
        msg[identity] = mid
    return msg


_REGISTRY: dict[str, Builder] = {}


def register(kind: str, build: Builder, *, replace: bool = False) -> str:
    """Add a message kind of the user's: ``build(mid, identity)`` returns
    the message dict, with ``mid`` in its ``identity`` field (checked on
    each build).  Returns the kind's name, to put in a model's kinds."""
    if not isinstance(kind, str) or not kind.isidentifier():
        raise ValueError(f"message kind {kind!r} must be an identifier")
    if kind in RICH or (kind in _REGISTRY and _REGISTRY[kind] is not build and not replace):
        raise ValueError(f"a message kind named {kind!r} is already defined")
    _REGISTRY[kind] = build
    return kind


def known(kind: Any) -> bool:
    """Is ``kind`` a message kind a program may name in this process?"""
    return isinstance(kind, str) and (kind in RICH or kind in _REGISTRY)


def message_of(kind: str, mid: str, identity: str = IDENTITY) -> dict:
    """The message of ``kind`` whose identity (field ``identity``) is ``mid``."""
    if kind in _REGISTRY:
        msg = _REGISTRY[kind](mid, identity)
        if not isinstance(msg, dict) or msg.get(identity) != mid:
            raise ValueError(f"message kind {kind!r} built {msg!r}: a message dict must hold its id "
                             f"{mid!r} in its identity field {identity!r}")
        return msg
    return _builtin(kind, mid, identity)


def identity_of(store: Any) -> str:
    """The field naming a message of ``store`` (its declared
    ``Capabilities.message_identity``, else ``content``)."""
    from sessioncheck.protocol import capabilities_of

    return capabilities_of(store).message_identity


def id_of(message: Any, identity: str = IDENTITY) -> str:
    """A message's id as a read shows it: the text of its identity field."""
    return str(message.get(identity)) if isinstance(message, dict) else repr(message)


def summary(message: Any) -> str:
    """A message's shape in a few words, for a story: its role, a tool
    call's function, a tool result's call."""
    if not isinstance(message, dict):
        return type(message).__name__
    role = str(message.get("role", "?"))
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls:
        names = [str((c.get("function") or {}).get("name", "?")) if isinstance(c, dict) else "?" for c in calls]
        return f"{role} calling {', '.join(names)}"
    if message.get("tool_call_id"):
        return f"{role} result of {message['tool_call_id']}"
    content = message.get("content")
    if isinstance(content, str) and len(content) > 1000:
        return f"{role}, {len(content) // 1000} KB"
    return role
