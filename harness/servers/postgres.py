"""PostgreSQL for stores that ask for it (``resources = ("postgres",)``).

Design notes
------------
A store factory that names ``"postgres"`` among its resources is called as
``factory(location, postgres_dsn=DSN)``.  This module implements the
server resource behind that DSN (the protocol in :mod:`sessioncheck.servers`:
``start``, ``address``, ``reset``, ``settings``, ``stop``).

Private server (the default).  ``initdb`` into a fresh temporary directory
(under ``/dev/shm`` when it has room, else the system's temporary directory;
``$SESSIONCHECK_TMPDIR`` overrides), then ``postgres`` with
``listen_addresses=''`` and its unix socket in that same directory: no TCP
port, nothing another user of the machine can reach.  ``fsync``,
``synchronous_commit`` and ``full_page_writes`` are on, as in production,
and ``settings()`` reports them as the server does, so a report never
claims a durability the configuration does not give.  :meth:`crash`
(``--faults server-crash``) kills the postmaster and its processes with
SIGKILL and restarts the server on its own data directory.  PostgreSQL refuses to run as root: as root
the server runs as an unprivileged user (``nobody``, or ``$SESSIONCHECK_
POSTGRES_USER``), which owns the directory.

Dying with the harness.  A small supervisor shell, started with
``PR_SET_PDEATHSIG``, creates the directory, runs initdb and then the
server, and removes the directory when they end: whatever ends the harness
(a normal exit, Ctrl-C, SIGTERM, kill -9), the kernel sends the supervisor
SIGTERM, and it stops the server (immediate shutdown) and removes the
directory.  Because the supervisor makes the directory, no kill can fall
between its creation and the start of whoever removes it.  The postmaster
also gets SIGQUIT if the supervisor itself dies (``setpriv --pdeathsig``),
and backends exit when the postmaster does.

A user's server (``--postgres-dsn`` / ``$SESSIONCHECK_POSTGRES_DSN``) is used
as is, never stopped; the harness works only in its own schema there and
drops it at the end.

Namespaces, measured (``benchmarks/bench_postgres.py``).  Every run gets an
empty schema of its own name, ``sessioncheck_<worker>`` (the pytest-xdist
worker, or ``main``), put first on the DSN's ``search_path``: a store that
creates its tables without naming a schema creates them there.  Two xdist
workers use two schemas (and, with the private default, two servers), and
claim them with an advisory lock, so two harnesses never share one.  The
reset is ``DROP SCHEMA ... CASCADE; CREATE SCHEMA`` in one round trip:
unlike ``TRUNCATE`` (0.7 ms against 1.3, but 3.5 with the store re-creating
its tables) it also forgets the previous store's table shapes, so a store
run after another on a server held across both (a test module, a user's
server) never meets a table of the same name and another shape; unlike a
template database it keeps the DSN fixed and costs milliseconds, not tens
of them.  A backend
left behind by an abandoned actor that still holds a lock in the schema is
terminated first, so a reset never waits on it.
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from typing import Any

from sessioncheck.errors import ConfigError

ENV_DSN = "SESSIONCHECK_POSTGRES_DSN"
ENV_USER = "SESSIONCHECK_POSTGRES_USER"
ENV_BIN = "SESSIONCHECK_POSTGRES_BIN"
PORT = 5432  # names the socket file only: there is no TCP listener
ROLE = "sessioncheck"
#: Real seconds a crash may take: the kill, and recovery until the server answers.
CRASH_TIMEOUT = 30.0

#: Server settings for the private server.  fsync, synchronous_commit and
#: full_page_writes are on (PostgreSQL's defaults): a commit is acknowledged
#: once its WAL is flushed, so ``--faults server-crash`` tests a store
#: against the promise a production server makes (on /dev/shm a flush costs
#: next to nothing).  deadlock_timeout is short so a real deadlock between
#: two actors (the server's to detect: 40P01) is reported quickly.
PRIVATE_SETTINGS = {
    "listen_addresses": "",
    "port": str(PORT),
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    "deadlock_timeout": "50ms",
    "max_connections": "100",
    "shared_buffers": "16MB",
    "autovacuum": "off",
    "log_min_messages": "fatal",
    "logging_collector": "off",
    "max_wal_size": "256MB",
    "dynamic_shared_memory_type": "mmap",
}

#: What settings() reports: what the configuration promises about durability.
DURABILITY = ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method", "wal_level")


def _bindir() -> str | None:
    env = os.environ.get(ENV_BIN)
    if env:
        return env if os.path.isfile(os.path.join(env, "postgres")) else None
    if shutil.which("initdb") and shutil.which("postgres"):
        return os.path.dirname(shutil.which("postgres") or "")
    base = "/usr/lib/postgresql"
    if os.path.isdir(base):
        for v in sorted(os.listdir(base), key=lambda s: int(s) if s.isdigit() else 0, reverse=True):
            d = os.path.join(base, v, "bin")
            if os.path.isfile(os.path.join(d, "postgres")) and os.path.isfile(os.path.join(d, "initdb")):
                return d
    return None


#: Room a server's directory needs (initdb makes about 40 MB, WAL grows).
ROOM = 256 * 1024 * 1024


def _scratch() -> str:
    """/dev/shm when it has room (a container's is often 64 MB), else the
    system's temporary directory."""
    try:
        st = os.statvfs("/dev/shm")
        if os.access("/dev/shm", os.W_OK) and st.f_bavail * st.f_frsize >= ROOM:
            return "/dev/shm"
    except OSError:
        pass
    return tempfile.gettempdir()


def worker_id() -> str:
    """Which pytest-xdist worker this is (``main`` outside xdist)."""
    w = os.environ.get("PYTEST_XDIST_WORKER", "") or "main"
    return "".join(c if c.isalnum() else "_" for c in w.lower())


def _run_as() -> tuple[int, int] | None:
    """The (uid, gid) the server runs as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get(ENV_USER, "nobody")
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise ConfigError(f"the harness runs as root and PostgreSQL refuses to; there is no user {name!r} to "
                          f"run it as: create one or set {ENV_USER}") from None
    if pw.pw_uid == 0:
        raise ConfigError(f"{ENV_USER}={name} is root; PostgreSQL needs an unprivileged user")
    return pw.pw_uid, pw.pw_gid


_PR_SET_PDEATHSIG = 1


def _preexec(parent: int, ids: tuple[int, int] | None) -> Any:
    def run() -> None:
        import ctypes

        if ids is not None:
            os.setgroups([])
            os.setgid(ids[1])
            os.setuid(ids[0])
        # after the uid change: a credential change clears the death signal
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the harness died before prctl took effect
            os._exit(1)
    return run


#: The supervisor: owns the directory from the start (it creates it, and
#: prints its name, so no kill of the harness can fall between the
#: directory's creation and the supervisor's start).  It runs initdb,
#: then the server, each as its child; on SIGTERM (from stop(), or from the
#: kernel when the harness dies) it stops the one running (SIGQUIT: an
#: immediate shutdown, the directory is scratch), waits for it, and removes
#: the directory.  If initdb or the server fails, the end of the log goes
#: to its stderr before the directory goes.
SUPERVISOR = r'''
initdb=$2; role=$3
stop=; pid=
trap 'stop=1; [ -n "$pid" ] && kill -QUIT "$pid" 2>&-' TERM INT HUP
d=$(mktemp -d "$1/sessioncheck-pg-XXXXXXXX") || exit 1
printf '%s\n' "$d"
exec >&-
shift 3
run() {
    "$@" >>"$d/server.log" 2>&1 &
    pid=$!
    [ -n "$stop" ] && kill -QUIT "$pid" 2>&-
    while :; do wait "$pid"; rc=$?; kill -0 "$pid" 2>&- || break; done
    pid=
    return $rc
}
if [ -z "$stop" ] && run "$initdb" -D "$d/data" -U "$role" --auth=trust --no-sync --no-instructions \
        -E UTF8 --locale=C; then
    while [ -z "$stop" ]; do
        run "$@" -D "$d/data" -k "$d"
        # an injected crash (--faults server-crash): start again on the same
        # data directory once the harness has seen every killed process go
        # (a backend still attached to the old shared memory fails the start)
        [ -z "$stop" ] && [ -e "$d/restart" ] || break
        while [ -z "$stop" ] && [ ! -e "$d/go" ]; do sleep 0.005; done
        rm -f -- "$d/restart" "$d/go"
    done
fi
[ -z "$stop" ] && tail -c 600 "$d/server.log" >&2
rm -rf -- "$d"
'''

_spawn_lock = threading.Lock()
_spawner: tuple[Any, int] | None = None


def _spawn(argv: list[str], **kwargs: Any) -> subprocess.Popen:
    """Popen on one long-lived thread: the kernel's death signal follows the
    *thread* that forked, and the caller's thread may end first."""
    import queue

    global _spawner
    with _spawn_lock:
        if _spawner is None or _spawner[1] != os.getpid():
            q: Any = queue.Queue()

            def loop() -> None:
                while True:
                    args, kw, box, done = q.get()
                    try:
                        box.append(subprocess.Popen(args, **kw))
                    except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                        box.append(exc)
                    done.set()

            threading.Thread(target=loop, name="sessioncheck-postgres-spawn", daemon=True).start()
            _spawner = (q, os.getpid())
    box: list = []
    done = threading.Event()
    _spawner[0].put((argv, kwargs, box, done))
    if not done.wait(30):
        raise ConfigError("starting PostgreSQL did not return within 30 s")
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def check_dsn(dsn: str) -> str:
    """``dsn`` if libpq can parse it, else a ConfigError naming the problem."""
    psycopg = _psycopg()
    try:
        psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        raise ConfigError(f"--postgres-dsn {dsn!r} is not a libpq connection string or URL: {exc}") from None
    if not dsn.strip():
        raise ConfigError("--postgres-dsn is empty; leave it out to use a private server")
    return dsn


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise ConfigError("a store asks for PostgreSQL but the driver is missing: pip install 'psycopg[binary]'") \
            from None
    return psycopg


class PostgresResource:
    """One PostgreSQL namespace for a campaign: a private server, or a schema
    on the user's server.  See the module notes for the contract."""

    name = "postgres"
    kwarg = "postgres_dsn"

    def __init__(self, dsn: str | None = None) -> None:
        self.user_dsn = dsn if dsn is not None else (os.environ.get(ENV_DSN) or None)
        self.private = self.user_dsn is None
        self.schema = f"sessioncheck_{worker_id()}"
        self.address = ""
        self.directory: str | None = None
        self.start_seconds = 0.0
        self._proc: subprocess.Popen | None = None
        self._admin: Any = None
        self._stopped = False
        self._base = ""
        self.last_restart_seconds = 0.0

    @staticmethod
    def unavailable() -> str:
        """Why this resource cannot run here ("" if it can)."""
        try:
            import psycopg  # noqa: F401
        except ImportError:
            return "the PostgreSQL driver is not installed (pip install 'psycopg[binary]')"
        if os.environ.get(ENV_DSN):
            return ""
        if _bindir() is None:
            return ("PostgreSQL is not installed (apt-get install postgresql), and no server was given "
                    f"(--postgres-dsn or {ENV_DSN})")
        return ""

    # -- lifetime -----------------------------------------------------------
    def start(self) -> None:
        t0 = time.monotonic()
        psycopg = _psycopg()
        if self.private:
            base = self._start_private()
        else:
            base = self.user_dsn or ""
        self._base = base
        try:
            self._admin = psycopg.connect(base, autocommit=True, application_name="sessioncheck-admin")
        except psycopg.Error as exc:
            self.stop()
            where = "the private server" if self.private else f"{ENV_DSN}/--postgres-dsn"
            raise ConfigError(f"cannot connect to PostgreSQL ({where}): {exc}".strip()) from None
        # a reset waits for a terminated backend to go, never for ever
        self._admin.execute("SET lock_timeout = '20s'")
        # The schema is ours for the campaign: a second harness on the same
        # server and worker id would empty it under us.
        claimed = self._admin.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (self.schema,)).fetchone()[0]
        if not claimed:
            self.stop()
            raise ConfigError(f"schema {self.schema} on that PostgreSQL server is in use by another sessioncheck "
                              "run; run one at a time per server, or give each its own database")
        self.address = psycopg.conninfo.make_conninfo(base, options=f"-c search_path={self.schema}")
        self.reset()
        self.start_seconds = time.monotonic() - t0

    def _start_private(self) -> str:
        bindir = _bindir()
        if bindir is None:
            raise ConfigError(f"PostgreSQL is not installed (apt-get install postgresql, or set {ENV_BIN}); "
                              f"or point the harness at a server with --postgres-dsn / {ENV_DSN}")
        ids = _run_as()
        base = os.environ.get("SESSIONCHECK_TMPDIR") or _scratch()
        if ids and not _writable_by(base, ids):
            # a private run folder (mode 0700, the harness's own) is closed
            # to the server's user: its directory goes in the nearest folder
            # above it that the user may write in
            base = next((d for d in _parents(base) if _writable_by(d, ids)), None) or _scratch()
        argv = [os.path.join(bindir, "postgres")]  # the supervisor adds -D and -k
        for k, v in PRIVATE_SETTINGS.items():
            argv += ["-c", f"{k}={v}"]
        if shutil.which("setpriv"):
            argv = ["setpriv", "--pdeathsig", "QUIT", "--", *argv]
        self._proc = _spawn(["sh", "-c", SUPERVISOR, "sessioncheck-postgres", base, os.path.join(bindir, "initdb"),
                             ROLE, *argv],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd="/",
                            start_new_session=True, close_fds=True, preexec_fn=_preexec(os.getpid(), ids))
        import select

        ready, _, _ = select.select([self._proc.stdout], [], [], 30)
        line = self._proc.stdout.readline().decode().strip() if ready else ""
        self._proc.stdout.close()
        if not line.startswith(os.path.join(base, "sessioncheck-pg-")):
            text = self._log_tail()
            self.stop()
            raise ConfigError(f"could not make a directory for PostgreSQL under {base} as "
                              f"{'uid %d' % ids[0] if ids else 'this user'}: {text}")
        d = self.directory = line
        sock = os.path.join(d, f".s.PGSQL.{PORT}")
        dsn = f"host={d} port={PORT} user={ROLE} dbname=postgres"
        deadline = time.monotonic() + 60
        psycopg = _psycopg()
        while True:
            if self._proc.poll() is not None:
                text = self._log_tail()
                self.stop()
                raise ConfigError(f"PostgreSQL did not start (initdb or the server failed): {text}")
            if os.path.exists(sock):
                try:
                    psycopg.connect(dsn, connect_timeout=2).close()
                    return dsn
                except psycopg.OperationalError:
                    pass  # still starting up
            if time.monotonic() > deadline:
                text = self._log_tail()
                self.stop()
                raise ConfigError(f"PostgreSQL did not accept connections within 60 s: {text}")
            time.sleep(0.01)

    def _log_tail(self) -> str:
        """The end of the server's log: from the supervisor once it has exited
        (it removed the directory), else from the log file."""
        proc = self._proc
        if proc is not None and proc.poll() is not None and proc.stderr is not None:
            return proc.stderr.read(600).decode(errors="replace").strip()
        if self.directory is None:
            return ""
        try:
            with open(os.path.join(self.directory, "server.log"), "rb") as f:
                return f.read()[-600:].decode(errors="replace").strip()
        except OSError:
            return ""

    def reset(self) -> None:
        """Give the namespace back empty: drop the schema with everything in
        it and create it again.  Raises ConfigError if the server is gone."""
        psycopg = _psycopg()
        if self._admin is None:
            raise ConfigError("the PostgreSQL resource was reset before it started")
        schema = self.schema
        from sessioncheck.controlled.intercept import postgres as points

        points.clear_parked()  # between runs no statement waits (a killed actor's count goes)
        try:
            self._terminate_lingering(schema)
            self._admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE; CREATE SCHEMA "{schema}"')
        except psycopg.OperationalError as exc:
            raise ConfigError(f"PostgreSQL stopped answering: {exc}") from None

    def _terminate_lingering(self, schema: str) -> None:
        """End backends other than ours that hold a lock on something in the
        schema (an abandoned actor's connection, or one a signal left
        parked mid-operation): a reset must never wait.

        A table created in a transaction not yet committed is not in
        ``pg_class`` for this connection, so a lock on it is not found by
        the relation; but creating anything in a schema holds a lock on the
        schema itself (an ``object`` lock on its ``pg_namespace`` row),
        which is."""
        self._admin.execute(
            "SELECT pg_terminate_backend(pid) FROM ("
            " SELECT l.pid FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s"
            " UNION SELECT l.pid FROM pg_locks l JOIN pg_namespace n ON n.oid = l.objid"
            " WHERE l.locktype = 'object' AND l.classid = 'pg_namespace'::regclass AND n.nspname = %s"
            ") held WHERE pid <> pg_backend_pid()", (schema, schema))

    def settings(self) -> dict[str, str]:
        """The server's durability configuration, as it reports it."""
        if self._admin is None:
            return {}
        out = {}
        for name in DURABILITY:
            out[name] = str(self._admin.execute(f"SHOW {name}").fetchone()[0])
        return out

    # -- an injected crash ---------------------------------------------------
    def crash(self) -> None:
        """Kill -9 the private postmaster and every process it started (its
        backends, WAL writer, checkpointer), wait until all are gone, and
        start PostgreSQL again on the same data directory: it runs crash
        recovery from its WAL.  Returns once the new server answers and the
        admin connection holds the schema again (``last_restart_seconds``:
        kill to answering).  A user's server is never crashed."""
        psycopg = _psycopg()
        if not self.private or self._proc is None or self.directory is None:
            raise ConfigError("only a PostgreSQL server the harness started can be crashed")
        d = self.directory
        t0 = time.monotonic()
        try:
            with open(os.path.join(d, "data", "postmaster.pid")) as f:
                postmaster = int(f.readline().strip())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot crash PostgreSQL: no postmaster.pid ({exc})") from None
        victims = [postmaster, *_children(postmaster)]
        open(os.path.join(d, "restart"), "w").close()
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                admin.close()
            except Exception:  # noqa: BLE001 - its server is gone
                pass
        deadline = time.monotonic() + CRASH_TIMEOUT
        while any(_alive(pid) for pid in victims):
            if time.monotonic() > deadline:
                raise ConfigError(f"PostgreSQL processes outlived kill -9 for {CRASH_TIMEOUT:g} s")
            time.sleep(0.001)
        open(os.path.join(d, "go"), "w").close()
        while True:
            if self._proc.poll() is not None:
                raise ConfigError(f"PostgreSQL did not come back after the crash: {self._log_tail() or 'no log'}")
            try:
                self._admin = psycopg.connect(self._base, autocommit=True, connect_timeout=2,
                                              application_name="sessioncheck-admin")
                break
            except psycopg.OperationalError:
                pass  # not yet listening, or still recovering ("the database system is starting up")
            if time.monotonic() > deadline:
                raise ConfigError(f"PostgreSQL did not answer within {CRASH_TIMEOUT:g} s after the crash: "
                                  f"{self._log_tail() or 'no log'}")
            time.sleep(0.002)
        self._admin.execute("SET lock_timeout = '20s'")
        self._admin.execute("SELECT pg_advisory_lock(hashtext(%s))", (self.schema,))
        self.last_restart_seconds = time.monotonic() - t0

    def stop(self) -> None:
        """Stop a private server and remove its directory; on a user's server
        drop the schema.  Idempotent, never raises."""
        if self._stopped:
            return
        self._stopped = True
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                if not self.private:
                    self._admin = admin
                    self._terminate_lingering(self.schema)
                    admin.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
                admin.close()
            except Exception:  # noqa: BLE001 - a server that is gone has nothing to drop
                pass
            self._admin = None
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=20)
            except (subprocess.TimeoutExpired, OSError):
                proc.kill()
                proc.wait(timeout=5)
        if proc is not None and proc.stderr is not None:
            proc.stderr.close()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


def _children(parent: int) -> list[int]:
    """The processes whose parent is ``parent`` (from /proc)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            out.append(int(name))
    return out


def _alive(pid: int) -> bool:
    """Is ``pid`` a live process (a zombie holds no memory: dead)?"""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _writable_by(directory: str, ids: tuple[int, int]) -> bool:
    """Can the user ``ids`` (uid, gid) create entries in ``directory`` (and
    reach it)?  Checked on the permission bits along the path."""
    import stat

    uid, gid = ids[0], ids[1]
    path = os.path.abspath(directory)
    parts = [path] + [p for p in _parents(path)]
    for n, p in enumerate(parts):
        try:
            st = os.stat(p)
        except OSError:
            return False
        need = (stat.S_IWOTH | stat.S_IXOTH) if n == 0 else stat.S_IXOTH
        if st.st_uid == uid:
            need = (stat.S_IWUSR | stat.S_IXUSR) if n == 0 else stat.S_IXUSR
        elif st.st_gid == gid:
            need = (stat.S_IWGRP | stat.S_IXGRP) if n == 0 else stat.S_IXGRP
        if st.st_mode & need != need:
            return False
    return True


def _parents(path: str):
    while True:
        parent = os.path.dirname(path)
        if parent == path:
            return
        yield parent
        path = parent
