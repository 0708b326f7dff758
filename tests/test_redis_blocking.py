"""Redis commands that block inside the server (BLPOP, XREAD BLOCK, WAIT).

Sent by the sync client on its own, such a command is a wait in the
server: the actor parks blocked while the server holds it, the scheduler
runs the others and resumes it once the server served it; never a hang
until the watchdog, never a false "stuck".  Through redis.asyncio (or a
pipeline) it is refused, a configuration error naming it.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sessioncheck import servers
from sessioncheck.controlled.engine import Executor
from sessioncheck.controlled.program import ModelConfig, OpSpec, Step
from sessioncheck.errors import ConfigError
from sessioncheck.protocol import Capabilities, SessionState, StoreSpec
from sessioncheck.servers.redis_commands import blocking

WHY = servers.unavailable("redis") if "redis" in servers.KINDS else "no redis resource"
pytestmark = pytest.mark.skipif(bool(WHY), reason=WHY or "")
TIME_CAP = 120.0


class TokenMutexStore:
    """A list token as the mutex of a JSON-blob read-modify-write: ``BLPOP
    token`` takes it (blocking in the server while another writer has it),
    ``RPUSH token`` gives it back after the write (correct)."""

    capabilities = Capabilities(metadata=False)
    resources = ("redis",)

    def __init__(self, location, redis_url) -> None:
        import redis

        self.r = redis.Redis.from_url(redis_url, decode_responses=True)
        if self.r.set("token:made", 1, nx=True):
            self.r.rpush("token", 1)

    def add_message(self, session_id, message) -> None:
        self.r.blpop(["token"], timeout=0)
        try:
            doc = json.loads(self.r.get(session_id) or "[]")
            self.r.set(session_id, json.dumps(doc + [message["content"]]))
        finally:
            self.r.rpush("token", 1)

    def persist_state(self, session_id, fields) -> None:
        raise NotImplementedError

    def read(self, session_id) -> SessionState:
        return SessionState([{"role": "user", "content": c} for c in json.loads(self.r.get(session_id) or "[]")],
                            {})

    def close(self) -> None:
        self.r.close()


class EarlyReleaseStore(TokenMutexStore):
    """Mutant: gives the token back after the GET, before the SET."""

    def add_message(self, session_id, message) -> None:
        self.r.blpop(["token"], timeout=0)
        doc = json.loads(self.r.get(session_id) or "[]")
        self.r.rpush("token", 1)  # the bug: released before the write
        self.r.set(session_id, json.dumps(doc + [message["content"]]))


class AsyncTokenStore(TokenMutexStore):
    """The correct store through redis.asyncio: refused (not modelled yet)."""

    def __init__(self, location, redis_url) -> None:
        import redis.asyncio

        self.r = redis.asyncio.Redis.from_url(redis_url, decode_responses=True)

    async def add_message(self, session_id, message) -> None:
        await self.r.rpush("token", 1)
        await self.r.blpop(["token"], timeout=0)
        await self.r.rpush(f"{session_id}:m", message["content"])

    async def read(self, session_id) -> SessionState:
        return SessionState([{"role": "user", "content": c} for c in await self.r.lrange(f"{session_id}:m", 0, -1)],
                            {})

    async def close(self) -> None:
        await self.r.aclose()


def _spec(store) -> StoreSpec:
    return StoreSpec(store.__name__, servers.bind(store), __name__)


def _search(store, mode, examples):
    from sessioncheck.controlled.search import explore
    from sessioncheck.verify import model_config

    spec = _spec(store)
    with Executor(spec, mode, model_config(spec, mode, "")) as ex:
        return explore(ex, budget=TIME_CAP, max_examples=examples, seed=0, shrink_runs=30)


@pytest.mark.parametrize("args,name", [
    (("BLPOP", "token", 5), "BLPOP"), ((b"brpop", b"a", b"b", 0), "BRPOP"),
    (("BLMOVE", "a", "b", "LEFT", "RIGHT", 0), "BLMOVE"), (("BZPOPMIN", "z", 1), "BZPOPMIN"),
    (("XREAD", "COUNT", 1, "BLOCK", 100, "STREAMS", "s", "$"), "XREAD BLOCK"), (("WAIT", 1, 0), "WAIT"),
    (("XREAD", "STREAMS", "s", "0"), ""), (("LPOP", "token"), ""), (("GET", "block"), ""),
])
def test_blocking_commands_are_known(args, name) -> None:
    assert blocking(args) == name


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_waiter_on_a_token_a_parked_actor_holds_is_blocked_not_stuck(mode) -> None:
    """A opens (SET NX, RPUSH: the one token), takes the token (BLPOP) and
    parks at its GET; B's BLPOP blocks in the server; the scheduler runs A,
    whose RPUSH of the token unblocks B."""
    start = [Step("start", a, OpSpec("add", 0)) for a in (0, 1)]
    program = [start[0], Step("advance", 0, points=4), start[1], Step("advance", 1, points=5)]
    with Executor(_spec(TokenMutexStore), mode, ModelConfig(actors=2, sessions=1, metadata=False),
                  watchdog=10) as ex:
        t0 = time.monotonic()
        out = ex.run(program)
        elapsed = time.monotonic() - t0
    assert not out.violations, [v.summary for v in out.violations]
    waits = [e for e in out.trace if e["ev"] == "point" and e["kind"] == "flock-wait"]
    assert waits and {e["actor"] for e in waits} == {"B"}, out.trace
    assert waits[0]["detail"] == "BLPOP token", waits
    order = [(e["actor"], e.get("detail")) for e in out.trace if e["ev"] == "point"]
    assert order.index(("B", "BLPOP token")) < order.index(("A", "SET s0")), order  # B asked while A held it
    final = [e for e in out.trace if e["actor"] == "final"][-1]
    assert final["value"]["messages"] == ["m1", "m2"]
    assert elapsed < 10  # far below the watchdog: nothing waited it out


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_token_mutex_passes_and_early_release_is_caught(mode) -> None:
    ok = _search(TokenMutexStore, mode, 100)
    assert ok.outcome is None, [v.summary for v in ok.outcome.violations]
    bad = _search(EarlyReleaseStore, mode, 100)
    assert bad.outcome is not None, f"missed in {bad.examples} examples"
    assert bad.outcome.violations[0].invariant == "I1", bad.outcome.violations[0].summary


def test_a_blocking_command_through_redis_asyncio_is_refused_naming_it(tmp_path) -> None:
    from sessioncheck.verify import verify

    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=r"BLPOP \(BLPOP token\).*blocks inside the server") as err:
        verify(AsyncTokenStore, mode="threads", max_examples=20, seed=0, budget=60, report_dir=tmp_path,
               save_report=False)
    assert time.monotonic() - t0 < 30  # refused at once, not waited out by the watchdog
    assert "LPOP" in str(err.value)  # says what to do instead
    assert not servers._active


def test_a_run_of_a_refused_store_exits_2(tmp_path) -> None:
    here = str(Path(__file__).parent)
    (tmp_path / "token_async.py").write_text(
        f"import sys\nsys.path.insert(0, {here!r})\nfrom test_redis_blocking import AsyncTokenStore as Store\n")
    p = subprocess.run([sys.executable, "-m", "sessioncheck", "run", "--store", "token_async:Store",
                        "--examples", "10", "--no-db"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "BLPOP" in p.stderr and "blocks inside the server" in p.stderr, p.stderr
