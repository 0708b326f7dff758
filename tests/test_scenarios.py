"""Named scenarios: every store shows its expected outcome, and every
program produces exactly the interleaving its story tells.

The interleaving checks read the run's trace and operations, whose times
are story step numbers, so "B read the session before m2 was
acknowledged" is a comparison of two step numbers of the printed story.
"""
from __future__ import annotations

import pytest

from sessioncheck.cli.main import main as cli
from sessioncheck.errors import ConfigError
from sessioncheck.controlled.program import ModelConfig
from sessioncheck import scenarios
from sessioncheck.regression import Expect, Scenario, Until, crash, start, until
from sessioncheck.scenario import _points_to_mark, all_scenarios, check, get, run
from sessioncheck.specs import mutant_names
from sessioncheck.reporting.story import line_of, segments
from sessioncheck.stores.mutants import delete_unlocked as mutant_delete_unlocked

REQUIRED = ("pr1727-stale-write-back", "clear-compute-instance-then-resume", "delete-races-append",
            "killed-between-temp-and-rename", "retention-overflow")


class LockedDeleteStore(mutant_delete_unlocked.Store):
    """The delete-unlocked mutant with its own correct delete (under the
    session lock): the correct counterpart for delete-races-append, since
    the reference stores declare no delete."""

    def delete_session(self, session_id: str) -> None:
        self.delete_locked(session_id)


LOCKED_DELETE = "test_scenarios:LockedDeleteStore"


# -- reading a run ---------------------------------------------------------------


def op(r, f: str, value=None, process: str | None = None):
    """The operation ``f`` (with ``value``, by ``process``) of a run."""
    found = [o for o in r.outcome.ops if o.f == f and (value is None or o.value == value)
             and (process is None or o.process == process)]
    assert found, f"no {f} {value} by {process} in:\n{r.story}"
    return found[0]


def step(r, actor: str, pred, after: int = 0) -> int:
    """The story step of the first trace entry of ``actor`` matching ``pred``
    from step ``after`` on (0 if none); housekeeping (opening the store) is
    not in the story."""
    where = line_of(segments(r.outcome.trace))
    for e in r.outcome.trace:
        if e["actor"] == actor and where.get(e["t"], -1) >= after and pred(e):
            return where[e["t"]]
    return 0


def point(kind: str, path: str | None = None, detail: str | None = None):
    return lambda e: (e["ev"] == "point" and e["kind"] == kind and (path is None or e.get("path") == path)
                      and (detail is None or detail in (e.get("detail") or "")))


def killed(e: dict) -> bool:
    return e["ev"] == "crash"


def points_before_crash(r, actor: str) -> list[dict]:
    """``actor``'s points of the operation it was killed in."""
    out: list[dict] = []
    for e in r.outcome.trace:
        if e["actor"] != actor:
            continue
        if e["ev"] == "start":
            out = []
        elif e["ev"] == "point":
            out.append(e)
        elif e["ev"] == "crash":
            return out
    raise AssertionError(f"{actor} was never killed:\n{r.story}")


# -- the registry ----------------------------------------------------------------


def test_registry_has_the_required_scenarios_in_their_own_modules():
    import sessioncheck.scenarios

    names = [s.name for s in all_scenarios()]
    assert len(names) == len(set(names))
    assert set(REQUIRED) <= set(names)
    for s in all_scenarios():
        module = s.name.replace("-", "_")
        assert getattr(scenarios, module).SCENARIO is s, f"{s.name} must live in scenarios/{module}.py"
        assert s.doc and "Seen in" in s.doc, f"{s.name}: the docstring must say where the bug was seen"


def test_unknown_scenario_is_a_config_error_naming_the_known_ones():
    with pytest.raises(ConfigError, match="known scenarios: pr1727-stale-write-back"):
        get("no-such-scenario")


def test_definition_errors_are_raised_eagerly():
    with pytest.raises(ValueError, match="crash step needs mode='processes'"):
        Scenario("x", "x", "threads", ModelConfig(actors=1), (start("A", "add"), crash("A")), {})
    with pytest.raises(ValueError, match="must follow the start"):
        Scenario("x", "x", "threads", ModelConfig(actors=2), (start("A", "add"), until("B", "read")), {})
    with pytest.raises(ValueError, match="names actor C"):
        Scenario("x", "x", "threads", ModelConfig(actors=2), (start("C", "add"),), {})
    with pytest.raises(ValueError, match="unknown mark"):
        Until(0, "written")
    with pytest.raises(ValueError, match="unknown invariant"):
        Expect("I9")


# -- marks -------------------------------------------------------------------------


def _points(*specs):
    return [{"actor": "B", "ev": "point", "kind": k, "path": p, "detail": d, "t": i}
            for i, (k, p, d) in enumerate(specs)]


def test_read_mark_stops_before_the_next_lock_or_write():
    start_entry = [{"actor": "B", "ev": "start", "call": "persist", "t": -1}]
    unlocked = _points(("open", "s0.json", "r"), ("read", "s0.json", ""), ("open", "s0.json.lock", "rw+create"),
                       ("flock", "s0.json.lock", ""))
    assert _points_to_mark(start_entry + unlocked, "B", "read") == 2
    assert _points_to_mark(start_entry + unlocked, "B", "reading") == 1  # parked at the read itself
    # praisonai's pre-fix persist: locked read, unlock, then a new lock to write
    relocked = _points(("open", "s0.json.lock", "w"), ("flock", "s0.json.lock", ""), ("open", "s0.json", "r"),
                       ("read", "s0.json", ""), ("unlock", "s0.json.lock", ""), ("close", "s0.json.lock", ""),
                       ("lock", "", ""), ("open", "s0.json.lock", "w"))
    assert _points_to_mark(start_entry + relocked, "B", "read") == 6
    # an SQL write that reads nothing: no mark, count 0
    sql = _points(("sql", "sessions.db", "BEGIN"), ("sql", "sessions.db", "INSERT"))
    assert _points_to_mark(start_entry + sql, "B", "read") == 0
    assert _points_to_mark(start_entry + sql, "B", "created") == 2


def test_created_mark_skips_lock_files_and_directories():
    start_entry = [{"actor": "B", "ev": "start", "call": "add", "t": -1}]
    pts = _points(("open", "s0.json.lock", "rw+create+excl"), ("flock", "s0.json.lock", ""),
                  ("open", "s0.json", "r"), ("read", "s0.json", ""), ("open", ".", "w"),
                  ("open", "tmpab.tmp", "rw+create+excl"), ("replace", "s0.json", "tmpab.tmp"))
    assert _points_to_mark(start_entry + pts, "B", "created") == 6


# -- every store shows its expected outcome -------------------------------------------


def _local_cases() -> list[tuple[str, str]]:
    stores = ["json", "sqlite", *(f"mutant:{m}" for m in mutant_names())]
    return [(s.name, store) for s in all_scenarios() for store in stores]


@pytest.mark.parametrize("name,store", _local_cases())
def test_expected_outcome(name, store):
    r = run(get(name), store)
    assert r.ok, r.story
    if store in ("json", "sqlite"):
        assert r.observed in ("pass", "n/a"), r.story  # the reference stores pass every scenario


ADAPTER_CASES = [
    ("praisonaiagents", "praisonai"),
    ("praisonaiagents", "praisonai-prefix"),
    ("praisonaiagents", "sessioncheck.stores.adapters.praisonai:small_window"),
    ("praisonai.integrations.managed_local", "praisonai-agent"),
    ("agents", "openai-agents"),
    ("langgraph.checkpoint.sqlite", "langgraph"),
    ("langgraph.checkpoint.sqlite", "langgraph-read-put"),
]


@pytest.mark.parametrize("name", [s.name for s in all_scenarios()])
@pytest.mark.parametrize("package,store", ADAPTER_CASES, ids=[s for _, s in ADAPTER_CASES])
def test_expected_outcome_on_real_stores(package, store, name):
    pytest.importorskip(package)
    r = run(get(name), store)
    assert r.ok, r.story


def test_a_correct_delete_passes_delete_races_append():
    r = run(get("delete-races-append"), LOCKED_DELETE)
    assert r.ok and r.observed == "pass", r.story
    # the interleaving: A held the lock and had read the file when B's
    # delete began; the delete waited for m2 and removed it with the rest
    delete, m2 = op(r, "delete"), op(r, "add", "m2")
    assert 0 < step(r, "A", point("read", "s0.json"), after=m2.start) < delete.start
    assert m2.end < delete.end
    assert r.outcome.ops[-1].output["messages"] == []


def test_reference_stores_declare_no_delete_so_delete_races_append_does_not_apply():
    for store in ("json", "sqlite"):
        r = run(get("delete-races-append"), store)
        assert r.skipped and r.ok and "does not declare delete" in r.story


# -- the interleaving is the intended one --------------------------------------------


@pytest.mark.parametrize("store", ["mutant:stale-overwrite", "mutant:sqlite-rmw", "praisonai-prefix"])
def test_pr1727_stale_read_then_foreign_ack_then_write_back(store):
    if store.startswith("praisonai"):
        pytest.importorskip("praisonaiagents")
    r = run(get("pr1727-stale-write-back"), store)
    m2 = op(r, "add", "m2")
    persist = op(r, "persist")
    stale_read = step(r, "B", lambda e: point("read", "s0.json")(e) or point("sql", detail="SELECT")(e))
    write_back = step(r, "B", lambda e: point("replace", "s0.json")(e) or point("sql", detail="INSERT")(e)
                      or point("sql", detail="UPDATE")(e))
    assert persist.start < m2.start, r.story
    assert 0 < stale_read < m2.end < write_back, r.story  # read, foreign ack, write back
    assert "m2" in op(r, "read", process="A").output["messages"]  # A saw m2 acknowledged
    assert any(v.invariant == "I1" and v.subject == "m2" for v in r.outcome.violations), r.story
    assert "wrote its stale copy back" in r.story or store == "mutant:sqlite-rmw"


def test_pr1727_on_json_the_lock_holds_the_foreign_append_back():
    r = run(get("pr1727-stale-write-back"), "json")
    m2, persist = op(r, "add", "m2"), op(r, "persist")
    assert persist.start < m2.start
    assert step(r, "B", point("read", "s0.json")) < m2.end  # B read before m2 was acknowledged...
    assert persist.end < m2.end  # ...under the lock, so m2 waited for B's write
    assert step(r, "A", lambda e: e.get("busy")), "A never found the lock held"
    assert r.outcome.ops[-1].output["messages"] == ["m1", "m2"]


def test_pr1727_on_sqlite_the_append_commits_while_the_persist_is_pending():
    r = run(get("pr1727-stale-write-back"), "sqlite")
    m2, persist = op(r, "add", "m2"), op(r, "persist")
    assert persist.start < m2.start and m2.end < persist.end
    assert step(r, "B", point("sql")) > m2.end  # B's transaction ran after m2 committed
    assert "Note:" in r.story  # the story says what the scenario means on this store


@pytest.mark.parametrize("store,shown", [("json", {}), ("sqlite", {}),
                                         ("mutant:none-skipped", {"compute_instance_id": "v1"})])
def test_clear_then_resume_reads_after_the_clear_is_acknowledged(store, shown):
    r = run(get("clear-compute-instance-then-resume"), store)
    assert r.scenario.mode == "processes"
    clear = [o for o in r.outcome.ops if o.f == "persist"][1]
    assert clear.value == {"compute_instance_id": None}
    resume = op(r, "read", process="B")
    assert clear.end < resume.start, r.story
    assert resume.output["metadata"] == shown, r.story


def test_clear_then_resume_on_the_real_agent():
    pytest.importorskip("praisonai.integrations.managed_local")
    r = run(get("clear-compute-instance-then-resume"), "praisonai-agent")
    assert op(r, "read", process="B").output["metadata"] == {"compute_instance_id": "v1"}, r.story
    assert any(v.invariant == "I3" and v.subject == "compute_instance_id" for v in r.outcome.violations)


def test_delete_unlocked_deletes_while_the_append_holds_its_stale_copy():
    r = run(get("delete-races-append"), "mutant:delete-unlocked")
    delete, m2 = op(r, "delete"), op(r, "add", "m2")
    assert 0 < step(r, "A", point("read", "s0.json"), after=m2.start) < delete.start
    assert delete.end < m2.end  # acknowledged while A still held the lock
    unlink = step(r, "B", point("unlink", "s0.json"))
    assert 0 < unlink < step(r, "A", point("replace", "s0.json"), after=m2.start)
    assert r.outcome.ops[-1].output["messages"] == ["m1", "m2"]  # the deleted m1 is back
    assert any(v.invariant == "I1" and v.subject == "m1" and "reappears" in v.summary for v in r.outcome.violations)


@pytest.mark.parametrize("store", ["json", "praisonai"])
def test_killed_after_creating_the_temp_file_and_before_the_rename(store):
    if store == "praisonai":
        pytest.importorskip("praisonaiagents")
    r = run(get("killed-between-temp-and-rename"), store)
    pts = points_before_crash(r, "A")
    # killed at the first point after creating its temp file (a temp file
    # made by tempfile is recorded, its accesses too: that is the replace)
    made = [i for i, p in enumerate(pts) if p["kind"] == "open" and "create" in p["detail"]
            and not p["path"].endswith(".lock")]
    assert made and all(p.get("recorded") for p in pts[made[-1] + 1:]), pts
    assert not any(p["kind"] == "replace" for p in pts)
    assert "KILLED" in r.story and r.observed == "pass"
    assert any("left behind" in w for w in r.outcome.warnings)
    assert op(r, "read", process="B").output["messages"] == ["m1"]


def test_non_atomic_write_killed_after_truncating_the_session_file():
    r = run(get("killed-between-temp-and-rename"), "mutant:non-atomic-write")
    pts = points_before_crash(r, "A")
    assert (pts[-1]["kind"], pts[-1]["path"], pts[-1]["detail"]) == ("open", "s0.json", "w")
    assert "I4" in r.observed and r.ok, r.story


def test_sqlite_killed_between_insert_and_commit():
    r = run(get("killed-between-temp-and-rename"), "sqlite")
    pts = points_before_crash(r, "A")
    assert pts[-1]["detail"].startswith("INSERT") and r.observed == "pass", r.story
    assert op(r, "read", process="B").output["messages"] == ["m1"]


def test_retention_overflow_drops_old_messages_in_the_truncating_mutant():
    r = run(get("retention-overflow"), "mutant:silent-truncate")
    adds = [o for o in r.outcome.ops if o.f == "add"]
    assert [o.value for o in adds] == [f"m{i}" for i in range(1, 7)]
    assert all(a.end < b.start for a, b in zip(adds, adds[1:]))  # one after another, all acknowledged
    assert op(r, "read", process="B").output["messages"] == ["m4", "m5", "m6"]
    assert {v.subject for v in r.outcome.violations if v.invariant == "I1"} >= {"m1", "m2", "m3"}


def test_retention_overflow_overflows_praisonai_small_window_and_keeps_all(tmp_path):
    pytest.importorskip("praisonaiagents")
    from sessioncheck.stores.adapters.praisonai import small_window

    # the scenario's appends really overflow the window: some move to the archive
    store = small_window(tmp_path)
    for i in range(1, 7):
        store.add_message("s0", {"role": "user", "content": f"m{i}"})
    state = store.read("s0")
    assert state.archived and len(state.messages) <= 4
    r = run(get("retention-overflow"), "sessioncheck.stores.adapters.praisonai:small_window")
    assert r.observed == "pass", r.story
    assert op(r, "read", process="B").output["messages"] == [f"m{i}" for i in range(1, 7)]


def fault_entry(r, actor: str) -> dict:
    found = [e for e in r.outcome.trace if e["actor"] == actor and e["ev"] == "fault"]
    assert len(found) == 1, r.story
    return found[0]


def test_eio_on_read_reaches_the_caller_in_the_reference_store():
    r = run(get("eio-on-read-then-append"), "json")
    e = fault_entry(r, "A")
    assert (e["kind"], e["path"], e["errno"]) == ("read", "s0.json", "EIO")
    m2 = op(r, "add", "m2")
    assert m2.start <= step(r, "A", lambda x: x["ev"] == "fault") and m2.status == "info"  # not acknowledged
    assert "Input/output error" in m2.error and r.observed == "pass"
    assert r.outcome.ops[-1].output["messages"] == ["m1"]


def test_eio_on_read_becomes_an_empty_session_in_the_mutant():
    r = run(get("eio-on-read-then-append"), "mutant:eio-empty")
    assert fault_entry(r, "A")["kind"] == "read"
    assert op(r, "add", "m2").status == "ok"  # acknowledged after the error was swallowed
    assert r.outcome.ops[-1].output["messages"] == ["m2"]
    assert any(v.invariant == "I1" and v.subject == "m1" for v in r.outcome.violations), r.story


def test_eio_on_read_praisonai_refuses_and_keeps_the_message_aside():
    pytest.importorskip("praisonaiagents")
    r = run(get("eio-on-read-then-append"), "praisonai")
    assert fault_entry(r, "A")["kind"] == "read"
    assert op(r, "add", "m2").status == "info"  # refused: add_message returned False
    assert "spill" in r.story and r.observed == "pass"


# -- replay, API, command line ---------------------------------------------------------


def test_same_scenario_same_story():
    a = run(get("pr1727-stale-write-back"), "mutant:stale-overwrite")
    b = run(get("pr1727-stale-write-back"), "mutant:stale-overwrite")
    assert a.story == b.story and a.program == b.program


def test_check_api_for_the_pytest_plugin():
    ok, story = check("retention-overflow", "mutant:silent-truncate")
    assert ok and "I1" in story and "as expected" in story
    ok, story = check("pr1727-stale-write-back", "sessioncheck.stores.mutants.stale_overwrite:Store")
    assert not ok and "UNEXPECTED" in story  # not listed under this spec: it must pass, and it does not


def test_cli_scenario_exit_codes(capsys):
    assert cli(["scenario", "pr1727-stale-write-back", "--store", "json"]) == 0
    assert "passes; expected pass: as expected" in capsys.readouterr().out
    assert cli(["scenario", "pr1727-stale-write-back", "--store", "mutant:stale-overwrite"]) == 0
    out = capsys.readouterr().out
    assert "I1 violated; expected I1: as expected" in out and "Replay: sessioncheck scenario" in out
    assert cli(["scenario", "pr1727-stale-write-back", "--store", "sessioncheck.stores.mutants.stale_overwrite:Store"]) == 1
    captured = capsys.readouterr()
    assert "UNEXPECTED: sessioncheck.stores.mutants.stale_overwrite:Store must show pass" in captured.out
    assert captured.err == ""  # the verdict is a result: stdout
    assert cli(["scenario", "no-such-scenario"]) == 2
    assert "unknown scenario" in capsys.readouterr().err
    assert cli(["scenario", "retention-overflow", "--store", "no-such-store"]) == 2


def test_cli_scenarios_table(capsys):
    assert cli(["scenarios", "--store", "json"]) == 0
    out = capsys.readouterr().out
    for name in REQUIRED:
        assert name in out
    n = len(all_scenarios())
    assert f"{n} of {n} scenarios as expected" in out and "UNEXPECTED" not in out
    assert cli(["scenarios", "--store", "sessioncheck.stores.mutants.stale_overwrite:Store"]) == 1
    out = capsys.readouterr().out
    assert "UNEXPECTED: pr1727-stale-write-back" in out and "wrote its stale copy back" in out


def test_pytest_runs_every_scenario_as_one_test(tmp_path):
    import subprocess
    import sys

    from sessioncheck.scenario import all_scenarios

    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--sessioncheck-store",
                        "json", "--sessioncheck-scenarios", "-k", "scenario"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"{len(all_scenarios())} passed" in p.stdout
