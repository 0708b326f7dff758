"""Locks the harness must model wherever the store keeps them: lock files in
a directory beside the store's, and filelock's SoftFileLock, whose
finalizer must not print a traceback when an actor is abandoned."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from sessioncheck.verify import verify

HERE = os.path.dirname(__file__)


@pytest.fixture(autouse=True)
def private_scratch(tmp_path, monkeypatch):
    # the stores keep their lock files beside the run locations: all of it
    # in this test's own directory
    monkeypatch.setenv("SESSIONCHECK_TMPDIR", str(tmp_path))


@pytest.mark.parametrize("mode", ["threads", "processes"])
@pytest.mark.parametrize("store", ["FlockDirStore", "LockDirStore", "ExclLockDirStore"])
def test_lock_files_in_a_sibling_directory_are_modelled(store, mode):
    r = verify(f"fixture_lockdir_stores:{store}", mode=mode, max_examples=300, budget=120, seed=1,
               save_report=False, watchdog=5)
    assert not r.found, r.story


@pytest.mark.parametrize("mode", ["threads", "processes"])
@pytest.mark.parametrize("store", ["FlockDirPersistUnlocked", "LockDirPersistUnlocked"])
def test_a_missing_lock_beside_a_sibling_lock_directory_is_caught(store, mode):
    r = verify(f"fixture_lockdir_stores:{store}", mode=mode, max_examples=300, budget=120, seed=1,
               save_report=False, watchdog=5)
    assert r.found and r.outcome.violations[0].invariant in ("I1", "I3"), r.summary()


def test_the_lock_in_the_sibling_directory_is_a_point_in_the_story():
    r = verify("fixture_lockdir_stores:FlockDirPersistUnlocked", max_examples=300, budget=120, seed=1,
               save_report=False, watchdog=5)
    assert r.found
    flocks = [e for e in r.outcome.trace if e["ev"] == "point" and e["kind"] == "flock"]
    assert flocks and all(e["path"].startswith("../session-locks/") for e in flocks), flocks


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_soft_file_lock_store_passes_and_its_mutant_is_caught(mode):
    r = verify("fixture_lockdir_stores:SoftLockStore", mode=mode, max_examples=300, budget=120, seed=1,
               save_report=False)
    assert not r.found, r.story
    r = verify("fixture_lockdir_stores:SoftLockPersistUnlocked", mode=mode, max_examples=300, budget=120,
               seed=1, save_report=False)
    assert r.found and r.outcome.violations[0].invariant in ("I1", "I3"), r.summary()


def test_an_abandoned_actor_holding_a_soft_file_lock_ends_quietly(tmp_path):
    """Shut down while parked inside ``with SoftFileLock``: the lock's
    ``__del__`` meets the harness's Crashed; nothing is printed.  Another
    finalizer's error still is."""
    code = textwrap.dedent(f"""
        import gc, sys, tempfile
        sys.path.insert(0, {HERE!r})
        from sessioncheck.controlled import intercept
        intercept.install()
        from sessioncheck.controlled.actor import OpCall
        from sessioncheck.controlled.engine import make_actor
        from sessioncheck.controlled.scheduler import Scheduler
        from sessioncheck.specs import resolve

        a = make_actor("thread", "A", resolve("fixture_lockdir_stores:SoftLockStore"), 5.0)
        a.set_location(tempfile.mkdtemp(dir={str(tmp_path)!r}))
        s = Scheduler([a])
        s.begin("A", OpCall("add", "s0", "m1"), None)
        for _ in range(4):
            s.resume("A")
        a.shutdown()
        gc.collect()

        class Other:
            def __del__(self):
                raise ValueError("a finalizer of the caller's own")
        Other()
        gc.collect()
        print("done")
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "done" in p.stdout, p.stderr
    assert "Crashed" not in p.stderr and "BaseFileLock.__del__" not in p.stderr, p.stderr
    assert "ValueError: a finalizer of the caller's own" in p.stderr
