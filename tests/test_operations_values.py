"""The drawn data is configurable: the store's declared metadata fields
drive the model, and the rich value kinds (unicode, numbers, nested JSON, a
100 KB string) pass through every layer and are judged as JSON data."""
from __future__ import annotations

import pytest

from sessioncheck.controlled.engine import Executor
from sessioncheck.controlled.program import KEYS, ModelConfig, OpSpec, Step, decode, program_from_json
from sessioncheck.controlled.values import LARGE_CHARS, PLAIN, RICH, value_of
from sessioncheck.errors import ReportError
from sessioncheck.protocol import Capabilities
from sessioncheck.reporting.report import config_from_json
from sessioncheck.specs import resolve
from sessioncheck.verify import model_config, verify
from sessioncheck.stores.reference.json_store import JsonFileStore


class TitledStore(JsonFileStore):
    """The reference JSON store declaring fields of its own."""

    capabilities = Capabilities(metadata=True, metadata_fields=("title", "tags"))


def test_declared_metadata_fields_drive_the_model():
    cfg = model_config(resolve("test_operations_values:TitledStore"), "threads", ())
    assert cfg.keys == ("title", "tags")
    assert model_config(resolve("json"), "threads", ()).keys == KEYS  # undeclared: the default two
    steps = decode([(0, 0, 1, b) for b in range(40)], ModelConfig(keys=cfg.keys, values=RICH))
    drawn = {kv for s in steps for kv in s.op.fields}
    assert {k for k, _ in drawn} == {"title", "tags"}
    assert {v for _, v in drawn} >= {"fresh", "none", "unicode", "integer", "nested", "large"}


def test_default_values_unchanged():
    assert ModelConfig().values == PLAIN == ("fresh", "none", "empty")
    assert [value_of(k, 3) for k in PLAIN] == ["v3", None, ""]


@pytest.mark.parametrize("kind", [k for k in RICH if k not in ("none", "empty")])
def test_rich_values_read_back_from_the_reference_store(kind):
    cfg = ModelConfig(actors=2, keys=("title", "tags"), values=RICH)
    program = [Step("start", 0, OpSpec("persist", 0, (("title", kind), ("tags", "none")))),
               Step("start", 1, OpSpec("persist", 0, (("tags", kind),))), Step("advance", 0, 16),
               Step("advance", 1, 16), Step("start", 0, OpSpec("read", 0)), Step("advance", 0, 16)]
    with Executor(resolve("test_operations_values:TitledStore"), "threads", cfg) as ex:
        out = ex.run(program)
    assert out.violations == []
    written = [o.value for o in out.ops if o.f == "persist"]
    assert written[0]["title"] == value_of(kind, 1) and written[1]["tags"] == value_of(kind, 2)
    if kind == "large":
        assert len(written[0]["title"]) > LARGE_CHARS


def test_a_lost_rich_value_is_caught():
    result = verify("mutant:none-skipped", budget=30, max_examples=300, seed=1, save_report=False,
                    cfg=ModelConfig(values=RICH))
    assert result.outcome is not None and result.outcome.failed
    assert result.outcome.violations[0].invariant == "I3"


def test_reports_hold_fields_and_value_kinds_as_data():
    cfg = config_from_json({"keys": ["title"], "values": ["fresh", "large"]})
    assert cfg.keys == ("title",) and cfg.values == ("fresh", "large")
    for bad in ({"keys": []}, {"keys": [1]}, {"values": ["exec"]}, {"values": ["fresh", "fresh"]}):
        with pytest.raises(ReportError):
            config_from_json(bad)
    steps = program_from_json([["start", 0, ["persist", 0, [["title", "nested"]]]]])
    assert steps[0].op.fields == (("title", "nested"),)
    with pytest.raises(ReportError):
        program_from_json([["start", 0, ["persist", 0, [["title", "os.system"]]]]])


def test_a_session_machine_draws_rich_values():
    from hypothesis import Phase, settings

    from sessioncheck import SessionMachine

    class RichMachine(SessionMachine):
        store = "test_operations_values:TitledStore"
        actors, sessions, values = 2, 1, RICH

    machine = RichMachine()
    assert machine.config()[1].keys == ("title", "tags") and machine.config()[1].values == RICH
    from hypothesis import find

    drawn = find(machine.field_strategy(), lambda fs: any(kind == "large" for _, kind in fs))  # or NoSuchExample
    assert {key for key, _ in drawn} <= {"title", "tags"}
    test = RichMachine.TestCase
    test.settings = settings(max_examples=15, stateful_step_count=8, deadline=None, phases=[Phase.generate])
    test("runTest").runTest()


def test_a_users_pop_reads_the_popped_id_by_the_stores_identity_field_with_output_identity():
    """On a store whose messages are named by their ``id`` field, a pop of
    the user's own with ``output_identity=`` passes; with ``output=``
    alone (reading ``content``) the popped message is one never added."""
    from sessioncheck import SessionMachine
    from sessioncheck.operations import OperationDef, register
    from sessioncheck.operations.pop import message_id

    for name, extra in (("pop_by_id", {"output_identity": message_id}), ("pop_by_content", {})):
        register(OperationDef(name=name, effect="remove_last", method="pop_message", output=message_id,
                              call=lambda store, session, _: store.pop_message(session), **extra), replace=True)

    class Ids(SessionMachine):
        store = "json-ids"
        actors, sessions = 1, 1
        report_dir = None

    def program(op):
        return [["start", 0, ["add", 0]], ["advance", 0, 16], ["start", 0, [op, 0]], ["advance", 0, 16]]

    out = Ids.replay(program("pop_by_id"))
    assert not out.failed and [o.output for o in out.ops if o.f == "pop_by_id"] == ["m1"]
    from sessioncheck import MachineViolation

    with pytest.raises(MachineViolation) as caught:
        Ids.replay(program("pop_by_content"))
    assert "returned hello, which was never added" in caught.value.outcome.violations[0].summary
