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
from sessioncheck.campaigns.fuzz import Failure, failure_key, reduce_program
from sessioncheck.controlled.program import program_from_json
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


def run_seconds(stdout: str) -> float:
    """The campaign's own wall time, from its summary line."""
    return float(re.search(r"workers?, ([\d.]+) s, \d+ rounds?", stdout).group(1))


def test_fuzz_finds_the_none_skipped_bug_once_and_resumes(tmp_path):
    p = sc("fuzz", "--store", "mutant:none-skipped", "--hours", "0.004", "--workers", "2", cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    assert "sessioncheck fuzz: time is up" in p.stdout
    # the hours are a promise: 14.4 s, the grace (2 s) and a margin for a
    # loaded machine; closing the cluster used to wait 10 s on the scratch
    # folder's reaper, which lives as long as this process
    assert run_seconds(p.stdout) <= 14.4 + 2 + 5, p.stdout
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
    assert r.returncode == 1 and r.stdout == "replayed: the same story, byte for byte\n\n" + report["story"]
    # a second run resumes: the example database replays the failure first,
    # and it is counted against the saved report, not saved again
    again = sc("fuzz", "--store", "mutant:none-skipped", "--hours", "0.0015", "--workers", "1", cwd=tmp_path)
    assert again.returncode == 1, again.stderr
    rows = table_rows(again.stdout)
    assert len(rows) == 1 and rows[0][2] == "earlier run" and int(rows[0][3]) >= 1
    assert "new failure" not in again.stderr
    assert len(list((tmp_path / ".sessioncheck" / "fuzz").rglob("*.json"))) == 1


def wait_for_line(stream, pattern: re.Pattern, timeout: float) -> str:
    """Read ``stream`` until a line matching ``pattern``; return what was read."""
    import threading

    seen: list[str] = []
    found = threading.Event()

    def reader():
        for line in iter(stream.readline, ""):
            seen.append(line)
            if pattern.search(line):
                found.set()
                return
        found.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    assert found.wait(timeout), "".join(seen)
    t.join(5)
    assert any(pattern.search(line) for line in seen), "".join(seen)
    return "".join(seen)


def test_a_fixed_bug_is_marked_fixed_not_current(tmp_path):
    """After the fix (the findings' store replaced by a correct one), a
    rerun replays the old finding, sees it pass, and marks it fixed: not
    met, not listed as current, exit 0."""
    p = sc("fuzz", "--store", "mutant:none-skipped", "--hours", "0.003", "--workers", "1", cwd=tmp_path)
    assert p.returncode == 1, p.stdout + p.stderr
    saved = list((tmp_path / ".sessioncheck" / "fuzz").rglob("*.json"))
    assert len(saved) == 1
    # the fix: the same findings directory now holds the correct store's findings
    (tmp_path / "fixed").mkdir()
    target = tmp_path / "fixed" / "json-threads"
    saved[0].parent.rename(target)
    again = sc("fuzz", "--store", "json", "--hours", "0.0015", "--workers", "1", "--out", "fixed",
               "--no-db", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    rows = table_rows(again.stdout)
    assert len(rows) == 1, again.stdout
    assert rows[0][1] == "I3" and rows[0][2] == "earlier run" and rows[0][3] == "0"
    assert rows[0][4] == "fixed (passes now)"
    assert "0 distinct failures met" in again.stdout and "1 fixed (passes now)" in again.stdout
    # the report path is on a line of its own, whole
    assert str(target.relative_to(tmp_path) / saved[0].name) in again.stdout.splitlines(), again.stdout


def test_a_failure_whose_reduction_was_cut_short_is_not_a_new_finding():
    """At the deadline a reduction may stop with a fault step its bug does
    not need still in the program, and the key names that fault: a hit of
    the finding it covers, not a second finding of one bug."""
    from sessioncheck.campaigns.fuzz import FuzzResult, absorb, covers

    assert covers("I6 - faults:crash", "I6 -") and covers("I6 - faults:crash+io-EIO", "I6 - faults:crash")
    assert not covers("I6 -", "I6 - faults:crash")  # this one needs no crash: a bug of its own
    assert not covers("I1 add faults:crash", "I6 -") and not covers("I6 add", "I6 -")
    result = FuzzResult()
    result.failures["I6 -"] = Failure("I6 -", "I6", "lost", Path("r.json"), "w0", 1.0, 1)
    done = {"id": 1, "worker": "w0", "examples": 3, "interleavings": [], "coverage": {}, "error": "",
            "findings": [{"key": "I6 - faults:crash", "reduced": False}]}
    assert absorb(result, done, time.monotonic()) == [] and result.failures["I6 -"].hits == 2
    assert set(result.failures) == {"I6 -"}


def test_a_round_counts_a_known_bug_and_searches_on(tmp_path):
    """A round handed a known finding replays it, then counts each time its
    search meets that bug again and goes on searching: no shrink, no
    second report, the round's whole time spent on the search."""
    from sessioncheck.campaigns.fuzz import FuzzConfig, Round, fuzz_round

    config = FuzzConfig(store="mutant:none-skipped", hours=1, workers=1, out_dir=tmp_path, database=None,
                        round_seconds=3)
    first = fuzz_round(Round(0, config, 1, time.time() + 3600, known=[]))
    new = [f for f in first["findings"] if "report" in f]
    assert len(new) == 1 and not first["error"], first["findings"]
    key = new[0]["key"]
    again = fuzz_round(Round(1, config, 2, time.time() + 3600, known=[(key, new[0]["program"])]))
    assert not again["error"] and all("report" not in f for f in again["findings"]), again["findings"]
    assert {f["key"] for f in again["findings"]} == {key}
    # the replay is one hit; a search that stopped at the bug would add one more
    assert sum(f.get("hits", 1) for f in again["findings"]) >= 3, again["findings"]
    assert again["examples"] > first["examples"], (again["examples"], first["examples"])


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
        # until a progress line shows examples explored (a loaded machine is slow to start a cluster)
        first = wait_for_line(proc.stderr, re.compile(r"progress: .* [1-9]\d* examples?"), 180)
        assert proc.poll() is None
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
        out, err = proc.communicate(timeout=60)
        err = first + err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "sessioncheck fuzz: interrupted (Ctrl-C)" in out
    assert "no violation found" in out
    m = re.search(r"(\d+) examples?, (\d+) distinct interleavings?; .*; seed (\d+)$", out, re.M)
    assert m and int(m[1]) > 0 and int(m[2]) > 0, out
    assert "sessioncheck: interrupted by SIGINT" in err
    # stderr closes as each process exits; give the last ones a moment to be gone
    for _ in range(50):
        if not _group_alive(proc.pid):
            break
        time.sleep(0.1)
    assert _group_alive(proc.pid) == []
    assert "Traceback" not in err


def test_bad_store_is_a_usage_error(tmp_path):
    p = sc("fuzz", "--store", "nosuch", "--hours", "0.004", "--workers", "2", cwd=tmp_path, timeout=60)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "unknown store" in p.stderr


def _outcome(store: str, program_json: list):
    spec = resolve(store)
    with Executor(spec, "threads", model_config(spec, "threads", ())) as ex:
        return ex.run(program_from_json(program_json))


def test_one_bug_is_one_key_whatever_actors_sessions_values_and_schedule():
    """The key is the invariant, the operations involved by function and
    the cause's shape: the None-skipped bug shown sequentially by one actor
    and concurrently by two, on other sessions and fields, is one bug."""
    one = _outcome("mutant:none-skipped", [["start", 0, ["persist", 0, [["model", "fresh"]]]],
                                           ["start", 0, ["persist", 0, [["model", "none"]]]]])
    two = _outcome("mutant:none-skipped", [["start", 2, ["persist", 1, [["compute_instance_id", "empty"]]]],
                                           ["advance", 2, 16],
                                           ["start", 1, ["add", 0]],
                                           ["start", 0, ["persist", 1, [["compute_instance_id", "none"]]]]])
    assert one.failed and two.failed
    assert failure_key(one) == failure_key(two) == "I3 persist"
    lost = _outcome("mutant:stale-overwrite", [["start", 0, ["add", 0]], ["advance", 0, 5],
                                               ["start", 1, ["persist", 0, [["compute_instance_id", "fresh"]]]]])
    assert lost.violations[0].invariant == "I1"
    # the culprit's persist joins the lost add; the story's stale copy gives the shape
    assert failure_key(lost) == "I1 add+persist stale:read>replace"


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


def test_simpler_follows_the_model_value_and_message_kinds():
    """Every value kind but a clear simplifies to a fresh value (rich kinds
    and drawn values too; a drawn None to the none kind), a message shape
    to the model's first kind."""
    from dataclasses import replace as dc_replace

    from sessioncheck.campaigns.fuzz import simpler
    from sessioncheck.controlled.program import ModelConfig, OpSpec, Step
    from sessioncheck.controlled.values import RICH, drawn

    step = Step("start", 0, OpSpec("persist", 0, (("model", "unicode"), ("compute_instance_id", "none"))))
    assert [o.op.fields for o in simpler(step, ModelConfig(values=RICH))] == [
        (("model", "fresh"), ("compute_instance_id", "none"))]
    step = Step("start", 0, OpSpec("persist", 0, (("model", drawn([1, 2])), ("compute_instance_id", drawn(None)))))
    assert [o.op.fields for o in simpler(step)] == [(("model", "fresh"), ("compute_instance_id", "none"))]
    add = Step("start", 0, OpSpec("add", 0, (), "tool"))
    assert [o.op.message for o in simpler(add)] == [""]
    assert [o.op.message for o in simpler(add, ModelConfig(messages=("assistant", "tool")))] == ["assistant"]
    assert simpler(dc_replace(add, op=OpSpec("add", 0))) == []


def test_reduction_keeps_the_message_shape_the_bug_needs():
    """A tool message lost to a merge, found with rich values: the values
    reduce to fresh ones, the tool message stays (a user message is not lost)."""
    program = program_from_json([["start", 0, ["add", 0, "tool"]],
                                 ["start", 0, ["persist", 0, [["model", "large"], ["compute_instance_id", "nested"]]]],
                                 ["start", 1, ["add", 0, "user"]]])
    spec = resolve("mutant:merge-drops-tool-messages")
    from dataclasses import replace as dc_replace

    from sessioncheck.controlled.values import RICH

    cfg = dc_replace(model_config(spec, "threads", ()), values=RICH)
    with Executor(spec, "threads", cfg) as ex:
        assert ex.run(program).violations[0].invariant == "I1"
        reduced = reduce_program(ex.run, program, "I1", cfg=cfg)
    from sessioncheck.controlled.program import program_to_json

    assert program_to_json(reduced) == [["start", 0, ["add", 0, "tool"]],
                                        ["start", 0, ["persist", 0, [["model", "fresh"],
                                                                     ["compute_instance_id", "fresh"]]]]]


def test_workers_can_run_process_actors(tmp_path):
    """A worker with process actors has children of its own."""
    p = sc("fuzz", "--store", "mutant:no-fsync", "--actors", "processes", "--faults", "crash,power-loss",
           "--hours", "0.002", "--workers", "1", cwd=tmp_path, timeout=120)
    assert p.returncode == 1, p.stdout + p.stderr
    rows = table_rows(p.stdout)
    assert len(rows) == 1 and rows[0][1] == "I6", p.stdout
    assert "worker error" not in p.stdout + p.stderr
