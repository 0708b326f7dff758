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
    assert "2 checks, 1 violation; merged summary:" in out
    import json

    merged = json.loads((pytester.path / ".sessioncheck" / "reports" / "gate" / "summary.json").read_text())
    assert {c["store"] for c in merged["checks"]} == {"mutant:stale-overwrite", "json"}
    assert {c["worker"] for c in merged["checks"]} <= {"gw0", "gw1"}


RARE_STORE = '''
from sessioncheck.stores.reference.json_store import JsonFileStore, merge_fields


class RareLoss(JsonFileStore):
    """Loses the last message at a session's fifth persist_state: a sequence
    the systematic pass does not reach and a random search does (so its
    failure lands in Hypothesis' example database)."""

    def persist_state(self, session_id, fields):
        with self._lock(session_id):
            data = self._load(session_id)
            data["persists"] = data.get("persists", 0) + 1
            if data["persists"] == 6 and len(data["messages"]) >= 2:
                data["messages"] = data["messages"][:-1]
            merge_fields(data, fields)
            self._save(session_id, data)
'''

CI_GATE = """
def test_json(sessioncheck):
    sessioncheck("json")

def test_rare(sessioncheck):
    sessioncheck("rare_store:RareLoss")
"""


def _explored(path: Path) -> dict:
    return {t: (p["sessioncheck_examples"], p["sessioncheck_interleavings"], p["sessioncheck_seed"])
            for t, p in junit_properties(path).items()}


def _files(db: Path) -> list:
    return sorted((p.relative_to(db), p.read_bytes()) for p in db.rglob("*") if p.is_file()) if db.exists() else []


def test_ci_gate_explores_the_same_interleavings_whatever_the_example_database_holds(pytester):
    """Hypothesis' CI recipe: the ci profile writes no example database and
    reads none unless given one, so three ci runs explore the same
    interleavings before and after fuzz runs filled the database; given
    that database (read only), the ci gate replays its failure first and
    writes nothing."""
    pytester.makepyfile(test_gate=CI_GATE, rare_store=RARE_STORE)
    db = pytester.path / ".sessioncheck" / "examples"
    explored = []
    for n in range(3):
        r = run_gate(pytester, f"--junitxml=ci{n}.xml")
        r.assert_outcomes(passed=2)  # this many examples of this seed do not reach the rare bug
        explored.append(_explored(pytester.path / f"ci{n}.xml"))
        assert _files(db) == ([] if n == 0 else filled)  # ci wrote nothing
        if n < 2:
            # a fuzz run (a fixed base seed, an example bound: the same
            # search every time) finds the rare bug and saves it
            f = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--sessioncheck-profile", "fuzz",
                                              "--sessioncheck-seed", str(n), "--sessioncheck-examples", "1500",
                                              "-k", "rare", timeout=240)
            f.assert_outcomes(failed=1)
            filled = _files(db)
            assert filled
    assert explored[0] == explored[1] == explored[2], explored
    assert int(explored[0]["test_json"][1]) > 1
    # the database does hold what would change the exploration: given to
    # the ci profile, it is replayed first (read only)
    given = run_gate(pytester, "--junitxml=given.xml", "--sessioncheck-db", str(db))
    given.assert_outcomes(passed=1, failed=1)
    replayed = junit_properties(pytester.path / "given.xml")["test_rare"]
    assert replayed["sessioncheck_seed"] == explored[0]["test_rare"][2]
    assert int(replayed["sessioncheck_examples"]) < int(explored[0]["test_rare"][0])
    assert _files(db) == filled  # read, never written


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
    assert "--sessioncheck-budget: 0 must be more than 0" in r.stderr.str()


TASKS_GATE = """
import pytest

def test_asyncio_lock_only_in_two_workers(sessioncheck):
    sessioncheck("mutant:asyncio-lock-only", actors="tasks", processes=2)

@pytest.mark.sessioncheck(actors="tasks")
def test_asyncio_lock_only_in_one_loop(sessioncheck):
    sessioncheck("mutant:asyncio-lock-only")
"""


def test_gate_runs_task_actors_in_processes(pytester):
    pytester.makepyfile(test_gate=TASKS_GATE)
    r = run_gate(pytester)
    r.assert_outcomes(passed=1, failed=1)
    out = r.stdout.str()
    assert "asyncio tasks in 2 processes (an event loop each)" in out
    assert "FAILED test_gate.py::test_asyncio_lock_only_in_two_workers" in out
