"""Redis: a real redis-server started by the harness, commands as points,
the reference store and its mutants, and nothing left behind.

Budgets are example counts (a seeded search draws the same programs
whatever the load); time caps only guard against a hang.  Skipped, with
the reason, where redis-server or redis-py is missing (CI installs both).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from sessioncheck import servers
from sessioncheck.errors import ConfigError

WHY = servers.unavailable("redis") if "redis" in servers.KINDS else "no redis resource"
pytestmark = pytest.mark.skipif(bool(WHY), reason=WHY or "")

#: Examples the reference store must pass with each kind of actor.
REFERENCE_EXAMPLES = 200
#: Stated budget for every Redis mutant: all fall in the systematic pass
#: (at most 18 examples with seed 0; benchmarks/bench_servers.py).
MUTANT_EXAMPLES = 60
TIME_CAP = 240.0
MUTANTS = {"redis-get-set": ("I1", "I3"), "redis-watch-ignored": ("I1", "I3"), "redis-none-string": ("I4", "I3")}


# -- leftovers: processes, sockets, directories ------------------------------------

def marked(mark: str, root: Path) -> list[int]:
    """Processes whose environment carries ``mark`` (the harness and what it
    started inherit it) or whose working directory is under ``root``
    (redis-server works in its directory, and overwrites its environment
    with its process title)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                env = f.read()
            cwd = os.readlink(f"/proc/{d}/cwd")
        except OSError:
            continue
        if mark.encode() in env or cwd.startswith(str(root) + "/"):
            out.append(int(d))
    return out


@pytest.fixture
def tmp_path():
    """A short private directory: the server's unix socket lives under it,
    and a socket path has room for 107 bytes (pytest's own tmp_path under
    xdist is deeper than that, and the server would move to /tmp, out of
    the counts these tests make)."""
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="sc-redis-test-", dir="/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def server_dirs(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob("sessioncheck-redis-*"))


def sockets(root: Path) -> list[str]:
    # the harness removes directories while this walks them: a vanished
    # one is simply not there
    return sorted(os.path.join(d, f) for d, _, files in os.walk(root, onerror=lambda e: None)
                  for f in files if f.endswith(".sock"))


def harness(tmp_path: Path, *args: str, mark: str) -> subprocess.Popen:
    env = {**os.environ, "SESSIONCHECK_TMPDIR": str(tmp_path), "SESSIONCHECK_TEST_MARK": mark}
    env.pop("SESSIONCHECK_REDIS_URL", None)
    return subprocess.Popen([sys.executable, "-m", "sessioncheck", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_gone(mark: str, root: Path, timeout: float = 15.0) -> tuple[list[int], list[str], list[str]]:
    deadline = time.monotonic() + timeout
    while True:
        left = (marked(mark, root), server_dirs(root), sockets(root))
        if not any(left) or time.monotonic() > deadline:
            return left


def mark_of(name: str) -> str:
    return f"sessioncheck-test-{name}-{uuid.uuid4().hex}"


def test_run_exits_0_and_leaves_nothing(tmp_path):
    mark = mark_of("ok")
    assert marked(mark, tmp_path) == [] and server_dirs(tmp_path) == []
    p = harness(tmp_path, "run", "--store", "redis", "--examples", "40", "--seed", "0", "--no-db", mark=mark)
    out, err = p.communicate(timeout=TIME_CAP)
    assert p.returncode == 0, err
    assert wait_gone(mark, tmp_path, timeout=5.0) == ([], [], [])


def test_violation_names_get_and_set_and_leaves_nothing(tmp_path):
    mark = mark_of("violation")
    p = harness(tmp_path, "run", "--store", "mutant:redis-get-set", "--budget", "60", "--seed", "0", "--no-db",
                mark=mark)
    out, err = p.communicate(timeout=TIME_CAP)
    assert p.returncode == 1, err
    assert "GET s0" in out and "SET s0" in out, out
    assert "wrote its stale copy back" in out and "(SET s0)" in out, out  # the "why" line
    assert "take threading lock" not in out, out  # pool locks are not points
    assert wait_gone(mark, tmp_path, timeout=5.0) == ([], [], [])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGINT], ids=["sigterm", "kill-9", "ctrl-c"])
def test_killed_harness_leaves_nothing(tmp_path, sig):
    """The server dies with the harness and its directory goes with it,
    even when the harness has no chance to clean up (kill -9)."""
    mark = mark_of(sig.name)
    p = harness(tmp_path, "run", "--store", "redis", "--budget", "120", "--no-db", mark=mark)
    try:
        deadline = time.monotonic() + 60
        while not sockets(tmp_path):
            assert p.poll() is None, p.communicate()[1]
            assert time.monotonic() < deadline, "the server never started"
            time.sleep(0.05)
        time.sleep(0.5)  # well inside the search
        running = marked(mark, tmp_path)
        assert len(running) >= 3, running  # the harness, the supervisor, redis-server
        p.send_signal(sig)
        p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert wait_gone(mark, tmp_path) == ([], [], [])


# -- the reference store and the mutants --------------------------------------------

@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_reference_store_passes(mode, tmp_path):
    from sessioncheck.verify import verify

    r = verify("redis", mode=mode, budget=TIME_CAP, max_examples=REFERENCE_EXAMPLES, seed=0,
               report_dir=tmp_path, save_report=False)
    assert not r.found, r.story
    assert r.exploration.examples == REFERENCE_EXAMPLES
    assert not servers._active  # stopped with the campaign


@pytest.mark.parametrize("mode", ["threads", "processes"])
@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_mutant_caught(mutant, mode, tmp_path):
    from sessioncheck.verify import verify

    r = verify(f"mutant:{mutant}", mode=mode, budget=TIME_CAP, max_examples=MUTANT_EXAMPLES, seed=0,
               report_dir=tmp_path, save_report=False, shrink_budget=5.0)
    assert r.found, f"{mutant} ({mode}) missed in {r.exploration.examples} examples"
    assert r.outcome.violations[0].invariant in MUTANTS[mutant], r.story
    assert not servers._active


def test_commands_are_named_points_and_runs_leave_no_keys():
    from sessioncheck.controlled.engine import Executor
    from sessioncheck.controlled.program import ModelConfig, OpSpec, Step
    from sessioncheck.specs import resolve

    spec = resolve("redis")
    with Executor(spec, "threads", ModelConfig(actors=2)) as ex:
        res = servers.get("redis")
        out = ex.run([Step("start", 0, OpSpec("add", 0)),
                      Step("start", 1, OpSpec("persist", 0, (("model", "fresh"), ("compute_instance_id", "none")))),
                      Step("start", 0, OpSpec("read", 0))])
        assert not out.failed, out.violations
        points = [(e["kind"], e["path"], e["detail"]) for e in out.trace if e["ev"] == "point"]
        details = [d for _, _, d in points]
        assert "RPUSH s0:messages" in details
        assert "MULTI [HSET s0:meta, HDEL s0:meta] EXEC" in details
        assert "MULTI [LRANGE s0:messages, HGETALL s0:meta] EXEC" in details
        assert {k for k, _, _ in points} == {"redis"}  # no pool lock, no connection set-up
        assert ("redis", "s0:meta", "MULTI [HSET s0:meta, HDEL s0:meta] EXEC") in points
        assert res.keys() == 0  # the run's keys are gone
        assert res.settings()["appendonly"] == "yes"
    assert not servers._active


def test_pipeline_without_transaction_is_a_point_per_command():
    """The server does not make a plain pipeline atomic: each command is a
    point of its own, with the replies the pipeline would have given."""
    import redis

    from sessioncheck.controlled.intercept import redis as points
    from sessioncheck.controlled.intercept.context import ActorContext, enter

    seen: list[tuple] = []
    holding = servers.acquire(type("F", (), {"resources": ("redis",)}))
    try:
        client = redis.Redis.from_url(servers.get("redis").address, decode_responses=True)
        ctx = ActorContext("A", "/nonexistent", lambda kind, path, detail: seen.append((kind, path, detail)))
        enter(ctx)
        try:
            pipe = client.pipeline(transaction=False)
            pipe.set("k1", "a").rpush("k2", "x", "y").get("k1")
            replies = pipe.execute()
            client.eval("return redis.call('GET', KEYS[1])", 1, "k1")
        finally:
            enter(None)
        assert replies == [True, 2, "a"]
        assert seen == [("redis", "k1", "SET k1"), ("redis", "k2", "RPUSH k2"), ("redis", "k1", "GET k1"),
                        ("redis", "k1", "EVAL k1")]
        assert points.command(("EVALSHA", "abc", 2, "a", "b", "arg")) == ("EVALSHA", ["a", "b"])
        assert points.command(("MSET", "a", 1, "b", 2)) == ("MSET", ["a", "b"])
        assert points.is_write("MULTI [GET s0, SET s0] EXEC") and not points.is_write("GET s0")
        client.close()
    finally:
        holding.release()


def test_file_faults_are_a_configuration_error(tmp_path):
    from sessioncheck.verify import verify

    for faults in (("power-loss",), ("io-error",)):
        with pytest.raises(ConfigError, match="leave"):
            verify("redis", faults=faults, max_examples=5, seed=0, report_dir=tmp_path, save_report=False)
    assert not servers._active


# -- a user's own server and xdist workers -----------------------------------------

def test_xdist_workers_are_isolated_on_a_shared_server(monkeypatch):
    """Two workers pointed at one server use two databases: neither sees,
    nor empties, the other's keys.  A database that is not empty is
    refused (the harness empties the one it uses)."""
    import redis

    from sessioncheck.servers.redis import RedisResource

    monkeypatch.delenv("SESSIONCHECK_REDIS_URL", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    own = RedisResource()
    own.start()
    try:
        base = own.address.split("?")[0] + "?db=10"
        monkeypatch.setenv("SESSIONCHECK_REDIS_URL", base)
        workers = []
        for w in ("gw1", "gw2"):
            monkeypatch.setenv("PYTEST_XDIST_WORKER", w)
            r = RedisResource()
            r.start()
            workers.append(r)
        a, b = (redis.Redis.from_url(r.address, decode_responses=True) for r in workers)
        assert workers[0].address.endswith("db=11") and workers[1].address.endswith("db=12")
        a.set("s0", "from gw1")
        assert b.get("s0") is None
        workers[1].reset()
        assert a.get("s0") == "from gw1"
        monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
        with pytest.raises(ConfigError, match="holds 1 keys"):
            RedisResource().start()
        for r in workers:
            r.reset()
            r.stop()
        assert os.path.isdir(own.directory)  # a user's server is never stopped by the harness
        a.close()
        b.close()
    finally:
        own.stop()
    assert not os.path.exists(own.directory or "/nonexistent")


def test_stress_runs_against_the_real_server():
    from sessioncheck.stress.runner import StressConfig, run_stress

    ok = run_stress(StressConfig(store="redis", threads=3, processes=0, sessions=2, ops=150, duration=30))
    assert ok.verdict == "ok", ok.verdict
    bad = run_stress(StressConfig(store="mutant:redis-get-set", threads=2, processes=2, sessions=1, ops=300,
                                  duration=30))
    assert bad.verdict == "violation"
    servers.shutdown()
    assert not servers._active


# -- --faults server-crash ------------------------------------------------------------

#: Examples for the server-crash tests: the systematic pass crashes the
#: server after every write (seed 0 catches redis-aof-off at example 27).
CRASH_EXAMPLES = 60


def _crashes(stats, seen):
    seen.append(sum(1 for e in stats.last.trace if e["ev"] == "server-crash"))


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_reference_store_survives_server_crashes(mode, tmp_path):
    from sessioncheck.verify import verify

    seen: list[int] = []
    r = verify("redis", mode=mode, faults=("server-crash",), budget=TIME_CAP, max_examples=REFERENCE_EXAMPLES,
               seed=0, report_dir=tmp_path, save_report=False, on_example=lambda s: _crashes(s, seen))
    assert not r.found, r.story
    assert sum(seen) >= 5, seen  # the server really was killed, many times
    assert not servers._active


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_store_turning_persistence_off_is_caught_by_a_server_crash(mode, tmp_path):
    from sessioncheck.verify import verify

    quiet = verify("mutant:redis-aof-off", mode=mode, budget=TIME_CAP, max_examples=20, seed=0,
                   report_dir=tmp_path, save_report=False)
    assert not quiet.found, quiet.story  # without a crash nothing is lost
    r = verify("mutant:redis-aof-off", mode=mode, faults=("server-crash",), budget=TIME_CAP,
               max_examples=CRASH_EXAMPLES, seed=0, report_dir=tmp_path, save_report=False, shrink_budget=5.0)
    assert r.found, f"missed in {r.exploration.examples} examples"
    assert r.outcome.violations[0].invariant == "I6", r.story
    assert "appendonly no" in r.story and "KILLED (kill -9) and restarted" in r.story, r.story
    assert any(v.invariant == "I1" for v in r.outcome.violations), r.story  # really lost, too
    assert not servers._active


def test_server_crash_needs_the_harness_own_server(monkeypatch, tmp_path):
    from sessioncheck.servers.redis import RedisResource
    from sessioncheck.verify import verify

    monkeypatch.delenv("SESSIONCHECK_REDIS_URL", raising=False)
    own = RedisResource()
    own.start()
    try:
        monkeypatch.setenv("SESSIONCHECK_REDIS_URL", own.address)
        with pytest.raises(ConfigError, match="kills only servers it started"):
            verify("redis", faults=("server-crash",), max_examples=5, seed=0, report_dir=tmp_path,
                   save_report=False)
        assert own.keys() == 0 and own._admin.ping()  # the user's server was not touched
    finally:
        own.stop()
    monkeypatch.delenv("SESSIONCHECK_REDIS_URL")
    with pytest.raises(ConfigError, match="asks for no server"):
        verify("json", faults=("server-crash",), max_examples=5, seed=0, report_dir=tmp_path, save_report=False)
    assert not servers._active


def test_server_crash_run_exits_2_on_a_user_server_and_leaves_nothing(tmp_path):
    mark = mark_of("server-crash")
    p = harness(tmp_path, "run", "--store", "redis", "--faults", "server-crash", "--examples", "30", "--seed", "0",
                "--no-db", mark=mark)
    out, err = p.communicate(timeout=TIME_CAP)
    assert p.returncode == 0, err
    assert wait_gone(mark, tmp_path, timeout=5.0) == ([], [], [])
    from sessioncheck.servers.redis import RedisResource

    own = RedisResource()
    own.start()
    try:
        p = harness(tmp_path, "run", "--store", "redis", "--faults", "server-crash", "--redis-url", own.address,
                    "--examples", "5", "--no-db", mark=mark)
        out, err = p.communicate(timeout=TIME_CAP)
        assert p.returncode == 2, (out, err)
        assert "kills only servers it started" in out + err, (out, err)
        assert own._admin.ping()  # not killed
    finally:
        own.stop()

