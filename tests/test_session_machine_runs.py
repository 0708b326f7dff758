"""SessionMachine beyond the example file: under ``pytest -n 2``, the story's
replay line, the shrink bound, and the executor closed at teardown."""
import json
import re
import threading
from pathlib import Path

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import rule, run_state_machine_as_test

from sessioncheck import MachineViolation, SessionMachine
from sessioncheck.errors import ConfigError

pytest_plugins = ["pytester"]
HERE = Path(__file__).parent


def test_the_example_file_passes_under_xdist(pytester):
    pytester.makepyfile(test_copy=(HERE / "test_session_machine.py").read_text())
    r = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", "-p", "no:randomly", timeout=120)
    r.assert_outcomes(passed=2)
    assert "created: 2/2 workers" in r.stdout.str()


class Lossy(SessionMachine):
    """The built-in operations only, on a store that drops messages."""

    store = "mutant:unlocked-rmw"
    actors, sessions = 2, 1


FAST = settings(max_examples=100, stateful_step_count=10, derandomize=True, database=None, deadline=None,
                phases=[Phase.generate, Phase.shrink])


def test_the_story_ends_with_a_replay_of_the_program():
    with pytest.raises(MachineViolation) as caught:
        run_state_machine_as_test(Lossy, settings=FAST)
    story = caught.value.story
    assert story.startswith("sessioncheck: I1 (no lost message) violated by store mutant:unlocked-rmw")
    replay = re.search(r"^Replay: .*\.Lossy\.replay\('(.*)'\)$", story, re.M)
    assert replay is not None and json.loads(replay[1]) == caught.value.program
    with pytest.raises(MachineViolation) as again:
        Lossy.replay(replay[1])
    assert again.value.program == caught.value.program
    assert len(caught.value.program) <= 10
    # the shrink bound of one run never answers for the next
    with pytest.raises(MachineViolation) as second:
        run_state_machine_as_test(Lossy, settings=FAST)
    assert second.value.program == caught.value.program


def test_the_correct_store_replays_clean_and_actors_are_closed():
    before = threading.active_count()

    class Json(SessionMachine):
        store = "json"

    out = Json.replay([["start", 0, ["add", 0]], ["start", 1, ["add", 0]], ["advance", 0, 3]])
    assert not out.failed and [o.f for o in out.ops].count("add") == 2
    run_state_machine_as_test(Json, settings=settings(FAST, max_examples=10))
    assert threading.active_count() <= before


def test_a_machine_without_a_store_or_with_an_unknown_operation_is_a_configuration_error():
    class NoStore(SessionMachine):
        pass

    with pytest.raises(ConfigError, match="store"):
        NoStore.config()

    class Unknown(SessionMachine):
        store = "json"

        @rule()
        def rename(self):
            self.start("rename_session")

    with pytest.raises(ConfigError, match="unknown operation 'rename_session'"):
        run_state_machine_as_test(Unknown, settings=settings(FAST, max_examples=5))


def test_a_program_names_a_registered_operation_and_never_an_unknown_one():
    from sessioncheck.controlled.program import program_from_json
    from sessioncheck.errors import ReportError
    from sessioncheck.operations import OperationDef, find, register

    find("truncate_all") or register(OperationDef(
        name="truncate_all", effect="clear", method="clear_messages",
        call=lambda store, session, _: store.clear_messages(session)))
    assert program_from_json([["start", 0, ["truncate_all", 1]]])[0].op.f == "truncate_all"
    with pytest.raises(ReportError, match="bad operation"):
        program_from_json([["start", 0, ["os.system", 0]]])


class RenameOverwrites(SessionMachine):
    """The built-in rename in the drawn operations: its fields are its own
    key (``name``), not the store's metadata fields."""

    store = "mutant:rename-overwrites-metadata"
    actors, sessions = 2, 1
    builtins = ("persist", "rename", "read")


def test_a_drawn_rename_writes_its_own_key_and_the_mutant_is_caught():
    with pytest.raises(MachineViolation) as caught:
        run_state_machine_as_test(RenameOverwrites, settings=settings(FAST, max_examples=300))
    assert caught.value.story.startswith("sessioncheck: I3"), caught.value.story
    renames = [s for s in caught.value.program if s[0] == "start" and s[2][0] == "rename"]
    assert renames and all(kv[0] == "name" for s in renames for kv in s[2][2]), caught.value.program


def test_start_checks_an_operations_fields_against_its_own_keys():
    class Json(SessionMachine):
        store = "json-edits"

    m = Json()
    m.start("rename", fields={"name": "fresh"})
    with pytest.raises(ConfigError, match="rename's keys are"):
        m.start("rename", fields={"model": "fresh"})
    m.start("persist", fields={"model": "fresh"})
