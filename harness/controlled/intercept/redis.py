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
until a key holds something (``BLPOP``, ``BRPOP``, ``BLMOVE``,
``BZPOPMIN`` ...), sent on its own by the sync client, is a wait in the
server (:mod:`.redis_waits`): the actor is blocked while the server holds
it, its timeout runs in virtual time, and a wait nobody can end is a
deadlock (I5).  Other blocking commands (``WAIT``, ``WAITAOF``, ``XREAD
BLOCK``), and blocking commands in a pipeline without a transaction, on a
``WATCH``ing pipeline or from ``redis.asyncio``, are refused before they
are sent (exit 2, naming the command).  Inside ``MULTI`` the server runs
them without blocking, so a transaction may hold them.

Outside actors (the harness's own client, a final read) nothing changes.
"""
from __future__ import annotations

from typing import Any

from sessioncheck.controlled.intercept.context import current
from sessioncheck.servers.redis_commands import blocking, command, is_write, label, transaction_label  # noqa: F401 - part of the API

def _point(detail: str, path: str) -> None:
    ctx = current()
    if ctx is not None:
        ctx.point("redis", path, detail)


#: redis-py's own functions, before they were patched
REAL: dict[str, Any] = {}


def _command_point(args: tuple) -> None:
    """The point before one command sent on its own; a command that blocks
    in the server is refused (the store cannot be run under control)."""
    name = blocking(args)
    if name:
        from sessioncheck.controlled.intercept.threads import refuse

        refuse(f"the store sends {name} ({label(args)[0]}), a Redis command that blocks inside the server until "
               "another client acts; the controlled scheduler cannot wait for a command the server holds yet "
               "(the actor would hang holding its turn): use the non-blocking form (LPOP and a retry with "
               "time.sleep, which runs in virtual time), or test it with 'sessioncheck stress'")
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
    REAL["execute_command"] = real_execute_command
    from sessioncheck.controlled.intercept import redis_waits

    def execute_command(self: Any, *args: Any, **options: Any) -> Any:
        ctx = current()
        if ctx is not None:
            if redis_waits.served(blocking(args)):
                _point(*label(args))
                return redis_waits.execute(self, ctx, args, options)
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
    Redis.execute_command = execute_command
    Pipeline.immediate_execute_command = immediate_execute_command
    Pipeline.execute = execute
    from sessioncheck.controlled.intercept import redis_asyncio

    redis_asyncio.install()
    _installed = True
    return True
