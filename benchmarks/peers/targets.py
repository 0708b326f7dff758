"""The targets every tool is run on, and the workloads each is tested with.

A workload is two writers on one session, each with its own store instance
on one shared directory (as two processes or two gateway workers would
have), and an invariant checked by a third, fresh instance after both are
done.  Every peer test in this folder wires exactly these functions into its
tool's API, so the tools differ only in how they schedule the writers.

Two ways to choose the workload (``PEERS_WORKLOAD``):

- *handed* (the default): each target's own workload, written for its bug
  (``Target.workload``): two operations and an assertion about that bug.
- *generic*: the same workload for every target, what a user writes who
  knows the store's contract and not its bug (the information sessioncheck
  gets): two writers, each a mix of ``add_message`` and ``persist_state``
  with ``None`` among the values, and the generic assertion: every
  acknowledged message is present and each field shows its last write.

This module imports no testing tool: it is loaded by every tool's runner,
each in its own virtual environment.
"""
from __future__ import annotations

import importlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

SESSION = "s"


@dataclass(frozen=True)
class Target:
    """One store under test.

    ``spec`` is the sessioncheck store spec; ``workload`` names the two
    writers (see :data:`WORKLOADS`); ``buggy`` says in which actor modes the
    workload can fail (empty for a control)."""

    name: str
    spec: str
    workload: str
    buggy: tuple[str, ...]
    needs: str = ""  # importable package the store needs ("" = none)
    #: where the generic workload can fail, when not where the handed one can
    generic_buggy: tuple[str, ...] | None = None

    @property
    def control(self) -> bool:
        return not self.buggy

    def buggy_under(self, workload: str) -> tuple[str, ...]:
        """The actor modes in which ``workload`` (handed or generic) can fail."""
        if workload == "generic" and self.generic_buggy is not None:
            return self.generic_buggy
        return self.buggy


TARGETS: dict[str, Target] = {t.name: t for t in (
    Target("stale-overwrite", "mutant:stale-overwrite", "add-persist", ("threads", "processes")),
    Target("none-skipped", "mutant:none-skipped", "clear-add", ("threads", "processes")),
    Target("thread-lock-only", "mutant:thread-lock-only", "add-add", ("processes",)),
    Target("json", "json", "add-persist", ()),
    Target("praisonai-prefix", "praisonai-prefix", "add-persist", ("threads", "processes"), "praisonaiagents"),
    # update_session_metadata skips None: the generic workload's clear never
    # lands, in every order (the store's real behaviour)
    Target("praisonai", "praisonai", "add-persist", (), "praisonaiagents", ("threads", "processes")),
)}


def factory(spec: str) -> Callable[[Path], Any]:
    """The store factory named by a sessioncheck spec, imported directly.

    Not through ``sessioncheck.specs.resolve``: that installs sessioncheck's
    interception (patched ``os``, ``time``, ``threading.Lock``) in the
    process, and a peer tool must run the store exactly as it is."""
    from sessioncheck.specs import BUILTIN
    from sessioncheck.stores.adapters import ADAPTERS

    if spec in BUILTIN:
        target = BUILTIN[spec]
    elif spec.startswith("mutant:"):
        target = f"sessioncheck.stores.mutants.{spec[len('mutant:'):].replace('-', '_')}:Store"
    else:
        target = ADAPTERS[spec][0]
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def open_store(spec: str, location: str | Path) -> Any:
    """A new store instance of ``spec`` on ``location``."""
    return factory(spec)(Path(location))


def preload(target: Target) -> None:
    """Import the store's code before a tool starts: a first import inside an
    explored run would be scheduled (and timed) like the store's own code."""
    factory(target.spec)


def _contents(state: Any) -> list[str]:
    return [m["content"] for m in state.messages] + [m["content"] for m in state.archived]


# -- the writers: each takes (store, session) and performs one operation ----

def add_m1(store: Any) -> None:
    store.add_message(SESSION, {"role": "user", "content": "m1"})


def add_m2(store: Any) -> None:
    store.add_message(SESSION, {"role": "assistant", "content": "m2"})


def set_k(store: Any) -> None:
    store.persist_state(SESSION, {"k": "v"})


def clear_k(store: Any) -> None:
    store.persist_state(SESSION, {"k": None})


# -- the invariants: each takes the final state read by a fresh instance ----

def both_kept(state: Any) -> bool:
    """add-persist: the acknowledged message and the metadata both survive."""
    return "m1" in _contents(state) and state.metadata.get("k") == "v"


def cleared_and_kept(state: Any) -> bool:
    """clear-add: the cleared field is gone and the message survives."""
    return "m1" in _contents(state) and "k" not in state.metadata


def no_message_lost(state: Any) -> bool:
    """add-add: both acknowledged messages survive."""
    return {"m1", "m2"} <= set(_contents(state))


def generic_prepare(store: Any) -> None:
    store.persist_state(SESSION, {"k": "v0", "j": "w0"})


def generic_a(store: Any) -> None:
    store.add_message(SESSION, {"role": "user", "content": "m1"})
    store.persist_state(SESSION, {"k": None})


def generic_b(store: Any) -> None:
    store.persist_state(SESSION, {"j": "w1"})
    store.add_message(SESSION, {"role": "assistant", "content": "m2"})


def contract_holds(state: Any) -> bool:
    """generic: both acknowledged messages are there, and every field shows
    its last write (each field has one writer, so its last write is known):
    ``k`` was cleared, ``j`` is ``w1``."""
    return ({"m1", "m2"} <= set(_contents(state)) and state.metadata.get("k") is None
            and state.metadata.get("j") == "w1")


@dataclass(frozen=True)
class Workload:
    prepare: Callable[[Any], None] | None  # run once, sequentially, before the writers
    writers: tuple[Callable[[Any], None], Callable[[Any], None]]
    invariant: Callable[[Any], bool]


WORKLOADS: dict[str, Workload] = {
    "add-persist": Workload(None, (add_m1, set_k), both_kept),
    "clear-add": Workload(set_k, (clear_k, add_m1), cleared_and_kept),
    "add-add": Workload(None, (add_m1, add_m2), no_message_lost),
    "generic": Workload(generic_prepare, (generic_a, generic_b), contract_holds),
}

WORKLOAD_CHOICES = ("handed", "generic")


def workload_of(target: Target) -> str:
    """The workload a case of ``target`` runs: its own (``PEERS_WORKLOAD``
    unset or ``handed``) or the generic one.  An environment variable, so
    that a tool's process workers, started by the tool, run the same."""
    choice = os.environ.get("PEERS_WORKLOAD", "handed")
    if choice not in WORKLOAD_CHOICES:
        raise ValueError(f"PEERS_WORKLOAD={choice!r}: expected one of {', '.join(WORKLOAD_CHOICES)}")
    return "generic" if choice == "generic" else target.workload


def scratch_root() -> str | None:
    """Where cases make their directories: ``$PEERS_TMP`` (``run.py`` sets it to
    one directory per run and removes it at the end, so a case a tool abandoned
    in a hang or a killed child leaves nothing behind), else /dev/shm."""
    root = os.environ.get("PEERS_TMP")
    if root:
        return root
    return "/dev/shm" if Path("/dev/shm").is_dir() else None


class Case:
    """One execution of a workload on a fresh directory: the state a tool's
    ``setup`` returns.  ``writer(i)`` runs writer ``i`` on its own instance;
    ``check()`` reads with a fresh instance, records the first failure's
    time, and removes the directory."""

    #: real clocks, bound before any tool patches the ``time`` module
    wall = staticmethod(time.time)

    def __init__(self, target: Target, instances: bool = True) -> None:
        self.target = target
        self.work = WORKLOADS[workload_of(target)]
        self.dir = tempfile.mkdtemp(prefix="peers-", dir=scratch_root())
        if self.work.prepare is not None:
            self.work.prepare(open_store(target.spec, self.dir))
        # Thread tools get both instances opened up front, outside the
        # explored region; process tools open them in their workers.
        self.stores = [open_store(target.spec, self.dir) for _ in range(2)] if instances else []

    def writer(self, i: int) -> None:
        store = self.stores[i] if self.stores else open_store(self.target.spec, self.dir)
        self.work.writers[i](store)

    def holds(self) -> bool:
        try:
            return self.work.invariant(open_store(self.target.spec, self.dir).read(SESSION))
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def holds_at(target: Target, directory: str) -> bool:
    """The invariant for a directory written by process workers (then removed)."""
    try:
        return WORKLOADS[workload_of(target)].invariant(open_store(target.spec, directory).read(SESSION))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
