"""A module a store imports lazily inside an operation: its import-time I/O
and importlib's .pyc writes are not points, so the first example that
imports it runs as the next one does, and verdicts stay right."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from sessioncheck.verify import verify

HERE = os.path.dirname(__file__)


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_the_first_example_has_no_import_points(mode, tmp_path):
    # a fresh interpreter, so the module is not imported yet; a private
    # pycache prefix, so importing it writes its .pyc (through os.open O_EXCL
    # and os.replace, which the harness intercepts)
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {HERE!r})
        from sessioncheck.controlled.engine import Executor
        from sessioncheck.controlled.program import ModelConfig, OpSpec, Step
        from sessioncheck.specs import resolve

        program = [Step("start", 0, OpSpec("add", 0)), Step("advance", 0, points=16),
                   Step("start", 0, OpSpec("add", 0)), Step("start", 1, OpSpec("add", 0)),
                   Step("advance", 0, points=16), Step("advance", 1, points=16)]
        with Executor(resolve("fixture_lazy_stores:LazyImportStore"), {mode!r}, ModelConfig(actors=2)) as ex:
            first = ex.run(program)
            assert "lazy_pkg.cache_index" in sys.modules or {mode!r} == "processes"
            second = ex.run(program)
        points = [e for e in first.trace if e["ev"] == "point"]
        odd = [e for e in points if e["path"].startswith(("/", "..")) or "cache" in e["path"]]
        assert not odd, odd
        assert first.schedule_hash() == second.schedule_hash(), (len(first.trace), len(second.trace))
        assert not first.violations and not second.violations
        print("ok", len(points))
    """)
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(tmp_path / "pycache"), SESSIONCHECK_TMPDIR=str(tmp_path))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == 0 and "ok" in p.stdout, p.stdout + p.stderr


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_lazy_import_store_verdicts(mode, tmp_path):
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {HERE!r})
        from sessioncheck.verify import verify
        r = verify("fixture_lazy_stores:LazyImportStore", mode={mode!r}, max_examples=300, budget=120,
                   seed=1, save_report=False)
        assert not r.found, r.story
        r = verify("fixture_lazy_stores:LazyImportUnlocked", mode={mode!r}, max_examples=300, budget=120,
                   seed=1, save_report=False)
        assert r.found and r.outcome.violations[0].invariant in ("I1", "I3"), r.summary()
        print("ok")
    """)
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(tmp_path / "pycache"), SESSIONCHECK_TMPDIR=str(tmp_path))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0 and "ok" in p.stdout, p.stdout + p.stderr


def test_waits_inside_an_import_stay_points():
    from sessioncheck.controlled.intercept import context
    from sessioncheck.controlled.scheduler import WAITS

    assert set(WAITS) <= set(context._WAITS) and "sleep" in context._WAITS
    assert not context.importing()  # a test body is not an import
