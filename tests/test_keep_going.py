"""``--keep-going``: every distinct violation, each shrunk, told and saved.

The store with two bugs is ``mutant:torn-and-lost`` (a torn read and a lost
append); fixed seeds and small example limits keep each test to seconds.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from sessioncheck.controlled.engine import Executor
from sessioncheck.controlled.keep_going import explore_all, signature
from sessioncheck.controlled.search import explore, grace
from sessioncheck.gate_options import BY_NAME
from sessioncheck.reporting.report import load as load_report
from sessioncheck.specs import resolve
from sessioncheck.verify import model_config, rerun, verify

STORE = "mutant:torn-and-lost"
SEED = 0
EXAMPLES = 150

pytest_plugins = ["pytester"]


def sc(*args, cwd=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "sessioncheck", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def invariants(signatures) -> set[str]:
    return {s.split()[0] for s in signatures}


def test_without_keep_going_one_violation_with_it_both_bugs(tmp_path):
    one = verify(STORE, budget=30, max_examples=EXAMPLES, seed=SEED, report_dir=tmp_path / "one",
                 shrink_budget=5)
    assert one.found and one.distinct == []
    assert len(list((tmp_path / "one").iterdir())) == 1
    assert one.story.count("\nsessioncheck: ") + one.story.startswith("sessioncheck: ") == 1

    all_ = verify(STORE, budget=30, max_examples=EXAMPLES, seed=SEED, report_dir=tmp_path / "all",
                  shrink_budget=5, keep_going=True)
    sigs = [d.signature for d in all_.distinct]
    assert len(sigs) == len(set(sigs)) >= 2, sigs
    # the lost append (I1) and the torn read (a read that raises on the
    # half-written file: E1; I4 when it returns a torn state)
    assert "I1" in invariants(sigs), sigs
    assert any(s.split()[0] in ("I4", "E1") for s in sigs), sigs
    # the first is the one a search without --keep-going reports
    assert all_.outcome is all_.distinct[0].outcome
    assert sigs[0] == signature(one.outcome)
    # the examples that met them, in order, within the limit
    numbers = [d.example for d in all_.distinct]
    assert numbers == sorted(numbers) and numbers[-1] <= EXAMPLES
    assert all_.exploration.examples == EXAMPLES
    # each its own report, and each replays to its own violation
    paths = {d.report_path for d in all_.distinct}
    assert len(paths) == len(sigs) and all(p.exists() for p in paths)
    for d in all_.distinct:
        data = load_report(d.report_path)
        outcome, story = rerun(STORE, "threads", data["_config"], data["_program"], d.report_path)
        assert outcome.failed and signature(outcome) == d.signature
        assert story == d.story
    summary = all_.summary()
    assert f"{len(sigs)} distinct violations (--keep-going):" in summary
    for d in all_.distinct:
        assert d.line() in summary


def test_the_same_seed_finds_the_same_violations():
    spec = resolve(STORE)
    with Executor(spec, "threads", model_config(spec, "threads", ())) as ex:
        a = explore_all(ex, budget=30, max_examples=100, seed=3, shrink_runs=40)[1]
        b = explore_all(ex, budget=30, max_examples=100, seed=3, shrink_runs=40)[1]
    assert [(d.signature, d.example, d.outcome.program) for d in a] == \
        [(d.signature, d.example, d.outcome.program) for d in b]
    assert "I1" in invariants(d.signature for d in a)


def test_known_signatures_are_counted_not_shrunk_and_never_reported_twice():
    spec = resolve(STORE)
    with Executor(spec, "threads", model_config(spec, "threads", ())) as ex:
        x, found = explore_all(ex, budget=30, max_examples=EXAMPLES, seed=SEED, shrink_runs=40)
    sigs = [d.signature for d in found]
    assert len(sigs) == len(set(sigs))
    assert sum(x.known_failures.values()) > 0
    # every failure counted had a signature found (shrunk or as met) before
    assert set(x.known_failures) <= set(sigs) | {d.raw for d in found}, (x.known_failures, sigs)


def test_a_correct_store_stays_clean_with_keep_going():
    r = verify("json", budget=30, max_examples=120, seed=SEED, save_report=False, keep_going=True)
    assert not r.found and r.distinct == []
    assert r.exploration.examples == 120


def test_the_budget_stays_a_promise():
    budget = 3.0
    t0 = time.monotonic()
    r = verify(STORE, budget=budget, seed=SEED, save_report=False, keep_going=True, shrink_budget=1)
    took = time.monotonic() - t0
    assert r.found and r.distinct
    # budget + grace, plus at most one watchdog period (10 s) for a run under way,
    # plus the contract check before the search
    assert r.exploration.seconds <= budget + grace(budget) + 1.0, r.exploration.seconds
    assert took <= budget + grace(budget) + 10.0


def test_cli_keep_going_lists_tells_and_saves_each(tmp_path):
    p = sc("run", "--store", STORE, "--seed", str(SEED), "--examples", str(EXAMPLES), "--budget", "30",
           "--keep-going", "--report", str(tmp_path / "r.json"), cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    lines = p.stdout.splitlines()
    n = int(lines[1].split()[0])
    assert lines[1].endswith("distinct violations (--keep-going):") and n >= 2
    listed = lines[2:2 + n]
    assert all(" by " in line and ", first at example " in line for line in listed), listed
    assert p.stdout.count("\nsessioncheck: ") == n
    replays = [line.split()[3] for line in lines if line.startswith("Replay: sessioncheck replay ")]
    assert len(replays) == n and len(set(replays)) == n
    assert replays[0] == str(tmp_path / "r.json") and replays[1] == str(tmp_path / "r-2.json")
    r = sc("replay", replays[-1], "--store", STORE, cwd=tmp_path)
    assert r.returncode == 1 and "the same story" in r.stdout
    # without it: one story
    p = sc("run", "--store", STORE, "--seed", str(SEED), "--examples", str(EXAMPLES), "--budget", "30",
           "--report", str(tmp_path / "one.json"), cwd=tmp_path)
    assert p.returncode == 1 and p.stdout.count("sessioncheck: ") == 1
    assert "distinct violation" not in p.stdout


def test_the_gate_option_and_its_ini_key(pytester):
    o = BY_NAME["keep_going"]
    assert (o.cli, o.ini, o.flag) == ("--sessioncheck-keep-going", "sessioncheck_keep_going", True)
    pytester.makepyfile(test_two="def test_two(sessioncheck):\n    sessioncheck('mutant:torn-and-lost')\n")
    pytester.makeini("[pytest]\nsessioncheck_keep_going = true\n")
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "--sessioncheck-examples",
                                      str(EXAMPLES), "--junitxml=junit.xml", timeout=120)
    r.assert_outcomes(failed=1)
    out = r.stdout.str()
    assert "distinct violations (--keep-going):" in out
    assert out.count("Report: ") >= 2
    import xml.etree.ElementTree as ET

    props = {p.get("name"): p.get("value") for p in ET.parse(pytester.path / "junit.xml").iter("property")}
    assert "I1" in invariants(json.loads(props["sessioncheck_distinct"]))


def test_a_store_that_turns_nondeterministic_later_keeps_the_violations_found(monkeypatch):
    import sessioncheck.controlled.keep_going as kg
    from sessioncheck.controlled.search import NondeterministicStore

    real, calls = kg.explore, []

    def flaky_second_round(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise NondeterministicStore("the store behaves differently under the same schedule")
        return real(*args, **kwargs)

    monkeypatch.setattr(kg, "explore", flaky_second_round)
    r = verify(STORE, budget=30, max_examples=EXAMPLES, seed=SEED, save_report=False, keep_going=True,
               shrink_budget=5)
    assert len(r.distinct) == 1 and r.found
    assert "note: the search stopped after 1 distinct violation" in r.summary()
    # with nothing found yet, the error is the verdict
    calls.clear()
    calls.append(1)
    with pytest.raises(NondeterministicStore):
        verify(STORE, budget=30, max_examples=EXAMPLES, seed=SEED, save_report=False, keep_going=True)
