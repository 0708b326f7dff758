"""The pytest gate's options as a pytest user writes them: ini options,
the ``sessioncheck`` marker, the fixture's keywords (model options and
factory objects), their precedence, and collection counts; each under
plain pytest and under pytest-xdist (``-n 2``).

Budgets: at most 40 examples per check."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

MODES = [pytest.param((), id="plain"), pytest.param(("-n", "2"), id="xdist")]


def junit(path: Path) -> dict[str, dict[str, str]]:
    return {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
            for case in ET.parse(path).getroot().iter("testcase")}


def run(pytester: pytest.Pytester, mode: tuple, *args: str, timeout: float = 240) -> pytest.RunResult:
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", *mode, *args, timeout=timeout)
    if mode:
        assert "created: 2/2 workers" in r.stdout.str()
    return r


def model(props: dict) -> dict:
    return json.loads(props["sessioncheck_model"])


INI = """
[tool.pytest.ini_options]
sessioncheck_profile = "ci"
sessioncheck_examples = "30"
sessioncheck_budget = "60"
sessioncheck_seed = "7"
sessioncheck_actor_count = "2"
sessioncheck_sessions = "1"
sessioncheck_max_steps = "10"
sessioncheck_watchdog = "5"
sessioncheck_without = ["persist"]
sessioncheck_db = "none"
sessioncheck_report_dir = "out"
sessioncheck_store = ["json"]
sessioncheck_statistics = true
"""

INI_TESTS = """
import pytest

def test_json(sessioncheck):
    sessioncheck("json")

@pytest.mark.sessioncheck(without=[])  # a test argument overrides the ini file
def test_mutant(sessioncheck):
    sessioncheck("mutant:stale-overwrite")
"""


@pytest.mark.parametrize("mode", MODES)
def test_ini_options_set_every_check(pytester, mode):
    pytester.makepyprojecttoml(INI)
    pytester.makepyfile(test_ini=INI_TESTS)
    r = run(pytester, mode, "--junitxml=j.xml")
    r.assert_outcomes(passed=2, failed=1)  # json twice (the test and sessioncheck_store), the mutant
    out = r.stdout.str()
    assert "Unknown config option" not in out + r.stderr.str()
    props = junit(pytester.path / "j.xml")
    js, mutant, item = props["test_json"], props["test_mutant"], props["sessioncheck[json]"]
    for p in (js, item):
        assert p["sessioncheck_examples"] == "30" and p["sessioncheck_budget"] == "60.0"
        assert model(p) == {"actors": "threads", "faults": [], "actor_count": 2, "sessions": 1, "max_steps": 10,
                            "without": ["persist"], "watchdog": 5.0}
        assert "persist" not in json.loads(p["sessioncheck_points"])  # without persist: never called
    assert model(mutant)["without"] == []
    # the ini file's base seed: the check's seed is derived from it
    assert int(js["sessioncheck_seed"]) == zlib.crc32(b"7|test_ini.py::test_json|json")
    report = json.loads(Path(mutant["sessioncheck_report"]).read_text())
    assert (report["config"]["actors"], report["config"]["sessions"], report["config"]["max_steps"]) == (2, 1, 10)
    assert Path(mutant["sessioncheck_report"]).parent.parent == pytester.path / "out"  # sessioncheck_report_dir
    assert "sessioncheck statistics" in out  # sessioncheck_statistics = true
    assert not (pytester.path / ".sessioncheck" / "examples").exists()


MODEL_INI = """
[pytest]
sessioncheck_values = rich
sessioncheck_examples = 20
sessioncheck_db = none
"""

MODEL_TESTS = """
import pytest

def test_ini(sessioncheck):
    sessioncheck("mutant:merge-drops-tool-messages", sessions=1)

@pytest.mark.sessioncheck(messages="rich", values="rich")
def test_marker(sessioncheck):
    sessioncheck("json-pop", sessions=1)
"""


def test_values_and_messages_are_gate_options(pytester):
    """``values`` and ``messages`` from the ini file and a marker reach the
    check: the JUnit model names them, the report's config holds the kinds."""
    pytester.makeini(MODEL_INI)
    pytester.makepyfile(test_model=MODEL_TESTS)
    r = run(pytester, (), "--junitxml=j.xml")
    r.assert_outcomes(passed=1, failed=1)  # the mutant declares tool messages: caught
    props = junit(pytester.path / "j.xml")
    ini, marker = props["test_ini"], props["test_marker"]
    assert model(ini)["values"] == "rich" and "messages" not in model(ini)  # the default is not named
    assert model(marker)["values"] == "rich" and model(marker)["messages"] == "rich"
    config = json.loads(Path(ini["sessioncheck_report"]).read_text())["config"]
    from sessioncheck.controlled.values import RICH

    assert config["values"] == list(RICH) and "tool" in config["messages"]
    # a test option: the marker and a different command-line value conflict
    r = run(pytester, (), "--sessioncheck-values", "plain", "-k", "test_marker")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    assert "values='rich') conflicts with --sessioncheck-values plain" in r.stderr.str()


@pytest.mark.parametrize("key, value, says", [
    ("sessioncheck_examples", "0", "0 must be between 1 and"),
    ("sessioncheck_budget", "soon", "'soon' is not a number of seconds"),
    ("sessioncheck_budget", "inf", "'inf' is not finite"),
    ("sessioncheck_seed", "-1", "-1 must be between 0 and"),
    ("sessioncheck_actor_count", "27", "27 must be between 1 and 26"),
    ("sessioncheck_sessions", "0", "0 must be between 1 and 26"),
    ("sessioncheck_max_steps", "1001", "1001 must be between 1 and 1000"),
    ("sessioncheck_watchdog", "0", "must be more than 0"),
    ("sessioncheck_actors", "fibers", "'fibers' is not one of threads, processes, mixed"),
    ("sessioncheck_faults", "meteor", "unknown fault 'meteor'"),
    ("sessioncheck_without", "read", "'read' is not an optional operation"),
    ("sessioncheck_profile", "nightly", "'nightly' is not one of ci, fuzz"),
    ("sessioncheck_values", "fancy", "'fancy' is not one of plain, rich"),
    ("sessioncheck_messages", "tools", "'tools' is not one of plain, rich"),
    ("sessioncheck_suppress_health_check", "bogus", "bogus"),
])
def test_a_bad_ini_value_is_a_usage_error_naming_the_key(pytester, key, value, says):
    pytester.makeini(f"[pytest]\n{key} = {value}\n")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    err = r.stderr.str()
    assert f"ini option {key}: " in err and says in err, err
    assert "Traceback" not in err


def test_a_bad_command_line_value_names_the_option(pytester):
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--sessioncheck-actor-count", "x", timeout=60)
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    assert "--sessioncheck-actor-count: 'x' is not a whole number" in r.stderr.str()


MARKED = """
import functools

import pytest

import sessioncheck
from sessioncheck.stores.reference.json_store import JsonFileStore

pytestmark = pytest.mark.sessioncheck(examples=25, sessions=1)


@pytest.mark.sessioncheck("mutant:stale-overwrite", examples=40)
def test_marker_alone_is_the_check():
    pass  # the check runs after the body


@pytest.mark.sessioncheck(store="json", actor_count=2)
def test_marker_alone_body_fails_first():
    assert False, "the body's own failure"


@pytest.mark.sessioncheck(store="json", without="persist")
def test_fixture_takes_the_marker_store(sessioncheck):
    sessioncheck()


class TestClass:
    pytestmark = pytest.mark.sessioncheck(max_steps=8)

    def test_class_marker(self, sessioncheck):
        sessioncheck(JsonFileStore, actor_count=2)  # a factory object, the model options


class Local(JsonFileStore):
    pass


def test_factory_objects(sessioncheck):
    sessioncheck(Local, without=["persist"])
    sessioncheck(functools.partial(JsonFileStore))

    def make(location):
        return JsonFileStore(location)

    sessioncheck(make, examples=10)


def test_unknown_keyword(sessioncheck):
    sessioncheck("json", exmaples=3)


def test_bad_keyword_value(sessioncheck):
    sessioncheck("json", examples=0)


def test_not_a_store(sessioncheck):
    sessioncheck(42)
"""


@pytest.mark.parametrize("mode", MODES)
def test_marker_and_fixture_keywords(pytester, mode):
    pytester.makepyfile(test_marked=MARKED)
    r = run(pytester, mode, "--junitxml=j.xml", "--strict-markers", "-W", "error::pytest.PytestUnknownMarkWarning")
    r.assert_outcomes(passed=3, failed=5)
    out = r.stdout.str()
    assert "PytestUnknownMarkWarning" not in out
    p = junit(pytester.path / "j.xml")
    alone = p["test_marker_alone_is_the_check"]
    assert alone["sessioncheck_store"] == "mutant:stale-overwrite" and alone["sessioncheck_invariant"] == "I1"
    assert alone["sessioncheck_max_examples"] == "40" and model(alone)["sessions"] == 1  # function over module
    assert "I1 (no lost message) violated by store mutant:stale-overwrite" in out
    assert "the body's own failure" in out
    assert "sessioncheck_store" not in p["test_marker_alone_body_fails_first"]  # no check after a failed body
    fixture = p["test_fixture_takes_the_marker_store"]
    assert fixture["sessioncheck_store"] == "json" and model(fixture)["without"] == ["persist"]
    assert fixture["sessioncheck_max_examples"] == "25"
    cls = p["test_class_marker"]
    assert cls["sessioncheck_store"] == "sessioncheck.stores.reference.json_store:JsonFileStore"
    assert (model(cls)["max_steps"], model(cls)["actor_count"], model(cls)["sessions"]) == (8, 2, 1)
    # the factory objects: three checks in one test, one row each in the merged summary
    summary = json.loads((pytester.path / ".sessioncheck" / "reports" / "gate" / "summary.json").read_text())
    rows = [c for c in summary["checks"] if c["test"].endswith("test_factory_objects")]
    assert [c["store"] for c in rows] == ["test_marked:Local",
                                          "sessioncheck.stores.reference.json_store:JsonFileStore",
                                          "test_marked:test_factory_objects.<locals>.make"]
    assert [c["outcome"] for c in rows] == ["passed"] * 3
    assert json.loads(rows[0]["model"])["without"] == ["persist"] and rows[2]["max_examples"] == 10
    assert re.search(r"got an unknown keyword 'exmaples'; it takes .*examples", out)
    assert "sessioncheck(examples=...): 0 must be between 1 and" in out
    assert "a store is a spec string or a factory (a class or callable), not 42" in out
    assert "has no attribute 'strip'" not in out


def test_a_bad_marker_is_a_usage_error_before_anything_runs(pytester):
    pytester.makepyfile(test_m="import pytest\n\n@pytest.mark.sessioncheck(store='json', actors='fibers')\n"
                               "def test_m():\n    pass\n")
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    assert "test_m.py::test_m: @pytest.mark.sessioncheck(actors=...): 'fibers' is not one of" in r.stderr.str()


def test_the_marker_is_registered(pytester):
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--markers", timeout=60)
    assert "@pytest.mark.sessioncheck(store=None, *, replay=None" in r.stdout.str()


PRECEDENCE = """
import pytest

def test_run_option_command_line_wins(sessioncheck):
    sessioncheck("json", examples=35)

def test_test_option_overrides_ini(sessioncheck):
    sessioncheck("json", actor_count=3)

def test_test_option_conflict(sessioncheck):
    sessioncheck("json", sessions=2)

def test_test_option_agreeing(sessioncheck):
    sessioncheck("json", sessions=1)

def test_crash_advice(sessioncheck):
    sessioncheck("json", faults="crash")
"""


@pytest.mark.parametrize("mode", MODES)
def test_precedence(pytester, mode):
    pytester.makeini("[pytest]\nsessioncheck_examples = 30\nsessioncheck_actor_count = 2\n")
    pytester.makepyfile(test_p=PRECEDENCE)
    r = run(pytester, mode, "--junitxml=j.xml", "--sessioncheck-examples", "20", "--sessioncheck-sessions", "1")
    r.assert_outcomes(passed=3, failed=2)
    out = r.stdout.str()
    p = junit(pytester.path / "j.xml")
    # run options: the command line over the ini file and over the test
    assert p["test_run_option_command_line_wins"]["sessioncheck_examples"] == "20"
    # test options: the test over the ini file
    assert model(p["test_test_option_overrides_ini"])["actor_count"] == 3
    assert model(p["test_run_option_command_line_wins"])["actor_count"] == 2  # the ini file's
    assert model(p["test_run_option_command_line_wins"])["sessions"] == 1  # the command line's
    # ... and against the command line, only when they agree
    assert model(p["test_test_option_agreeing"])["sessions"] == 1
    assert "sessioncheck(sessions=2) conflicts with --sessioncheck-sessions 1 on the command line" in out
    assert "sessioncheck_store" not in p["test_test_option_conflict"]  # refused before it ran
    # the advice names what the test and the defaults said, in pytest's words
    assert ("crash faults (sessioncheck(faults='crash')) need process actors, but actors is threads "
            "(the default): set actors='processes'") in out
    assert "add --actors processes" not in out


def test_a_marker_conflicting_with_the_command_line_is_a_usage_error(pytester):
    pytester.makepyfile(test_m="import pytest\n\n@pytest.mark.sessioncheck(store='json', actors='processes')\n"
                               "def test_m():\n    pass\n")
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--sessioncheck-actors", "threads", timeout=60)
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    assert ("@pytest.mark.sessioncheck(actors='processes') conflicts with --sessioncheck-actors threads on the "
            "command line") in r.stderr.str()


def test_collection_count_agrees_with_the_listing(pytester):
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    r = run(pytester, (), "--co", "-q", "--sessioncheck-store", "json", "--sessioncheck-store", "sqlite")
    out = r.stdout.str()
    listed = [line for line in out.splitlines() if "test_one" in line or "sessioncheck[" in line]
    assert len(listed) == 3, out
    assert "3 tests collected" in out, out
    k = run(pytester, (), "--co", "-q", "--sessioncheck-store", "json", "-k", "sessioncheck")
    assert "1/2 tests collected (1 deselected)" in k.stdout.str(), k.stdout.str()


def test_xdist_counts_the_store_items(pytester):
    # pytest-xdist does not start workers for --co: a short run shows its count
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    r = run(pytester, ("-n", "2"), "--sessioncheck-store", "json", "--sessioncheck-store", "sqlite",
            "--sessioncheck-examples", "10")
    assert "2 workers [3 items]" in r.stdout.str(), r.stdout.str()
    r.assert_outcomes(passed=3)
