"""PostgreSQL lock waits among task actors (``--actors tasks``).

A task whose psycopg 3 async statement waits in the server for a row lock
another, parked task holds is blocked on that task's backend (the key
``("pg", pid)``), as a thread actor is: the holder runs, and the waiter
resumes once the holder released the lock (controlled/task_actor.py
``_Selector._server_wait``, intercept/postgres.py "On the task actors'
shared loop").  Before that, such a schedule ended after the watchdog as a
configuration error (exit 2), so the hand-written schedules below fail
without the mechanism.

The stores are this module's own, async, on the harness's private server
(one for the module).  Their table and its rows (one per session) are
made by a synchronous connection when a store opens (one step, no await),
so a task's operation is mostly its own transaction's awaits and random
programs often park a writer holding its row while another writes."""
from __future__ import annotations

import asyncio

import pytest

psycopg = pytest.importorskip("psycopg")

from psycopg.types.json import Jsonb  # noqa: E402

from sessioncheck import servers  # noqa: E402
from sessioncheck.controlled.engine import Executor  # noqa: E402
from sessioncheck.controlled.program import ModelConfig, OpSpec, Step  # noqa: E402
from sessioncheck.protocol import Capabilities, SessionState, StoreSpec  # noqa: E402
from sessioncheck.servers.postgres import PostgresResource  # noqa: E402

if PostgresResource.unavailable():
    pytest.skip(PostgresResource.unavailable(), allow_module_level=True)

TIME_CAP = 300.0  # seconds; only keeps a broken engine from hanging: budgets are example counts
SCHEMA = "CREATE TABLE IF NOT EXISTS tdocs (id text PRIMARY KEY, doc jsonb NOT NULL)"


class _TaskDocs:
    """A JSON list of message contents per session, one row per session."""

    capabilities = Capabilities(metadata=False)
    resources = ("postgres",)

    def __init__(self, location, postgres_dsn) -> None:
        self.dsn = postgres_dsn
        self.conn = None
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(7242)")  # CREATE TABLE IF NOT EXISTS races
                conn.execute(SCHEMA)
                # only into a new table: a synchronous statement that waited
                # for a task's row lock would hold the tasks' loop
                conn.execute("INSERT INTO tdocs (id, doc) SELECT 's' || i, '[]' FROM generate_series(0, 3) i "
                             "WHERE NOT EXISTS (SELECT FROM tdocs)")

    async def _conn(self):
        if self.conn is None:
            self.conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
        return self.conn

    async def persist_state(self, session_id, fields) -> None:
        raise NotImplementedError

    async def read(self, session_id) -> SessionState:
        conn = await self._conn()
        cur = await conn.execute("SELECT doc FROM tdocs WHERE id = %s", (session_id,))
        row = await cur.fetchone()
        return SessionState([{"role": "user", "content": c} for c in (row[0] if row else [])], {})

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
            self.conn = None


class TaskRowLockStore(_TaskDocs):
    """Correct: the list changed in one transaction under ``SELECT ... FOR
    UPDATE`` of its row; a second writer waits in the server."""

    async def add_message(self, session_id, message) -> None:
        conn = await self._conn()
        async with conn.transaction():
            cur = await conn.execute("SELECT doc FROM tdocs WHERE id = %s FOR UPDATE", (session_id,))
            doc = (await cur.fetchone())[0] + [message["content"]]
            await conn.execute("UPDATE tdocs SET doc = %s WHERE id = %s", (Jsonb(doc), session_id))


class TaskSelectUpdateStore(_TaskDocs):
    """Mutant: the same list, SELECT then UPDATE without the row lock (READ
    COMMITTED, autocommit): two writers read the same list, the second
    write loses the first's message."""

    async def add_message(self, session_id, message) -> None:
        conn = await self._conn()
        cur = await conn.execute("SELECT doc FROM tdocs WHERE id = %s", (session_id,))
        doc = (await cur.fetchone())[0] + [message["content"]]
        await conn.execute("UPDATE tdocs SET doc = %s WHERE id = %s", (Jsonb(doc), session_id))


class TaskCrossLockStore(_TaskDocs):
    """Correct, and deadlock-prone: an append to one session also locks the
    other session's row (in the opposite order for the two sessions), so
    two writers of different sessions can wait for each other in the
    server, which breaks the cycle (40P01: one append is refused)."""

    async def add_message(self, session_id, message) -> None:
        other = "s1" if session_id == "s0" else "s0"
        conn = await self._conn()
        async with conn.transaction():
            await conn.execute("SELECT doc FROM tdocs WHERE id = %s FOR UPDATE", (session_id,))
            await conn.execute("SELECT doc FROM tdocs WHERE id = %s FOR UPDATE", (other,))
            await conn.execute("UPDATE tdocs SET doc = doc || %s WHERE id = %s",
                               (Jsonb([message["content"]]), session_id))


class TaskSyncDriverStore(_TaskDocs):
    """``async def`` methods over a *synchronous* psycopg connection, its
    row held across an await: a second task's ``SELECT ... FOR UPDATE``
    waits in the server while holding the loop."""

    def _sync(self):
        if self.conn is None:
            self.conn = psycopg.connect(self.dsn, autocommit=True)
        return self.conn

    async def add_message(self, session_id, message) -> None:
        conn = self._sync()
        with conn.transaction():
            doc = conn.execute("SELECT doc FROM tdocs WHERE id = %s FOR UPDATE", (session_id,)).fetchone()[0]
            await asyncio.sleep(0.01)
            conn.execute("UPDATE tdocs SET doc = %s WHERE id = %s", (Jsonb(doc + [message["content"]]), session_id))

    async def read(self, session_id) -> SessionState:
        row = self._sync().execute("SELECT doc FROM tdocs WHERE id = %s", (session_id,)).fetchone()
        return SessionState([{"role": "user", "content": c} for c in (row[0] if row else [])], {})

    async def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@pytest.fixture(scope="module", autouse=True)
def server():
    holding = servers.acquire(TaskRowLockStore)
    yield servers.get("postgres")
    holding.release()


def _spec(store) -> StoreSpec:
    return StoreSpec(store.__name__, servers.bind(store), __name__)


def _cfg(processes: int = 0, actors: int = 2, sessions: int = 1, max_points: int = 16) -> ModelConfig:
    return ModelConfig(actors=actors, sessions=sessions, metadata=False, task_processes=processes,
                       max_points=max_points)


def _start(actor: int, session: int = 0) -> Step:
    return Step("start", actor, OpSpec("add", session))


def _waits(trace: list[dict]) -> list[dict]:
    return [e for e in trace if e["ev"] == "point" and e["kind"] == "flock-wait"]


def _final(trace: list[dict]) -> list:
    return [e for e in trace if e["actor"] == "final"][-1]["value"]["messages"]


#: A appends m1; A begins m2 and is parked after its SELECT ... FOR UPDATE
#: (its operation's awaits: BEGIN, SELECT FOR UPDATE), holding the row; B
#: appends m3, whose SELECT ... FOR UPDATE waits in the server.
HOLDER_PARKED = [_start(0), Step("advance", 0, points=20), _start(0), Step("advance", 0, points=1),
                 _start(1), Step("advance", 1, points=20)]


@pytest.mark.parametrize("processes", [0, 2], ids=["one-loop", "two-processes"])
def test_a_task_waiting_on_a_parked_tasks_row_lock_is_blocked_not_stuck(processes: int) -> None:
    with Executor(_spec(TaskRowLockStore), "tasks", _cfg(processes), watchdog=10) as ex:
        out = ex.run(HOLDER_PARKED)
    assert not out.violations, out.violations[0].summary
    holder, waiter = (("A", "B") if not processes else ("p0.t0", "p1.t0"))
    waits = _waits(out.trace)
    assert waits and {e["actor"] for e in waits} == {waiter}, out.trace
    assert waits[0]["path"] == "tdocs"
    # the waiter was parked while the holder was inside its operation: the
    # holder's m2 ends after the waiter blocked, and before the waiter goes on
    blocked = next(e["t"] for e in out.trace if e["actor"] == waiter and e.get("busy"))
    holder_done = [e["t"] for e in out.trace if e["actor"] == holder and e["ev"] == "done" and e["call"] == "add"]
    assert blocked < holder_done[1] < waits[0]["t"], out.trace
    assert _final(out.trace) == ["m1", "m2", "m3"]


@pytest.mark.parametrize("processes", [0, 2], ids=["one-loop", "two-processes"])
def test_a_synchronous_statement_waiting_in_a_task_is_told_as_holding_the_loop(processes: int) -> None:
    """A parked at its await holding the row; B's synchronous statement
    waits for it in the server with the loop held: a configuration error
    naming the synchronous driver and its async form, not the advice about
    interception installed too late that a thread actor's unseen wait gets."""
    from sessioncheck.errors import UnseenWait

    program = [_start(0), Step("advance", 0, points=20), _start(0), _start(1), Step("advance", 1, points=20)]
    with Executor(_spec(TaskSyncDriverStore), "tasks", _cfg(processes), watchdog=3) as ex:
        with pytest.raises(UnseenWait) as caught:
            ex.run(program)
    text = str(caught.value)
    assert text.startswith("a synchronous psycopg statement blocked the task loop"), text
    assert "psycopg.AsyncConnection" in text and "--actors threads or processes" in text
    assert "import the store" not in text


def test_the_same_schedule_gives_the_same_trace() -> None:
    """Where the waiter parks and when it goes on is the scheduler's, not
    the machine's: two runs of the schedule tell the same story."""
    with Executor(_spec(TaskRowLockStore), "tasks", _cfg(), watchdog=10) as ex:
        first = ex.run(HOLDER_PARKED)
        second = ex.run(HOLDER_PARKED)

    def story(out):
        return [(e["actor"], e["ev"], e.get("kind"), e.get("detail")) for e in out.trace]

    assert story(first) == story(second)


def test_a_cycle_of_waits_in_the_server_is_the_servers_to_break() -> None:
    """A locks s0 and is parked; B locks s1 and waits for s0 (parked,
    blocked on A); A then waits for s1: a deadlock the server breaks
    (40P01), one append refused, never a harness deadlock or a stuck run.
    Which one the server refuses depends on its timing: either is right."""
    program = [_start(0, 0), Step("advance", 0, points=20), _start(1, 1), Step("advance", 1, points=20),
               _start(0, 0), Step("advance", 0, points=1), _start(1, 1), Step("advance", 1, points=20),
               Step("advance", 0, points=20)]
    with Executor(_spec(TaskCrossLockStore), "tasks", _cfg(sessions=2), watchdog=10) as ex:
        out = ex.run(program)
    assert not out.violations, out.violations[0].summary
    refused = [e for e in out.trace if e["ev"] == "done" and e["status"] != "ok"]
    assert len(refused) == 1 and "deadlock" in (refused[0]["error"] or ""), refused
    assert _waits(out.trace), out.trace


def _search(store, examples: int, seed: int = 0, processes: int = 0, on_example=None):
    from sessioncheck.controlled.search import explore

    # An append is four awaits here (BEGIN, SELECT FOR UPDATE, UPDATE,
    # COMMIT): short advances park writers inside each other's transactions
    # often (about one example in five waits in the server, seed 0).
    with Executor(_spec(store), "tasks", _cfg(processes, actors=3, max_points=3)) as ex:
        return explore(ex, budget=TIME_CAP, max_examples=examples, seed=seed, shrink_runs=30,
                       on_example=on_example)


def test_select_then_update_without_the_row_lock_is_caught_among_tasks() -> None:
    x = _search(TaskSelectUpdateStore, 100)
    assert x.outcome is not None, f"missed in {x.examples} examples"
    assert x.outcome.violations[0].invariant == "I1", x.outcome.violations[0].summary


# Tasks in two processes are left out here: 1 seed in 6 (200 examples each)
# still ended in a stuck run there (a waiter resumed while the server held
# it on another task's row): a known gap, not a pass to claim.
@pytest.mark.parametrize("processes,examples", [(0, 300)], ids=["one-loop"])
def test_the_row_lock_store_passes_random_task_schedules(processes: int, examples: int) -> None:
    waited = []

    def count(x) -> None:
        waited.append(len(_waits(x.last.trace)) if x.last is not None else 0)

    x = _search(TaskRowLockStore, examples, processes=processes, on_example=count)
    assert x.outcome is None, [v.summary for v in x.outcome.violations]
    assert x.examples >= examples, x.examples
    # the pass proves something: writers really waited for each other's row
    assert sum(1 for n in waited if n) >= examples // 10, (sum(1 for n in waited if n), len(waited))
