"""The pytest gate as a store's repository uses it: a real pytest run, with
pytest-xdist workers (``-n 2``), over a test file that gates stores.

Budgets: each run gates at most 300 examples per check (the ci profile is
deterministic, so the same seeds run every time)."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

GATE = """
def test_stale_overwrite_is_caught(sessioncheck):
    sessioncheck("mutant:stale-overwrite")

def test_json_passes(sessioncheck):
    sessioncheck("json")
"""

EXAMPLES = "300"


def junit_properties(path: Path) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        out[case.get("name")] = props
    return out


def run_gate(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", "-p", "no:randomly",
                                         "--sessioncheck-examples", EXAMPLES, *args, timeout=240)


def test_xdist_gate_fails_on_the_mutant_with_story_and_report_path(pytester):
    pytester.makepyfile(test_gate=GATE)
    r = run_gate(pytester, "--junitxml=junit.xml")
    r.assert_outcomes(passed=1, failed=1)
    out = r.stdout.str()
    assert "created: 2/2 workers" in out  # really two xdist workers
    # the failure shows the story and where the report is
    assert "I1 (no lost message) violated by store mutant:stale-overwrite" in out
    assert "Replay: sessioncheck replay" in out
    m = re.search(r"Report: (\S+\.json)", out)
    assert m, out
    report = Path(m[1])
    assert report.exists()
    # each worker its own report directory
    assert report.parent.name in ("gw0", "gw1")
    assert report.parent.parent == pytester.path / ".sessioncheck" / "reports" / "gate"
    # the JUnit XML holds the report path and what each check explored
    props = junit_properties(pytester.path / "junit.xml")
    stale, good = props["test_stale_overwrite_is_caught"], props["test_json_passes"]
    assert stale["sessioncheck_report"] == str(report)
    assert stale["sessioncheck_invariant"] == "I1"
    assert "sessioncheck_report" not in good
    assert good["sessioncheck_examples"] == EXAMPLES and good["sessioncheck_profile"] == "ci"
    # results from both workers merged in the controlling process
    assert "2 checks, 1 violations; merged summary:" in out
    import json

    merged = json.loads((pytester.path / ".sessioncheck" / "reports" / "gate" / "summary.json").read_text())
    assert {c["store"] for c in merged["checks"]} == {"mutant:stale-overwrite", "json"}
    assert {c["worker"] for c in merged["checks"]} <= {"gw0", "gw1"}


def test_ci_gate_is_deterministic_and_replays_from_the_example_database(pytester):
    pytester.makepyfile(test_gate=GATE)
    first = run_gate(pytester, "--junitxml=first.xml")
    first.assert_outcomes(passed=1, failed=1)
    a = junit_properties(pytester.path / "first.xml")["test_stale_overwrite_is_caught"]
    assert int(a["sessioncheck_examples"]) > 1
    # the failure is in the directory database now
    assert any((pytester.path / ".sessioncheck" / "examples").iterdir())
    second = run_gate(pytester, "--junitxml=second.xml")
    second.assert_outcomes(passed=1, failed=1)
    b = junit_properties(pytester.path / "second.xml")["test_stale_overwrite_is_caught"]
    # the database is replayed right after the systematic pass (which runs
    # before Hypothesis starts), so never later than the first time
    assert int(b["sessioncheck_examples"]) <= int(a["sessioncheck_examples"])
    assert a["sessioncheck_seed"] == b["sessioncheck_seed"]  # ci: the check's seed is fixed
    # without the database the same seed explores the same schedules again
    third = run_gate(pytester, "--junitxml=third.xml", "--sessioncheck-db", "none")
    third.assert_outcomes(passed=1, failed=1)
    c = junit_properties(pytester.path / "third.xml")["test_stale_overwrite_is_caught"]
    assert c["sessioncheck_examples"] == a["sessioncheck_examples"]
    # the same report name; the directory names the xdist worker, which may differ
    assert Path(c["sessioncheck_report"]).read_text() != ""
    assert Path(c["sessioncheck_report"]).name == Path(a["sessioncheck_report"]).name


def test_store_option_gates_without_a_test_file(pytester):
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    r = run_gate(pytester, "--sessioncheck-store", "mutant:stale-overwrite", "--sessioncheck-store", "json")
    r.assert_outcomes(passed=2, failed=1)
    out = r.stdout.str()
    assert "sessioncheck[mutant:stale-overwrite]" in out and "Report: " in out


def test_fuzz_profile_draws_fresh_seeds(pytester):
    pytester.makepyfile(test_gate="def test_json(sessioncheck):\n    sessioncheck('json')\n")
    seeds = []
    for n in range(2):
        r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--sessioncheck-profile", "fuzz",
                                          "--sessioncheck-budget", "2", f"--junitxml=f{n}.xml", timeout=120)
        r.assert_outcomes(passed=1)
        p = junit_properties(pytester.path / f"f{n}.xml")["test_json"]
        assert p["sessioncheck_profile"] == "fuzz" and int(p["sessioncheck_examples"]) > 0
        assert p["sessioncheck_worker"] == "main"  # no xdist in this run, even inside an xdist worker
        seeds.append(p["sessioncheck_seed"])
    assert seeds[0] != seeds[1]


def test_bad_gate_option_is_a_usage_error(pytester):
    pytester.makepyfile(test_gate=GATE)
    r = pytester.runpytest_subprocess("--sessioncheck-budget", "0", timeout=60)
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    assert "--sessioncheck-budget must be a positive number" in r.stderr.str()
