"""A failure a SessionMachine finds is saved as the report ``sessioncheck
run`` saves: ``sessioncheck replay`` replays it to the same story, also
when the program starts an operation of the user's own (the story's
``Report:`` line names the module that registers it)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from sessioncheck import MachineViolation, SessionMachine

FAST = settings(max_examples=100, stateful_step_count=10, derandomize=True, database=None, deadline=None,
                phases=[Phase.generate, Phase.shrink])


def sc(*args, cwd):
    return subprocess.run([sys.executable, "-m", "sessioncheck", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def _caught(report_dir):
    """The violation a two-writer machine on ``mutant:unlocked-rmw`` raises."""
    class Lossy(SessionMachine):
        store = "mutant:unlocked-rmw"
        actors, sessions = 2, 1

    Lossy.report_dir = report_dir
    with pytest.raises(MachineViolation) as caught:
        run_state_machine_as_test(Lossy, settings=FAST)
    return caught


def test_the_shrunk_failure_is_saved_and_replays_to_the_same_story(tmp_path):
    caught = _caught(tmp_path)
    path = caught.value.report_path
    assert path is not None and path.parent == tmp_path and path.name.endswith("-threads.json")
    # the file holds the program Hypothesis reported (its last run), not an earlier failure
    report = json.loads(path.read_text())
    assert report["program"] == caught.value.program and report["store"] == "mutant:unlocked-rmw"
    line = caught.value.story.rstrip().splitlines()[-1]
    assert line == f"Report: sessioncheck replay {path} --store mutant:unlocked-rmw"
    r = sc("replay", str(path), cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.startswith("replayed: the same story"), r.stdout


def test_no_report_when_report_dir_is_none():
    caught = _caught(None)
    assert caught.value.report_path is None and "\nReport: " not in caught.value.story


MACHINE = '''
from hypothesis import Phase, settings
from hypothesis.stateful import rule

from sessioncheck import SessionMachine
from sessioncheck.operations import OperationDef, find, register
from sessioncheck.operations.pop import message_id

find("pop_item") or register(OperationDef(
    name="pop_item", effect="remove_last", method="pop_message", output=message_id,
    call=lambda store, session, _: store.pop_message(session)))


class PopItem(SessionMachine):
    store = "mutant:pop-races-append"
    actors, sessions, builtins = 2, 1, ("add", "read")

    @rule(actor=SessionMachine.actor_ids)
    def pop_item(self, actor):
        self.start("pop_item", actor=actor)


TestPopItem = PopItem.TestCase
TestPopItem.settings = settings(max_examples=400, stateful_step_count=12, deadline=None, derandomize=True,
                                database=None, phases=[Phase.generate, Phase.shrink])
'''


def test_a_report_naming_the_users_operation_replays_with_its_module(tmp_path):
    (tmp_path / "test_popitem.py").write_text(textwrap.dedent(MACHINE))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_popitem.py"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    found = [ln.strip() for ln in r.stdout.splitlines() if ln.strip().startswith("E") and "Report: " in ln]
    assert found, r.stdout
    command = found[-1].split("Report: ", 1)[1]
    assert command.endswith("--store mutant:pop-races-append --operations test_popitem"), command
    args = command.split()[1:]  # after "sessioncheck"
    replayed = sc(*args, cwd=tmp_path)
    assert replayed.returncode == 1, replayed.stdout + replayed.stderr
    assert replayed.stdout.startswith("replayed: the same story"), replayed.stdout
    assert "pop_item" in json.loads((tmp_path / args[1]).read_text())["story"]
