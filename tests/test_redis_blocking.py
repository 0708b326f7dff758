"""Redis commands that block inside the server (BLPOP and its family).

A command the server holds until a key is ready is a wait in the server
(``intercept/redis_waits.py``): the actor is blocked while the server
holds it and runs again once another actor's push has served it; its
timeout runs in virtual time; a wait nobody can end is a deadlock (I5),
never a hang.  Blocking commands whose readiness is not a key (``WAIT``,
``XREAD BLOCK``) are refused: a configuration error (exit 2) naming them.
Budgets are example counts of seeded searches; the time caps only keep a
broken engine from hanging CI.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sessioncheck import servers
from sessioncheck.errors import ConfigError
from sessioncheck.protocol import Capabilities, SessionState
from sessioncheck.servers.redis_commands import blocking

WHY = servers.unavailable("redis") if "redis" in servers.KINDS else "no redis resource"
pytestmark = pytest.mark.skipif(bool(WHY), reason=WHY or "")


class TokenMutexStore:
    """A list token as the session's mutex: ``BLPOP`` takes it (waiting in
    the server while another writer has it), ``RPUSH`` gives it back; the
    session is one JSON blob, read and written back under it (correct)."""

    capabilities = Capabilities(metadata=False)
    resources = ("redis",)
    #: BLPOP's timeout; 0 waits as long as it takes
    TIMEOUT = 0

    def __init__(self, location, redis_url) -> None:
        import redis

        self.r = redis.Redis.from_url(redis_url)
        if self.r.set("token:init", 1, nx=True):
            self.r.rpush("token", 1)

    def _take(self, name: str = "token") -> bool:
        return self.r.blpop([name], timeout=self.TIMEOUT) is not None

    def add_message(self, session_id, message) -> None:
        took = self._take()
        try:
            blob = self.r.get(session_id)
            messages = json.loads(blob) if blob else []
            messages.append(message["content"])
            self.r.set(session_id, json.dumps(messages))
        finally:
            if took:
                self.r.rpush("token", 1)

    def persist_state(self, session_id, fields) -> None:
        raise NotImplementedError

    def read(self, session_id) -> SessionState:
        blob = self.r.get(session_id)
        return SessionState([{"role": "user", "content": c} for c in (json.loads(blob) if blob else [])], {})

    def close(self) -> None:
        self.r.close()


class TimedOutTokenStore(TokenMutexStore):
    """The same, but BLPOP waits at most 5 s and the write goes ahead
    without the token when it times out (the bug)."""

    TIMEOUT = 5


class TwoTokenStore(TokenMutexStore):
    """Appends take token a, then token b; reads of the blob take b, then
    a: alone each works, beside each other they can wait for each other
    forever in the server (a deadlock production would hang on)."""

    def __init__(self, location, redis_url) -> None:
        import redis

        self.r = redis.Redis.from_url(redis_url)
        if self.r.set("token:init", 1, nx=True):
            self.r.rpush("a", 1)
            self.r.rpush("b", 1)

    def add_message(self, session_id, message) -> None:
        self._take("a")
        self._take("b")
        self.r.rpush(f"{session_id}:m", message["content"])
        self.r.rpush("b", 1)
        self.r.rpush("a", 1)

    def read(self, session_id) -> SessionState:
        self._take("b")
        self._take("a")
        items = self.r.lrange(f"{session_id}:m", 0, -1)
        self.r.rpush("a", 1)
        self.r.rpush("b", 1)
        return SessionState([{"role": "user", "content": c.decode()} for c in items], {})


class WaitStore(TokenMutexStore):
    """Appends, then ``WAIT 0 100`` (for no replica: at once outside the engine)."""

    def add_message(self, session_id, message) -> None:
        self.r.rpush(f"{session_id}:m", message["content"])
        self.r.execute_command("WAIT", 0, 100)  # no replica asked for: returns at once alone

    def read(self, session_id) -> SessionState:
        items = self.r.lrange(f"{session_id}:m", 0, -1)
        return SessionState([{"role": "user", "content": c.decode()} for c in items], {})


@pytest.mark.parametrize("args,name", [
    (("BLPOP", "token", 5), "BLPOP"), ((b"brpop", b"a", b"b", 0), "BRPOP"), (("BLMOVE", "a", "b", "LEFT", "RIGHT", 0), "BLMOVE"),
    (("BZPOPMIN", "z", 1), "BZPOPMIN"), (("XREAD", "COUNT", 1, "BLOCK", 100, "STREAMS", "s", "$"), "XREAD BLOCK"),
    (("WAIT", 1, 0), "WAIT"), (("XREAD", "STREAMS", "s", "0"), ""), (("LPOP", "token"), ""), (("GET", "block"), ""),
])
def test_blocking_commands_are_known(args, name) -> None:
    assert blocking(args) == name


def _verify(store, mode, examples, tmp_path):
    from sessioncheck.verify import verify

    return verify(store, mode=mode, max_examples=examples, seed=0, budget=240, report_dir=tmp_path,
                  save_report=False)


def _held_clients() -> list[str]:
    """Clients the running server holds in a blocking command now."""
    import redis

    lines = redis.Redis.from_url(servers.get("redis").address).execute_command("CLIENT", "LIST")
    lines = lines.decode().splitlines() if isinstance(lines, bytes) else [str(x) for x in lines]
    return [ln for ln in lines if any(p.startswith("flags=") and "b" in p[6:] for p in ln.split())]


def _executor(store: str, mode: str):
    from sessioncheck.controlled.engine import Executor
    from sessioncheck.controlled.program import ModelConfig
    from sessioncheck.specs import resolve

    return Executor(resolve(f"{__name__}:{store}"), mode, ModelConfig(actors=2, sessions=1, metadata=False),
                    watchdog=10)


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_mutex_taken_with_blpop_passes_and_its_waits_are_in_the_server(mode, tmp_path) -> None:
    from sessioncheck.controlled.program import OpSpec, Step

    result = _verify(TokenMutexStore, mode, 150, tmp_path)
    assert result.outcome is None, result.story
    # A takes the token and stops before its GET; B's BLPOP waits in the server
    program = [Step("start", 0, OpSpec("add", 0)), Step("advance", 0, points=400),
               Step("start", 0, OpSpec("add", 0)), Step("advance", 0, points=1),
               Step("start", 1, OpSpec("add", 0)), Step("advance", 1, points=400)]
    with _executor("TokenMutexStore", mode) as ex:
        t0 = time.monotonic()
        out = ex.run(program)
        elapsed = time.monotonic() - t0
    assert not out.violations, out.violations[0].summary
    waits = [e for e in out.trace if e["ev"] == "point" and e["kind"] == "flock-wait"]
    assert waits and {e["actor"] for e in waits} == {"B"}, out.trace
    assert waits[0]["detail"] == "BLPOP token (held by the server)"
    final = [e for e in out.trace if e["actor"] == "final"][-1]
    assert final["value"]["messages"] == ["m1", "m2", "m3"]
    assert elapsed < 10  # far below the watchdog: nothing waited it out


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_timeout_fires_in_virtual_time_and_the_write_without_the_token_is_caught(mode) -> None:
    from sessioncheck.controlled.program import OpSpec, Step

    # B takes the token and reads s0; A's BLPOP is held by the server,
    # times out at t+5 (virtual) and A appends without the token; B writes
    # its stale copy back
    program = [Step("start", 1, OpSpec("add", 0)), Step("advance", 1, points=4),
               Step("start", 0, OpSpec("add", 0)), Step("advance", 0, points=400)]
    with _executor("TimedOutTokenStore", mode) as ex:
        t0 = time.monotonic()
        out = ex.run(program)
        elapsed = time.monotonic() - t0
    assert [v.invariant for v in out.violations] == ["I1"], [v.summary for v in out.violations]
    sleeps = [e for e in out.trace if e["ev"] == "point" and e["kind"] == "sleep" and e["actor"] == "A"]
    assert sleeps and sleeps[0]["detail"] == "5.0" and sleeps[0]["path"] == "token", out.trace
    assert elapsed < 5  # the 5 s timeout passed in virtual time
    # with the token given time, the same schedule loses nothing
    with _executor("TokenMutexStore", mode) as ex:
        good = ex.run(program)
    assert not good.violations, good.violations[0].summary


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_wait_nobody_can_end_is_a_deadlock_not_a_hang(mode, tmp_path) -> None:
    from sessioncheck.controlled.program import OpSpec, Step

    t0 = time.monotonic()
    result = _verify(TwoTokenStore, mode, 150, tmp_path)
    assert result.outcome is not None
    v = result.outcome.violations[0]
    assert v.invariant == "I5" and "deadlock" in v.summary, result.story
    assert "BLPOP a (busy)" in result.story and "wait in the server for" in result.story, result.story
    assert time.monotonic() - t0 < 120  # far below the watchdog's bound per run
    # A takes a; B reads: takes b, then waits for a; A waits for b
    program = [Step("start", 0, OpSpec("add", 0)), Step("advance", 0, points=400),
               Step("start", 1, OpSpec("read", 0)), Step("advance", 1, points=400),
               Step("start", 0, OpSpec("add", 0)), Step("advance", 0, points=1),
               Step("start", 1, OpSpec("read", 0)), Step("advance", 1, points=2), Step("advance", 0, points=1)]
    with _executor("TwoTokenStore", mode) as ex:
        out = ex.run(program)
        left = _held_clients()
    assert [v.invariant for v in out.violations] == ["I5"], [v.summary for v in out.violations]
    assert not left, f"an abandoned BLPOP was left held in the server: {left}"


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_wait_is_refused_naming_it_not_a_hang(mode, tmp_path) -> None:
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=r"WAIT \(WAIT\).*blocks inside the server"):
        _verify(WaitStore, mode, 20, tmp_path)
    assert time.monotonic() - t0 < 30  # refused at once, not waited out by the watchdog
    assert not servers._active


def test_a_run_of_a_wait_store_exits_2(tmp_path) -> None:
    here = str(Path(__file__).parent)
    (tmp_path / "wait_store.py").write_text(
        f"import sys\nsys.path.insert(0, {here!r})\nfrom test_redis_blocking import WaitStore as Store\n")
    p = subprocess.run([sys.executable, "-m", "sessioncheck", "run", "--store", "wait_store:Store",
                        "--examples", "10", "--no-db"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "WAIT" in p.stderr and "blocks inside the server" in p.stderr, p.stderr
