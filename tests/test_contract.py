"""The adapter contract, checked before the search: each breach is a
configuration error naming the adapter and the fix (exit 2), never I4."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sessioncheck import contract
from sessioncheck.errors import ConfigError
from sessioncheck.specs import resolve

TESTS = Path(__file__).parent


def probe(name: str, **kw):
    return contract.check(resolve(f"misbehaving_stores:{name}"), **kw)


@pytest.mark.parametrize("name,words", [
    ("ReadsDataclasses", ["misbehaving_stores:ReadsDataclasses", "messages must be dicts", "Msg"]),
    ("ReadsTuple", ["returned tuple", "not a SessionState"]),
    ("WrongSignature", ["add_message(session_id, role, text)", "cannot be called as add_message(session_id, message)"]),
    ("BadCapabilities", ["capabilities is dict", "Capabilities(metadata=..., delete=...)"]),
    ("WantsStr", ["called with one argument, a pathlib.Path", "it works with a str"]),
    ("exiting_factory", ["factory called sys.exit(4)"]),
])
def test_breach_is_a_configuration_error_naming_adapter_and_fix(name, words):
    with pytest.raises(ConfigError) as info:
        probe(name)
    text = str(info.value)
    assert f"misbehaving_stores:{name}" in text
    for w in words:
        assert w in text


def test_coroutine_methods_are_valid():
    assert probe("AsyncStore").declared


def test_missing_capabilities_are_assumed_and_said():
    got = probe("NoCapabilities")
    assert not got.declared and got.capabilities.metadata
    r = subprocess.run([sys.executable, "-m", "sessioncheck", "run", "--store", "misbehaving_stores:NoCapabilities",
                        "--examples", "30", "--seed", "1", "--suppress-health-check", "all"],
                       capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(TESTS)),
                       cwd=TESTS.parent)
    assert r.returncode == 0 and "declares no capabilities: assumed the defaults" in r.stdout, r.stdout + r.stderr


def test_every_reference_store_and_mutant_follows_the_contract():
    from sessioncheck.specs import BUILTIN, mutant_names

    for name in [*BUILTIN, *(f"mutant:{m}" for m in mutant_names())]:
        contract.check(resolve(name))


def test_a_blocking_factory_is_bounded_and_its_location_removed(tmp_path):
    with pytest.raises(ConfigError, match="did not finish within 1 s"):
        probe("blocking_factory", watchdog=1.0)
    loc = tmp_path / "loc"
    loc.mkdir()
    with pytest.raises(ConfigError):
        contract.check(resolve("misbehaving_stores:blocking_factory"), loc, watchdog=0.5)


def test_cli_exit_2_and_no_i4(tmp_path):
    r = subprocess.run([sys.executable, "-m", "sessioncheck", "run", "--store", "misbehaving_stores:ReadsTuple",
                        "--budget", "5"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env=dict(os.environ, PYTHONPATH=str(TESTS)))
    assert r.returncode == 2 and "I4" not in r.stderr + r.stdout and "adapter contract" in r.stderr
