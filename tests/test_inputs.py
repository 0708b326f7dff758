"""Inputs are data: every number is checked, every file the harness reads
is bounded, and nothing read from a report reaches the terminal raw."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest


def sc(*args, cwd=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "sessioncheck", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def one_line_usage_error(p) -> None:
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr
    assert p.stderr.strip().count("\n") == 0, p.stderr


@pytest.mark.parametrize("args", [
    ("run", "--examples", "0"), ("run", "--examples", "-1"), ("run", "--watchdog", "nan"),
    ("run", "--watchdog", "inf"), ("run", "--budget", "nan"), ("run", "--budget", "-5"),
    ("run", "--seed", "x"), ("stress", "--duration", "inf"), ("fuzz", "--store", "json", "--hours", "nan"),
    ("check", "h.jsonl", "--budget", "1e999"), ("gallery", "--seeds", "0"),
])
def test_bad_numbers_are_usage_errors(tmp_path, args):
    one_line_usage_error(sc(*args, cwd=tmp_path))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A real report: none-skipped is caught within a few examples."""
    d = tmp_path_factory.mktemp("report")
    path = d / "r.json"
    p = sc("run", "--store", "mutant:none-skipped", "--seed", "1", "--budget", "60", "--report", str(path), cwd=d)
    assert p.returncode == 1, p.stderr
    return json.loads(path.read_text())


def write(tmp_path, name, data) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def verb_args(verb: str, path: str, tmp_path) -> tuple:
    return (verb, path, "--html", str(tmp_path / "out.html")) if verb == "report" else (verb, path)


@pytest.mark.parametrize("verb", ["replay", "explain", "report"])
def test_deeply_nested_report_is_refused(tmp_path, verb):
    deep = "[" * 100_000 + "]" * 100_000
    one_line_usage_error(sc(*verb_args(verb, write(tmp_path, "deep.json", deep), tmp_path), cwd=tmp_path))


def test_deeply_nested_history_is_refused(tmp_path):
    line = '{"process": "A", "type": "invoke", "f": "add", "session": "s0", "time": 1, "value": ' + \
           "[" * 50_000 + "]" * 50_000 + "}\n"
    one_line_usage_error(sc("check", write(tmp_path, "h.jsonl", line), cwd=tmp_path))


def test_a_time_beyond_float_is_refused(tmp_path):
    line = '{"process": "A", "type": "invoke", "f": "add", "session": "s0", "time": 1' + "0" * 400 + ', "value": "m1"}\n'
    p = sc("check", write(tmp_path, "h.jsonl", line), cwd=tmp_path)
    one_line_usage_error(p)
    assert "finite" in p.stderr


@pytest.mark.parametrize("verb", ["explain", "replay", "report"])
def test_a_device_is_not_read(tmp_path, verb):
    t0 = time.monotonic()
    p = sc(*verb_args(verb, "/dev/zero", tmp_path), cwd=tmp_path, timeout=30)
    one_line_usage_error(p)
    assert "not a regular file" in p.stderr
    assert time.monotonic() - t0 < 30


def test_a_program_longer_than_its_config_is_refused(tmp_path, report):
    long = dict(report, program=[["advance", 0, 1]] * 100_000)
    p = sc("replay", write(tmp_path, "long.json", long), "--store", "mutant:none-skipped", cwd=tmp_path)
    one_line_usage_error(p)
    assert "max_steps" in p.stderr


def test_explain_strips_terminal_controls(tmp_path, report):
    tampered = dict(report, story="HACKED\x1b[31m red\x9b2J\n")
    p = sc("explain", write(tmp_path, "t.json", tampered), cwd=tmp_path)
    assert p.returncode == 0
    assert "\x1b" not in p.stdout and "\x9b" not in p.stdout
    assert p.stdout == "HACKED[31m red2J\n"


def test_replay_against_another_store_says_so(tmp_path, report):
    p = sc("replay", write(tmp_path, "r.json", report), "--store", "json", cwd=tmp_path)
    assert p.returncode == 0
    # the warning on stderr, the verdict on stdout
    assert "saved for store 'mutant:none-skipped' against 'json'" in p.stderr
    assert p.stdout.startswith("the saved violation did not happen again: json (threads) passes")
    assert "the report was saved for 'mutant:none-skipped'" in p.stdout


def test_a_spec_resolves_from_the_current_directory(tmp_path):
    (tmp_path / "mystore_adapter.py").write_text(
        "from sessioncheck.stores.reference.json_store import JsonFileStore as Adapter\n")
    p = sc("run", "--store", "mystore_adapter:Adapter", "--examples", "20", "--seed", "1", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    p = sc("run", "--store", "nosuch_adapter:Adapter", cwd=tmp_path)
    one_line_usage_error(p)
    assert f"looked in the current directory {tmp_path}" in p.stderr


def test_bare_command_prints_a_short_usage_on_stderr(tmp_path):
    p = sc(cwd=tmp_path)
    assert p.returncode == 2
    assert p.stdout == ""
    assert p.stderr.startswith("usage: sessioncheck VERB") and "sessioncheck run --store json" in p.stderr
    assert len(p.stderr.splitlines()) <= 4


def test_a_report_to_dev_null_leaves_the_device_alone(tmp_path):
    import os
    import stat

    p = sc("run", "--store", "mutant:none-skipped", "--seed", "1", "--report", "/dev/null", cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode), "the report replaced /dev/null"


def test_a_run_without_a_seed_prints_the_one_it_drew(tmp_path):
    import re

    p = sc("run", "--store", "json", "--examples", "60", "--no-db", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    m = re.search(r"(\d+) distinct interleavings?.*; seed (\d+)$", p.stdout.splitlines()[0])
    assert m, p.stdout + p.stderr
    again = sc("run", "--store", "json", "--examples", "60", "--no-db", "--seed", m[2], cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"60 examples, {m[1]} distinct interleaving" in again.stdout
