"""Stories name scratch files by role, tell each violation once, and
replay to the same story from any folder."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from sessioncheck.controlled.trace import Names

TESTS = os.path.dirname(__file__)


def _p(t, actor, kind, path, detail=""):
    return {"t": t, "actor": actor, "ev": "point", "kind": kind, "path": path, "detail": detail}


def _op(t, actor, call="add"):
    return {"t": t, "actor": actor, "ev": "start", "call": call, "session": "s0"}


def _done(t, actor):
    return {"t": t, "actor": actor, "ev": "done", "status": "ok"}


def test_an_exclusive_lock_file_keeps_its_name_and_an_unlinked_temp_is_numbered():
    trace = [
        _op(1, "A"),
        _p(2, "A", "open", "s0.json.lock", "w+create+excl"),
        _p(3, "A", "write", "s0.json.lock"),
        _p(4, "A", "close", "s0.json.lock"),
        _p(5, "A", "open", "s0.json", "r"),
        _p(6, "A", "read", "s0.json"),
        _p(7, "A", "open", "s0.json.4242.7f3a9c.tmp", "w"),
        _p(8, "A", "close", "s0.json.4242.7f3a9c.tmp"),
        _p(9, "A", "open", "s0.json.4242.7f3a9c.tmp", "rb"),  # copied over the session file
        _p(10, "A", "open", "s0.json", "wb"),
        _p(11, "A", "close", "s0.json"),
        _p(12, "A", "unlink", "s0.json.4242.7f3a9c.tmp"),
        _p(13, "A", "unlink", "s0.json.lock"),
        _done(14, "A"),
        _op(15, "B", "delete"),
        _p(16, "B", "unlink", "s0.json"),
        _done(17, "B"),
    ]
    names = Names(trace)
    assert names("s0.json.4242.7f3a9c.tmp") == "tmp1"
    assert names("s0.json.lock") == "s0.json.lock"
    assert names("s0.json") == "s0.json"


def test_a_waiter_retrying_the_exclusive_create_does_not_make_the_lock_a_temp():
    trace = [
        _op(1, "A"), _p(2, "A", "open", "s0.lock", "w+create+excl"), _p(3, "A", "close", "s0.lock"),
        _op(4, "B"), _p(5, "B", "open", "s0.lock", "w+create+excl"), _p(6, "B", "sleep", "", "0.01"),
        _p(7, "B", "open", "s0.lock", "w+create+excl"),
        _p(8, "A", "open", "s0.json", "w"), _p(9, "A", "close", "s0.json"), _p(10, "A", "unlink", "s0.lock"),
        _done(11, "A"),
    ]
    assert Names(trace)("s0.lock") == "s0.lock"


def test_mkstemp_and_failed_replace_temps_are_numbered():
    trace = [
        _op(1, "A"), _p(2, "A", "open", ".s0.json.k2j4_a9x.tmp", "rw+create+excl"),
        {"t": 3, "actor": "A", "ev": "fault", "kind": "replace", "path": "s0.json",
         "detail": ".s0.json.k2j4_a9x.tmp", "errno": "EIO"},
        _p(4, "A", "unlink", ".s0.json.k2j4_a9x.tmp"), _done(5, "A"),
        _op(6, "A"), _p(7, "A", "open", ".s0.json.zz81_q0p.tmp", "rw+create+excl"),  # killed here
    ]
    names = Names(trace)
    assert (names(".s0.json.k2j4_a9x.tmp"), names(".s0.json.zz81_q0p.tmp")) == ("tmp1", "tmp2")


def test_the_same_program_tells_the_same_story_in_other_processes():
    """Process actors get new pids and objects new ids; the story must not show them."""
    from sessioncheck.controlled.engine import Executor
    from sessioncheck.controlled.program import ModelConfig, OpSpec, Step
    from sessioncheck.protocol import StoreSpec  # noqa: F401
    from sessioncheck.reporting.story import group
    from sessioncheck.specs import resolve

    sys.path.insert(0, TESTS)
    program = [Step("start", 0, OpSpec("add", 0)), Step("start", 1, OpSpec("add", 0))]
    stories = []
    for _ in range(2):
        with Executor(resolve("fixture_fd_stores:ExclLockCopyStore"), "processes", ModelConfig(actors=2)) as ex:
            stories.append([ln.text for ln in group(ex.run(program).trace)])
    text = "\n".join(stories[0])
    assert stories[0] == stories[1], stories
    assert "s0.json.lock" in text and "tmp1" in text and not re.search(r"\d{3,}", text), text


def test_each_violation_is_told_once():
    from sessioncheck.controlled.engine import Violation
    from sessioncheck.reporting.story import render

    v = Violation("I4", "read(s0) by B raised ValueError: torn")
    text = render(header="h", trace=[], ops=[], violations=[v, Violation(v.invariant, v.summary)],
                  replay_command="x")
    assert text.count("violated:") == 1, text


def test_replay_from_another_folder_tells_the_same_story(tmp_path):
    env = {**os.environ, "PYTHONPATH": TESTS}

    def sc(*args, cwd):
        return subprocess.run([sys.executable, "-m", "sessioncheck", *args], capture_output=True, text=True,
                              cwd=cwd, env=env, timeout=300)

    run_dir, other = tmp_path / "here", tmp_path / "elsewhere"
    run_dir.mkdir()
    other.mkdir()
    p = sc("run", "--store", "mutant:dir-fd-rmw", "--actors", "processes", "--budget", "60", "--seed", "1",
           cwd=run_dir)
    assert p.returncode == 1, p.stderr
    report = p.stdout.rstrip().splitlines()[-1].split()[3]
    r = sc("replay", str(run_dir / report), "--store", "mutant:dir-fd-rmw", cwd=other)
    assert r.returncode == 1, r.stderr
    assert r.stdout.startswith("replayed: the same story"), r.stdout + r.stderr
    assert "story differs" not in r.stdout + r.stderr
    assert Path(run_dir / report).exists()


def test_a_data_file_renamed_to_its_backup_keeps_its_name():
    """dbm.dumb renames its index (``sessions.dir``) to ``sessions.bak``
    and writes a new one: the index was looked for before it was made, so
    it is no random scratch name, and the story keeps it."""
    trace = [
        _op(1, "A"), _p(2, "A", "open", "sessions.dir", "r"),
        _p(3, "A", "open", "sessions.dir", "a"), _p(4, "A", "close", "sessions.dir"),
        _p(5, "A", "unlink", "sessions.bak"), _p(6, "A", "rename", "sessions.bak", "sessions.dir"),
        _p(7, "A", "open", "sessions.dir", "w"), _p(8, "A", "close", "sessions.dir"), _done(9, "A"),
        _op(10, "A"), _p(11, "A", "open", ".s0.json.k2j4_a9x.tmp", "rw+create+excl"),
        _p(12, "A", "replace", "s0.json", ".s0.json.k2j4_a9x.tmp"), _done(13, "A"),
    ]
    names = Names(trace)
    assert names("sessions.dir") == "sessions.dir"
    assert names(".s0.json.k2j4_a9x.tmp") == "tmp1"
