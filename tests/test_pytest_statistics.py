"""``--sessioncheck-statistics``: what each check explored, in the terminal
summary, from the only process or from every xdist worker.

Budgets: at most 40 examples per check."""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest

pytest_plugins = ["pytester"]

GATE = """
def test_json(sessioncheck):
    sessioncheck("json", examples=40)

def test_sqlite(sessioncheck):
    sessioncheck("sqlite", examples=30, without="persist")

def test_mutant(sessioncheck):
    sessioncheck("mutant:stale-overwrite", examples=40)

def test_two_checks(sessioncheck):
    sessioncheck("json", examples=12)
    sessioncheck("sqlite", examples=14)
"""


def checks(props: list) -> list[dict]:
    """A test's JUnit properties, one dict per check (each begins with its store)."""
    out: list[dict] = []
    for k, v in props:
        if k == "sessioncheck_store":
            out.append({})
        if out:
            out[-1][k] = v
    return out


@pytest.mark.parametrize("mode", [pytest.param((), id="plain"), pytest.param(("-n", "2"), id="xdist")])
def test_statistics_in_the_terminal_summary(pytester, mode):
    pytester.makepyfile(test_gate=GATE)
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", *mode, "--junitxml=j.xml",
                                      "--sessioncheck-statistics", timeout=240)
    r.assert_outcomes(passed=3, failed=1)
    out = r.stdout.str()
    if mode:
        assert "created: 2/2 workers" in out
    stats = out[out.index("sessioncheck statistics"):]
    blocks = {m[1]: m[2] for m in re.finditer(r"^(test_gate\.py::\S+ \[[^\]]+\]):\n((?:  - .*\n)+)", stats, re.M)}
    assert len(blocks) == 5, stats  # one per check, two for the test that runs two
    expected_examples = {"test_json [json]": 40, "test_sqlite [sqlite]": 30, "test_two_checks [json]": 12,
                         "test_two_checks [sqlite]": 14}
    props = {}
    for case in ET.parse(pytester.path / "j.xml").getroot().iter("testcase"):
        props[case.get("name")] = [(p.get("name"), p.get("value")) for p in case.iter("property")]
    workers = set()
    for key, n in expected_examples.items():
        block = blocks[f"test_gate.py::{key}"]
        m = re.search(r"- (\d+) examples, (\d+) distinct interleavings, [\d.]+ s, seed (\d+) \((\w+), ci\)", block)
        assert m, block
        assert int(m[1]) == n and int(m[2]) >= 1
        workers.add(m[4])
        assert "- health: ok" in block
        ops = dict(re.findall(r"(\w+) (\d+)", re.search(r"points reached per operation: (.*)", block)[1]))
        assert set(ops) >= {"add", "read"}
        if "sqlite" in key and "two" not in key:
            assert "persist" not in ops  # without="persist"
        # the same numbers as the check's JUnit properties (which is how they crossed from the worker)
        test, store = key.split(" ")
        [check] = [c for c in checks(props[test]) if c["sessioncheck_store"] == store[1:-1]]
        assert check["sessioncheck_seed"] == m[3] and check["sessioncheck_examples"] == m[1]
        assert json.loads(check["sessioncheck_points"]) == {k: int(v) for k, v in ops.items()}
    assert workers <= ({"gw0", "gw1"} if mode else {"main"})
    mutant = blocks["test_gate.py::test_mutant [mutant:stale-overwrite]"]
    assert re.search(r"- \d+ examples, \d+ distinct interleavings", mutant)


def test_no_statistics_unless_asked(pytester):
    pytester.makepyfile(test_gate="def test_json(sessioncheck):\n    sessioncheck('json', examples=5)\n")
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    r.assert_outcomes(passed=1)
    assert "sessioncheck statistics" not in r.stdout.str()
