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
actor.  ``redis.asyncio``, pub/sub and blocking commands (``BLPOP``,
``WAIT``) are not controlled: a store that blocks in the server is reported
stuck by the watchdog (I5), never waited out.

Outside actors (the harness's own client, a final read) nothing changes.
"""
from __future__ import annotations

from typing import Any

from sessioncheck.controlled.intercept.context import current

#: Commands that change data: the story's "why" line looks for them.
WRITES = frozenset("""
SET SETNX SETEX PSETEX GETSET GETDEL GETEX MSET MSETNX APPEND INCR INCRBY INCRBYFLOAT DECR DECRBY SETRANGE
DEL UNLINK EXPIRE PEXPIRE EXPIREAT PEXPIREAT PERSIST RENAME RENAMENX COPY RESTORE
LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LSET LREM LTRIM LINSERT LMOVE RPOPLPUSH
HSET HSETNX HMSET HDEL HINCRBY HINCRBYFLOAT SADD SREM SPOP SMOVE ZADD ZREM ZINCRBY ZPOPMIN ZPOPMAX
XADD XDEL XTRIM JSON.SET JSON.DEL EVAL EVALSHA FCALL FLUSHDB FLUSHALL
""".split())
#: Commands whose every argument after the name is a key.
ALL_KEYS = frozenset("DEL UNLINK EXISTS MGET WATCH TOUCH SINTER SUNION SDIFF PFCOUNT".split())
#: key value key value ...
PAIRS = frozenset("MSET MSETNX".split())
#: name script numkeys key... arg...
NUMKEYS = frozenset("EVAL EVALSHA EVAL_RO EVALSHA_RO FCALL FCALL_RO".split())
#: Two keys, then arguments.
TWO_KEYS = frozenset("RENAME RENAMENX COPY LMOVE RPOPLPUSH SMOVE".split())
#: Commands that name no key.
NO_KEYS = frozenset("""
PING ECHO MULTI EXEC DISCARD UNWATCH SELECT HELLO AUTH CLIENT CONFIG INFO TIME DBSIZE FLUSHDB FLUSHALL
SCRIPT FUNCTION KEYS SCAN RANDOMKEY PUBLISH WAIT COMMAND QUIT RESET MEMORY SLOWLOG LASTSAVE
""".split())


def _text(x: Any) -> str:
    if isinstance(x, (bytes, bytearray)):
        return bytes(x).decode("utf-8", "replace")
    return str(x)


def command(args: tuple) -> tuple[str, list[str]]:
    """A command's name (upper case, ``SCRIPT LOAD`` as one) and its keys."""
    if not args:
        return "", []
    name = _text(args[0]).upper()
    head = name.split()[0]
    rest = [_text(a) for a in args[1:]]
    if head in NO_KEYS:
        return name, []
    if head in ALL_KEYS:
        return name, rest
    if head in PAIRS:
        return name, rest[0::2]
    if head in NUMKEYS:
        try:
            n = int(rest[1])
        except (IndexError, ValueError):
            return name, []
        return name, rest[2:2 + n]
    if head in TWO_KEYS:
        return name, rest[:2]
    return name, rest[:1]


def label(args: tuple) -> tuple[str, str]:
    """(detail, path) of the point before one command: ``("GET s0", "s0")``."""
    name, keys = command(args)
    return " ".join([name, *keys]), " ".join(dict.fromkeys(keys))


def transaction_label(commands: list) -> tuple[str, str]:
    """(detail, path) of a MULTI/EXEC block: ``MULTI [RPUSH s0:m, HSET s0:meta] EXEC``."""
    inner = [label(args) for args, _options in commands]
    keys = dict.fromkeys(k for _detail, path in inner for k in path.split(" ") if k)
    return f"MULTI [{', '.join(d for d, _ in inner)}] EXEC", " ".join(keys)


def is_write(detail: str) -> bool:
    """Whether a point's detail (a command or a MULTI block) changes data."""
    words = detail.replace("[", " ").replace(",", " ").replace("]", " ").split()
    return any(w in WRITES for w in words)


def _point(detail: str, path: str) -> None:
    ctx = current()
    if ctx is not None:
        ctx.point("redis", path, detail)


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
            _point(*label(args))
        return real_execute_command(self, *args, **options)

    def immediate_execute_command(self: Any, *args: Any, **options: Any) -> Any:
        if current() is not None:
            _point(*label(args))
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
                _point(*label(args))
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
    _installed = True
    return True
