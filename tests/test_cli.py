"""The command line as a user meets it: exit codes and one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest


def sc(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "sessioncheck", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def test_unknown_store_is_a_usage_error(tmp_path):
    p = sc("run", "--store", "nosuch", cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "unknown store 'nosuch'" in p.stderr
    assert "Traceback" not in p.stderr


def test_factory_that_raises_is_a_usage_error(tmp_path):
    import os

    env_path = os.path.dirname(__file__)
    p = subprocess.run([sys.executable, "-m", "sessioncheck", "run", "--store", "fixture_stores:RaisingFactory"],
                       capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": env_path}, timeout=60)
    assert p.returncode == 2
    assert "factory raised RuntimeError: cannot connect" in p.stderr
    assert "Traceback" not in p.stderr


def test_bad_option_is_a_usage_error(tmp_path):
    p = sc("run", "--actors", "fibers", cwd=tmp_path)
    assert p.returncode == 2 and "invalid choice" in p.stderr


def test_correct_store_exits_0(tmp_path):
    p = sc("run", "--store", "json", "--budget", "3", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "no violation found in json (threads):" in p.stderr


def test_violation_exits_1_with_story_and_replay(tmp_path):
    p = sc("run", "--store", "mutant:stale-overwrite", "--budget", "60", "--seed", "1", cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    last = p.stdout.rstrip().splitlines()[-1]
    assert last.startswith("Replay: sessioncheck replay .sessioncheck/reports/")
    report = last.split()[3]
    r = sc("replay", report, "--store", "mutant:stale-overwrite", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stdout == p.stdout.lstrip("\n")
    assert "the same story, byte for byte" in r.stderr
    e = sc("explain", report, cwd=tmp_path)
    assert e.returncode == 0 and e.stdout == r.stdout


@pytest.mark.parametrize("content", ["not json", json.dumps({"schema": "other"}), json.dumps([1, 2]),
                                     json.dumps({"schema": "sessioncheck-report", "version": 99})])
def test_corrupt_or_foreign_report_is_a_usage_error(tmp_path, content):
    bad = tmp_path / "r.json"
    bad.write_text(content)
    for verb in ("replay", "explain"):
        p = sc(verb, str(bad), "--store", "json") if verb == "replay" else sc(verb, str(bad))
        assert p.returncode == 2, p.stderr
        assert p.stderr.startswith("sessioncheck: error:") and p.stderr.count("\n") == 1


def test_report_never_loads_code_named_inside_it(tmp_path):
    """A report naming a module:factory store is refused without --store."""
    p = sc("run", "--store", "mutant:stale-overwrite", "--budget", "60", "--seed", "1", cwd=tmp_path)
    report = p.stdout.rstrip().splitlines()[-1].split()[3]
    data = json.loads((tmp_path / report).read_text())
    data["store"] = "os:system"
    (tmp_path / report).write_text(json.dumps(data))
    r = sc("replay", report, cwd=tmp_path)
    assert r.returncode == 2 and "not built in; pass --store" in r.stderr


def test_ctrl_c_reaps_every_actor_process(tmp_path):
    import os
    import signal
    import time

    from signals import sigint_as_in_a_terminal

    p = subprocess.Popen([sys.executable, "-m", "sessioncheck", "run", "--store", "json", "--actors", "processes",
                          "--budget", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=tmp_path, preexec_fn=sigint_as_in_a_terminal)
    kids: list[str] = []
    for _ in range(100):  # wait until the actors exist
        time.sleep(0.1)
        kids = subprocess.run(["ps", "--ppid", str(p.pid), "-o", "pid="], capture_output=True,
                              text=True).stdout.split()
        if len(kids) >= 3:
            break
    assert kids, "no actor processes started"
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "interrupted" in err
    assert not [k for k in kids if os.path.exists(f"/proc/{k}") and
                open(f"/proc/{k}/stat").read().split()[2] != "Z"]


def test_without_leaves_an_operation_out_and_the_report_remembers_it(tmp_path):
    """praisonai-style stores can have two bugs; --without delete looks past
    the delete one.  Here: delete-unlocked's bug needs a delete, so without
    it the store passes; with it, the report replays with the same model."""
    p = sc("run", "--store", "mutant:delete-unlocked", "--without", "delete", "--examples", "300", "--seed", "0",
           "--no-db", cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    p = sc("run", "--store", "mutant:none-skipped", "--without", "delete", "--seed", "0", "--no-db",
           "--report", "r.json", cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    assert json.loads((tmp_path / "r.json").read_text())["config"]["without"] == ["delete"]
    again = sc("replay", "r.json", "--store", "mutant:none-skipped", cwd=tmp_path)
    assert again.returncode == 1 and "byte for byte" in again.stdout + again.stderr
    assert sc("run", "--without", "add", cwd=tmp_path).returncode == 2


def test_a_report_whose_without_names_a_core_operation_is_refused(tmp_path):
    p = sc("run", "--store", "mutant:none-skipped", "--seed", "0", "--no-db", "--report", "r.json", cwd=tmp_path)
    assert p.returncode == 1
    doc = json.loads((tmp_path / "r.json").read_text())
    doc["config"]["without"] = ["add"]
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    p = sc("replay", "bad.json", "--store", "mutant:none-skipped", cwd=tmp_path)
    assert p.returncode == 2 and "config without must list persist, delete" in p.stderr
    assert "Traceback" not in p.stderr
