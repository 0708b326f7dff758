"""Redis commands as the harness names them: a command's keys (the path of
its point), its story text, and whether it changes data.

Plain data and string functions, no redis-py: the interception
(:mod:`sessioncheck.controlled.intercept.redis`) names points with them,
and the story (:mod:`sessioncheck.reporting.story`) tells a write from a
read with them.
"""
from __future__ import annotations

from typing import Any

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


#: Commands that block inside the server until another client acts (or a
#: timeout passes).  XREAD and XREADGROUP block only with a BLOCK option.
BLOCKING = frozenset("BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP BZPOPMIN BZPOPMAX BZMPOP WAIT WAITAOF".split())


def blocking(args: tuple) -> str:
    """The name of the command ``args`` if it can block inside the server
    (``BLPOP``, ``XREAD BLOCK``), else "".  Inside ``MULTI`` the server
    runs these without blocking: only commands sent on their own count."""
    if not args:
        return ""
    name = _text(args[0]).upper()
    if name in BLOCKING:
        return name
    if name in ("XREAD", "XREADGROUP") and any(_text(a).upper() == "BLOCK" for a in args[1:]):
        return f"{name} BLOCK"
    return ""


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
