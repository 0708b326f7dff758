"""Task actors through real async I/O: helper threads and sockets.

Work a task hands to a thread (``asyncio.to_thread``, ``run_in_executor``)
is the task's: the thread's intercepted file calls are points of the task
that awaits it, so an unlocked read-modify-write in ``to_thread`` is
caught with tasks, and the story names those calls.  An await on a
socket (redis.asyncio) waits for the reply for real, never on a timer, so
the same seed gives the same story twice.  Budgets are example counts
with fixed seeds (deterministic claims)."""
from __future__ import annotations

import json

import pytest

from sessioncheck import servers
from sessioncheck.protocol import Capabilities, SessionState
from sessioncheck.specs import name_of
from sessioncheck.verify import verify

BUDGET = 200  # examples


def _run(store: str, seed: int = 0, examples: int = BUDGET, faults: tuple = ()):
    return verify(store, mode="tasks", faults=faults, budget=60.0, max_examples=examples, seed=seed,
                  save_report=False)


def _helper_points(trace: list) -> list:
    return [e for e in trace if e["ev"] == "point" and e["kind"] not in ("await", "sleep", "lock-wait")]


@pytest.mark.parametrize("seed", (0, 1, 2))
def test_to_thread_rmw_is_caught_with_tasks_at_its_helper_threads_calls(seed: int) -> None:
    out = _run("mutant:to-thread-rmw", seed=seed).exploration.outcome
    assert out is not None and out.violations[0].invariant in ("I1", "I3"), f"missed with seed {seed}"
    # the file calls of the helper thread are points of the awaiting task
    assert _helper_points(out.trace), out.trace


def _steps(trace: list) -> list:
    # temp files have random names (tempfile); the story names them tmp1, tmp2
    return [(e["actor"], e["ev"], e.get("kind")) for e in trace]


def test_helper_thread_points_give_the_same_story_twice() -> None:
    a = _run("mutant:to-thread-rmw", seed=3)
    b = _run("mutant:to-thread-rmw", seed=3)
    assert a.found and a.story == b.story
    assert _steps(a.outcome.trace) == _steps(b.outcome.trace)
    assert "replace tmp" in a.story and "await in add_message to_thread_rmw.py:" in a.story


@pytest.mark.parametrize("faults", [(), ("cancel",)])
def test_reference_async_store_passes_with_helper_points(faults: tuple) -> None:
    r = _run("async-json", faults=faults)
    assert r.exploration.outcome is None and r.exploration.examples == BUDGET
    assert r.coverage.kinds - {"await", "sleep", "lock-wait"}, r.coverage.kinds


def test_a_sync_pool_wait_in_a_task_is_one_step() -> None:
    # executor-rmw waits on its pool synchronously, holding the loop: in a
    # task nothing else can run meanwhile, so its pool work is no point
    # (and the run must not hang); the health check says so
    from sessioncheck.health import HealthCheckFailed

    with pytest.raises(HealthCheckFailed, match="no_preemption_point"):
        _run("mutant:executor-rmw", examples=40)


# -- redis.asyncio -------------------------------------------------------------
WHY = servers.unavailable("redis") if "redis" in servers.KINDS else "no redis resource"
try:
    import redis.asyncio as redis_asyncio
except ImportError:  # pragma: no cover - redis-py is in the test extra
    redis_asyncio = None
needs_redis = pytest.mark.skipif(bool(WHY) or redis_asyncio is None, reason=WHY or "no redis-py")


class _RedisStore:
    resources = ("redis",)
    capabilities = Capabilities(metadata=False, delete=False, retention=None)

    def __init__(self, location, *, redis_url: str) -> None:
        # every reply is read under a 5 s timer: a sleep point there would
        # let virtual time fire it
        self.redis = redis_asyncio.Redis.from_url(redis_url, decode_responses=True, socket_timeout=5.0)

    def persist_state(self, session_id, fields):
        raise NotImplementedError

    async def close(self) -> None:
        await self.redis.aclose()


class RedisGetSet(_RedisStore):
    async def add_message(self, session_id, message):
        raw = await self.redis.get(session_id)
        await self.redis.set(session_id, json.dumps([*json.loads(raw or "[]"), dict(message)]))

    async def read(self, session_id):
        return SessionState(json.loads(await self.redis.get(session_id) or "[]"))


class RedisRpush(_RedisStore):
    async def add_message(self, session_id, message):
        await self.redis.rpush(session_id, json.dumps(dict(message)))

    async def read(self, session_id):
        return SessionState([json.loads(i) for i in await self.redis.lrange(session_id, 0, -1)])


@needs_redis
def test_redis_asyncio_get_then_set_is_caught_with_tasks_the_same_way_twice(tmp_path) -> None:
    a = verify(name_of(RedisGetSet), mode="tasks", budget=60, max_examples=60, seed=1, save_report=False)
    b = verify(name_of(RedisGetSet), mode="tasks", budget=60, max_examples=60, seed=1, save_report=False)
    assert a.found and a.outcome.violations[0].invariant == "I1", a.summary()
    assert a.story == b.story and _steps(a.outcome.trace) == _steps(b.outcome.trace)


@needs_redis
def test_redis_asyncio_rpush_passes_with_tasks_and_replies_are_no_timers(tmp_path) -> None:
    r = verify(name_of(RedisRpush), mode="tasks", budget=60, max_examples=80, seed=0, save_report=False)
    assert not r.found, r.story
    assert "sleep" not in r.coverage.kinds, r.coverage.kinds
