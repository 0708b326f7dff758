"""Redis commands that block inside the server (BLPOP, XREAD BLOCK, WAIT).

The controlled scheduler cannot yet wait for a command the server holds:
such a command is refused before it is sent, a configuration error (exit
2) naming it, never a hang until the watchdog or a false "stuck".
"""
from __future__ import annotations

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
    """A list token as the session's mutex: ``BLPOP`` takes it, ``RPUSH``
    gives it back; messages in a list guarded by it."""

    capabilities = Capabilities(metadata=False)
    resources = ("redis",)

    def __init__(self, location, redis_url) -> None:
        import redis

        self.r = redis.Redis.from_url(redis_url)
        if self.r.set("token:init", 1, nx=True):
            self.r.rpush("token", 1)

    def add_message(self, session_id, message) -> None:
        self.r.blpop(["token"], timeout=5)
        try:
            self.r.rpush(f"{session_id}:m", message["content"])
        finally:
            self.r.rpush("token", 1)

    def persist_state(self, session_id, fields) -> None:
        raise NotImplementedError

    def read(self, session_id) -> SessionState:
        return SessionState([{"role": "user", "content": c.decode()} for c in self.r.lrange(f"{session_id}:m", 0, -1)],
                            {})

    def close(self) -> None:
        self.r.close()


@pytest.mark.parametrize("args,name", [
    (("BLPOP", "token", 5), "BLPOP"), ((b"brpop", b"a", b"b", 0), "BRPOP"), (("BLMOVE", "a", "b", "LEFT", "RIGHT", 0), "BLMOVE"),
    (("BZPOPMIN", "z", 1), "BZPOPMIN"), (("XREAD", "COUNT", 1, "BLOCK", 100, "STREAMS", "s", "$"), "XREAD BLOCK"),
    (("WAIT", 1, 0), "WAIT"), (("XREAD", "STREAMS", "s", "0"), ""), (("LPOP", "token"), ""), (("GET", "block"), ""),
])
def test_blocking_commands_are_known(args, name) -> None:
    assert blocking(args) == name


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_blocking_command_is_refused_naming_it_not_a_hang(mode, tmp_path) -> None:
    from sessioncheck.verify import verify

    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=r"BLPOP \(BLPOP token\).*blocks inside the server") as err:
        verify(TokenMutexStore, mode=mode, max_examples=20, seed=0, budget=60, report_dir=tmp_path, save_report=False)
    assert time.monotonic() - t0 < 30  # refused at once, not waited out by the watchdog
    assert "LPOP" in str(err.value)  # says what to do instead
    assert not servers._active


def test_a_run_of_a_blocking_store_exits_2(tmp_path) -> None:
    here = str(Path(__file__).parent)
    (tmp_path / "token_mutex.py").write_text(
        f"import sys\nsys.path.insert(0, {here!r})\nfrom test_redis_blocking import TokenMutexStore as Store\n")
    p = subprocess.run([sys.executable, "-m", "sessioncheck", "run", "--store", "token_mutex:Store",
                        "--examples", "10", "--no-db"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "BLPOP" in p.stderr and "blocks inside the server" in p.stderr, p.stderr
