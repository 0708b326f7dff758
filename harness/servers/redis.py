"""Redis as a resource: a private ``redis-server`` on a unix socket, or a
user's own server (``--redis-url`` / ``SESSIONCHECK_REDIS_URL``).

The private server listens on a unix socket in a private temporary
directory (``port 0``: no TCP port), keeps no RDB snapshots, and logs its
append-only file with ``appendonly yes`` / ``appendfsync always``: an
acknowledged write is on disk, as far as the server promises
(:meth:`RedisResource.settings` reports what it runs with).  Each
pytest-xdist worker uses database ``N`` for worker ``gwN`` (counted from
the user's database when a URL names one), and :meth:`reset` is one
``FLUSHDB`` of that database.
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from urllib.parse import urlparse

from sessioncheck.errors import ConfigError
from sessioncheck.scratch import scratch_dir

ENV_URL = "SESSIONCHECK_REDIS_URL"
STARTUP_TIMEOUT = 10.0
#: The private server's databases: one per xdist worker, with room to spare.
DATABASES = 64
#: Longest unix socket path the kernel takes (sun_path is 108 bytes with its NUL).
SOCKET_PATH_MAX = 107

CONFIG = """\
port 0
unixsocket {dir}/redis.sock
unixsocketperm 700
dir {dir}
pidfile {dir}/redis.pid
logfile {dir}/redis.log
daemonize no
databases {databases}
save ""
appendonly yes
appendfsync always
"""


def worker_index() -> int:
    """The pytest-xdist worker number (``gw3`` -> 3), 0 outside xdist."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    digits = name.lstrip("gw")
    return int(digits) if digits.isdigit() else 0


class RedisResource:
    """One Redis namespace for a campaign (see :mod:`sessioncheck.servers`)."""

    name = "redis"
    kwarg = "redis_url"

    def __init__(self) -> None:
        self.address = ""
        self.private = False
        self.directory = ""
        self._proc = None
        self._log = None
        self._admin = None
        self.start_seconds = 0.0

    @staticmethod
    def unavailable() -> str:
        try:
            import redis  # noqa: F401
        except ImportError:
            return "the redis package is not installed (pip install redis)"
        if os.environ.get(ENV_URL) or shutil.which("redis-server"):
            return ""
        return (f"redis-server is not on PATH: install it (apt-get install redis-server) or point "
                f"{ENV_URL} / --redis-url at a server of your own")

    # -- start ---------------------------------------------------------------
    def start(self) -> None:
        why = self.unavailable()
        if why:
            raise ConfigError(f"a store needs Redis, but {why}")
        t0 = time.monotonic()
        url = os.environ.get(ENV_URL)
        if url:
            self._use(url)
        else:
            self._launch()
        self.start_seconds = time.monotonic() - t0

    def _use(self, url: str) -> None:
        import redis

        try:
            pool_kwargs = redis.connection.parse_url(url)
        except ValueError as exc:
            raise ConfigError(f"{ENV_URL} / --redis-url {url!r}: {exc}") from None
        db = int(pool_kwargs.get("db") or 0) + worker_index()
        address = _with_db(url, db)
        client = redis.Redis.from_url(address, socket_timeout=10.0)
        try:
            client.ping()
            databases = int(client.config_get("databases").get("databases", 16))
            if db >= databases:
                raise ConfigError(f"the Redis at {url} has {databases} databases; xdist worker "
                                  f"{worker_index()} needs database {db}: raise 'databases' or use fewer workers")
            size = client.dbsize()
        except redis.RedisError as exc:
            raise ConfigError(f"cannot use the Redis at {url}: {type(exc).__name__}: {exc}") from None
        if size:
            raise ConfigError(f"database {db} of the Redis at {url} holds {size} keys; sessioncheck empties "
                              f"the database it uses between runs: point --redis-url at an empty one "
                              f"(e.g. .../{db + 1})")
        self._admin = client
        self.address = address

    def _launch(self) -> None:
        import redis

        from sessioncheck import servers

        self.private = True
        self.directory = tempfile.mkdtemp(prefix="sessioncheck-redis-", dir=scratch_dir())
        if len(os.path.join(self.directory, "redis.sock").encode()) > SOCKET_PATH_MAX:
            # a unix socket's path has room for 107 bytes: a deep scratch
            # directory (pytest's tmp_path under xdist) cannot hold it
            os.rmdir(self.directory)
            self.directory = tempfile.mkdtemp(prefix="sessioncheck-redis-", dir="/tmp")
        conf = os.path.join(self.directory, "redis.conf")
        with open(conf, "w") as f:
            f.write(CONFIG.format(dir=self.directory, databases=DATABASES))
        self._log = open(os.path.join(self.directory, "supervisor.log"), "ab")
        sock = os.path.join(self.directory, "redis.sock")
        try:
            self._proc = servers.supervised(self.directory, [shutil.which("redis-server") or "redis-server",
                                                             conf], self._log)
        except BaseException:
            self.stop()
            raise
        db = worker_index() % DATABASES
        client = redis.Redis(unix_socket_path=sock, db=db, socket_timeout=10.0)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                log = self._tail()
                self.stop()
                raise ConfigError(f"redis-server exited while starting: {log or 'no log'}")
            if os.path.exists(sock):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    pass
            if time.monotonic() > deadline:
                log = self._tail()
                self.stop()
                raise ConfigError(f"redis-server did not answer within {STARTUP_TIMEOUT:g} s: {log or 'no log'}")
            time.sleep(0.002)
        self._admin = client
        self.address = f"unix://{sock}?db={db}"

    def _tail(self) -> str:
        path = os.path.join(self.directory, "redis.log")
        try:
            with open(path, errors="replace") as f:
                return " | ".join(f.read().strip().splitlines()[-3:])
        except OSError:
            return ""

    # -- per run -------------------------------------------------------------
    def reset(self) -> None:
        import redis

        if self._admin is None:
            return
        try:
            self._admin.flushdb()
        except redis.RedisError as exc:
            raise ConfigError(f"the Redis server at {self.address} stopped answering: "
                              f"{type(exc).__name__}: {exc}") from None

    def keys(self) -> int:
        """Keys in the namespace now (0 between runs)."""
        return int(self._admin.dbsize()) if self._admin is not None else 0

    def settings(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for key in ("appendonly", "appendfsync", "save"):
            out.update({str(k): str(v) for k, v in self._admin.config_get(key).items()})
        return out

    # -- an injected crash ---------------------------------------------------
    def crash(self) -> None:
        """Kill -9 the private server and start it again on its own files
        (its append-only file); returns once the new server answers.  The
        supervisor restarts it because of the ``restart`` file."""
        import redis

        if not self.private or self._proc is None:
            raise ConfigError("only a Redis server the harness started can be crashed")
        pidfile = os.path.join(self.directory, "redis.pid")
        try:
            with open(pidfile) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot crash redis-server: no pid file ({exc})") from None
        open(os.path.join(self.directory, "restart"), "w").close()
        os.unlink(pidfile)  # the new server writes its own
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while _alive(pid):
            if time.monotonic() > deadline:
                raise ConfigError(f"redis-server {pid} outlived kill -9 for {STARTUP_TIMEOUT:g} s")
            time.sleep(0.001)
        while True:
            if self._proc.poll() is not None:
                raise ConfigError(f"redis-server did not come back after the crash: {self._tail() or 'no log'}")
            if os.path.exists(pidfile):
                try:
                    # loading the append-only file answers LOADING until done
                    if self._admin.ping():
                        return
                except (redis.ConnectionError, redis.BusyLoadingError, redis.TimeoutError):
                    pass
            if time.monotonic() > deadline:
                raise ConfigError(f"redis-server did not answer within {STARTUP_TIMEOUT:g} s after the crash: "
                                  f"{self._tail() or 'no log'}")
            time.sleep(0.002)

    # -- stop ----------------------------------------------------------------
    def stop(self) -> None:
        if self._admin is not None:
            try:
                self._admin.close()
            except Exception:  # noqa: BLE001
                pass
            self._admin = None
        proc, self._proc = self._proc, None
        if proc is not None:
            # SIGTERM to the supervisor: it stops redis-server and removes
            # the directory.  If it does not in time, do both by force.
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=5)
            except Exception:  # noqa: BLE001
                self._kill_server()
                proc.kill()
                proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.directory:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = ""

    def _kill_server(self) -> None:
        try:
            with open(os.path.join(self.directory, "redis.pid")) as f:
                os.kill(int(f.read().strip()), signal.SIGKILL)
        except (OSError, ValueError):
            pass


def durable(settings: dict[str, str]) -> bool:
    """Does this configuration make a write durable before its reply?
    Only an append-only file synced before each reply does."""
    return settings.get("appendonly") == "yes" and settings.get("appendfsync") == "always"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (the supervisor has not reaped it yet) is dead for us
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _with_db(url: str, db: int) -> str:
    p = urlparse(url)
    if p.scheme == "unix":
        query = "&".join(q for q in p.query.split("&") if q and not q.startswith("db="))
        # geturl() would drop the empty authority ("unix:/path")
        return f"unix://{p.netloc}{p.path}?" + "&".join(filter(None, [query, f"db={db}"]))
    return p._replace(path=f"/{db}").geturl()
