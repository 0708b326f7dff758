"""The command line as a user meets it: exit codes and one-line errors."""
from __future__ import annotations

import json
import re
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
    # the summary is the result: on stdout, and nothing on stderr
    assert p.stdout.startswith("no violation found in json (threads):"), p.stdout
    assert p.stdout.count("\n") == 1 and p.stderr == "", (p.stdout, p.stderr)


def test_violation_exits_1_with_story_and_replay(tmp_path):
    p = sc("run", "--store", "mutant:stale-overwrite", "--budget", "60", "--seed", "1", cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    # the summary first, then the story; the story's last line is Replay:
    summary, story = p.stdout.split("\n\n", 1)
    assert summary.startswith("violation found in mutant:stale-overwrite (threads) after "), summary
    assert summary.splitlines()[0].endswith("; seed 1")
    assert story.startswith("sessioncheck: I")
    last = p.stdout.rstrip().splitlines()[-1]
    assert last.startswith("Replay: sessioncheck replay .sessioncheck/reports/")
    report = last.split()[3]
    r = sc("replay", report, "--store", "mutant:stale-overwrite", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stdout == "replayed: the same story, byte for byte\n\n" + story
    assert r.stderr == ""
    e = sc("explain", report, cwd=tmp_path)
    assert e.returncode == 0 and e.stdout == story


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
    time.sleep(1.0)  # a few examples in
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130 and err.endswith("sessioncheck: interrupted by SIGINT\n"), err
    # what was explored so far, on stdout, with the seed that was drawn
    assert re.fullmatch(r"interrupted in json \(processes\): no violation found so far in \d+ examples?, "
                        r"\d+ distinct interleavings? \(\d+%\), \d+\.\d s; seed \d+\n", out), out
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
    assert again.returncode == 1 and again.stdout.startswith("replayed: the same story, byte for byte\n")
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


def test_plural():
    from sessioncheck.words import plural

    assert plural(1, "example") == "1 example" and plural(2, "example") == "2 examples"
    assert plural(0, "check") == "0 checks" and plural(1, "process", "processes") == "1 process"
    assert plural(3, "process", "processes") == "3 processes"


def test_a_violation_after_one_example_says_one_example(tmp_path):
    # silent-truncate is caught by the systematic pass's first program
    p = sc("run", "--store", "mutant:silent-truncate", "--seed", "1", "--no-db", "--examples", "1",
           "--report", "r.json", "--suppress-health-check", "all", cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    assert p.stdout.startswith("violation found in mutant:silent-truncate (threads) after 1 example (")
    assert "; 1 example, 1 distinct interleaving (100%), " in p.stdout.splitlines()[0]


def test_stores_names_the_extra_of_an_adapter(tmp_path):
    from sessioncheck.stores.adapters import ADAPTERS

    p = sc("stores", cwd=tmp_path)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in p.stdout.splitlines()
            if line.count("│") == 3}
    for name, (_, extra, _) in ADAPTERS.items():
        assert rows[name] in (f"adapter, not installed: pip install 'sessioncheck[{extra}]'",
                              f"adapter (extra {extra}): installed"), rows[name]


@pytest.mark.parametrize("args,says", [
    (("run", "--store", "nosuch"), "unknown store 'nosuch'"),
    (("stress", "--store", "nosuch"), "unknown store 'nosuch'"),
    (("fuzz", "--store", "nosuch", "--hours", "0.01"), "unknown store 'nosuch'"),
    (("gallery", "--only", "nosuch"), "nosuch"),
    (("scenario", "no-such-scenario"), "unknown scenario"),
    (("scenarios", "--store", "nosuch"), "unknown store 'nosuch'"),
    (("replay", "missing.json", "--store", "json"), "missing.json"),
    (("explain", "missing.json"), "missing.json"),
    (("report", "missing.json", "--html", "out.html"), "missing.json"),
    (("check", "missing.jsonl"), "missing.jsonl"),
])
def test_every_verb_says_a_configuration_error_in_one_line_on_stderr(tmp_path, args, says):
    p = sc(*args, cwd=tmp_path, timeout=120)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == "" and p.stderr.startswith("sessioncheck: error: ") and p.stderr.count("\n") == 1, p.stderr
    assert says in p.stderr, p.stderr


@pytest.mark.parametrize("store,client", [("redis", "redis"), ("postgres", "psycopg")])
def test_a_server_store_without_its_client_names_the_extra(store, client, tmp_path):
    # the client made unimportable, as in an install without the extra
    code = (f"import sys; sys.modules[{client!r}] = None; from sessioncheck.cli.main import main; "
            f"sys.exit(main(['run', '--store', {store!r}, '--budget', '3']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "pip install 'sessioncheck[servers]'" in r.stderr and "Traceback" not in r.stderr, r.stderr
