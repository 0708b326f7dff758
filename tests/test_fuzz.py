"""``sessioncheck fuzz``: long runs across worker processes, each distinct
failure saved once, resumable, Ctrl-C safe.  Real workers, real stores."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from sessioncheck.controlled.engine import Executor
from signals import sigint_as_in_a_terminal
from sessioncheck.campaigns.fuzz import failure_key, normalise, reduce_program
from sessioncheck.controlled.program import OpSpec, Step, program_from_json
from sessioncheck.specs import resolve
from sessioncheck.verify import model_config


def sc(*args, cwd, timeout=240):
    return subprocess.run([sys.executable, "-m", "sessioncheck", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def table_rows(stdout: str) -> list[list[str]]:
    """The first cells of the summary table's rows that start a failure."""
    rows = []
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0].isdigit():
            rows.append(cells)
    return rows


def test_fuzz_finds_the_none_skipped_bug_once_and_resumes(tmp_path):
    p = sc("fuzz", "--store", "mutant:none-skipped", "--hours", "0.01", "--workers", "2", cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    assert "sessioncheck fuzz: time is up" in p.stdout
    rows = table_rows(p.stdout)
    assert len(rows) == 1, p.stdout  # one distinct failure, reported once
    assert rows[0][1] == "I3" and int(rows[0][3]) >= 1
    assert "1 distinct failure met" in p.stdout and "2 workers" in p.stdout
    saved = list((tmp_path / ".sessioncheck" / "fuzz").rglob("*.json"))
    assert len(saved) == 1
    report = json.loads(saved[0].read_text())
    assert report["violations"][0]["invariant"] == "I3" and "cleared to None" in report["violations"][0]["summary"]
    assert p.stderr.count("new failure") == 1
    # the saved failure replays to its own story, byte for byte
    rel = saved[0].relative_to(tmp_path)
    r = sc("replay", str(rel), "--store", "mutant:none-skipped", cwd=tmp_path, timeout=120)
    assert r.returncode == 1 and r.stdout == report["story"]
    # a second run resumes: the example database replays the failure first,
    # and it is counted against the saved report, not saved again
    again = sc("fuzz", "--store", "mutant:none-skipped", "--hours", "0.002", "--workers", "1", cwd=tmp_path)
    assert again.returncode == 1, again.stderr
    rows = table_rows(again.stdout)
    assert len(rows) == 1 and rows[0][2] == "earlier run" and int(rows[0][3]) >= 1
    assert "new failure" not in again.stderr
    assert len(list((tmp_path / ".sessioncheck" / "fuzz").rglob("*.json"))) == 1


def _group_alive(pgid: int) -> list[int]:
    alive = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(d))
    return alive


def test_ctrl_c_prints_the_summary_and_reaps_every_worker(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "sessioncheck", "fuzz", "--store", "json", "--hours", "1",
                             "--workers", "2", "--round", "5"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=sigint_as_in_a_terminal)
    try:
        time.sleep(8)
        assert proc.poll() is None
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, err
    assert "sessioncheck fuzz: interrupted (Ctrl-C)" in out
    assert "no violation found" in out
    m = re.search(r"(\d+) examples", out)
    assert m and int(m[1]) > 0
    assert _group_alive(proc.pid) == []
    assert "Traceback" not in err


def test_bad_store_is_a_usage_error(tmp_path):
    p = sc("fuzz", "--store", "nosuch", "--hours", "0.01", "--workers", "2", cwd=tmp_path, timeout=60)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "unknown store" in p.stderr


def test_key_ignores_names_of_actors_sessions_fields_and_values():
    a = [Step("start", 0, OpSpec("persist", 1, (("model", "fresh"),))),
         Step("start", 0, OpSpec("persist", 1, (("model", "none"),)))]
    b = [Step("start", 2, OpSpec("persist", 0, (("compute_instance_id", "empty"),))),
         Step("start", 2, OpSpec("persist", 0, (("compute_instance_id", "none"),)))]
    c = [Step("start", 2, OpSpec("persist", 0, (("compute_instance_id", "fresh"),))),
         Step("start", 1, OpSpec("persist", 0, (("compute_instance_id", "none"),)))]
    assert normalise(a) == normalise(b)
    assert failure_key("I3", a) == failure_key("I3", b)
    assert failure_key("I3", a) != failure_key("I3", c)  # a second writer is a different schedule
    assert failure_key("I3", a) != failure_key("I1", a)


def test_reduction_removes_leftovers_of_a_bounded_shrink():
    """A shrink cut short by its time bound left twenty unrelated appends
    in front of the three steps that lose a message; the greedy pass, on
    the real store, removes them."""
    core = [["start", 0, ["persist", 1, [["compute_instance_id", "fresh"]]]], ["start", 1, ["add", 1]],
            ["advance", 0, 1]]
    program = program_from_json([["start", 0, ["add", 0]]] * 20 + core)
    spec = resolve("mutant:stale-overwrite")
    cfg = model_config(spec, "threads", ())
    with Executor(spec, "threads", cfg) as ex:
        assert ex.run(program).violations[0].invariant == "I1"
        reduced = reduce_program(ex.run, program, "I1")
        out = ex.run(reduced)
    assert out.failed and out.violations[0].invariant == "I1"
    assert len(reduced) <= 3


def test_reduction_moves_steps_toward_the_first_actor_and_session():
    """The same None-skipped failure shrunk only part of the way (second
    actor, second session, an empty value) reduces to the canonical one."""
    partial = program_from_json([["start", 2, ["persist", 1, [["model", "empty"]]]],
                                 ["start", 2, ["read", 0]],
                                 ["start", 1, ["persist", 1, [["model", "none"]]]]])
    canonical = program_from_json([["start", 0, ["persist", 0, [["model", "fresh"]]]],
                                   ["start", 0, ["persist", 0, [["model", "none"]]]]])
    spec = resolve("mutant:none-skipped")
    cfg = model_config(spec, "threads", ())
    with Executor(spec, "threads", cfg) as ex:
        assert ex.run(partial).violations[0].invariant == "I3"
        reduced = reduce_program(ex.run, partial, "I3")
    assert reduced == canonical


def test_workers_can_run_process_actors(tmp_path):
    """A worker with process actors has children of its own."""
    p = sc("fuzz", "--store", "mutant:no-fsync", "--actors", "processes", "--faults", "crash,power-loss",
           "--hours", "0.002", "--workers", "1", cwd=tmp_path, timeout=120)
    assert p.returncode == 1, p.stdout + p.stderr
    rows = table_rows(p.stdout)
    assert len(rows) == 1 and rows[0][1] == "I6", p.stdout
    assert "worker error" not in p.stdout
