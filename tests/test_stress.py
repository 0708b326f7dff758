"""Free-running stress on real stores, real threads and real processes.

Bounded for a 2-core CI machine: each run is a few hundred operations and
a few seconds.  The full-size run of the README
(``--processes 4 --threads 4 --ops 5000``) is measured in
``benchmarks/RESULTS-stress.md``.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from sessioncheck.checking.checker import check
from sessioncheck.errors import ConfigError
from sessioncheck.checking.history import read_jsonl
from sessioncheck.stress.runner import StressConfig, is_lock_timeout, plan, run_stress
from signals import sigint_as_in_a_terminal
from sessioncheck.stores.reference.json_store import JsonFileStore
from sessioncheck.stores.mutants.delete_unlocked import Store as DeleteUnlocked

ROOT = Path(__file__).resolve().parent.parent


def _running(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return "zombie" not in fh.read()
    except OSError:
        return False


def _leftover_dirs(where: str | None = None) -> set[str]:
    return {p for p in os.listdir(where or tempfile.gettempdir()) if p.startswith("sessioncheck-stress-")}


@pytest.mark.parametrize("processes,threads", [(2, 2), (0, 3)])
def test_reference_json_store_has_no_violation(processes, threads, tmp_path, monkeypatch):
    # a temporary directory of this test's own: other tests run beside it
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    before = _leftover_dirs()
    result = run_stress(StressConfig(store="json", processes=processes, threads=threads,
                                     sessions=2, ops=400, duration=30, seed=1))
    assert result.verdict == "ok", [f.summary for f in result.check.findings]
    assert result.completed == 400 and not result.lost and not result.run_findings
    # The history is the real thing: every actor's operations, plus one final read per session.
    finals = [e for e in result.events if e.process == "final" and e.type == "ok"]
    assert len(finals) == 2
    added = {e.value for e in result.events if e.f == "add" and e.type == "invoke"}
    in_final = {m for e in finals for m in e.value["messages"]}
    assert added == in_final  # nothing failed, so every append is in the final state
    assert _leftover_dirs() <= before


def test_sqlite_store_has_no_violation():
    result = run_stress(StressConfig(store="sqlite", processes=2, threads=2, sessions=2, ops=300,
                                     duration=30, seed=2))
    assert result.verdict == "ok", [f.summary for f in result.check.findings]


@pytest.mark.parametrize("processes,threads", [(2, 2), (0, 4)])
def test_unlocked_rmw_mutant_loses_messages(processes, threads):
    result = run_stress(StressConfig(store="mutant:unlocked-rmw", processes=processes,
                                     threads=threads, sessions=2, ops=400, duration=30, seed=3))
    assert result.verdict == "violation"
    lost = [f for f in result.check.findings if f.invariant == "I1"]
    assert lost, [f.summary for f in result.check.findings]
    f = lost[0]
    assert f.subject and f.subject in f.summary and "missing from the read" in f.summary
    assert any(op.f == "add" and op.value == f.subject for op in f.ops)


class HangingStore(JsonFileStore):
    """The reference store, except that each instance's first append hangs."""

    def add_message(self, session_id, message):
        if not getattr(self, "_hung", False):
            self._hung = True
            time.sleep(60)
        super().add_message(session_id, message)


def test_an_operation_that_never_returns_is_a_liveness_violation_and_bounded():
    started = time.monotonic()
    result = run_stress(StressConfig(store=f"{__name__}:HangingStore", processes=2, threads=1,
                                     sessions=1, ops=20, duration=1.0, op_timeout=1.0, seed=4))
    assert time.monotonic() - started < 20
    assert result.verdict == "violation"
    assert {f.invariant for f in result.run_findings} == {"I5"}
    assert all("did not return" in f.summary for f in result.run_findings)
    assert sum(a.unfinished for a in result.actors) == 2
    # The unanswered appends may or may not have happened: no false I1.
    assert result.check.verdict == "ok", [f.summary for f in result.check.findings]


def test_config_errors_are_one_line():
    with pytest.raises(ConfigError, match="unknown store"):
        run_stress(StressConfig(store="nope", ops=10))
    with pytest.raises(ConfigError, match="--threads"):
        run_stress(StressConfig(store="json", threads=0))
    with pytest.raises(ConfigError, match="--duration"):
        run_stress(StressConfig(store="json", duration=float("nan")))


def test_plans_are_seeded_and_ids_unique():
    a = plan("p0t0", 200, 3, seed=7)
    assert a == plan("p0t0", 200, 3, seed=7) and a != plan("p0t0", 200, 3, seed=8)
    ids = [v for f, _, v, _ in a if f == "add"]
    assert len(ids) == len(set(ids)) and all(i.startswith("p0t0-") for i in ids)
    assert any(f == "persist" and None in v.values() for f, _, v, _ in a)


def test_lock_timeout_errors_are_recognised():
    assert is_lock_timeout("Timeout: The file lock '/x/s0.json.lock' could not be acquired.")
    assert is_lock_timeout("OperationalError: database is locked")
    assert not is_lock_timeout("OSError: [Errno 5] Input/output error")


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sessioncheck", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def test_cli_stress_then_check_the_written_history(tmp_path):
    path = tmp_path / "h.jsonl"
    ok = _cli("stress", "--store", "json", "--processes", "2", "--threads", "2", "--ops", "200",
              "--sessions", "2", "--history", str(path))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK" in ok.stdout and "ops/s overall" in ok.stdout and "p99 ms" in ok.stdout
    assert "lock starvation" in ok.stdout
    again = _cli("check", str(path))
    assert again.returncode == 0 and again.stdout.startswith("OK"), again.stdout
    assert check(read_jsonl(path)).verdict == "ok"


def test_cli_stress_on_the_mutant_exits_1_with_the_finding():
    bad = _cli("stress", "--store", "mutant:unlocked-rmw", "--processes", "2", "--threads", "2",
               "--ops", "300", "--sessions", "2")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "VIOLATION" in bad.stdout and "I1 session" in bad.stdout


def test_cli_config_error_exits_2():
    r = _cli("stress", "--store", "mutant:does-not-exist", "--ops", "10")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "unknown mutant" in r.stderr
    r = _cli("check", str(ROOT / "pyproject.toml"))
    assert r.returncode == 2 and "is not JSON" in r.stderr and "Traceback" not in r.stderr


def test_cli_check_verdicts_and_bad_histories(tmp_path):
    bad = _cli("check", str(ROOT / "tests/histories/lost-append-bad.jsonl"))
    assert bad.returncode == 1 and bad.stdout.startswith("I1 session s1: m2, acknowledged to B at t=4")
    assert "    B: add_message(s1, m2)  [ok, t=3..4]" in bad.stdout
    unknown = _cli("check", str(ROOT / "tests/histories/register-tricky-ok.jsonl"), "--budget", "0")
    assert unknown.returncode == 1 and "UNKNOWN (not a pass)" in unknown.stdout
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"process":"A","type":"invoke","f":"add","session":"s","value":"m1","time":1}\n'
                   '{"process":"B","type":"invoke","f":"add","session":"s","value":"m1","time":2}\n')
    r = _cli("check", str(dup))
    assert r.returncode == 2 and "added twice" in r.stderr and r.stderr.count("\n") == 1


def test_each_actor_opens_its_store_in_its_own_thread():
    # SQLite connections belong to the thread that made them: an actor must
    # not use a store instance opened elsewhere, or every call would fail.
    # Free-running threads interleave as the machine lets them: on a loaded
    # machine one seed may pass, so up to three are tried for the race.
    verdicts = []
    for seed in (5, 6, 7):
        result = run_stress(StressConfig(store="mutant:sqlite-rmw", processes=0, threads=4, sessions=2,
                                         ops=400, duration=30, seed=seed))
        assert sum(a.info for a in result.actors) == 0
        verdicts.append(result.verdict)
        if result.verdict == "violation":
            assert any(f.invariant == "I1" for f in result.check.findings)
            break
    assert "violation" in verdicts


class TornReadStore(JsonFileStore):
    """The reference store, except that every third read fails to parse."""

    def read(self, session_id):
        self._reads = getattr(self, "_reads", 0) + 1
        if self._reads % 3 == 0:
            raise ValueError("Expecting value: line 1 column 1 (char 0)")
        return super().read(session_id)


def test_a_read_that_raises_is_I4_but_a_lock_timeout_is_not():
    result = run_stress(StressConfig(store=f"{__name__}:TornReadStore", processes=0, threads=2,
                                     sessions=1, ops=60, duration=30, seed=6))
    torn = [f for f in result.run_findings if f.invariant == "I4"]
    assert torn and all("raised ValueError" in f.summary for f in torn)
    assert result.verdict == "violation"
    assert result.check.verdict == "ok"  # the history itself is fine


def test_deletes_only_when_the_store_declares_them():
    assert not any(f == "delete" for f, *_ in plan("t0", 300, 2, seed=1))
    assert any(f == "delete" for f, *_ in plan("t0", 300, 2, seed=1, deletes=True))


def test_reference_store_with_delete_has_no_violation():
    result = run_stress(StressConfig(store="json-delete", processes=2, threads=2, sessions=2,
                                     ops=600, duration=30, seed=7))
    assert result.latencies["delete"], "the store declares delete_session, so the plan deletes"
    assert result.verdict == "ok", [f.summary for f in result.check.findings]


class WideWindowDeleteUnlocked(DeleteUnlocked):
    """``delete-unlocked`` with its race window held open: a writer waits
    2 ms between reading the session and writing it back, so a delete
    lands inside the window in most runs whatever the machine's load."""

    def _load(self, session_id: str) -> dict:
        data = super()._load(session_id)
        time.sleep(0.002)
        return data


def test_unlocked_delete_brings_a_deleted_message_back():
    # The bare mutant's window is a few microseconds: a free-running run
    # meets it in about half the seeds on a quiet machine, fewer on a
    # loaded one.  Held open, 9 of 10 seeds meet it at this size (quiet
    # machine); up to five seeds leave a miss at about 1 in 10^5.
    for seed in (1, 2, 3, 4, 5):
        result = run_stress(StressConfig(store=f"{__name__}:WideWindowDeleteUnlocked", processes=2,
                                         threads=2, sessions=2, ops=600, duration=30, seed=seed))
        back = [f for f in result.check.findings if "reappears" in f.summary]
        if back:
            break
    assert back and back[0].invariant == "I1"
    assert any(op.f == "delete" for op in back[0].ops)


@pytest.mark.parametrize("sig,code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_interrupted_run_reaps_its_workers_and_removes_its_directory(sig, code, tmp_path):
    import signal

    # a temporary directory of this run's own: other tests run beside it
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "sessioncheck", "stress", "--store", "json",
                             "--processes", "2", "--threads", "1", "--ops", "100000"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env, preexec_fn=sigint_as_in_a_terminal)
    try:
        kids: list[str] = []
        deadline = time.monotonic() + 60
        while len(kids) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
            kids = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        assert len(kids) >= 2, "the workers did not start"
        time.sleep(1.0)
        os.killpg(proc.pid, getattr(signal, sig))
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == code
    # what was done so far on stdout (after the banner), the signal on stderr
    assert re.search(r"^interrupted: \d+ operations? completed in \d+\.\d s, not checked; seed 0$", out, re.M), out
    assert err.endswith(f"sessioncheck: interrupted by {sig}\n") and "Traceback" not in err, err
    time.sleep(0.2)
    assert not [k for k in kids if _running(k)]
    assert _leftover_dirs(str(tmp_path)) == set()


def test_kill_9_of_stress_leaves_no_directory(tmp_path):
    """The run's folder is removed by its reaper once the harness and the
    workers it forked are gone (the workers end within --duration)."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "sessioncheck", "stress", "--store", "json",
                             "--processes", "2", "--threads", "1", "--ops", "100000", "--duration", "3"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 60
        while not _leftover_dirs(str(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _leftover_dirs(str(tmp_path)), "the run made no directory"
        time.sleep(1.0)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 30  # the workers die with their parent (room for a loaded machine)
    while _leftover_dirs(str(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _leftover_dirs(str(tmp_path)) == set()
