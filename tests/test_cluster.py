"""``sessioncheck fuzz --cluster``: a real Dask scheduler and two real
workers on loopback, a real redis-server as the shared example database,
a short campaign against a mutant.  Nothing is mocked: the scheduler,
workers and Redis are the programs a user would start."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")
redis = pytest.importorskip("redis")

BIN = Path(sys.executable).parent
REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pids: list[int]) -> list[int]:
    """Which of ``pids`` still run (zombies count as gone)."""
    out = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.append(pid)
    return out


def group_members(pgids: list[int]) -> list[int]:
    """Live processes in any of the process groups ``pgids`` (the servers
    and everything they started)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in pgids and fields[0] != "Z":
            out.append(int(d))
    return out


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server (apt-get install redis-server)")
def test_a_campaign_on_a_real_cluster_finds_the_bug_once_and_leaves_nothing_running(tmp_path):
    base = Path(tempfile.mkdtemp(prefix="sessioncheck-cluster-test-"))
    env = {**os.environ, "TMPDIR": str(base), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs: list[subprocess.Popen] = []

    def start(*cmd: str) -> subprocess.Popen:
        p = subprocess.Popen(list(cmd), cwd=base, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        procs.append(p)
        return p

    sock = base / "redis.sock"
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    try:
        start(REDIS_SERVER, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no",
              "--dir", str(base))
        start(str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
        for name in ("wa", "wb"):
            start(str(BIN / "dask"), "worker", address, "--name", name, "--nthreads", "1", "--host", "127.0.0.1",
                  "--no-dashboard", "--local-directory", str(base / f"dask-{name}"))
        wait_until(sock.exists, 60, "redis-server's socket")
        from distributed import Client

        with Client(address, timeout=60) as c:
            c.wait_for_workers(2, timeout=120)
        p = subprocess.run([sys.executable, "-m", "sessioncheck", "fuzz", "--store", "mutant:none-skipped",
                            "--cluster", address, "--database", f"redis+unix://{sock}", "--hours", "0.008",
                            "--round", "8"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert p.returncode == 1, p.stdout + p.stderr
        rows = [c for c in ([x.strip() for x in line.split("│")[1:-1]] for line in p.stdout.splitlines())
                if c and c[0].isdigit()]
        assert len(rows) == 1, p.stdout  # one bug, one finding, however many rounds on either worker hit it
        assert rows[0][1] == "I3" and int(rows[0][3]) >= 2, p.stdout
        assert len(list((tmp_path / ".sessioncheck" / "fuzz").rglob("*.json"))) == 1
        assert f"cluster {address}: 2 workers" in p.stdout, p.stdout
        # merged statistics: both workers ran rounds, and the totals are their sums
        per = {m[1]: (int(m[2]), int(m[3])) for m in
               re.finditer(r"^  worker (\S+): (\d+) rounds?, (\d+) examples?", p.stdout, re.M)}
        assert set(per) == {"wa", "wb"}, p.stdout
        assert all(rounds >= 1 and examples >= 1 for rounds, examples in per.values()), p.stdout
        total = re.search(r"(\d+) rounds, (\d+) examples", p.stdout)
        assert total and int(total[1]) == sum(r for r, _ in per.values()), p.stdout
        assert int(total[2]) == sum(e for _, e in per.values()), p.stdout
        # the workers shared one example database: Redis holds Hypothesis' entries
        r = redis.Redis(unix_socket_path=str(sock))
        assert any(True for _ in r.scan_iter(match="hypothesis-example:*", count=100))
        r.close()
        # no round left a store location behind on the workers
        assert not [x for x in base.rglob("sessioncheck-*") if x.is_dir()]
    finally:
        pgids = [p.pid for p in procs]
        for p in procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        for pid in group_members(pgids):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)
    # afterwards: no scheduler, worker or redis-server process, no temp dir
    wait_until(lambda: not group_members(pgids), 10, "the servers' processes to end")
    assert alive([p.pid for p in procs]) == []
    assert not base.exists()


def test_an_unreachable_scheduler_is_a_configuration_error(tmp_path):
    p = subprocess.run([sys.executable, "-m", "sessioncheck", "fuzz", "--store", "json", "--hours", "0.01",
                        "--cluster", f"tcp://127.0.0.1:{free_port()}"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "cannot reach the Dask scheduler" in p.stderr and "Traceback" not in p.stderr
