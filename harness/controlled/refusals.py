"""Refusal or failure, by cause.

An operation that raises was either *refused* ("this did not happen, or
may not have": a lock timeout, a busy database, an I/O error; recorded as
an ``info`` outcome the checker treats as maybe-applied) or it *failed*
(the store met a state it could not handle, or has a bug: reported).

The decision looks at the cause, not the class of the exception that
escaped: libraries wrap driver errors (SQLAlchemy raises
``sqlalchemy.exc.OperationalError`` with the ``sqlite3`` error as
``.orig``; stores re-raise as their own types ``from`` the cause), so the
whole chain counts: ``__cause__``, ``__context__`` and a DBAPI wrapper's
``orig`` (the context is skipped after ``raise ... from None``, which
says the new exception is not caused by the one being handled).  A store
may declare more refusal types in
``Capabilities.refusals`` (its own ``StoreBusy``, say).
"""
from __future__ import annotations

import re
import sqlite3
from typing import Any, Iterable, Iterator

#: Always refusals, wherever they sit in the chain.
REFUSALS: tuple[type, ...] = (OSError, TimeoutError)

#: SQLite says "not now" (another connection holds the lock) or "cannot
#: reach the file": refusals.  Any other OperationalError (no such table,
#: a syntax error) is the store's failure.
_SQLITE_REFUSAL_WORDS = ("locked", "busy", "disk i/o error", "unable to open")

#: SQLSTATE classes and codes that mean "not now" on a server database:
#: connection exceptions (08), a transaction rolled back by the server
#: (40: serialization failure 40001, deadlock 40P01), a lock not
#: available (55P03), a statement cancelled by a timeout (57014), the
#: server shutting down (57P01-57P03).  Read from the exception's
#: ``sqlstate`` (psycopg 3) or ``pgcode`` (psycopg2): no driver imported.
_SQLSTATE_CLASSES = ("08", "40")
_SQLSTATE_CODES = ("55P03", "57014", "57P01", "57P02", "57P03")


def _server_refusal(e: BaseException) -> bool:
    code = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
    if isinstance(code, str) and (code[:2] in _SQLSTATE_CLASSES or code in _SQLSTATE_CODES):
        return True
    # a driver's OperationalError with no code: the connection is gone
    return (code is None and type(e).__name__ == "OperationalError"
            and type(e).__module__.split(".")[0] in ("psycopg", "psycopg2"))


_MAX_CHAIN = 32  # a chain is short; this only guards against cycles a set would miss


def chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception behind it (``__cause__``, ``__context__``,
    ``.orig``), each once, breadth first."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo and len(seen) < _MAX_CHAIN:
        e = todo.pop(0)
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        # ``raise X from None`` says "not because of the one being handled":
        # then the context is not followed.
        context = None if e.__suppress_context__ else e.__context__
        todo += [e.__cause__, context, getattr(e, "orig", None)]


def is_refusal(exc: BaseException, declared: tuple[type, ...] = ()) -> bool:
    """Does ``exc`` say the operation was refused rather than failed?"""
    for e in chain(exc):
        if isinstance(e, REFUSALS) or (declared and isinstance(e, declared)):
            return True
        if isinstance(e, sqlite3.OperationalError) and any(w in str(e).lower() for w in _SQLITE_REFUSAL_WORDS):
            return True
        if _server_refusal(e):
            return True
    return False


def declared_refusals(store: Any, factory: Any = None) -> tuple[type, ...]:
    """The refusal types a store declares (``capabilities.refusals``), read
    from the instance, else from its factory (an ``open`` that failed)."""
    from sessioncheck.protocol import Capabilities

    for holder in (store, factory):
        caps = getattr(holder, "capabilities", None)
        if isinstance(caps, Capabilities):
            return tuple(t for t in caps.refusals if isinstance(t, type) and issubclass(t, BaseException))
    return ()


def compile_allowed(patterns: Iterable[str]) -> tuple[re.Pattern, ...]:
    """``--allow-errors`` patterns, compiled; ValueError names a bad one."""
    out = []
    for p in patterns:
        try:
            out.append(re.compile(p))
        except re.error as exc:
            raise ValueError(f"--allow-errors {p!r} is not a regular expression: {exc}") from None
    return tuple(out)


def allowed(causes: Iterable[str], patterns: Iterable[re.Pattern]) -> bool:
    """Does one of ``causes`` ("Type: message" of each exception in an
    error's chain) match one of ``patterns`` (``re.search``)?"""
    texts = list(causes)
    return any(p.search(t) for p in patterns for t in texts)


def describe_chain(exc: BaseException) -> list[str]:
    """"Type: message" of ``exc`` and of every exception behind it."""
    return [f"{type(e).__name__}: {e}" for e in chain(exc)]
