"""The adapter contract, checked on one instance before any search.

A store (or an adapter around one) is what its factory returns when
called with **one argument, a** :class:`pathlib.Path` of an empty
directory.  The instance has

- ``add_message(session_id, message)``: ``message`` is a ``dict``
  ``{"role": "user", "content": "m1"}``; ``content`` is the message's
  identity, unless ``Capabilities.message_identity`` names another field
  (then the message carries its id there too);
- ``persist_state(session_id, fields)``: merges a ``dict`` of fields;
- ``read(session_id)``: returns a :class:`~sessioncheck.protocol.SessionState`
  (or a ``dict`` with ``"messages"``) whose messages are dicts that keep
  the identity field (``content``) they were added with;
- ``delete_session(session_id)`` if ``capabilities.delete``;
- optionally ``close()`` (no arguments) and ``capabilities``, a
  :class:`~sessioncheck.protocol.Capabilities` (missing: the defaults are
  assumed and the summary says so).

Methods may be coroutine functions.  An operation that raises ``OSError``,
``TimeoutError`` or ``sqlite3.OperationalError`` was "not acknowledged";
so was one whose error ``--allow-errors`` matches.  Any other exception is
a finding if the operation does not raise it alone (E1, an operation
failed only under concurrency), else a configuration error: the store
fails with no concurrency at all, here as in the search
(``engine.Executor._classify_errors``).

:func:`check` opens one instance on an empty location, under a watchdog,
and checks all of this; a breach is a :class:`ConfigError` naming the
adapter and the fix (exit 2), never a violation.  Its location is removed
afterwards, whatever happens.
"""
from __future__ import annotations

import inspect
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sessioncheck.errors import ConfigError
from sessioncheck.protocol import Capabilities, SessionState, StoreSpec

#: (method, the arguments the harness passes) for every required method
SIGNATURES = (
    ("add_message", ("session_id", "message")),
    ("persist_state", ("session_id", "fields")),
    ("read", ("session_id",)),
)

PROBE_SESSION = "probe-s0"
PROBE_MESSAGE = {"role": "user", "content": "probe-m1"}


@dataclass
class Probed:
    """What the probe learnt: the capabilities, and whether the store
    declared them or they were assumed."""

    capabilities: Capabilities
    declared: bool


_probing = threading.local()


def _await(value: Any) -> Any:
    """A coroutine method's result, awaited on the probe's one loop (an
    async store's instance keeps one loop from open to close, as aiosqlite
    needs: :class:`sessioncheck.controlled.aio.Uncontrolled`)."""
    if not inspect.isawaitable(value):
        return value
    return _probing.settle(value)


def _fail(spec: StoreSpec, text: str) -> ConfigError:
    return ConfigError(f"store {spec.name!r} does not follow the adapter contract: {text} "
                       "(see the README, 'Testing your own store')")


def _signature(spec: StoreSpec, store: Any, method: str, names: tuple[str, ...]) -> None:
    fn = getattr(store, method, None)
    if not callable(fn):
        raise _fail(spec, f"instance of {type(store).__name__} lacks {method}({', '.join(names)})")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # a builtin without a signature: called and seen
    try:
        sig.bind(*names)
    except TypeError as exc:
        raise _fail(spec, f"{type(store).__name__}.{method}{sig} cannot be called as "
                          f"{method}({', '.join(names)}): {exc}; the harness calls it with exactly "
                          f"{len(names)} positional argument{'s' if len(names) > 1 else ''}") from None


def _state(spec: StoreSpec, store: Any, value: Any) -> SessionState:
    if isinstance(value, SessionState):
        return value
    if isinstance(value, dict) and "messages" in value:
        return SessionState(list(value.get("messages") or []), dict(value.get("metadata") or {}))
    raise _fail(spec, f"{type(store).__name__}.read() returned {type(value).__name__} "
                      f"({_short(value)}), not a SessionState (or a dict with \"messages\"); "
                      "wrap the store's own result: SessionState(messages=[...dicts...], metadata={...})")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _refused(exc: BaseException) -> bool:
    """A refusal the harness knows, or an error ``--allow-errors`` names."""
    from sessioncheck.controlled.actor import UNAVAILABLE
    from sessioncheck.controlled.refusals import allowed, describe_chain

    if isinstance(exc, UNAVAILABLE):
        return True
    patterns = getattr(_probing, "allowed", ())
    return bool(patterns) and allowed(describe_chain(exc), patterns)


def _describe(exc: BaseException) -> str:
    from sessioncheck.controlled import exits

    if isinstance(exc, Exception):
        return f"raised {type(exc).__name__}: {exc}"
    return exits.describe(exc).replace("the store ", "")


def _open(spec: StoreSpec, location: Path) -> Any:
    try:
        return _await(spec.open(location))
    except BaseException as exc:  # noqa: BLE001 - every way a factory fails is a config error
        hint = ""
        if isinstance(exc, (TypeError, AttributeError)):
            hint = _str_hint(spec, location)
        raise ConfigError(f"store {spec.name!r}: factory {_describe(exc)}{hint}") from None


def _str_hint(spec: StoreSpec, location: Path) -> str:
    """Does the factory work when given a str?  Then say that it is called
    with a pathlib.Path."""
    other = Path(tempfile.mkdtemp(prefix="sessioncheck-probe-", dir=str(location.parent)))
    try:
        store = _await(spec.factory(str(other)))
        close = getattr(store, "close", None)
        if callable(close):
            _await(close())
        works = True
    except BaseException:  # noqa: BLE001
        works = False
    finally:
        shutil.rmtree(other, ignore_errors=True)
    text = "; the factory is called with one argument, a pathlib.Path of an empty directory"
    if works:
        text += (" (it works with a str: wrap it, e.g. `def factory(path): return MyStore(str(path))`, "
                 "and name that as the store)")
    return text


def _probe(spec: StoreSpec, location: Path) -> Probed:
    store = _open(spec, location)
    try:
        caps_attr = getattr(store, "capabilities", None)
        if caps_attr is not None and not isinstance(caps_attr, Capabilities):
            raise _fail(spec, f"{type(store).__name__}.capabilities is {type(caps_attr).__name__}, not a "
                              "sessioncheck.protocol.Capabilities; declare "
                              "`capabilities = Capabilities(metadata=..., delete=...)` or leave it out")
        caps = caps_attr if isinstance(caps_attr, Capabilities) else Capabilities()
        for method, names in SIGNATURES:
            _signature(spec, store, method, names)
        if caps.delete:
            _signature(spec, store, "delete_session", ("session_id",))
        if caps.pop:
            _signature(spec, store, "pop_message", ("session_id",))
        if caps.clear:
            _signature(spec, store, "clear_messages", ("session_id",))
        close = getattr(store, "close", None)
        if close is not None:
            _signature(spec, store, "close", ())
        identity = caps.message_identity
        if not isinstance(identity, str) or not identity:
            raise _fail(spec, f"Capabilities.message_identity must name a message field, not {identity!r}")
        from sessioncheck.controlled import messages

        bad = [k for k in caps.message_kinds if not messages.known(k)]
        if bad:
            raise _fail(spec, f"Capabilities.message_kinds names unknown kinds {bad}; built in: "
                              f"{', '.join(messages.RICH)} (or register your own in sessioncheck.controlled.messages)")
        probe = messages.message_of("user", PROBE_MESSAGE["content"], identity)
        _state(spec, store, _call(spec, store, "read", PROBE_SESSION))
        try:
            _await(store.add_message(PROBE_SESSION, probe))
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, Exception) and _refused(exc):
                return Probed(caps, caps_attr is not None)  # refused: the search will tell
            raise _fail(spec, f"add_message({PROBE_SESSION!r}, {probe!r}) on an empty location "
                              f"{_describe(exc)}; a message is a dict with role and content") from None
        state = _state(spec, store, _call(spec, store, "read", PROBE_SESSION))
        for m in [*state.archived, *state.messages]:
            if not isinstance(m, dict):
                raise _fail(spec, f"read() returned a message of type {type(m).__name__} ({_short(m)}); "
                                  f"messages must be dicts with the \"{identity}\" they were added with: "
                                  "convert the store's own message objects in read()")
            if identity not in m:
                raise _fail(spec, f"read() returned a message without \"{identity}\" ({_short(m)}); "
                                  f"{identity} is the message's identity and must come back as added"
                                  + ("" if identity == "content" else
                                     " (Capabilities.message_identity names it)"))
        if PROBE_MESSAGE["content"] not in state.message_ids(identity):
            raise _fail(spec, f"a message added with {identity} {PROBE_MESSAGE['content']!r} was not in the "
                              f"next read() of the same instance ({_short(state.message_ids(identity))}); "
                              f"read() must return the messages with the {identity} they were added with")
        return Probed(caps, caps_attr is not None)
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            try:
                _await(close())
            except Exception:  # noqa: BLE001 - the search will see it too
                pass


def _call(spec: StoreSpec, store: Any, method: str, *args: Any) -> Any:
    try:
        return _await(getattr(store, method)(*args))
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, Exception) and _refused(exc):
            return SessionState()  # refused: nothing to check of its shape
        raise _fail(spec, f"{method}({', '.join(map(repr, args))}) on an empty location {_describe(exc)}") from None


def check(spec: StoreSpec, location: Path | None = None, *, watchdog: float = 10.0,
          allow_errors: tuple[str, ...] = ()) -> Probed:
    """Open one instance on an empty location and check the contract.

    Runs in a thread of its own, marked as store code (``os._exit`` raises
    there), bounded by ``watchdog`` seconds: a factory or call that blocks
    is a :class:`ConfigError`, not a hang.  Without ``location`` the probe
    makes its own and removes it afterwards.  An error ``allow_errors``
    matches (``--allow-errors``) counts as a refusal, as in the search."""
    from sessioncheck.controlled import exits
    from sessioncheck.controlled.refusals import compile_allowed

    try:
        patterns = compile_allowed(allow_errors)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None

    own = location is None
    from sessioncheck.scratch import scratch_dir

    where = Path(tempfile.mkdtemp(prefix="sessioncheck-probe-", dir=scratch_dir())) if own else Path(location)
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            from sessioncheck.controlled.aio import Uncontrolled

            from sessioncheck import servers

            used = servers.needs(spec.factory)
            servers.empty(used)
            try:
                with exits.inside_store(), Uncontrolled() as settle:
                    _probing.settle = settle
                    _probing.allowed = patterns
                    box["result"] = _probe(spec, where)
            finally:
                servers.empty(used)
        except BaseException as exc:  # noqa: BLE001 - carried to the caller
            box["error"] = exc

    t = threading.Thread(target=body, name="sessioncheck-probe", daemon=True)
    try:
        t.start()
        t.join(timeout=watchdog)
        if t.is_alive():
            raise ConfigError(f"store {spec.name!r}: opening an instance, adding one message and reading it "
                              f"back did not finish within {watchdog:g} s (the factory or a call blocks: a "
                              "server that does not answer, a lock held elsewhere); raise --watchdog if it "
                              "is only slow")
    finally:
        if own:
            shutil.rmtree(where, ignore_errors=True)
    err = box.get("error")
    if isinstance(err, ConfigError):
        raise err
    if err is not None:
        raise ConfigError(f"store {spec.name!r}: checking the adapter contract {_describe(err)}") from None
    return box["result"]

