"""Servers a store needs (Redis, PostgreSQL), started and stopped by the harness.

Design notes
------------
A store factory may ask for *resources* next to its directory by naming
them in a ``resources`` attribute (``resources = ("redis",)``, see
:mod:`sessioncheck.protocol`); it is then called as
``factory(location, redis_url=URL)``.  This module owns the servers behind
those URLs.

Lifetime.  A server starts the first time a store needs it and runs for
the *campaign*: from :func:`acquire` (the engine's ``Executor`` takes one
for its whole life) until the last holder releases it, or until the
process exits if no campaign holds it (a store opened outside any
executor, e.g. by ``stress``).  One start per campaign, never one per
example.  A private server dies with the harness whatever happens: a normal
exit or Ctrl-C stops it here (``atexit``); SIGTERM or kill -9 of the
harness reach it through ``PR_SET_PDEATHSIG`` on a small supervisor shell,
which then stops the server and removes its directory.

Namespaces.  Every run starts and ends with an empty namespace:
:meth:`Holding.reset` empties it (``FLUSHDB`` for Redis) after each run and
after each actor's warm-up, so no key outlives the run that wrote it.  Each
pytest-xdist worker (``PYTEST_XDIST_WORKER``) uses its own database index,
so workers sharing a user's server never see each other's keys.

A user's own server (``--redis-url`` / ``SESSIONCHECK_REDIS_URL``) is used
as is, never stopped; its database must be empty when the campaign starts,
because the harness empties it between runs.

Forked actors inherit the running servers' addresses; only the process
that started a server ever stops it.
"""
from __future__ import annotations

import atexit
import importlib
import os
import threading
from typing import Any, Iterable, Protocol

from sessioncheck.errors import ConfigError

#: Resource name -> where its implementation lives.
KINDS = {"redis": "sessioncheck.servers.redis:RedisResource",
         "postgres": "sessioncheck.servers.postgres:PostgresResource"}
#: Servers ``--faults server-crash`` can kill and restart.
CRASHABLE = ("redis", "postgres")


class ServerResource(Protocol):
    """What a server resource implements.

    ``start()`` makes it reachable (starting a private server, or checking
    a user's); ``address`` is what a factory receives, as keyword
    ``kwarg``; ``reset()`` empties the harness's namespace and raises
    :class:`ConfigError` if the server stopped answering (a harness
    problem, never a finding about the store); ``settings()`` is the
    server's durability configuration as it reports it; ``stop()`` stops
    a private server and removes its files (idempotent, never raises).
    """

    name: str
    kwarg: str
    address: str
    private: bool

    def start(self) -> None: ...

    def reset(self) -> None: ...

    def settings(self) -> dict[str, str]: ...

    def stop(self) -> None: ...


def needs(factory: Any) -> tuple[str, ...]:
    """The resources a factory declares (``resources = ("redis",)``)."""
    names = getattr(factory, "resources", ()) or ()
    if isinstance(names, str):
        names = (names,)
    names = tuple(names)
    unknown = [n for n in names if n not in KINDS]
    if unknown:
        raise ConfigError(f"store factory {getattr(factory, '__qualname__', factory)!r} asks for resource "
                          f"{unknown[0]!r}; known resources: {', '.join(KINDS)}")
    return names


_lock = threading.Lock()  # created at import, outside any actor: a real lock
_active: dict[str, ServerResource] = {}
_refs: dict[str, int] = {}
_owner = os.getpid()


def _make(name: str) -> ServerResource:
    module, _, cls = KINDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


def get(name: str) -> ServerResource:
    """The running resource ``name``, started now if none runs."""
    with _lock:
        res = _active.get(name)
        if res is not None:
            return res
        if os.getpid() != _owner:
            raise ConfigError(f"a forked process needs a {name} server that its parent never started")
        res = _make(name)
        res.start()
        _active[name] = res
        _refs.setdefault(name, 0)
        return res


def factory_kwargs(factory: Any) -> dict[str, str]:
    """The keywords to call ``factory`` with: one address per resource."""
    return {res.kwarg: res.address for res in (get(n) for n in needs(factory))}


def bind(factory: Any) -> Any:
    """``factory`` as a one-argument factory: called with a location, it
    calls ``factory(location, redis_url=...)`` with the running servers'
    addresses (starting them if none runs).  Keeps ``resources`` and the
    docstring, so the bound factory still says what it needs."""

    def opener(location: Any) -> Any:
        return factory(location, **factory_kwargs(factory))

    opener.resources = needs(factory)  # type: ignore[attr-defined]
    opener.__doc__ = factory.__doc__
    opener.__name__ = opener.__qualname__ = getattr(factory, "__name__", "factory")
    opener.__wrapped__ = factory  # type: ignore[attr-defined]
    return opener


def unavailable(name: str) -> str:
    """Why resource ``name`` cannot run here ("" if it can)."""
    module, _, cls = KINDS[name].partition(":")
    return getattr(importlib.import_module(module), cls).unavailable()


class Holding:
    """A campaign's hold on the servers one store needs."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self._released = False

    def reset(self) -> None:
        """Empty every namespace this store uses (cheap: one command each)."""
        for n in self.names:
            res = _active.get(n)
            if res is not None:
                res.reset()

    def settings(self) -> dict[str, dict[str, str]]:
        return {n: get(n).settings() for n in self.names}

    def crash(self) -> dict[str, dict[str, str]]:
        """Kill -9 every server this store uses and start it again from its
        own files (``--faults server-crash``).  Returns each server's
        durability settings as they were just before the kill: what the
        configuration promised for the writes acknowledged until then."""
        before = {}
        for n in self.names:
            res = get(n)
            before[n] = res.settings()
            res.crash()
        return before

    def release(self) -> None:
        """End the hold; the last one stops the server.  Idempotent."""
        if self._released:
            return
        self._released = True
        for n in self.names:
            with _lock:
                _refs[n] = max(0, _refs.get(n, 0) - 1)
                last = _refs[n] == 0 and os.getpid() == _owner
                res = _active.pop(n, None) if last else None
            if res is not None:
                _stop(res)


def empty(names: Iterable[str]) -> None:
    """Empty the namespaces of the running servers among ``names``.  The
    contract probe calls it before and after it runs: the probe must meet
    an empty namespace (an earlier campaign of this process may have left
    rows or keys) and leave one."""
    for n in names:
        res = _active.get(n)
        if res is not None:
            res.reset()


def acquire(factory: Any, *, power_loss: bool = False, io_faults: Iterable = (),
            server_crash: bool = False) -> Holding:
    """Hold the servers ``factory`` needs for a campaign (starting them).

    Faults that model the store's own files (power loss, injected I/O
    errors) say nothing about a server-backed store: asking for them is a
    configuration error, not a pass.  So is a server crash for a store
    without a server, on a server the harness did not start (a user's is
    never killed), or on a server that cannot be crashed yet."""
    names = needs(factory)
    if server_crash:
        if not names:
            raise ConfigError("--faults server-crash kills the server a store keeps its data in; this store "
                              "asks for no server (resources = (\"redis\",) or (\"postgres\",)): leave it out")
        for n in names:
            if n not in CRASHABLE:
                raise ConfigError(f"--faults server-crash is implemented for {', '.join(CRASHABLE)} servers, "
                                  f"not yet for {n}: leave it out")
            res = get(n)
            if not res.private:
                _stop_unheld(names)
                raise ConfigError(f"--faults server-crash kills the {n} server; the harness kills only servers "
                                  f"it started itself, and this one is yours (--redis-url / --postgres-dsn): "
                                  "leave the fault out, or let the harness start its own server")
    if names and (power_loss or tuple(io_faults)):
        what = "power-loss" if power_loss else "io-error"
        _stop_unheld(names)  # one a probe started for this campaign
        raise ConfigError(f"--faults {what} models the store's own files; a store on a {names[0]} server keeps "
                          f"its data in the server, which this fault does not reach: leave {what} out")
    for n in names:
        get(n)
        with _lock:
            _refs[n] = _refs.get(n, 0) + 1
    return Holding(names)


def _stop_unheld(names: Iterable[str]) -> None:
    for n in names:
        with _lock:
            res = _active.pop(n, None) if not _refs.get(n) and os.getpid() == _owner else None
        if res is not None:
            _stop(res)


def _stop(res: ServerResource) -> None:
    try:
        res.reset()  # a user's server: leave no key behind
    except Exception:  # noqa: BLE001 - a dead server has nothing left to reset
        pass
    res.stop()


@atexit.register
def shutdown() -> None:
    """Stop every server this process started (also run at exit)."""
    if os.getpid() != _owner:
        return
    with _lock:
        running = list(_active.values())
        _active.clear()
        _refs.clear()
    for res in running:
        _stop(res)


def _after_fork() -> None:
    # A forked child keeps its parent's addresses but owns no server; a
    # fresh lock, since the parent's may have been held at the fork.
    global _lock, _launch_lock
    _lock, _launch_lock = threading.Lock(), threading.Lock()


os.register_at_fork(after_in_child=_after_fork)


# -- starting a server that dies with the harness ------------------------------

#: The supervisor: runs the server as its child, and on SIGTERM (sent by
#: ``stop``, or by the kernel when the harness dies: PR_SET_PDEATHSIG) stops
#: it, waits for it, and removes the server's private directory.  A server
#: that dies while a file ``restart`` is in its directory (an injected crash,
#: ``--faults server-crash``) is started again on the same files.
SUPERVISOR = r'''
d=$1; shift
pid=; stop=
trap 'stop=1; kill -TERM "$pid" 2>/dev/null' TERM INT HUP
while :; do
    "$@" &
    pid=$!
    [ -n "$stop" ] && kill -TERM "$pid" 2>/dev/null
    while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done
    # a server crash the harness injected: start again from the same files
    [ -z "$stop" ] && [ -e "$d/restart" ] && rm -f -- "$d/restart" || break
done
rm -rf -- "$d"
'''

_PR_SET_PDEATHSIG = 1
_launch_queue: Any = None
_launch_lock = threading.Lock()


def _die_with_parent(parent: int) -> None:
    """In the forked child before exec: SIGTERM when the parent dies."""
    import ctypes
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _launcher() -> None:
    q = _launch_queue[0]
    while True:
        job = q.get()
        argv, kwargs, box, done = job
        try:
            box.append(__import__("subprocess").Popen(argv, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            box.append(exc)
        done.set()


def supervised(directory: str, argv: list[str], log: Any) -> Any:
    """Start ``argv`` under the supervisor shell in its own session (a
    terminal's Ctrl-C is the harness's to handle), dying with this process.

    The fork happens on one long-lived thread: the kernel's death signal
    follows the *thread* that forked, and the caller's may end first."""
    import queue

    global _launch_queue
    with _launch_lock:
        if _launch_queue is None or _launch_queue[1] != os.getpid():
            q: Any = queue.Queue()
            _launch_queue = (q, os.getpid())
            threading.Thread(target=_launcher, name="sessioncheck-servers", daemon=True).start()
    parent = os.getpid()
    box: list = []
    done = threading.Event()
    kwargs = dict(stdin=__import__("subprocess").DEVNULL, stdout=log, stderr=log, start_new_session=True,
                  preexec_fn=lambda: _die_with_parent(parent), close_fds=True)
    _launch_queue[0].put((["sh", "-c", SUPERVISOR, "sessioncheck-supervisor", directory, *argv], kwargs,
                          box, done))
    if not done.wait(30):
        raise ConfigError("starting a server did not return within 30 s")
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]
