"""Adapters to third-party stores, each an optional extra.

``ADAPTERS`` maps a store spec to ``(module:factory, extra, package)``:
the factory that opens one instance on a directory, the extra of the
``sessioncheck`` distribution that installs the third-party package, and
the importable names of the packages it needs, space-separated (checked with ``find_spec`` before the
adapter module is imported, so a missing package is a one-line
configuration error that names the extra to install, never a traceback).

What each adapter wraps, the versions it was tested with and how the real
store touches the shared medium are in ``store_impl/adapters/ADAPTERS.md``.
"""
from __future__ import annotations

import importlib.util

from sessioncheck.errors import ConfigError

ADAPTERS: dict[str, tuple[str, str, str]] = {
    # praisonaiagents' DefaultSessionStore (JSON file per session, flock).
    "praisonai": ("sessioncheck.stores.adapters.praisonai:open_store", "praisonai", "praisonaiagents"),
    "praisonai-prefix": (
        "sessioncheck.stores.adapters.praisonai:open_prefix_store", "praisonai", "praisonaiagents",
    ),
    # The same store with clear_session and rename_session in the model.
    "praisonai-edits": (
        "sessioncheck.stores.adapters.praisonai:open_edits_store", "praisonai", "praisonaiagents",
    ),
    # praisonai's LocalManagedAgent over the same store, end to end.
    "praisonai-agent": (
        "sessioncheck.stores.adapters.praisonai:open_agent_store", "praisonai-agent", "praisonai",
    ),
    # openai-agents' SQLiteSession on a file database.
    "openai-agents": (
        "sessioncheck.stores.adapters.openai_agents:open_store", "openai-agents", "agents",
    ),
    # The same, with its pop_item and clear_session in the model.
    "openai-agents-edits": (
        "sessioncheck.stores.adapters.openai_agents:open_edits_store", "openai-agents", "agents",
    ),
    # openai-agents' async extensions, driven through their async API.
    "openai-agents-async-sqlite": (
        "sessioncheck.stores.adapters.openai_agents:open_async_sqlite_store", "openai-agents", "agents aiosqlite",
    ),
    "openai-agents-sqlalchemy": (
        "sessioncheck.stores.adapters.openai_agents:open_sqlalchemy_store", "openai-agents",
        "agents sqlalchemy aiosqlite",
    ),
    # openai-agents' RedisSession (redis.asyncio) on the harness's private Redis.
    "openai-agents-redis": (
        "sessioncheck.stores.adapters.openai_agents:open_redis_store", "openai-agents", "agents redis",
    ),
    # langgraph-checkpoint-sqlite's SqliteSaver, two ways a graph appends.
    "langgraph": (
        "sessioncheck.stores.adapters.langgraph:open_put_writes_store", "langgraph", "langgraph.checkpoint.sqlite",
    ),
    "langgraph-read-put": (
        "sessioncheck.stores.adapters.langgraph:open_read_put_store", "langgraph", "langgraph.checkpoint.sqlite",
    ),
    # langgraph-checkpoint-postgres's PostgresSaver on the harness's private PostgreSQL.
    "langgraph-postgres": (
        "sessioncheck.stores.adapters.langgraph_postgres:open_put_writes_store", "langgraph",
        "langgraph.checkpoint.postgres psycopg psycopg_pool",
    ),
    "langgraph-postgres-read-put": (
        "sessioncheck.stores.adapters.langgraph_postgres:open_read_put_store", "langgraph",
        "langgraph.checkpoint.postgres psycopg psycopg_pool",
    ),
    # Driven natively through their async API (async_native.py).
    "openai-agents-native": (
        "sessioncheck.stores.adapters.async_native:open_native_sqlite_session", "openai-agents", "agents",
    ),
    "langgraph-async": (
        "sessioncheck.stores.adapters.async_native:open_async_put_writes_store", "langgraph",
        "langgraph.checkpoint.sqlite.aio aiosqlite",
    ),
    "langgraph-async-read-put": (
        "sessioncheck.stores.adapters.async_native:open_async_read_put_store", "langgraph",
        "langgraph.checkpoint.sqlite.aio aiosqlite",
    ),
}


def _installed(package: str) -> bool:
    # find_spec on a dotted name imports the parents; a missing parent is
    # "not installed", not an error.
    try:
        return importlib.util.find_spec(package) is not None
    except ImportError:
        return False


def load(name: str) -> str:
    """The ``module:factory`` target of adapter ``name``.

    Raises :class:`ConfigError` naming the extra when its package is not
    installed.  Imports nothing but the package's parents.
    """
    target, extra, packages = ADAPTERS[name]
    missing = [p for p in packages.split() if not _installed(p)]
    if missing:
        raise ConfigError(
            f"store {name!r} needs the package {missing[0]!r}: pip install 'sessioncheck[{extra}]'"
        )
    return target
