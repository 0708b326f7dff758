"""Stores made to misbehave, for the health checks, the adapter contract
and every way a store can end.  Not session-store mutants: none of them
has a concurrency bug; each breaks what the harness needs to test at all.
"""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from sessioncheck.protocol import Capabilities, SessionState
from sessioncheck.stores.reference.json_store import JsonFileStore

# -- health checks ---------------------------------------------------------------

_MEMORY: dict[str, list] = {}
_META: dict[str, dict] = {}


class MemoryStore:
    """Keeps messages in a module-level dict: correct, but no I/O the
    harness can see (no preemption point, no overlap)."""

    capabilities = Capabilities()

    def __init__(self, location: Path) -> None:
        self.key = str(location)

    def add_message(self, session_id, message):
        _MEMORY.setdefault(f"{self.key}/{session_id}", []).append(dict(message))

    def persist_state(self, session_id, fields):
        meta = _META.setdefault(f"{self.key}/{session_id}", {})
        for k, v in fields.items():
            if v is None:
                meta.pop(k, None)
            else:
                meta[k] = v

    def read(self, session_id):
        key = f"{self.key}/{session_id}"
        return SessionState(list(_MEMORY.get(key, [])), dict(_META.get(key, {})))


class _Refuses(JsonFileStore):
    refusal: type = PermissionError

    def add_message(self, session_id, message):
        self._load(session_id)  # reaches a point, then refuses
        raise self.refusal("the store is read-only")

    def persist_state(self, session_id, fields):
        self._load(session_id)
        raise self.refusal("the store is read-only")


class RefusingStore(_Refuses):
    """Every write raises PermissionError: nothing is ever acknowledged."""


class TimingOutStore(_Refuses):
    """Every write times out on its lock."""

    refusal = TimeoutError


# -- stores that end their actor -------------------------------------------------

class _Ends(JsonFileStore):
    """Ends its actor on the second add_message of an instance (the probe
    and the warm-up add one message each, a search run more)."""

    adds = 0

    def add_message(self, session_id, message):
        super().add_message(session_id, message)
        self.adds += 1
        if self.adds >= 2:
            self.end()

    def end(self) -> None:
        raise NotImplementedError


class OsExitStore(_Ends):
    def end(self):
        os._exit(0)


class SysExitStore(_Ends):
    def end(self):
        sys.exit(1)


class KeyboardInterruptStore(_Ends):
    def end(self):
        raise KeyboardInterrupt


class GeneratorExitStore(_Ends):
    def end(self):
        raise GeneratorExit


# -- the adapter contract --------------------------------------------------------

class ReadsDataclasses(JsonFileStore):
    """read() returns the store's own message objects, not dicts."""

    class Msg:
        def __init__(self, d):
            self.role, self.content = d["role"], d["content"]

    def read(self, session_id):
        state = super().read(session_id)
        return SessionState([self.Msg(m) for m in state.messages], state.metadata)


class ReadsTuple(JsonFileStore):
    """read() still written for another protocol: a tuple."""

    def read(self, session_id):
        state = super().read(session_id)
        return (state.messages, state.metadata)


class WrongSignature(JsonFileStore):
    """add_message takes a role and a text, not a message dict."""

    def add_message(self, session_id, role, text):  # type: ignore[override]
        super().add_message(session_id, {"role": role, "content": text})


class AsyncStore(JsonFileStore):
    """Every method a coroutine function: valid, the harness awaits them."""

    async def add_message(self, session_id, message):  # type: ignore[override]
        JsonFileStore.add_message(self, session_id, message)

    async def persist_state(self, session_id, fields):  # type: ignore[override]
        JsonFileStore.persist_state(self, session_id, fields)

    async def read(self, session_id):  # type: ignore[override]
        return JsonFileStore.read(self, session_id)


class NoCapabilities(JsonFileStore):
    capabilities = None  # type: ignore[assignment]


class BadCapabilities(JsonFileStore):
    capabilities = {"metadata": True}  # type: ignore[assignment]


class WantsStr(JsonFileStore):
    """A store that needs a str (it encodes its path)."""

    def __init__(self, location):
        super().__init__(Path(location.encode("utf-8").decode("utf-8")))


_never = threading.Event()


def blocking_factory(location):
    """A factory that never returns (a server that does not answer)."""
    _never.wait(3600)


def exiting_factory(location):
    sys.exit(4)


class HangsLaterStore(_Ends):
    """Blocks where the harness cannot see (a queue nobody fills) on the
    second add_message of an instance: every shrink candidate with two adds
    on one actor would cost a watchdog period."""

    def end(self):
        import queue

        queue.Queue().get(timeout=120)


class KillsItselfStore(_Ends):
    """SIGKILLs its own process (an OOM kill, a segfault): in process mode
    the actor is gone without a word."""

    def end(self):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
