"""redis-py: each command a store sends is a point.

Patched (sync client, ``redis.Redis`` and ``redis.client.Pipeline``):

- ``Redis.execute_command``: a point before each command, named by the
  command and its keys (``GET s0``, ``RPUSH s0:messages``); the point's
  path is its keys, so the systematic pass sees which operations share a
  key (partial-order reduction).
- ``Pipeline.immediate_execute_command``: commands run at once on a
  pipeline (``WATCH``, and the reads between ``WATCH`` and ``MULTI``).
- ``Pipeline.execute`` of a transaction: one point, ``MULTI [SET s0] EXEC``,
  since the server runs the block atomically.  A pipeline *without* a
  transaction is not atomic on the server (another client's commands may
  run between its own), so its commands are sent one by one, each after its
  own point: same replies, every interleaving reachable.

Not points: what redis-py does on its own connection (``HELLO``,
``SELECT``, ``CLIENT SETINFO`` when it connects, the ``UNWATCH`` of a
pipeline reset) and the connection pool's locks; they are private to one
actor.  ``redis.asyncio`` has the same points (:mod:`.redis_asyncio`).
Pub/sub is not controlled.  A command that blocks inside the server
until another client acts (``BLPOP``, ``BRPOP``, ``BLMOVE``, ``BZPOPMIN``,
``XREAD BLOCK``, ``WAIT``; :data:`~sessioncheck.servers.redis_commands.
BLOCKING`), sent by the sync client on its own, is a wait in the server:
after its point the command is sent, and while no reply has come the
actor asks the server (``CLIENT LIST ID``, flag ``b``, on a monitor
connection) whether it holds the actor's client blocked; if so the actor
reports itself blocked on :class:`ServerHold` and parks at a wait point.
The scheduler runs the others and treats the actor as blocked until the
server no longer holds it (``ServerHold.ready`` asks the same question),
then resumes it to read its reply.  Redis serves a blocked client inside
the command that unblocks it, before that command's reply, so the moment
is the same in every run.  Limits: the command's own timeout runs in the
server's real time (use 0, or one far longer than a run); a blocking
command through ``redis.asyncio``, in a pipeline without a transaction or
after ``WATCH`` is refused (exit 2, naming it).  Inside ``MULTI`` the
server runs them without blocking, so a transaction may hold them.

Outside actors (the harness's own client, a final read) nothing changes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from sessioncheck.controlled.intercept.context import current
from sessioncheck.servers.redis_commands import blocking, command, is_write, label, transaction_label  # noqa: F401 - part of the API

def _point(detail: str, path: str) -> None:
    ctx = current()
    if ctx is not None:
        ctx.point("redis", path, detail)


#: Real seconds a blocking command may go unanswered before the actor asks
#: the server whether it holds it, and between two such questions.
PROMPT = 0.005
_real: dict[str, Any] = {}
_monitors: dict[tuple, Any] = {}
#: Connection settings a monitor copies (plain values: a ServerHold crosses
#: to the scheduler's process from a process actor).
_ADDRESS = ("path", "host", "port", "db", "username", "password")


@dataclass(frozen=True)
class ServerHold:
    """What an actor blocked in the server waits for: the Redis server to
    stop holding client ``client_id`` (served, or timed out).  The scheduler
    asks :meth:`ready` (its ``("await", hold)`` keys)."""

    address: tuple
    client_id: int

    def ready(self) -> bool:
        return not _held(self.address, self.client_id)


def _monitor(address: tuple) -> Any:
    import redis

    key = (os.getpid(), address)
    mon = _monitors.get(key)
    if mon is None:
        kw = dict(address)
        path = kw.pop("path", None)
        if path:
            kw = {"unix_socket_path": path, **{k: v for k, v in kw.items() if k not in ("host", "port")}}
        mon = _monitors[key] = redis.Redis(socket_timeout=10.0, **kw)
    return mon


def _held(address: tuple, client_id: int) -> bool:
    """Does the server hold client ``client_id`` blocked now?"""
    import redis

    try:
        line = _real["execute_command"](_monitor(address), "CLIENT", "LIST", "ID", client_id)
    except redis.RedisError:
        return False  # the server went away: the command's reply says so
    text = line.decode(errors="replace") if isinstance(line, bytes) else str(line)
    flags = next((f[6:] for f in text.split() if f.startswith("flags=")), "")
    return "b" in flags


def _blocking_execute(client: Any, args: tuple, options: dict) -> Any:
    """Send a blocking command and wait for its reply as a wait in the server
    (see the module notes)."""
    ctx = current()
    detail, path = label(args)
    _point(detail, path)
    pool = client.connection_pool
    conn = pool.get_connection()
    answered = False
    try:
        conn.connect()
        if getattr(conn, "_sc_id", (None, None))[0] is not conn._sock:
            conn.send_command("CLIENT", "ID")
            conn._sc_id = (conn._sock, int(conn.read_response()))
        kw = conn.connection_kwargs if hasattr(conn, "connection_kwargs") else pool.connection_kwargs
        address = tuple((k, kw[k]) for k in _ADDRESS if isinstance(kw.get(k), (str, int)))
        hold = ServerHold(address, conn._sc_id[1])
        conn.send_command(*args)
        while not conn.can_read(timeout=PROMPT):
            if not _held(hold.address, hold.client_id):
                continue  # running, or just served: its reply is on its way
            ctx.events.append(("blocked", ("await", hold)))
            ctx.point("flock-wait", path, detail)
        out = client.parse_response(conn, args[0], **options)
        answered = True
        return out
    finally:
        if not answered:
            conn.disconnect()  # a reply may still be owed: never reuse it
        pool.release(conn)


def _command_point(args: tuple) -> None:
    """The point before one command sent on its own; a command that blocks
    in the server is refused here (the paths that cannot wait for it)."""
    name = blocking(args)
    if name:
        from sessioncheck.controlled.intercept.threads import refuse

        refuse(f"the store sends {name} ({label(args)[0]}), a Redis command that blocks inside the server until "
               "another client acts, through redis.asyncio, a pipeline without a transaction or after WATCH; "
               "the controlled scheduler waits for a command the server holds only when the sync client sends "
               "it on its own: send it that way, use the non-blocking form (LPOP and a retry with time.sleep, "
               "which runs in virtual time), or test it with 'sessioncheck stress'")
    _point(*label(args))


_installed = False


def install() -> bool:
    """Patch redis-py if it is importable; return whether it is."""
    global _installed
    if _installed:
        return True
    try:
        import redis.client
    except ImportError:
        return False
    Redis, Pipeline = redis.client.Redis, redis.client.Pipeline
    real_execute_command = Redis.execute_command
    real_immediate = Pipeline.immediate_execute_command
    real_execute = Pipeline.execute

    def execute_command(self: Any, *args: Any, **options: Any) -> Any:
        if current() is not None:
            if blocking(args):
                return _blocking_execute(self, args, options)
            _command_point(args)
        return real_execute_command(self, *args, **options)

    def immediate_execute_command(self: Any, *args: Any, **options: Any) -> Any:
        if current() is not None:
            _command_point(args)
        return real_immediate(self, *args, **options)

    def execute(self: Any, raise_on_error: bool = True) -> Any:
        if current() is None:
            return real_execute(self, raise_on_error)
        stack = list(self.command_stack)
        if self.transaction or self.explicit_transaction:
            if stack or self.watching:
                _point(*transaction_label(stack))
            return real_execute(self, raise_on_error)
        if not stack:
            return real_execute(self, raise_on_error)
        responses: list = []
        try:
            for args, options in stack:
                _command_point(args)
                self.command_stack = [(args, options)]
                responses += real_execute(self, False)
        finally:
            self.reset()
        if raise_on_error:
            self.raise_first_error(stack, responses)
        return responses

    # redis-py's own locks (connection pools) guard memory private to one
    # actor's client: real locks, never points.
    from sessioncheck.controlled.intercept import locks

    if "redis" not in locks.INFRASTRUCTURE:
        locks.INFRASTRUCTURE = (*locks.INFRASTRUCTURE, "redis")
    _real["execute_command"] = real_execute_command
    Redis.execute_command = execute_command
    Pipeline.immediate_execute_command = immediate_execute_command
    Pipeline.execute = execute
    from sessioncheck.controlled.intercept import redis_asyncio

    redis_asyncio.install()
    _installed = True
    return True
