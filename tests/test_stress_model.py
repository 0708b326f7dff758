"""``stress`` draws from the store's model: the metadata fields it
declares (``Capabilities.metadata_fields``), the message kinds it declares
(``message_kinds``) with each message's id in its identity field
(``message_identity``), and ``--messages`` for a store that declares
none.  The defaults draw the plan earlier versions drew.  A free-running
run is timing-dependent, so the mutants here are ones that lose a message
with no race at all (one actor is enough): caught every time."""
from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import strategies as st

from sessioncheck.controlled import messages
from sessioncheck.protocol import Capabilities
from sessioncheck.stores.reference.json_store import JsonFileStore
from sessioncheck.stress.runner import KEYS, StressConfig, plan, run_stress

#: sha1 of plan("p0t0", 400, 3, seed=7) as JSON, computed with the version before this one
DEFAULT_DIGEST = "f8b7f7f779b0"


class TitledStore(JsonFileStore):
    """The reference store, declaring its own two metadata fields."""

    capabilities = Capabilities(metadata_fields=("title", "summary"))


def test_default_plan_is_unchanged():
    ops = plan("p0t0", 400, 3, seed=7)
    for f, _, value, arg in ops:
        if f == "add":
            assert arg == {"role": "user", "content": value}
        if f == "persist":
            assert set(arg) <= set(KEYS)
    # the plan of the version before message kinds and declared fields, from this seed
    digest = hashlib.sha1(json.dumps(ops).encode()).hexdigest()[:12]
    assert digest == DEFAULT_DIGEST


def test_plan_draws_declared_fields_and_message_kinds():
    ops = plan("t0", 600, 2, seed=1, keys=("title",), kinds=messages.RICH[:5], identity="id")
    written = {k for f, _, _, arg in ops if f == "persist" for k in arg}
    assert written == {"title"}
    adds = [(value, arg) for f, _, value, arg in ops if f == "add"]
    assert all(arg["id"] == value for value, arg in adds)
    roles = {arg["role"] for _, arg in adds}
    assert roles == {"user", "assistant", "system", "tool"}
    assert any(arg.get("tool_calls") for _, arg in adds)


def test_stress_writes_the_declared_fields():
    result = run_stress(StressConfig(store=f"{__name__}:TitledStore", threads=2, sessions=2, ops=400,
                                     duration=30, seed=1))
    written = {k for e in result.events if e.f == "persist" and e.type == "invoke" for k in e.value}
    assert written == {"title", "summary"}
    assert result.verdict == "ok", [f.summary for f in result.run_findings]


@pytest.mark.parametrize("store, verdict", [
    ("json-ids", "ok"),  # identified by its own id field: judged by it
    ("mutant:merge-drops-tool-messages", "violation"),  # declares tool messages; a persist drops them
    ("mutant:dedupe-by-content", "violation"),  # equal contents, distinct ids
])
def test_stress_adds_the_declared_message_kinds(store, verdict):
    result = run_stress(StressConfig(store=store, threads=2, sessions=2, ops=400, duration=30, seed=1))
    assert result.verdict == verdict, [f.summary for f in result.run_findings]
    if verdict == "violation":
        assert result.check.findings[0].invariant == "I1", result.check.findings[0].summary


def test_stress_messages_rich_on_an_undeclared_store():
    result = run_stress(StressConfig(store="json", threads=2, sessions=2, ops=300, duration=30, seed=2,
                                     messages=messages.RICH))
    assert result.verdict == "ok", [f.summary for f in result.run_findings]


class FlattensLists(JsonFileStore):
    """The reference store, except that persist_state keeps a list as its
    text (``", ".join``), as a store with a string column does; it declares
    list values, so the model writes them."""

    capabilities = Capabilities(metadata_fields=("tags",), metadata_values=st.lists(st.text("abc", max_size=3),
                                                                                       min_size=1, max_size=3))

    def persist_state(self, session_id, fields):
        super().persist_state(session_id, {k: ", ".join(v) if isinstance(v, list) else v
                                           for k, v in fields.items()})


def test_stress_draws_the_declared_value_strategy_and_catches_a_flattened_list():
    # one actor: no race is needed, the verdict does not depend on timing
    result = run_stress(StressConfig(store=f"{__name__}:FlattensLists", threads=1, sessions=1, ops=200,
                                     duration=30, seed=1))
    written = [e.value["tags"] for e in result.events if e.f == "persist" and e.type == "invoke"]
    assert any(isinstance(v, list) for v in written), written
    assert result.verdict == "violation"
    # the text read back is a value no write wrote: not a state the model allows (I4)
    finding = result.check.findings[0]
    assert finding.invariant == "I4" and "field tags" in finding.summary, finding.summary


def test_the_same_plan_from_the_same_seed_with_a_strategy():
    from sessioncheck.controlled import values
    from sessioncheck.stress.runner import value_choices

    name = values.register(f"{__name__}.lists", st.lists(st.integers(0, 9), max_size=3), replace=True)
    a = plan("t0", 200, 2, seed=3, values=value_choices((name, "fresh"), 3))
    b = plan("t0", 200, 2, seed=3, values=value_choices((name, "fresh"), 3))
    assert a == b
    persisted = [v for f, _, arg, _ in a if f == "persist" for v in arg.values()]
    assert any(isinstance(v, list) for v in persisted) and any(isinstance(v, str) for v in persisted)


def test_the_reference_store_passes_stress_with_rich_values():
    from sessioncheck.controlled.values import RICH

    result = run_stress(StressConfig(store="json", threads=2, sessions=2, ops=300, duration=30, seed=2,
                                     values=RICH))
    written = {type(v).__name__ for e in result.events if e.f == "persist" and e.type == "invoke"
               for v in e.value.values()}
    assert {"int", "float", "dict", "str"} <= written, written
    assert result.verdict == "ok", [f.summary for f in result.run_findings]
