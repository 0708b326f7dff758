"""Message shapes in the model (:mod:`sessioncheck.controlled.messages`):
the kinds a program names, the identity field a store declares, and what
the engine decides with them.

The default model is unchanged (plain user messages identified by their
content, programs and reports as before); a store that identifies
messages by a field of its own (``json-ids``) is judged by that field and
never flagged; the mutant that drops tool messages on a merge is caught
only when the model adds tool messages, and the one whose idempotent
append compares content instead of ids is caught because message
contents are no longer unique.  Budgets: examples, not time."""
from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from sessioncheck.controlled import messages
from sessioncheck.controlled.engine import Executor
from sessioncheck.controlled.program import (MESSAGE_KINDS, ModelConfig, OpSpec, Step, decode,
                                             program_from_json, program_to_json)
from sessioncheck.controlled.search import explore
from sessioncheck.errors import ConfigError, ReportError
from sessioncheck.protocol import Capabilities, SessionState
from sessioncheck.specs import resolve
from sessioncheck.verify import model_config

#: Stated budget for the message mutants: both fall in the systematic pass,
#: merge-drops-tool-messages at example 3, dedupe-by-content at example 1,
#: on seeds 1..5 in both modes (measured); the budget leaves room above that.
BUDGET = 120
REFERENCE_EXAMPLES = 300


def _explore(store: str, mode: str, seed: int, examples: int, **model):
    spec = resolve(store)
    cfg = model_config(spec, mode, ())
    with Executor(spec, mode, replace(cfg, **model)) as ex:
        return explore(ex, budget=120.0, max_examples=examples, seed=seed, shrink_runs=5)


# -- the default stays as it was ---------------------------------------------

def test_default_model_adds_plain_messages_and_writes_programs_as_before():
    cfg = ModelConfig()
    assert cfg.messages == MESSAGE_KINDS == ("user",) and cfg.identity == "content"
    steps = decode([(0, 0, 0, b) for b in range(30)], cfg)  # a = 0: add on s0
    assert {s.op.f for s in steps} == {"add"} and {s.op.message for s in steps} == {""}
    assert program_to_json(steps)[0] == ["start", 0, ["add", 0]]
    spec = resolve("json")
    with Executor(spec, "threads", model_config(spec, "threads", ())) as ex:
        call = ex._call(OpSpec("add", 0), {"m": 0, "v": 0})
    assert (call.value, call.message) == ("m1", None)  # the actor builds {"role": "user", "content": "m1"}


def test_message_of_puts_the_id_in_the_identity_field():
    for kind in messages.RICH:
        by_content = messages.message_of(kind, "m7")
        assert by_content["content"] == "m7", kind  # content is the identity: exactly the id
        by_id = messages.message_of(kind, "m7", "id")
        assert by_id["id"] == "m7" and "m7" not in str(by_id.get("content")), kind  # content names nothing
    call = messages.message_of("tool_call", "m3", "id")
    assert call["role"] == "assistant" and call["content"] is None and call["tool_calls"][0]["id"] == "call_m3"
    result = messages.message_of("tool", "m4", "id")
    assert result["role"] == "tool" and result["tool_call_id"] == "call_m4"
    # contents repeat across messages of one kind: only the id tells them apart
    assert messages.message_of("user", "m1", "id")["content"] == messages.message_of("user", "m2", "id")["content"]
    assert SessionState(messages=[by_id, call]).message_ids("id") == ["m7", "m3"]


def test_a_users_kind_must_hold_its_id():
    name = messages.register("handoff", lambda mid, identity: {"role": "assistant", identity: mid,
                                                               "name": "triage"}, replace=True)
    assert messages.known(name) and messages.message_of(name, "m2")["content"] == "m2"
    messages.register("broken_kind", lambda mid, identity: {"role": "user", "content": "same"}, replace=True)
    with pytest.raises(ValueError, match="identity field"):
        messages.message_of("broken_kind", "m1")
    with pytest.raises(ValueError, match="already defined"):
        messages.register("tool", lambda mid, identity: {})


# -- the store's declarations drive the model -------------------------------

def test_declared_identity_and_kinds_drive_the_model_and_round_trip():
    cfg = model_config(resolve("json-ids"), "threads", ())
    assert cfg.identity == "id"
    assert cfg.messages == ("user", "assistant", "system", "tool_call", "tool", "unicode")
    fns = cfg.functions()
    steps = decode([(0, 0, fns.index("add"), b) for b in range(len(cfg.messages))], cfg)
    assert [s.op.message or "user" for s in steps] == list(cfg.messages)
    data = program_to_json(steps)
    assert data[1] == ["start", 0, ["add", 0, "assistant"]]
    assert program_from_json(json.loads(json.dumps(data))) == steps
    with pytest.raises(ReportError, match="unknown message kind"):
        program_from_json([["start", 0, ["add", 0, "telepathy"]]])
    # undeclared: --messages decides (plain by default, rich on request)
    assert model_config(resolve("json"), "threads", ()).messages == ("user",)
    rich = model_config(resolve("json"), "threads", (), ModelConfig(messages=messages.RICH))
    assert rich.messages == messages.RICH and rich.identity == "content"


class _DropsId:
    """A store declaring ``id`` as the identity but reading messages back without it."""

    capabilities = Capabilities(message_identity="id")

    def __init__(self, location):
        self.msgs = []

    def add_message(self, session_id, message):
        self.msgs.append({"role": message["role"], "content": message["content"]})

    def persist_state(self, session_id, fields):
        pass

    def read(self, session_id):
        return SessionState(messages=list(self.msgs))


def test_contract_requires_the_identity_field_back():
    from sessioncheck.contract import check
    from sessioncheck.protocol import StoreSpec

    with pytest.raises(ConfigError, match='without "id"'):
        check(StoreSpec("drops-id", _DropsId, __name__))


# -- what the engine decides --------------------------------------------------

@pytest.mark.parametrize("mode", ["threads", "processes"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_merge_that_drops_tool_messages_is_caught(mode, seed):
    x = _explore("mutant:merge-drops-tool-messages", mode, seed, BUDGET)
    assert x.outcome is not None, f"missed in {x.examples} examples"
    assert x.outcome.violations[0].invariant == "I1", x.outcome.violations[0].summary
    first = x.outcome.violations[0]
    lost = re.match(r"(m\d+), acknowledged", first.summary)
    assert lost, first.summary
    # the lost message is a tool message, and the story names its shape
    from sessioncheck.reporting.story import describe_call

    start = next(e for e in x.outcome.trace if e["ev"] == "start" and e.get("value") == lost.group(1))
    text = describe_call(start)
    assert "calling lookup" in text or "result of call_" in text, text


def test_merge_that_drops_tool_messages_passes_with_plain_messages():
    """The same store, only user messages: its lock is right, nothing is lost."""
    x = _explore("mutant:merge-drops-tool-messages", "threads", 1, REFERENCE_EXAMPLES, messages=("user",))
    assert x.outcome is None, x.outcome.violations[0].summary
    assert x.examples == REFERENCE_EXAMPLES


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_append_deduplicated_by_content_is_caught(mode):
    x = _explore("mutant:dedupe-by-content", mode, 1, BUDGET)
    assert x.outcome is not None, f"missed in {x.examples} examples"
    assert x.outcome.violations[0].invariant == "I1", x.outcome.violations[0].summary


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_store_identified_by_its_own_field_is_never_flagged(mode):
    x = _explore("json-ids", mode, 1, REFERENCE_EXAMPLES)
    assert x.outcome is None, x.outcome.violations[0].summary
    assert x.examples == REFERENCE_EXAMPLES


def test_reference_store_passes_rich_messages_in_processes():
    """Every shape (100 KB contents too) crosses to a process actor and back."""
    x = _explore("json-pop", "processes", 2, 150, messages=messages.RICH)
    assert x.outcome is None, x.outcome.violations[0].summary
    assert x.examples == 150


def test_identity_decides_not_content():
    """Read by the wrong field, every message of json-ids looks the same:
    the engine, reading by the declared identity, tells them apart (and a
    store losing one of two equal contents is caught above)."""
    spec = resolve("json-ids")
    cfg = model_config(spec, "threads", ())
    program = [Step("start", 0, OpSpec("add", 0)), Step("start", 0, OpSpec("add", 0)),
               Step("start", 2, OpSpec("read", 0))]
    with Executor(spec, "threads", cfg) as ex:
        out = ex.run(program)
    assert not out.failed
    final = [o for o in out.ops if o.process == "final"][0]
    assert final.output["messages"] == ["m1", "m2"]
