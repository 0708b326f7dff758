"""Health checks: each fires on a store made to trip it (exit 2, its name
in the message), is silenced by its suppress name, and stays silent on
the reference stores."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sessioncheck import health
from sessioncheck.controlled.program import ModelConfig
from sessioncheck.errors import ConfigError
from sessioncheck.reporting.coverage import Coverage

TESTS = Path(__file__).parent


def sc(*args, cwd, timeout=300):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "sessioncheck", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env=env)


RUN = ("--examples", "120", "--budget", "120", "--seed", "1")

# store, extra options, the check it trips, checks to suppress so it is the one that fires
TRIPS = [
    ("misbehaving_stores:MemoryStore", (), health.NO_PREEMPTION_POINT, (health.NO_OVERLAP,)),
    ("misbehaving_stores:MemoryStore", (), health.NO_OVERLAP, (health.NO_PREEMPTION_POINT,)),
    ("misbehaving_stores:RefusingStore", (), health.NO_ACKNOWLEDGED_WRITE, ()),
    ("misbehaving_stores:TimingOutStore", (), health.NO_ACKNOWLEDGED_WRITE, ()),
    ("json", ("--max-steps", "1", "--actor-count", "1"), health.TOO_FEW_DISTINCT, (health.NO_OVERLAP,)),
    ("misbehaving_stores:OsExitStore", (), health.ACTOR_VANISHED, ()),
    # an I/O error is injected at a file call, and this store makes none
    ("misbehaving_stores:MemoryStore", ("--faults", "io-error"), health.NO_FAULT_INJECTED,
     (health.NO_PREEMPTION_POINT, health.NO_OVERLAP)),
]


@pytest.mark.parametrize("store,extra,check,others", TRIPS, ids=[f"{t[2]}-{t[0]}" for t in TRIPS])
def test_check_fires_and_is_silenced_by_name(tmp_path, store, extra, check, others):
    pre = [a for o in others for a in ("--suppress-health-check", o)]
    r = sc("run", "--store", store, *RUN, *extra, *pre, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert f"{check}:" in r.stderr and f"--suppress-health-check {check}" in r.stderr
    assert "Traceback" not in r.stderr
    r = sc("run", "--store", store, *RUN, *extra, *pre, "--suppress-health-check", check, cwd=tmp_path)
    # suppressed: a vanished actor is the I5 violation it is (never a pass), the others pass
    assert r.returncode == (1 if check == health.ACTOR_VANISHED else 0), r.stderr
    if check != health.ACTOR_VANISHED:
        assert f"note: health check {check} suppressed" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("store", ["json", "sqlite", "json-delete", "json-retention"])
def test_reference_stores_pass_every_check(tmp_path, store):
    r = sc("run", "--store", store, *RUN, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"no violation found in {store} (threads): ")
    assert "health check" not in r.stdout + r.stderr


def test_unknown_suppress_name_is_a_usage_error(tmp_path):
    r = sc("run", "--store", "json", "--suppress-health-check", "nope", cwd=tmp_path)
    assert r.returncode == 2 and "unknown health check 'nope'" in r.stderr


def test_stress_refusing_store_fails_and_is_silenced(tmp_path):
    args = ("stress", "--store", "misbehaving_stores:RefusingStore", "--ops", "200", "--duration", "20")
    r = sc(*args, cwd=tmp_path)
    assert r.returncode == 2 and "no_acknowledged_write" in r.stderr, r.stdout + r.stderr
    r = sc(*args, "--suppress-health-check", "no_acknowledged_write", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_stress_store_ending_its_thread_is_not_a_pass(tmp_path):
    r = sc("stress", "--store", "misbehaving_stores:SysExitStore", "--ops", "200", "--duration", "20",
           cwd=tmp_path)
    assert r.returncode == 2 and "actor_vanished" in r.stderr and "sys.exit(1)" in r.stderr


def test_pytest_gate_fails_on_a_health_check_and_option_silences_it(tmp_path):
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "--sessioncheck-store", "misbehaving_stores:RefusingStore", "--sessioncheck-examples", "60",
            "--sessioncheck-db", "none"]
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    r = subprocess.run(base, capture_output=True, text=True, cwd=tmp_path, timeout=300, env=env)
    assert r.returncode == 1 and "no_acknowledged_write" in r.stdout, r.stdout[-2000:]
    # so few examples of a store that refuses everything also overlap little
    quiet = [a for n in ("no_acknowledged_write", "no_overlap", "too_few_distinct")
             for a in ("--sessioncheck-suppress-health-check", n)]
    r = subprocess.run([*base, *quiet],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300, env=env)
    assert r.returncode == 0, r.stdout[-2000:]


def test_check_store_keyword(tmp_path):
    from sessioncheck.testing import check_store

    sys.path.insert(0, str(TESTS))
    with pytest.raises(health.HealthCheckFailed) as info:
        check_store("misbehaving_stores:RefusingStore", examples=60, seed=1, report_dir=tmp_path)
    assert health.NO_ACKNOWLEDGED_WRITE in info.value.names
    check_store("misbehaving_stores:RefusingStore", examples=60, seed=1, report_dir=tmp_path,
                suppress_health_check=[health.NO_ACKNOWLEDGED_WRITE, health.NO_OVERLAP, health.TOO_FEW_DISTINCT])


# -- the pure functions ------------------------------------------------------------

def _trace(*events):
    return [dict(t=i, **e) for i, e in enumerate(events)]


def test_tally_counts_overlap_and_acknowledgements():
    t = health.Tally()
    t.observe_trace(_trace({"actor": "A", "ev": "start", "call": "add"},
                           {"actor": "B", "ev": "start", "call": "add"},
                           {"actor": "A", "ev": "done", "call": "add", "status": "ok"},
                           {"actor": "B", "ev": "done", "call": "add", "status": "info", "error": "E"}))
    t.observe_trace(_trace({"actor": "A", "ev": "start", "call": "read"},
                           {"actor": "A", "ev": "done", "call": "read", "status": "ok"},
                           {"actor": "B", "ev": "start", "call": "read"},
                           {"actor": "B", "ev": "done", "call": "read", "status": "ok"}))
    assert (t.overlapping, t.acknowledged, t.refused) == (1, 1, {"add": 1})


def test_too_few_distinct_waits_for_enough_generated_examples():
    c = Coverage(examples=200, interleavings={"x"}, operations={"add": 200}, points={"add": {"p"}})
    t = health.Tally(examples=200, acknowledged=1, overlapping=1, generated=49, generated_schedules={"x"})
    assert health.failures(c, t) == []
    t.generated = 50
    assert [n for n, _ in health.failures(c, t)] == [health.TOO_FEW_DISTINCT]
    t.generated_schedules = {str(i) for i in range(5)}
    assert health.failures(c, t) == []


def test_no_fault_injected_judges_only_a_run_that_asked_for_faults():
    c = Coverage(examples=200, interleavings={str(i) for i in range(200)}, operations={"add": 200},
                 points={"add": {"p"}})
    t = health.Tally(examples=200, acknowledged=1, overlapping=1, generated=60,
                     generated_schedules={str(i) for i in range(60)})
    assert health.failures(c, t) == []
    assert [n for n, _ in health.failures(c, t, faults=("server-crash",))] == [health.NO_FAULT_INJECTED]
    c.faults = 1
    assert health.failures(c, t, faults=("server-crash",)) == []
    c.faults, t.generated = 0, 49  # the systematic pass injects none: judged on generated examples
    assert health.failures(c, t, faults=("server-crash",)) == []


def test_a_found_violation_is_judged_on_vanished_only():
    c = Coverage(examples=3)
    assert health.failures(c, health.Tally(), outcome=type("O", (), {"violations": []})()) == []


def test_parse_suppressed():
    assert health.parse_suppressed("no-overlap,too_few_distinct") == {health.NO_OVERLAP, health.TOO_FEW_DISTINCT}
    assert health.parse_suppressed(["all"]) == set(health.ALL)
    with pytest.raises(ConfigError):
        health.parse_suppressed(["bogus"])


def test_pytest_ini_suppresses_too(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\nsessioncheck_suppress_health_check = "
                                         "no_acknowledged_write no_overlap too_few_distinct\n")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--sessioncheck-store",
                        "misbehaving_stores:RefusingStore", "--sessioncheck-examples", "60", "--sessioncheck-db",
                        "none"], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(TESTS)))
    assert r.returncode == 0, r.stdout[-2000:]


def test_a_blind_operation_under_tasks_is_told_why():
    # under task actors a synchronous method is one atomic step by design:
    # the reason is that, not I/O the harness cannot see
    c = Coverage(examples=200, interleavings={"x"}, operations={"add": 200}, points={})
    t = health.Tally(examples=200, acknowledged=1, overlapping=1)
    (name, threads_text), = health.failures(c, t, mode="threads")
    (_, tasks_text), = health.failures(c, t, mode="tasks")
    assert name == health.NO_PREEMPTION_POINT
    assert "invisible to the harness" in threads_text and "--actors tasks" not in threads_text
    assert "--actors threads or processes" in tasks_text and "invisible" not in tasks_text


def test_a_synchronous_store_under_tasks_is_a_configuration_error_saying_so(tmp_path):
    r = sc("run", "--store", "json", "--actors", "tasks", *RUN, cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "no_preemption_point:" in r.stderr and "a synchronous method" in r.stderr
    assert "--actors threads or processes" in r.stderr and "Traceback" not in r.stderr


def test_a_model_with_nothing_left_to_explore_ends_the_search_early():
    """A one-step model has 7 distinct runs; Hypothesis would go on
    drawing and rejecting repeats for thousands of attempts (21 s).  The
    search ends after SATURATED repeats in a row and says so."""
    from sessioncheck.controlled.search import SATURATED
    from sessioncheck.verify import verify

    r = verify("json", budget=120, max_examples=1000, seed=1, save_report=False,
               cfg=ModelConfig(max_steps=1, actors=1), suppress_health_check="all")
    x = r.exploration
    assert x.saturated and not x.budget_exhausted and x.examples < 100 and x.repeats >= SATURATED
    assert any("little left to explore" in n for n in r.notes), r.notes
