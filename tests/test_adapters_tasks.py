"""Real async stores under task actors (``--actors tasks``).

aiosqlite runs every statement in a connection thread of its own: the
statements that thread makes are points of the task that awaits them, so
a select-then-replace store over aiosqlite is caught, a row-per-message
one passes, and the same seed gives the same story twice.  Then the real
packages driven natively through their async API: openai-agents
``SQLiteSession`` (``asyncio.to_thread``), ``AsyncSQLiteSession`` and
``RedisSession`` (redis.asyncio), and langgraph's ``AsyncSqliteSaver``.
Budgets are example counts with fixed seeds.  Each test skips, naming the
extra, where its package is missing (they run in CI's adapters job)."""
from __future__ import annotations

import json
import os

import pytest

from sessioncheck import servers
from sessioncheck.protocol import Capabilities, SessionState
from sessioncheck.specs import name_of
from sessioncheck.verify import verify

aiosqlite = pytest.importorskip("aiosqlite", reason="aiosqlite is not installed: pip install 'sessioncheck[adapters]'")


def _run(store: str, examples: int, seed: int = 0):
    return verify(store, mode="tasks", budget=60, max_examples=examples, seed=seed, save_report=False)


def _steps(trace: list) -> list:
    return [(e["actor"], e["ev"], e.get("kind"), e.get("detail")) for e in trace]


class _Aiosqlite:
    capabilities = Capabilities(metadata=False, delete=False, retention=None)

    def __init__(self, location) -> None:
        self.path = os.path.join(str(location), "s.db")
        self.db = None

    async def _conn(self):
        if self.db is None:
            self.db = await aiosqlite.connect(self.path, timeout=30)
            await self.db.execute("CREATE TABLE IF NOT EXISTS blob (sid TEXT PRIMARY KEY, body TEXT)")
            await self.db.execute("CREATE TABLE IF NOT EXISTS msg (id INTEGER PRIMARY KEY, sid TEXT, body TEXT)")
            await self.db.commit()
        return self.db

    def persist_state(self, session_id, fields):
        raise NotImplementedError

    async def close(self) -> None:
        db, self.db = self.db, None
        if db is not None:
            await db.close()


class AiosqliteBlob(_Aiosqlite):
    """SELECT the list, then INSERT OR REPLACE it: a lost update."""

    async def add_message(self, session_id, message):
        db = await self._conn()
        async with db.execute("SELECT body FROM blob WHERE sid = ?", (session_id,)) as cur:
            row = await cur.fetchone()
        items = [*(json.loads(row[0]) if row else []), dict(message)]
        await db.execute("INSERT OR REPLACE INTO blob VALUES (?, ?)", (session_id, json.dumps(items)))
        await db.commit()

    async def read(self, session_id):
        db = await self._conn()
        async with db.execute("SELECT body FROM blob WHERE sid = ?", (session_id,)) as cur:
            row = await cur.fetchone()
        return SessionState(json.loads(row[0]) if row else [])


class AiosqliteRows(_Aiosqlite):
    """One INSERT per message: correct."""

    async def add_message(self, session_id, message):
        db = await self._conn()
        await db.execute("INSERT INTO msg (sid, body) VALUES (?, ?)", (session_id, json.dumps(dict(message))))
        await db.commit()

    async def read(self, session_id):
        db = await self._conn()
        async with db.execute("SELECT body FROM msg WHERE sid = ? ORDER BY id", (session_id,)) as cur:
            rows = await cur.fetchall()
        return SessionState([json.loads(r[0]) for r in rows])


def test_aiosqlite_select_then_replace_is_caught_at_its_statements_the_same_way_twice() -> None:
    a = _run(name_of(AiosqliteBlob), 60, seed=1)
    b = _run(name_of(AiosqliteBlob), 60, seed=1)
    assert a.found and a.outcome.violations[0].invariant == "I1", a.summary()
    # the connection thread's statements are points of the awaiting task
    story = " ".join(a.story.split())  # unwrapped
    assert "SELECT blob on s.db" in story and "INSERT blob on s.db" in story, a.story
    assert a.story == b.story and _steps(a.outcome.trace) == _steps(b.outcome.trace)


def test_aiosqlite_row_per_message_passes_with_tasks() -> None:
    r = _run(name_of(AiosqliteRows), 80)
    assert not r.found, r.story
    assert "sql" in r.coverage.kinds, r.coverage.kinds


def test_langgraph_async_sqlite_saver_put_writes_passes_and_read_put_loses_an_append() -> None:
    pytest.importorskip("langgraph.checkpoint.sqlite.aio", reason="pip install 'sessioncheck[langgraph]'")
    r = _run("langgraph-async", 80)
    assert not r.found, r.story
    a = _run("langgraph-async-read-put", 80, seed=2)
    b = _run("langgraph-async-read-put", 80, seed=2)
    assert a.found and a.outcome.violations[0].invariant == "I1", a.summary()
    assert a.story == b.story


@pytest.mark.parametrize("spec", ["openai-agents-native", "openai-agents-async-sqlite"])
def test_openai_agents_sqlite_sessions_pass_with_tasks(spec: str) -> None:
    pytest.importorskip("agents", reason="pip install 'sessioncheck[openai-agents]'")
    r = _run(spec, 60)
    assert not r.found, r.story
    assert "sql" in r.coverage.kinds, r.coverage.kinds


WHY = servers.unavailable("redis") if "redis" in servers.KINDS else "no redis resource"


@pytest.mark.skipif(bool(WHY), reason=WHY or "")
def test_openai_agents_redis_session_passes_with_tasks_and_commands_are_points() -> None:
    pytest.importorskip("agents.extensions.memory.redis_session", reason="pip install 'sessioncheck[openai-agents]'")
    r = _run("openai-agents-redis", 60)
    assert not r.found, r.story
    assert "redis" in r.coverage.kinds and "sleep" not in r.coverage.kinds, r.coverage.kinds
