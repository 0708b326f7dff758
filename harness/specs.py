"""Store specs: how a name on the command line becomes a store factory.

A spec is a built-in name (``json``, ``sqlite``), ``mutant:<name>``, an
adapter name (``sessioncheck.stores.adapters``), or ``module:factory``.
This module is the only place that imports code a user names; the
protocol it resolves to (:mod:`sessioncheck.protocol`) imports no store.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

from sessioncheck.errors import ConfigError
from sessioncheck.protocol import Capabilities, StoreSpec, capabilities_of

#: Built-in store names and where their factories live.  Mutants are named
#: ``mutant:<name>`` and live in ``store_impl/mutants/<name>.py`` (dashes
#: become underscores) with a ``Store`` class.
BUILTIN = {
    "json": "sessioncheck.stores.reference.json_store:JsonFileStore",
    "sqlite": "sessioncheck.stores.reference.sqlite_store:SqliteStore",
    # the schema made on first use, checked and created in one transaction
    "sqlite-checked-create": "sessioncheck.stores.reference.checked_create_store:CheckedCreateStore",
    "json-delete": "sessioncheck.stores.reference.json_store:JsonFileStoreWithDelete",
    "json-pop": "sessioncheck.stores.reference.json_store:JsonFileStoreWithPop",
    "json-edits": "sessioncheck.stores.reference.json_store:JsonFileStoreWithEdits",
    # messages identified by an id field of their own, in every chat shape (user, tool calls, ...)
    "json-ids": "sessioncheck.stores.reference.json_ids_store:JsonIdStore",
    "json-retention": "sessioncheck.stores.reference.json_retention_store:JsonRetentionStore",
    "executor": "sessioncheck.stores.reference.executor_store:ExecutorStore",
    "async-json": "sessioncheck.stores.reference.async_store:AsyncJsonStore",
    "sqlalchemy": "sessioncheck.stores.reference.sqlalchemy_store:SqlAlchemyStore",  # the sql extra
    # the same model reached below Python's file objects (store_impl/reference/fd_store.py,
    # osync_store.py): pread/pwrite in place, paths relative to a dir fd, bytes paths + O_SYNC
    "json-pread": "sessioncheck.stores.reference.fd_store:PreadStore",
    "json-dirfd": "sessioncheck.stores.reference.fd_store:DirFdStore",
    "json-osync": "sessioncheck.stores.reference.osync_store:BytesPathStore",
    # the same JSON store under other locks the harness must understand
    "json-excl-lock": "sessioncheck.stores.reference.excl_lock_store:ExclLockStore",
    "json-lockf": "sessioncheck.stores.reference.lockf_store:LockfStore",
    "json-ofd-lock": "sessioncheck.stores.reference.lockf_store:OfdLockStore",
}

#: Correct reference stores that keep their data in a server the harness
#: starts (:mod:`sessioncheck.servers`).  Apart from BUILTIN because they
#: run only where the server can (``redis-server``, PostgreSQL installed)
#: and not under the faults that model the store's own files (power-loss,
#: io-error).
SERVER_BACKED = {
    "redis": "sessioncheck.stores.reference.redis_store:RedisStore",
    "postgres": "sessioncheck.stores.reference.postgres_store:PostgresStore",
    "postgres-row-lock": "sessioncheck.stores.reference.postgres_row_lock_store:PostgresRowLockStore",
    # SQLAlchemy's default PostgreSQL driver, psycopg2 (pip install sqlalchemy psycopg2-binary)
    "sqlalchemy-postgres": "sessioncheck.stores.reference.sqlalchemy_postgres_store:SqlAlchemyPostgresStore",
}

#: the extra (pyproject.toml) that installs a client a built-in store
#: imports, by the client's top-level module
CLIENT_EXTRAS = {"redis": "servers", "psycopg": "servers", "psycopg2": "servers", "sqlalchemy": "sql"}


def mutant_names() -> list[str]:
    """Every mutant in the gallery, by its spec name (without ``mutant:``)."""
    from sessioncheck.stores import mutants

    here = Path(mutants.__file__).parent
    return sorted(p.stem.replace("_", "-") for p in here.glob("*.py") if p.stem != "__init__")


#: Factory objects handed over in-process (a class or callable passed to
#: the pytest fixture or ``check_store``), by the name :func:`name_of` gave
#: them, so that everything downstream keeps working with a name.
_OBJECTS: dict[str, Any] = {}


def name_of(factory: Any) -> str:
    """A spec name for a factory object (``module:qualname``), remembered so
    that :func:`resolve` of that name returns this very object, not a fresh
    import: a class defined in a test, a closure or a ``functools.partial``
    works as well as one at module level.  A later object of the same name
    replaces the earlier one."""
    if isinstance(factory, str) or not callable(factory):
        raise ConfigError(f"a store is a spec string or a factory (a class or callable), not {factory!r}")
    target = getattr(factory, "func", factory)  # functools.partial: name it by its function
    module = getattr(target, "__module__", None) or "__main__"
    qualname = getattr(target, "__qualname__", None) or type(target).__qualname__
    name = f"{module}:{qualname}"
    _OBJECTS[name] = factory
    return name


def resolve(spec: Any) -> StoreSpec:
    """Turn a spec into a factory, or raise :class:`ConfigError`.

    A spec is a built-in name (``json``, ``sqlite``), ``mutant:<name>``, an
    adapter name from ``sessioncheck.stores.adapters``, ``package.module:factory``,
    or a factory object itself (named by :func:`name_of`).
    Only this function imports code named by the user.
    """
    if not isinstance(spec, str):
        spec = name_of(spec)
    given = _OBJECTS.get(spec)
    if given is not None:
        # already imported by its owner, so interception cannot go in
        # before its module's import: names bound there at import time
        # (``from os import replace``) are the unpatched ones
        from sessioncheck import servers
        from sessioncheck.controlled import intercept

        intercept.install()
        factory = servers.bind(given) if servers.needs(given) else given
        return StoreSpec(name=spec, factory=factory, module=spec.partition(":")[0])
    spec = spec.strip()
    if not spec:
        raise ConfigError("empty store spec; try --store json")
    target = BUILTIN.get(spec) or SERVER_BACKED.get(spec)
    if target is None and spec.startswith("mutant:"):
        name = spec[len("mutant:"):]
        if name not in mutant_names():
            raise ConfigError(
                f"unknown mutant {name!r}; known mutants: {', '.join(mutant_names())}"
            )
        target = f"sessioncheck.stores.mutants.{name.replace('-', '_')}:Store"
    if target is None:
        from sessioncheck.stores import adapters

        adapter = adapters.ADAPTERS.get(spec)
        if adapter is not None:
            target = adapters.load(spec)
    if target is None:
        if ":" not in spec:
            known = ", ".join([*BUILTIN, *SERVER_BACKED, "mutant:<name>", *_adapter_names()])
            raise ConfigError(
                f"unknown store {spec!r}; use one of {known}, or package.module:factory"
            )
        target = spec
        _import_from_cwd()
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"store spec {spec!r} must look like package.module:factory")
    from sessioncheck.controlled import intercept

    # Interception goes in before the store's module is imported, so names
    # it binds at import time are the patched ones, and its module-level
    # locks are cooperative (ENGINE-NOTES, trap 2).
    intercept.install()
    try:
        with intercept.importing_store():
            module = importlib.import_module(module_name)
    except ImportError as exc:
        where = "" if module_name.startswith("sessioncheck.") else (
            f" (looked in the current directory {os.getcwd()} and the installed packages)")
        missing = (getattr(exc, "name", None) or "").partition(".")[0]
        if module_name.startswith("sessioncheck.stores.") and missing in CLIENT_EXTRAS:
            where = f"; install the client with pip install 'sessioncheck[{CLIENT_EXTRAS[missing]}]'"
        raise ConfigError(f"cannot import {module_name!r} for store {spec!r}: {exc}{where}") from None
    except SystemExit as exc:  # a module that exits on import must not end the harness silently
        raise ConfigError(f"importing {module_name!r} for store {spec!r} called sys.exit({exc.code!r}); "
                          "a store module must not exit when imported") from None
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
    from sessioncheck import servers

    if servers.needs(factory):
        factory = servers.bind(factory)
    return StoreSpec(name=spec, factory=factory, module=module_name)


def _import_from_cwd() -> None:
    """A ``module:factory`` spec resolves from the current directory first,
    as ``python -m`` and uvicorn's ``--app-dir .`` do: a user's adapter
    beside them is found without PYTHONPATH.  Process actors inherit the
    path."""
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)


def _adapter_names() -> list[str]:
    try:
        from sessioncheck.stores import adapters
    except ImportError:
        return []
    return list(adapters.ADAPTERS)


def probe(spec: StoreSpec, location: Path | None = None, *, watchdog: float = 10.0) -> Capabilities:
    """Open one instance on an empty location and check the adapter
    contract (:func:`sessioncheck.contract.check`: signatures, what
    ``read`` returns, the message shape, ``capabilities``), under a
    watchdog.  Returns the store's capabilities.

    Raises :class:`ConfigError` naming the failure, so that a factory that
    raises or blocks, or an adapter that breaks the contract, is a
    configuration error (exit 2), not a violation."""
    from sessioncheck.contract import check

    return check(spec, location, watchdog=watchdog).capabilities
