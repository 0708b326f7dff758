"""psycopg 3's AsyncConnection under the controlled scheduler: statements,
commits and rollbacks are points as for the sync client (thread, process
and task actors), and a statement waiting for a row lock a parked actor
holds is a lock wait (thread and process actors).  Small async stores of this module's own, on the
harness's private server (one for the module)."""
from __future__ import annotations

import time

import pytest

psycopg = pytest.importorskip("psycopg")

from psycopg.types.json import Jsonb  # noqa: E402

from sessioncheck import servers  # noqa: E402
from sessioncheck.controlled.engine import Executor  # noqa: E402
from sessioncheck.controlled.program import ModelConfig, OpSpec, Step  # noqa: E402
from sessioncheck.protocol import Capabilities, SessionState  # noqa: E402
from sessioncheck.servers.postgres import PostgresResource  # noqa: E402

if PostgresResource.unavailable():
    pytest.skip(PostgresResource.unavailable(), allow_module_level=True)

TIME_CAP = 300.0
SCHEMA = ("CREATE TABLE IF NOT EXISTS adocs (id text PRIMARY KEY, doc jsonb NOT NULL);"
          "CREATE TABLE IF NOT EXISTS amsgs (sid text NOT NULL, seq bigserial, content text NOT NULL)")


class _AsyncBase:
    capabilities = Capabilities(metadata=False)
    resources = ("postgres",)

    def __init__(self, location, postgres_dsn) -> None:
        self.dsn = postgres_dsn
        self.conn = None

    async def _conn(self):
        if self.conn is None:
            self.conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
            async with self.conn.transaction():
                await self.conn.execute("SELECT pg_advisory_xact_lock(7241)")
                await self.conn.execute(SCHEMA)
        return self.conn

    async def persist_state(self, session_id, fields) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
            self.conn = None


class AsyncAppendStore(_AsyncBase):
    """Correct: a row per message, one INSERT; a read is one SELECT."""

    async def add_message(self, session_id, message) -> None:
        conn = await self._conn()
        await conn.execute("INSERT INTO amsgs (sid, content) VALUES (%s, %s)", (session_id, message["content"]))

    async def read(self, session_id) -> SessionState:
        conn = await self._conn()
        cur = await conn.execute("SELECT content FROM amsgs WHERE sid = %s ORDER BY seq", (session_id,))
        return SessionState([{"role": "user", "content": c} for (c,) in await cur.fetchall()], {})


class AsyncSelectUpdateStore(_AsyncBase):
    """Mutant: a JSON list per session, SELECT then UPDATE under READ
    COMMITTED: two writers both read the old list, the second overwrites."""

    async def add_message(self, session_id, message) -> None:
        conn = await self._conn()
        cur = await conn.execute("SELECT doc FROM adocs WHERE id = %s", (session_id,))
        row = await cur.fetchone()
        doc = (row[0] if row else []) + [message["content"]]
        await conn.execute("INSERT INTO adocs (id, doc) VALUES (%s, %s) ON CONFLICT (id) DO UPDATE SET doc = "
                           "excluded.doc", (session_id, Jsonb(doc)))

    async def read(self, session_id) -> SessionState:
        conn = await self._conn()
        cur = await conn.execute("SELECT doc FROM adocs WHERE id = %s", (session_id,))
        row = await cur.fetchone()
        return SessionState([{"role": "user", "content": c} for c in (row[0] if row else [])], {})


class AsyncRowLockStore(AsyncSelectUpdateStore):
    """Correct: the same list, changed under SELECT ... FOR UPDATE of its
    row in one transaction (a second writer waits in the server)."""

    async def add_message(self, session_id, message) -> None:
        conn = await self._conn()
        async with conn.transaction():
            await conn.execute("INSERT INTO adocs (id, doc) VALUES (%s, '[]') ON CONFLICT DO NOTHING",
                               (session_id,))
            cur = await conn.execute("SELECT doc FROM adocs WHERE id = %s FOR UPDATE", (session_id,))
            doc = (await cur.fetchone())[0] + [message["content"]]
            await conn.execute("UPDATE adocs SET doc = %s WHERE id = %s", (Jsonb(doc), session_id))


@pytest.fixture(scope="module", autouse=True)
def server():
    holding = servers.acquire(AsyncAppendStore)
    yield servers.get("postgres")
    holding.release()


def _spec(store):
    from sessioncheck.protocol import StoreSpec

    return StoreSpec(store.__name__, servers.bind(store), __name__)


def _search(store, mode, examples, seed=0):
    from sessioncheck.controlled.search import explore
    from sessioncheck.verify import model_config

    spec = _spec(store)
    with Executor(spec, mode, model_config(spec, mode, "")) as ex:
        return explore(ex, budget=TIME_CAP, max_examples=examples, seed=seed, shrink_runs=30)


def _points(x) -> set:
    return {(e.get("detail"), e.get("path")) for e in x.outcome.trace if e["ev"] == "point"}


@pytest.mark.parametrize("store,mode", [(AsyncAppendStore, "threads"), (AsyncAppendStore, "processes"),
                                        (AsyncAppendStore, "tasks"), (AsyncRowLockStore, "threads"),
                                        (AsyncRowLockStore, "processes")],
                         ids=["append-threads", "append-processes", "append-tasks", "row-lock-threads",
                              "row-lock-processes"])
def test_correct_async_stores_pass(store, mode, tmp_path) -> None:
    x = _search(store, mode, 150)
    assert x.outcome is None, [v.summary for v in x.outcome.violations]
    assert len(x.interleavings) >= 20, len(x.interleavings)  # the statements were points


@pytest.mark.parametrize("mode", ["threads", "processes", "tasks"])
def test_async_select_then_update_is_caught(mode) -> None:
    x = _search(AsyncSelectUpdateStore, mode, 100)
    assert x.outcome is not None, f"missed in {x.examples} examples"
    assert x.outcome.violations[0].invariant == "I1", x.outcome.violations[0].summary
    if mode != "tasks":  # a task's steps are its awaits
        assert {("SELECT", "adocs"), ("INSERT", "adocs")} <= _points(x), _points(x)


def _start(actor: int) -> Step:
    return Step("start", actor, OpSpec("add", 0))


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_waiter_on_a_parked_holders_row_lock_is_blocked_not_stuck(mode) -> None:
    """A appends m1; A begins m2 and parks holding the row lock (after its
    SELECT ... FOR UPDATE); B appends m3 and waits for it in the server."""
    spec = _spec(AsyncRowLockStore)
    program = [_start(0), Step("advance", 0, points=20), _start(0), Step("advance", 0, points=3),
               _start(1), Step("advance", 1, points=20)]
    with Executor(spec, mode, ModelConfig(actors=2, sessions=1, metadata=False), watchdog=10) as ex:
        t0 = time.monotonic()
        out = ex.run(program)
        elapsed = time.monotonic() - t0
    assert not out.violations, out.violations[0].summary
    waits = [e for e in out.trace if e["ev"] == "point" and e["kind"] == "flock-wait"]
    assert waits and {e["actor"] for e in waits} == {"B"}, out.trace
    final = [e for e in out.trace if e["actor"] == "final"][-1]
    assert final["value"]["messages"] == ["m1", "m2", "m3"]
    assert elapsed < 10
