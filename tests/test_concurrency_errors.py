"""An operation that raises: a finding only if it does not raise alone (E1);
raising alone too is a configuration error (exit 2); ``--allow-errors``
makes a matched error "not acknowledged"."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sessioncheck.errors import ConfigError
from sessioncheck.verify import verify

HERE = os.path.dirname(__file__)


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_first_use_create_race_is_E1_not_I4(mode):
    r = verify("mutant:create-race", mode=mode, max_examples=300, budget=120, seed=1, save_report=False)
    assert r.found, r.summary()
    first = r.outcome.violations[0]
    assert first.invariant == "E1", [v.summary for v in r.outcome.violations]
    assert "table messages already exists" in first.summary or "table metadata already exists" in first.summary
    assert "run alone on a fresh store do not raise" in first.summary
    assert "E1 (no operation fails only under concurrency) violated" in r.story


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_the_checked_create_counterpart_passes(mode):
    r = verify("sqlite-checked-create", mode=mode, max_examples=300, budget=120, seed=1, save_report=False)
    assert not r.found, r.story


def test_an_error_the_store_raises_alone_too_is_a_configuration_error():
    with pytest.raises(ConfigError) as info:
        verify("fixture_error_stores:PersistAlwaysFails", max_examples=300, budget=120, seed=1,
               save_report=False)
    text = str(info.value)
    assert "KeyError" in text and "with no other actor running" in text and "--allow-errors" in text


def test_allow_errors_matches_through_the_exception_chain():
    store = "fixture_error_stores:WrappedCreateRace"
    r = verify(store, max_examples=300, budget=120, seed=1, save_report=False)
    assert r.found and r.outcome.violations[0].invariant == "E1"
    assert "StoreUnavailable: could not prepare the database" in r.outcome.violations[0].summary
    # the top exception's text does not say "exists": only its cause does
    r = verify(store, max_examples=300, budget=120, seed=1, save_report=False,
               allow_errors=(r"OperationalError: table \w+ already exists",))
    assert not r.found, r.story


def test_a_pattern_that_matches_nothing_changes_nothing():
    r = verify("mutant:create-race", max_examples=300, budget=120, seed=1, save_report=False,
               allow_errors=("no such error",))
    assert r.found and r.outcome.violations[0].invariant == "E1"


def sc(*args, timeout=300):
    env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "sessioncheck", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=HERE and os.path.dirname(HERE))


def test_cli_allow_errors(tmp_path):
    base = ("run", "--store", "mutant:create-race", "--examples", "200", "--seed", "1",
            "--report", str(tmp_path / "r.json"))
    p = sc(*base)
    assert p.returncode == 1 and "E1 (no operation fails only under concurrency)" in p.stdout, p.stderr
    p = sc(*base, "--allow-errors", "nothing matches this", "--allow-errors", "already exists")
    assert p.returncode == 0 and "no violation found" in p.stdout, p.stdout + p.stderr
    p = sc(*base, "--allow-errors", "(")
    assert p.returncode == 2 and "not a regular expression" in p.stderr


def test_cli_raising_alone_exits_2(tmp_path):
    p = sc("run", "--store", "fixture_error_stores:PersistAlwaysFails", "--examples", "200", "--seed", "1",
           "--report", str(tmp_path / "r.json"))
    assert p.returncode == 2 and "with no other actor running" in p.stderr, p.stdout + p.stderr
    assert "Traceback" not in p.stderr


def test_replay_keeps_the_allowed_errors(tmp_path):
    """allow_errors is part of the model a report records: replaying it
    judges errors the same way."""
    from dataclasses import replace

    from sessioncheck.controlled.program import ModelConfig
    from sessioncheck.reporting import report as reports

    cfg = replace(ModelConfig(), allow_errors=("already exists",))
    data = reports.build(store="json", store_module="x", mode="threads", cfg=cfg, seed=1, program=[],
                         violations=[], story="", trace=[], stats={})
    assert reports.config_from_json(data["config"]).allow_errors == ("already exists",)
    from sessioncheck.errors import ReportError

    with pytest.raises(ReportError):
        reports.config_from_json({**data["config"], "allow_errors": ["("]})



def test_stress_allow_errors():
    from sessioncheck.stress.runner import StressConfig, run_stress

    store = "test_stress:TornReadStore"
    result = run_stress(StressConfig(store=store, processes=0, threads=2, sessions=1, ops=60, duration=30, seed=6))
    assert any(f.invariant == "I4" for f in result.run_findings)
    result = run_stress(StressConfig(store=store, processes=0, threads=2, sessions=1, ops=60, duration=30, seed=6,
                                     allow_errors=("ValueError: Expecting value",)))
    assert not result.run_findings and result.verdict == "ok", [f.summary for f in result.run_findings]


def test_gate_allow_errors(tmp_path):
    from sessioncheck.testing import Gate, StoreViolation

    gate = Gate.from_options(profile="ci", root=tmp_path, report_dir=str(tmp_path / "r"), db="none", seed=1)
    with pytest.raises(StoreViolation):
        gate.check("mutant:create-race", "t", budget=120, examples=200, allow_errors=())
    assert not gate.check("mutant:create-race", "t", budget=120, examples=200,
                          allow_errors=("already exists",)).found
    with pytest.raises(ConfigError):
        gate.check("mutant:create-race", "t", budget=120, examples=200, allow_errors=("(",))


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_close_that_raises_only_beside_others_is_E1(mode):
    r = verify("fixture_error_stores:CloseFailsBesideOthers", mode=mode, max_examples=100, budget=60,
               seed=1, save_report=False)
    assert r.found, r.summary()
    first = r.outcome.violations[0]
    assert first.invariant == "E1", [v.summary for v in r.outcome.violations]
    assert "close() of the store raised RuntimeError" in first.summary and "run alone" in first.summary


def test_a_close_that_raises_alone_too_is_a_configuration_error():
    with pytest.raises(ConfigError) as info:
        verify("fixture_error_stores:CloseAlwaysFails", max_examples=50, budget=60, seed=1, save_report=False)
    assert "close() raised RuntimeError" in str(info.value) and "no other actor running" in str(info.value)


def test_a_close_error_can_be_allowed():
    r = verify("fixture_error_stores:CloseFailsBesideOthers", max_examples=100, budget=60, seed=1,
               save_report=False, allow_errors=("other instance",))
    assert not r.found, r.story
