"""SQL stores one layer away: SQLAlchemy over SQLite, shared connections,
the busy_timeout pragma, refusals wrapped by a driver, private locks.

Every engine test here is bounded by an example count (the budget is only
a hang guard).  The correct stores must pass with thread and process
actors; the buggy ones must be caught on every seed tried, with a story
made of the SQL statements that raced.
"""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy")

from sessioncheck.controlled import intercept  # noqa: E402
from sessioncheck.controlled.actor import OpCall, Runner  # noqa: E402
from sessioncheck.controlled.intercept.sqlite import _db_path, _sql_label  # noqa: E402
from sessioncheck.controlled.refusals import is_refusal  # noqa: E402
from sessioncheck.protocol import Capabilities, StoreSpec  # noqa: E402
from sessioncheck.verify import verify  # noqa: E402

HERE = Path(__file__).parent
EXAMPLES = 200
GUARD = 600.0  # seconds; only so that a hang fails instead of blocking the suite


def _passes(store: str, mode: str, examples: int = EXAMPLES, faults: tuple = ()):
    r = verify(store, mode=mode, faults=faults, budget=GUARD, max_examples=examples, seed=1, save_report=False)
    assert not r.found, r.story
    assert r.exploration.examples == examples, r.summary()
    return r


def _sql_points(r) -> set[str]:
    return {p for pts in r.coverage.points.values() for p in pts if p.startswith("sql ")}


# -- SQLAlchemy 2 Core over SQLite ------------------------------------------------------


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_sqlalchemy_store_passes(mode):
    r = _passes("sqlalchemy", mode)
    # Its statements are points: the store is seen, not run uncontrolled.
    assert {"sql sessions.db INSERT", "sql sessions.db SELECT", "sql sessions.db BEGIN"} <= _sql_points(r)


def test_sqlalchemy_store_survives_power_loss():
    _passes("sqlalchemy", "threads", examples=100, faults=("power-loss",))


@pytest.mark.parametrize("mode", ["threads", "processes"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sqlalchemy_rmw_is_caught_with_a_story_of_statements(mode, seed):
    r = verify("mutant:sqlalchemy-rmw", mode=mode, budget=GUARD, max_examples=EXAMPLES, seed=seed,
               save_report=False)
    assert r.found, r.summary()
    assert r.outcome.violations[0].invariant in ("I1", "I3"), r.story
    assert "SELECT sessions on blobs.db" in r.story, r.story
    assert "UPDATE sessions on blobs.db" in r.story or "INSERT sessions on blobs.db" in r.story, r.story
    # The connection pool's private mutex is no point of the story.
    assert "threading lock" not in r.story, r.story


# -- one connection shared by every instance in a process ------------------------------


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_shared_connection_store_runs_to_the_end_and_passes(mode):
    # A subprocess, so that a hang (the final read once blocked for ever
    # through the opener's context) fails at the timeout instead of blocking.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    p = subprocess.run([sys.executable, "-m", "sessioncheck", "run", "--store",
                        "sql_layer_stores:SharedConnectionStore", "--actors", mode, "--examples", str(EXAMPLES),
                        "--budget", str(GUARD), "--seed", "1", "--report", os.devnull],
                       capture_output=True, text=True, timeout=GUARD + 60, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout + p.stderr
    assert "no violation found" in out and f"{EXAMPLES} examples" in out, out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shared_connection_lost_update_is_caught_between_instances_of_one_process(seed):
    # Its statements are points of the actor running them: were they
    # charged to the instance that opened the connection, the race between
    # two users of one connection could not be scheduled.
    r = verify("sql_layer_stores:SharedConnectionRmwStore", mode="threads", budget=GUARD,
               max_examples=EXAMPLES, seed=seed, save_report=False)
    assert r.found and r.outcome.violations[0].invariant in ("I1", "I3"), r.summary()
    assert "SELECT s on blobs.db" in r.story and "INSERT s on blobs.db" in r.story, r.story


def test_a_statement_is_a_point_of_the_actor_running_it(tmp_path):
    intercept.install()
    seen: list[tuple[str, str]] = []

    def ctx(name):
        return intercept.ActorContext(name, str(tmp_path), lambda k, p, d: seen.append((name, d)))

    a, b = ctx("A"), ctx("B")
    try:
        intercept.enter(a)
        conn = sqlite3.dbapi2.connect(str(tmp_path / "x.db"), check_same_thread=False)
        intercept.enter(b)
        conn.execute("CREATE TABLE t (x)")
        intercept.enter(None)
        conn.execute("INSERT INTO t VALUES (1)")  # outside every actor: no point
        conn.commit()
        conn.close()
    finally:
        intercept.enter(None)
    assert seen == [("A", "CONNECT"), ("B", "CREATE t")]


# -- PRAGMA busy_timeout, file: URIs -----------------------------------------------------


@pytest.mark.parametrize("store", ["BusyTimeoutPragmaStore", "UriPragmaStore"])
@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_busy_timeout_pragma_is_virtual(store, mode):
    # A real 30 s busy wait while the holder is parked would trip the
    # watchdog (I5); in virtual time the run goes at full speed.
    r = _passes(f"sql_layer_stores:{store}", mode)
    assert "sql pragma.db INSERT" in _sql_points(r)


def test_the_pragma_sets_the_virtual_timeout_and_zeroes_the_real_one(tmp_path):
    intercept.install()
    c = intercept.ActorContext("A", str(tmp_path), lambda k, p, d: None)
    intercept.enter(c)
    try:
        conn = sqlite3.connect(str(tmp_path / "x.db"), timeout=0)
        assert conn.execute("PRAGMA busy_timeout = 2500").fetchall() == [(2500,)]
        assert conn._sp.timeout == 2.5
        assert sqlite3.Cursor(conn).execute("PRAGMA busy_timeout").fetchall() == [(0,)]
        conn.close()
    finally:
        intercept.enter(None)


def test_database_paths_from_uris_and_bytes(tmp_path):
    db = tmp_path / "a b.db"
    assert _db_path(db.as_uri() + "?mode=rwc", uri=True) == str(db)
    assert _db_path(f"file:{db}?cache=shared", uri=True) == str(db)
    assert _db_path("file:mem?mode=memory&cache=shared", uri=True) is None
    assert _db_path(":memory:", uri=False) is None
    assert _db_path(os.fsencode(db), uri=False) == str(db)


# -- statement labels ------------------------------------------------------------------


@pytest.mark.parametrize("sql,label", [
    ("SELECT data FROM sessions WHERE id = ?", "SELECT sessions"),
    ("INSERT OR REPLACE INTO metadata (session, key) VALUES (?, ?)", "INSERT metadata"),
    ('INSERT INTO "messages" (content) VALUES (?)', "INSERT messages"),
    ("UPDATE sessions SET data=? WHERE id=?", "UPDATE sessions"),
    ("DELETE FROM metadata WHERE session = ?", "DELETE metadata"),
    ("  -- a comment\n select seq from main.messages", "SELECT messages"),
    ("BEGIN IMMEDIATE", "BEGIN"),
    ("COMMIT", "COMMIT"),
    ("PRAGMA journal_mode=WAL", "PRAGMA"),
    ("CREATE TABLE IF NOT EXISTS messages (x)", "CREATE messages"),
])
def test_a_statement_is_labelled_by_verb_and_first_table(sql, label):
    assert _sql_label(sql) == label


# -- refusal by cause ------------------------------------------------------------------


class StoreBusy(Exception):
    pass


def test_a_refusal_wrapped_by_a_driver_or_reraised_is_a_refusal():
    import sqlalchemy.exc

    busy = sqlite3.OperationalError("database is locked")
    wrapped = sqlalchemy.exc.OperationalError("INSERT ...", {}, busy)
    assert wrapped.orig is busy and is_refusal(wrapped)
    try:
        try:
            raise TimeoutError("lock")
        except TimeoutError:
            raise RuntimeError("could not save")  # implicit context
    except RuntimeError as exc:
        assert is_refusal(exc)
    try:
        try:
            raise OSError(5, "EIO")
        except OSError:
            raise ValueError("bad state") from None  # says: not because of it
    except ValueError as exc:
        assert not is_refusal(exc)
    assert not is_refusal(sqlite3.OperationalError("no such table: messages"))
    assert not is_refusal(StoreBusy()) and is_refusal(StoreBusy(), (StoreBusy,))


class _Raises:
    capabilities = Capabilities(refusals=(StoreBusy,))

    def __init__(self, location):
        pass

    def add_message(self, session_id, message):
        import sqlalchemy.exc

        if message["content"] == "m1":
            raise sqlalchemy.exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
        if message["content"] == "m2":
            raise StoreBusy("try later")
        raise sqlite3.OperationalError("no such table: messages")


def test_runner_reports_refusals_as_info_and_failures_as_errors(tmp_path):
    spec = StoreSpec("raises", _Raises, __name__)
    r = Runner()
    assert r.run(spec, str(tmp_path), OpCall("open")).status == "ok"
    assert [r.run(spec, str(tmp_path), OpCall("add", "s0", m)).status for m in ("m1", "m2", "m3")] == \
        ["info", "info", "error"]


# -- a lock private to one actor -------------------------------------------------------


def test_a_lock_only_one_actor_takes_is_no_point(tmp_path):
    from sessioncheck.controlled.intercept.locks import CooperativeLock

    seen: list[str] = []

    def ctx(name, root):
        return intercept.ActorContext(name, str(root), lambda k, p, d: seen.append(f"{name} {k}"))

    lock = CooperativeLock()
    try:
        for c in (ctx("A", tmp_path), ctx("A", tmp_path), ctx("B", tmp_path), ctx("A", tmp_path),
                  ctx("A", tmp_path / "next-run")):
            intercept.enter(c)
            with lock:
                pass
    finally:
        intercept.enter(None)
    # A alone: no point; B makes it shared: a point for B and A from then
    # on; a new run (another store location) starts counting again.
    assert seen == ["B lock", "A lock"]
