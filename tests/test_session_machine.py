"""A SessionMachine with an operation of its own: the correct store passes, the mutant is caught."""
import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import rule, run_state_machine_as_test

from sessioncheck import MachineViolation, SessionMachine
from sessioncheck.operations import OperationDef, find, register
from sessioncheck.operations.pop import message_id

# the user's operation: openai-agents' pop_item, "remove the last message and return it"
find("pop_item") or register(OperationDef(
    name="pop_item", effect="remove_last", method="pop_message", output=message_id,
    call=lambda store, session, _: store.pop_message(session)))


class PopItemMachine(SessionMachine):
    store = "json-pop"
    actors, sessions, builtins = 2, 1, ("add", "read")

    @rule(actor=SessionMachine.actor_ids, session=SessionMachine.session_ids)
    def pop_item(self, actor, session):
        self.start("pop_item", actor=actor, session=session)


FAST = settings(max_examples=400, stateful_step_count=12, derandomize=True, database=None, deadline=None,
                phases=[Phase.generate, Phase.shrink])
TestJsonPop = PopItemMachine.TestCase
TestJsonPop.settings = settings(FAST, max_examples=200)


def test_the_machine_catches_pop_races_append():
    class PopRacesAppend(PopItemMachine):
        store = "mutant:pop-races-append"

    with pytest.raises(MachineViolation, match="I1") as caught:
        run_state_machine_as_test(PopRacesAppend, settings=FAST)
    assert any(step[0] == "start" and step[2][0] == "pop_item" for step in caught.value.program)
