"""Redis commands that block inside the server: the wait is the server's.

``BLPOP``, ``BRPOP``, ``BLMOVE``, ``BRPOPLPUSH``, ``BLMPOP``, ``BZPOPMIN``,
``BZPOPMAX`` and ``BZMPOP`` wait in the server until one of their keys
holds something (another client pushed) or their timeout passes.  Under
the controlled scheduler the actor sending one must not wait for its
reply holding the baton: the client that would push may be parked.

So such a command (sync ``redis.Redis``, sent on its own; inside ``MULTI``
the server never blocks) is sent as usual, after its point, and then its
reply is *not* read until it is there:

- the reply arrives (a key held something): it is read and returned, as
  redis-py would;
- the server holds the client (``CLIENT LIST ID`` shows flag ``b``): the
  actor reports itself blocked on that server-side wait, key
  ``("redis-blocked", where, client id)``, and parks.  The scheduler
  (:meth:`Scheduler.blocked`, through :func:`still_blocked`) treats it as
  blocked while the server still holds the client.  When another actor's
  command makes a key ready, the server serves the waiter at once, before
  that command's reply (as Redis does: blocked clients are served right
  after the command that readied their key), so what every later command
  sees is what production sees, whatever the order the scheduler picks;
- with timeout 0 the actor parks at a blocking wait (``flock-wait`` on the
  keys): if no actor can push, every busy actor is blocked, and the
  scheduler reports the deadlock (I5), as production would hang;
- with a timeout the actor parks at a ``sleep`` of that many seconds of
  virtual time: resumed at the deadline while the server still holds it,
  it has the server time the command out (``CLIENT UNBLOCK id TIMEOUT``:
  the reply a timeout gives), so a 5 s timeout costs no real time and
  fires at t+5.

An actor abandoned while the server holds it (a deadlock reported, a
crash) has the server end the command (``CLIENT UNBLOCK id ERROR``) and
drops the connection, so no reply is left in flight and nothing hangs.

``WAIT``, ``WAITAOF`` and ``XREAD``/``XREADGROUP`` with ``BLOCK`` are still
refused (exit 2): their readiness is not "a key holds something".
"""
from __future__ import annotations

from typing import Any

from sessioncheck.controlled.intercept.clock import real_sleep
from sessioncheck.servers.redis_commands import command, label

#: Blocking commands served here, by name: where their timeout argument is
#: (an index into the command's arguments, name first).
SERVED = {"BLPOP": -1, "BRPOP": -1, "BLMOVE": -1, "BRPOPLPUSH": -1, "BZPOPMIN": -1, "BZPOPMAX": -1,
          "BLMPOP": 1, "BZMPOP": 1}
#: Real seconds between two looks while a sent command is neither answered
#: nor held by the server yet (it is on its way).
LOOK = 0.0005

_monitors: dict[tuple, Any] = {}


def served(name: str) -> bool:
    return name in SERVED


def _timeout(name: str, args: tuple) -> float:
    try:
        raw = args[SERVED[name]]
        return float(raw.decode() if isinstance(raw, (bytes, bytearray)) else raw)
    except (IndexError, ValueError, TypeError):
        return 0.0


def where(conn: Any) -> tuple:
    """Where ``conn`` connects, as plain data (it crosses to the scheduler's
    process with the key): enough to open a monitor client there."""
    auth = (getattr(conn, "username", None) or "", getattr(conn, "password", None) or "")
    path = getattr(conn, "path", None)
    if path:
        return ("unix", str(path), *auth)
    return ("tcp", str(getattr(conn, "host", "localhost")), int(getattr(conn, "port", 6379)), *auth)


def _monitor(place: tuple) -> Any:
    """A plain client of the harness at ``place`` (never an actor's: the
    scheduler's thread, or an actor's own checks with no context), one per
    process and place."""
    import os

    import redis

    key = (os.getpid(), place)
    client = _monitors.get(key)
    if client is None:
        user, password = place[-2] or None, place[-1] or None
        if place[0] == "unix":
            client = redis.Redis(unix_socket_path=place[1], username=user, password=password)
        else:
            client = redis.Redis(host=place[1], port=place[2], username=user, password=password)
        _monitors[key] = client
    return client


def _send(place: tuple, *args: Any) -> Any:
    """A command on the monitor, never a point (redis-py's own
    ``execute_command``, as it was before it was patched)."""
    from sessioncheck.controlled.intercept import redis as intercepted

    return intercepted.REAL["execute_command"](_monitor(place), *args)


def _held(place: tuple, cid: int) -> bool:
    """Does the server hold client ``cid`` in a blocking command now?"""
    line = _send(place, "CLIENT", "LIST", "ID", cid)
    if isinstance(line, (bytes, bytearray)):
        line = line.decode()
    if isinstance(line, list):  # a client decoding responses into a list of dicts
        line = " ".join(str(x) for x in line)
    for part in str(line).split():
        if part.startswith("flags="):
            return "b" in part[len("flags="):]
    return False


def still_blocked(key: tuple) -> bool:
    """The scheduler's question for an actor blocked on ``key``
    (``("redis-blocked", where, client id)``): is the server still holding
    it?  A server that does not answer holds nobody (the actor then reads
    the connection error)."""
    try:
        return _held(key[1], key[2])
    except Exception:  # noqa: BLE001 - the actor's own read reports what went wrong
        return False


def _unblock(place: tuple, cid: int, how: str) -> None:
    try:
        _send(place, "CLIENT", "UNBLOCK", cid, how)
    except Exception:  # noqa: BLE001 - the server is gone: nothing is held there
        pass


def _client_id(conn: Any) -> int:
    cid = getattr(conn, "_sc_client_id", None)
    if cid is None or getattr(conn, "_sc_client_sock", None) is not conn._sock:
        conn.send_command("CLIENT", "ID")
        cid = int(conn.read_response())
        conn._sc_client_id, conn._sc_client_sock = cid, conn._sock
    return cid


def execute(client: Any, ctx: Any, args: tuple, options: dict) -> Any:
    """Send the blocking command ``args`` for an actor (its point already
    taken) and return its parsed reply, parking the actor while the server
    holds it."""
    from redis.exceptions import ResponseError

    name, keys = command(args)
    timeout = _timeout(name, args)
    pool = client.connection_pool
    conn = client.connection
    if conn is None:
        try:
            conn = pool.get_connection()
        except TypeError:  # redis-py before 5.1 names the command
            conn = pool.get_connection(args[0])
    sent = False
    try:
        if conn._sock is None:
            conn.connect()
        cid = _client_id(conn)
        place = where(conn)
        key = ("redis-blocked", place, cid)
        conn.send_command(*args)
        sent = True
        path = " ".join(dict.fromkeys(keys))
        waited = False
        while not conn.can_read(timeout=0):
            if not _held(place, cid):
                real_sleep(LOOK)  # on its way to the server, or its reply on its way back
                continue
            ctx.events.append(("blocked", key))
            if timeout > 0 and not waited:
                waited = True
                ctx.point("sleep", path, repr(timeout))
            elif timeout > 0:
                _unblock(place, cid, "TIMEOUT")  # its deadline passed in virtual time
            else:
                ctx.point("flock-wait", path, f"{label(args)[0]} (held by the server)")
        sent = False
        return client.parse_response(conn, args[0], **options)
    except BaseException as exc:
        if sent:
            # abandoned with the command held: end it in the server
            _unblock(where(conn), getattr(conn, "_sc_client_id", 0), "ERROR")
        if sent or not isinstance(exc, ResponseError):
            conn.disconnect()  # never hand back a connection with a reply in flight
        raise
    finally:
        if client.connection is None:
            pool.release(conn)
