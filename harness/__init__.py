"""sessioncheck: concurrency verification for chat-session stores.

The public API is what this module exports; everything else lives in the
parts below it, one folder each, and data flows one way through them:

- ``protocol``      the store protocol (SessionState, Capabilities); imports no store
- ``specs``         a store spec on the command line -> a factory
- ``controlled/``   the controlled engine: program, systematic pass, search,
                    scheduler, actors, interception, durability, trace
- ``checking/``     the history, the invariants and the checker
- ``stress/``       free-running threads and processes, checked afterwards
- ``reporting/``    story, JSON report, HTML timeline, coverage
- ``campaigns/``    long fuzz runs and the mutant gallery
- ``verify``, ``testing``, ``scenario``  what front ends call
- ``cli/``          the ``sessioncheck`` command, one module per verb
- ``pytest_plugin`` the pytest entry point (imports nothing heavy)
- ``stores``        the store backends (folder ``store_impl/``)
- ``scenarios``     the named regressions (folder ``scenarios/``)

Heavy names (``check_store``) load on first use, so ``import
sessioncheck`` stays cheap for a store module that only needs the
protocol's nouns.
"""
from __future__ import annotations

from typing import Any

from sessioncheck.protocol import Capabilities, SessionState, SessionStore

__version__ = "0.2.0"

__all__ = ["Capabilities", "SessionState", "SessionStore", "check_store", "StoreViolation", "reproduce",
           "SessionMachine", "MachineViolation", "__version__"]

_LAZY = {"check_store": "sessioncheck.testing", "StoreViolation": "sessioncheck.testing",
         "reproduce": "sessioncheck.testing",
         "SessionMachine": "sessioncheck.machine", "MachineViolation": "sessioncheck.machine"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sessioncheck' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
