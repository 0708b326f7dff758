"""PostgreSQL under the controlled scheduler, on a real server.

The harness starts a private server (``harness/servers/postgres.py``) and
stops it; these tests hold it for the whole module (one start), except the
ones that count what a start and a stop leave behind.  Budgets are example
counts of seeded searches (deterministic whatever the machine's load); the
time caps only keep a broken engine from hanging CI.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg")

from sessioncheck import servers  # noqa: E402
from sessioncheck.controlled.engine import Executor  # noqa: E402
from sessioncheck.controlled.intercept.postgres import describe  # noqa: E402
from sessioncheck.controlled.program import ModelConfig, OpSpec, Step  # noqa: E402
from sessioncheck.controlled.search import explore  # noqa: E402
from sessioncheck.protocol import StoreSpec  # noqa: E402
from sessioncheck.servers.postgres import ENV_DSN, PostgresResource  # noqa: E402
from sessioncheck.specs import resolve  # noqa: E402
from sessioncheck.verify import model_config  # noqa: E402

if PostgresResource.unavailable():
    pytest.skip(PostgresResource.unavailable(), allow_module_level=True)

TIME_CAP = 600.0
#: Examples of the no-false-alarm runs of the correct stores (the
#: systematic pass, then random programs).
PASS_EXAMPLES = 200
#: Stated budget for every mutant: each falls in the systematic pass within
#: 18 examples with seed 0 (threads and processes); the budget leaves room.
MUTANT_EXAMPLES = 100
MUTANTS = {"postgres-select-update": ("I1", "I3"), "postgres-strip-nulls": ("I3",),
           "postgres-wrong-row-lock": ("I1",)}


@pytest.fixture(scope="module", autouse=True)
def server():
    """One private server for the module: the holding keeps it running
    between the tests' executors."""
    holding = servers.acquire(resolve("postgres").factory)
    yield servers.get("postgres")
    holding.release()


def _search(store: str, mode: str, examples: int, seed: int = 0):
    spec = resolve(store)
    with Executor(spec, mode, model_config(spec, mode, "")) as ex:
        return explore(ex, budget=TIME_CAP, max_examples=examples, seed=seed, shrink_runs=30)


# -- statements as points -------------------------------------------------------

@pytest.mark.parametrize("sql,table,label", [
    ("SELECT doc FROM session_docs WHERE id = %s", "session_docs", "SELECT"),
    ("select seq from public.messages where x order by seq desc limit 1 for update", "messages",
     "SELECT FOR UPDATE"),
    ('UPDATE "Sessions" SET doc = %s', "Sessions", "UPDATE"),
    ("INSERT INTO sessions (id) VALUES (%s) ON CONFLICT DO NOTHING", "sessions", "INSERT"),
    ("WITH s AS (INSERT INTO sessions VALUES (1) RETURNING *) INSERT INTO messages SELECT * FROM s",
     "sessions", "INSERT"),
    ("DELETE FROM messages WHERE session_id = %s", "messages", "DELETE"),
    ("SELECT pg_advisory_xact_lock(1)", "advisory lock", "SELECT"),
    ("CREATE TABLE IF NOT EXISTS session_docs (id text)", "session_docs", "CREATE"),
    ("SELECT 1", "", "SELECT"),
])
def test_statements_are_named_by_verb_and_table(sql, table, label) -> None:
    assert describe(sql) == (table, label)


# -- the server -----------------------------------------------------------------

def test_private_server_has_no_tcp_port_and_reports_its_durability(server) -> None:
    assert server.private and server.directory and os.path.isdir(server.directory)
    with psycopg.connect(server.address, autocommit=True) as conn:
        assert conn.execute("SHOW listen_addresses").fetchone()[0] == ""
        assert conn.execute("SHOW unix_socket_directories").fetchone()[0] == server.directory
        assert conn.execute("SELECT current_schema()").fetchone()[0] == server.schema
    settings = server.settings()
    # as in production: what --faults server-crash holds a store to
    assert (settings["fsync"], settings["synchronous_commit"], settings["full_page_writes"]) == ("on", "on", "on")


def test_reset_leaves_an_empty_namespace(server) -> None:
    with psycopg.connect(server.address, autocommit=True) as conn:
        conn.execute("CREATE TABLE leftover (x int)")
        conn.execute("INSERT INTO leftover VALUES (1)")
    server.reset()
    with psycopg.connect(server.address, autocommit=True) as conn:
        tables = conn.execute("SELECT table_schema, table_name FROM information_schema.tables "
                              "WHERE table_schema LIKE 'sessioncheck%%'").fetchall()
    assert tables == []


def test_a_reset_never_waits_for_a_lingering_lock_holder(server) -> None:
    with psycopg.connect(server.address, autocommit=True) as setup:
        setup.execute("CREATE TABLE t (x int)")
    stray = psycopg.connect(server.address)  # an abandoned actor's connection, mid-transaction
    stray.execute("LOCK TABLE t")
    _reset_ends(server, stray)


def _reset_ends(server, stray) -> None:
    """The reset is prompt and ends the backend of ``stray``."""
    t0 = time.monotonic()
    server.reset()
    assert time.monotonic() - t0 < 5
    with pytest.raises(psycopg.OperationalError):
        stray.execute("SELECT 1")
    stray.close()


def test_a_reset_never_waits_for_a_table_created_in_an_open_transaction(server) -> None:
    """A signal can stop a run while an actor is inside a store's open,
    its CREATE TABLE not yet committed: that table is not in pg_class for
    the harness's connection, so only the lock the creation holds on the
    schema itself finds the backend (reproduced: the reset waited out two
    20 s lock timeouts and the run exited 2 instead of 143)."""
    stray = psycopg.connect(server.address)
    stray.execute("CREATE TABLE IF NOT EXISTS sessions (id text PRIMARY KEY)")  # idle in transaction
    _reset_ends(server, stray)


def test_workers_use_their_own_schema(monkeypatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw7")
    assert PostgresResource(dsn="host=/nowhere").schema == "sessioncheck_gw7"


def test_a_users_server_is_used_in_its_own_schema_and_left_clean(server, monkeypatch) -> None:
    # The private server stands in for "a server of the user's own".
    base = psycopg.conninfo.make_conninfo(server.address, options="")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "user")
    mine = PostgresResource(dsn=base)
    mine.start()
    try:
        assert not mine.private and mine.directory is None
        with psycopg.connect(mine.address, autocommit=True) as conn:
            assert conn.execute("SELECT current_schema()").fetchone()[0] == "sessioncheck_user"
        # a second harness on the same server and worker is refused, not mixed in
        other = PostgresResource(dsn=base)
        with pytest.raises(servers.ConfigError, match="in use by another"):
            other.start()
    finally:
        mine.stop()
    with psycopg.connect(base, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'sessioncheck_user%%'"
                            ).fetchone()[0] == 0


@pytest.mark.parametrize("dsn,why", [("host=/no/such/dir port=1", "cannot connect to PostgreSQL"),
                                     ("port=notanumber =", "not a libpq connection string")])
def test_a_bad_dsn_is_a_configuration_error(dsn, why, tmp_path) -> None:
    p = subprocess.run([sys.executable, "-m", "sessioncheck", "run", "--store", "postgres", "--postgres-dsn", dsn,
                        "--examples", "1", "--no-db"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stdout + p.stderr
    assert why in p.stderr, p.stderr


# -- the reference stores pass ---------------------------------------------------

@pytest.mark.parametrize("mode", ["threads", "processes"])
@pytest.mark.parametrize("store", ["postgres", "postgres-row-lock"])
def test_correct_stores_pass(store, mode) -> None:
    x = _search(store, mode, PASS_EXAMPLES)
    assert x.outcome is None, x.outcome.violations[0].summary if x.outcome else ""
    assert x.examples == PASS_EXAMPLES


# -- the mutants are caught ------------------------------------------------------

@pytest.mark.quality
@pytest.mark.parametrize("mode", ["threads", "processes"])
@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_mutant_caught(mutant, mode) -> None:
    x = _search(f"mutant:{mutant}", mode, MUTANT_EXAMPLES)
    assert x.outcome is not None, f"{mutant} ({mode}) missed in {x.examples} examples"
    assert x.outcome.violations[0].invariant in MUTANTS[mutant], x.outcome.violations[0].summary


def test_select_update_story_names_the_select_and_the_update(tmp_path, capsys) -> None:
    from sessioncheck.cli.main import main as cli

    code = cli(["run", "--store", "mutant:postgres-select-update", "--seed", "0", "--no-db",
                "--examples", str(MUTANT_EXAMPLES), "--report", str(tmp_path / "r.json")])
    story = capsys.readouterr().out
    assert code == 1, story
    assert "SELECT on session_docs" in story and "UPDATE on session_docs" in story, story
    assert "wrote its stale copy back" in story, story


# -- a statement that waits for a parked actor's row lock ------------------------

def _start(actor: int, session: int = 0) -> Step:
    return Step("start", actor, OpSpec("add", session))


def _lock_wait_program() -> list[Step]:
    """A appends m1 alone; A begins m2 and stops holding the session's row
    lock (after its SELECT ... FOR UPDATE); B appends m3 and waits for that
    lock inside the server."""
    return [_start(0), Step("advance", 0, points=10), _start(0), Step("advance", 0, points=2),
            _start(1), Step("advance", 1, points=3)]


def _waits(outcome) -> list[dict]:
    return [e for e in outcome.trace if e["ev"] == "point" and e["kind"] == "flock-wait"]


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_waiter_on_a_parked_holders_row_lock_is_blocked_not_stuck(mode) -> None:
    spec = resolve("postgres-row-lock")
    with Executor(spec, mode, ModelConfig(actors=2, sessions=1), watchdog=10) as ex:
        t0 = time.monotonic()
        out = ex.run(_lock_wait_program())
        elapsed = time.monotonic() - t0
    assert not out.violations, out.violations[0].summary
    waits = _waits(out)
    assert waits and {e["actor"] for e in waits} == {"B"}, out.trace
    final = [e for e in out.trace if e["actor"] == "final"][-1]
    assert final["value"]["messages"] == ["m1", "m2", "m3"]
    assert elapsed < 10  # far below the watchdog: nothing waited it out


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_the_wrong_row_lock_is_waited_for_and_its_lost_message_found(mode) -> None:
    spec = resolve("mutant:postgres-wrong-row-lock")
    with Executor(spec, mode, ModelConfig(actors=2, sessions=1), watchdog=10) as ex:
        out = ex.run(_lock_wait_program())
    assert [v.invariant for v in out.violations] == ["I1"], [v.summary for v in out.violations]
    assert _waits(out), out.trace  # B really waited in the server for A's lock


class _CrossLockStore:
    """Test store: an append locks its session's row, then the other
    session's row; two appends to two sessions deadlock in the server."""

    resources = ("postgres",)

    def __init__(self, location, postgres_dsn) -> None:
        from sessioncheck.stores.reference.postgres_store import connect, create_schema

        self.conn = connect(postgres_dsn)
        create_schema(self.conn, "CREATE TABLE IF NOT EXISTS rows (id text PRIMARY KEY, log jsonb NOT NULL);"
                                 "INSERT INTO rows VALUES ('s0', '[]'), ('s1', '[]') ON CONFLICT DO NOTHING")

    def add_message(self, session_id, message) -> None:
        other = "s1" if session_id == "s0" else "s0"
        with self.conn.transaction():
            self.conn.execute("SELECT 1 FROM rows WHERE id = %s FOR UPDATE", (session_id,))
            self.conn.execute("SELECT 1 FROM rows WHERE id = %s FOR UPDATE", (other,))
            self.conn.execute("UPDATE rows SET log = log || %s::jsonb WHERE id = %s",
                              (psycopg.types.json.Jsonb([message["content"]]), session_id))

    def persist_state(self, session_id, fields) -> None:
        raise NotImplementedError

    def read(self, session_id):
        from sessioncheck.protocol import SessionState

        log = self.conn.execute("SELECT log FROM rows WHERE id = %s", (session_id,)).fetchone()[0]
        return SessionState([{"role": "user", "content": c} for c in log], {})

    def close(self) -> None:
        self.conn.close()


def test_a_deadlock_in_the_server_is_a_refusal_not_a_hang() -> None:
    from sessioncheck.protocol import Capabilities

    _CrossLockStore.capabilities = Capabilities(metadata=False)
    spec = StoreSpec("cross-lock", servers.bind(_CrossLockStore), __name__)
    # each instance opens first (a read, run to its end: an instance opens
    # inside its actor's first operation), then A locks s0, B locks s1, A
    # waits for s1 (parked: B holds it), B asks for s0
    opened = [Step("start", a, OpSpec("read", a)) for a in (0, 1)]
    program = [opened[0], Step("advance", 0, points=400), opened[1], Step("advance", 1, points=400),
               _start(0, 0), Step("advance", 0), _start(1, 1), Step("advance", 1), Step("advance", 0),
               Step("advance", 1)]
    with Executor(spec, "threads", ModelConfig(actors=2, sessions=2, metadata=False), watchdog=10) as ex:
        out = ex.run(program)
    assert not out.violations, out.violations[0].summary
    errors = [op.error or "" for op in out.ops if op.f == "add"]
    assert sum("deadlock detected" in e for e in errors) == 1, errors


# -- nothing is left behind -------------------------------------------------------

def _leftovers(base: str) -> tuple[int, int]:
    """(processes, directories) of the private PostgreSQL servers made under
    ``base``: supervisors, postmasters and every child of a postmaster, and
    ``sessioncheck-pg-*`` directories.  Only what the harness under test
    made: other tests may run servers of their own at the same time."""
    cmds: dict[int, list[bytes]] = {}
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmds[int(name)] = f.read().split(b"\0")
            with open(f"/proc/{name}/stat", "rb") as f:
                parents[int(name)] = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    top = {pid for pid, cmd in cmds.items() if any(base.encode() in part for part in cmd)}
    ours = top | {pid for pid, ppid in parents.items() if ppid in top}  # backends, background workers
    dirs = sum(1 for n in os.listdir(base) if n.startswith("sessioncheck-pg-")) if os.path.isdir(base) else 0
    return len(ours), dirs


def _settle(base: str, within: float = 20.0) -> tuple[int, int]:
    deadline = time.monotonic() + within
    now = _leftovers(base)
    while now != (0, 0) and time.monotonic() < deadline:
        time.sleep(0.1)
        now = _leftovers(base)
    return now


HARNESS = textwrap.dedent("""
    import sys, time
    from sessioncheck.cli.main import main
    sys.exit(main(["run", "--store", sys.argv[1], "--budget", sys.argv[2], "--seed", "0", "--no-db"]))
""")


@pytest.fixture
def base():
    """A directory the harness under test makes its server's in (and the
    unprivileged server user can write to)."""
    import shutil
    import tempfile

    d = tempfile.mkdtemp(prefix="pgleak-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _harness(store: str, budget: str, tmp_path: Path, base: str) -> subprocess.Popen:
    env = dict(os.environ, SESSIONCHECK_TMPDIR=base)
    env.pop("SESSIONCHECK_POSTGRES_DSN", None)
    return subprocess.Popen([sys.executable, "-c", HARNESS, store, budget], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


@pytest.mark.parametrize("store,code", [("postgres", 0), ("mutant:postgres-strip-nulls", 1)])
def test_a_run_leaves_no_server_behind(store, code, tmp_path, base) -> None:
    p = _harness(store, "3", tmp_path, base)
    out, _ = p.communicate(timeout=300)
    assert p.returncode == code, out.decode()
    assert _settle(base) == (0, 0)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_harness_leaves_no_server_behind(sig, tmp_path, base) -> None:
    p = _harness("postgres", "120", tmp_path, base)
    try:
        deadline = time.monotonic() + 60
        running = _leftovers(base)
        while not (running[0] >= 3 and running[1] == 1) and time.monotonic() < deadline:
            time.sleep(0.05)
            running = _leftovers(base)
        # a supervisor, a postmaster and its workers, in one directory
        assert running[0] >= 3 and running[1] == 1, running
        time.sleep(1.0)  # the search is under way
        p.send_signal(sig)
        t0 = time.monotonic()
        code = p.wait(timeout=60)
        # the signal's own exit, promptly: not a traceback's 1 (which says
        # "violation"), nor a reset that waited on a parked actor's lock
        assert code == (128 + sig if sig != signal.SIGKILL else -sig), p.stdout.read().decode()[-3000:]
        assert time.monotonic() - t0 < 15
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert _settle(base) == (0, 0)


# -- stress and server crashes -------------------------------------------------------

def test_stress_runs_against_the_real_server(tmp_path) -> None:
    """Free-running threads and processes on the module's server: the
    reference store's history checks clean, the SELECT-then-UPDATE
    mutant's does not, and a recorded history checks again as any other."""
    from sessioncheck.checking.history import write_jsonl
    from sessioncheck.stress.runner import StressConfig, run_stress

    ok = run_stress(StressConfig(store="postgres", threads=3, processes=2, sessions=2, ops=200, duration=30))
    assert ok.verdict == "ok", ok.verdict
    write_jsonl(ok.events, str(tmp_path / "ok.jsonl"))
    bad = run_stress(StressConfig(store="mutant:postgres-select-update", threads=2, processes=2, sessions=1,
                                  ops=300, duration=30))
    assert bad.verdict == "violation"
    p = subprocess.run([sys.executable, "-m", "sessioncheck", "check", str(tmp_path / "ok.jsonl")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr


#: Examples of the server-crash runs: the systematic pass, then random
#: programs (which crash the server several times each).
CRASH_EXAMPLES = 120


def test_a_crash_kills_every_server_process_and_keeps_committed_rows(server) -> None:
    with psycopg.connect(server.address, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (x int)")
        conn.execute("INSERT INTO kept VALUES (1)")
        with open(os.path.join(server.directory, "data", "postmaster.pid")) as f:
            postmaster = int(f.readline())
        from sessioncheck.servers.postgres import _alive, _children

        before = [postmaster, *_children(postmaster)]
        assert len(before) >= 4  # backends, WAL writer, checkpointer, ...
        server.crash()
        assert not any(_alive(p) for p in before)
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")  # its backend was killed
    with psycopg.connect(server.address, autocommit=True) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(1,)]
    assert server.last_restart_seconds < 10
    server.reset()


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_reference_store_survives_server_crashes(mode, tmp_path) -> None:
    from sessioncheck.verify import verify

    seen: list[int] = []
    r = verify("postgres", mode=mode, faults=("server-crash",), budget=TIME_CAP, max_examples=CRASH_EXAMPLES,
               seed=0, report_dir=tmp_path, save_report=False,
               on_example=lambda s: seen.append(sum(1 for e in s.last.trace if e["ev"] == "server-crash")))
    assert not r.found, r.story
    assert sum(seen) >= 3, seen  # the server really was killed


@pytest.mark.parametrize("mode", ["threads", "processes"])
@pytest.mark.parametrize("store", ["postgres", "postgres-row-lock"])
def test_crashes_mid_operation_lose_nothing_acknowledged(store, mode) -> None:
    """A appends m1; A's m2 and B's m3 are parked inside their operations
    when the server is killed; both go on (failing, or not) and A appends
    m4 after the restart; a second crash, then the final read."""
    spec = resolve(store)
    crash = Step("server-crash", 0)
    program = [_start(0), Step("advance", 0, points=10), _start(0), Step("advance", 0, points=1),
               _start(1), Step("advance", 1, points=1), crash, Step("advance", 0, points=10),
               Step("advance", 1, points=10), _start(0), Step("advance", 0, points=10), crash]
    cfg = ModelConfig(actors=2, sessions=1, server_crash=True)
    with Executor(spec, mode, cfg, watchdog=10) as ex:
        out = ex.run(program)
    assert not out.violations, [v.summary for v in out.violations]
    assert sum(1 for e in out.trace if e["ev"] == "server-crash") == 2, out.trace
    final = [e for e in out.trace if e["actor"] == "final"][-1]["value"]["messages"]
    assert final[0] == "m1" and final[-1] == "m4", final  # acknowledged before each kill: kept


@pytest.mark.quality
@pytest.mark.parametrize("mode,seed", [("threads", 0), ("threads", 1), ("threads", 2), ("processes", 0)])
def test_async_commit_is_caught_by_a_server_crash(mode, seed, tmp_path) -> None:
    from sessioncheck.verify import verify

    if seed == 0:
        quiet = verify("mutant:postgres-async-commit", mode=mode, budget=TIME_CAP, max_examples=20, seed=seed,
                       report_dir=tmp_path, save_report=False)
        assert not quiet.found, quiet.story  # without a crash nothing is lost
    r = verify("mutant:postgres-async-commit", mode=mode, faults=("server-crash",), budget=TIME_CAP,
               max_examples=MUTANT_EXAMPLES, seed=seed, report_dir=tmp_path, save_report=False, shrink_budget=2.0)
    assert r.found, f"missed in {r.exploration.examples} examples"
    assert r.outcome.violations[0].invariant == "I6", r.story
    story = " ".join(r.story.split())
    assert "synchronous_commit off" in story and "KILLED (kill -9) and restarted" in story, r.story
    assert "fsync on, synchronous_commit on, full_page_writes on" in story, r.story


def test_session_setting_is_read_from_the_statements_and_the_dsn(server, tmp_path) -> None:
    """A commit is marked not durable exactly while the session runs with
    synchronous_commit off: set by a statement, by SET LOCAL for one
    transaction, or by the DSN's options; RESET gives the default back."""
    from sessioncheck.controlled.intercept import context, postgres as points

    assert points.install()
    ctx = context.ActorContext("A", str(tmp_path), lambda kind, path, detail: None)

    def marks(run) -> int:
        ctx.events.clear()
        run()
        return sum(1 for e in ctx.events if e[0] == "not-durable")

    context.enter(ctx)
    try:
        with psycopg.connect(server.address, autocommit=True) as conn:
            assert marks(lambda: conn.execute("SELECT 1")) == 0
            assert marks(lambda: conn.execute("SET synchronous_commit TO 'off'")) == 0  # set, not yet used
            assert marks(lambda: conn.execute("SELECT 1")) == 1
            assert marks(lambda: conn.execute("RESET synchronous_commit")) == 1  # ran under off
            assert marks(lambda: conn.execute("SELECT 1")) == 0

            def local() -> None:
                with conn.transaction():
                    conn.execute("SET LOCAL synchronous_commit = off")
                    conn.execute("SELECT 1")
            assert marks(local) == 1  # the commit
            assert marks(lambda: conn.execute("SELECT 1")) == 0  # SET LOCAL ended with it
        dsn = psycopg.conninfo.make_conninfo(server.address, options=f"-c search_path={server.schema} "
                                                                     "-c synchronous_commit=off")
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert marks(lambda: conn.execute("SELECT 1")) == 1
    finally:
        context.enter(None)


def test_server_crash_is_refused_on_a_users_server(server, tmp_path) -> None:
    """The module's server stands in for the user's: asked to crash it, the
    harness exits 2 and leaves it running and clean."""
    base = psycopg.conninfo.make_conninfo(server.address, options="")
    with open(os.path.join(server.directory, "data", "postmaster.pid")) as f:
        pid = f.readline()
    env = {**os.environ, "PYTEST_XDIST_WORKER": "user"}
    p = subprocess.run([sys.executable, "-m", "sessioncheck", "run", "--store", "postgres", "--faults",
                        "server-crash", "--postgres-dsn", base, "--examples", "5", "--no-db"],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "kills only servers it started" in p.stderr, p.stderr
    with open(os.path.join(server.directory, "data", "postmaster.pid")) as f:
        assert f.readline() == pid  # not killed
    with psycopg.connect(base, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'sessioncheck_user%%'"
                            ).fetchone()[0] == 0
