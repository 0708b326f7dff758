"""A saved report replayed as a test (``@sessioncheck.reproduce``, the
marker's ``replay=``, ``sessioncheck.replay``): it fails with the story
while the violation happens and passes once the store is fixed; a report
is data, and names no code that is loaded unless the test says so."""
from __future__ import annotations

import pickle
import re
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

MAKE = """
def test_builtin(sessioncheck):
    sessioncheck("mutant:stale-overwrite", examples=60)

def test_module(sessioncheck):
    sessioncheck("sessioncheck.stores.mutants.stale_overwrite:Store", examples=60)
"""

REPLAY = """
import pytest

import sessioncheck
from sessioncheck.stores.reference.json_store import JsonFileStore

MODULE = "sessioncheck.stores.mutants.stale_overwrite:Store"


@sessioncheck.reproduce("reports/builtin.json")
def test_still_broken():
    pass


@pytest.mark.sessioncheck(replay="reports/builtin.json", store="json")
def test_fixed_store_passes():
    pass


def test_fixture_replay_with_a_factory_object(sessioncheck):
    sessioncheck.replay("reports/builtin.json", store=JsonFileStore)


@pytest.mark.sessioncheck(replay="reports/builtin.json", actors="processes")
def test_other_actors():
    pass


@pytest.mark.sessioncheck(replay="reports/module.json")
def test_store_not_built_in_is_refused():
    pass


@sessioncheck.reproduce("reports/module.json", store=MODULE)
def test_store_given_explicitly():
    pass


@sessioncheck.reproduce("reports/pickle.json")
def test_not_a_report():
    pass
"""


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch unpickled",))


def saved_reports(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_make=MAKE)
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=240)
    r.assert_outcomes(failed=2)
    paths = re.findall(r"Report: (\S+\.json)", r.stdout.str())
    reports = pytester.path / "reports"
    reports.mkdir()
    for p in paths:
        name = "module.json" if "stale_overwrite" in Path(p).name or "Store" in Path(p).name else "builtin.json"
        shutil.copy(p, reports / name)
    assert sorted(x.name for x in reports.iterdir()) == ["builtin.json", "module.json"], paths
    (reports / "pickle.json").write_bytes(pickle.dumps(_Payload()))
    (pytester.path / "test_make.py").unlink()


@pytest.mark.parametrize("mode", [pytest.param((), id="plain"), pytest.param(("-n", "2"), id="xdist")])
def test_a_saved_report_replays_as_a_test(pytester, mode):
    saved_reports(pytester)
    pytester.makepyfile(test_replay=REPLAY)
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "-rA", *mode, timeout=240)
    out = r.stdout.str()
    if mode:
        assert "created: 2/2 workers" in out
    r.assert_outcomes(passed=2, failed=5)
    passed = set(re.findall(r"^PASSED test_replay\.py::(\w+)", out, re.M))
    assert passed == {"test_fixed_store_passes", "test_fixture_replay_with_a_factory_object"}, out
    report = pytester.path / "reports" / "builtin.json"
    assert f"the saved violation happens again: {report}" in out
    assert "I1 (no lost message) violated by store mutant:stale-overwrite with 3 thread actors" in out
    assert "I1 (no lost message) violated by store mutant:stale-overwrite with 3 process actors" in out
    assert ("was saved for store 'sessioncheck.stores.mutants.stale_overwrite:Store', which is not built in, "
            "and a report never names the code to load: pass store=") in out
    assert "violated by store sessioncheck.stores.mutants.stale_overwrite:Store" in out
    assert "is not a sessioncheck report" in out or "is not UTF-8 text" in out
    assert not (pytester.path / "unpickled").exists()  # data, never unpickled
    assert "replay of " in out and "passes (fixed)" in out  # the summary names the replays
