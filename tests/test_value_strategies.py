"""Metadata values from a Hypothesis strategy of the user's
(``Capabilities.metadata_values``, ``SessionMachine.values``,
``sessioncheck.controlled.values.register``): ``None`` is always among
what it draws, what it draws is a literal in the program and the report
(JSON data, never pickled), and a store that mishandles only such values
is caught with them and passes without them.  Budgets: examples."""
from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from hypothesis import Phase, find, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from sessioncheck import MachineViolation, SessionMachine
from sessioncheck.controlled import values
from sessioncheck.controlled.engine import Executor
from sessioncheck.controlled.program import ModelConfig, decode, program_from_json, program_to_json, programs
from sessioncheck.controlled.search import explore
from sessioncheck.errors import ConfigError, ReportError
from sessioncheck.protocol import Capabilities
from sessioncheck.reporting.report import config_from_json
from sessioncheck.specs import name_of, resolve
from sessioncheck.stores.reference.json_store import JsonFileStore, merge_fields
from sessioncheck.verify import model_config

LISTS = st.lists(st.integers(0, 9), min_size=1, max_size=3)
#: Stated budget: the first failure comes at example 155-187 on seeds 1..5
#: (measured): the systematic pass (about 150 programs) writes the
#: strategy's kind as a fresh string, so only the random programs after it
#: draw lists; the budget leaves room above that.
BUDGET = 400


class Tagged(JsonFileStore):
    """The reference store, keeping lists of tags in one declared field."""

    capabilities = Capabilities(metadata_fields=("tags",), metadata_values=LISTS)


class TaggedFlattens(Tagged):
    """Stores a list as its text ("[1, 2]"): a column for scalars only."""

    def persist_state(self, session_id, fields):
        flat = {k: (json.dumps(v) if isinstance(v, list) else v) for k, v in fields.items()}
        with self._lock(session_id):
            data = self._load(session_id)
            merge_fields(data, flat)
            self._save(session_id, data)


class NotJson(JsonFileStore):
    capabilities = Capabilities(metadata_values=st.just(float("nan")))


def test_none_is_always_among_the_draws():
    name = values.register("test.tags", LISTS, replace=True)
    (strategy,) = [values.strategy_of((name,))]
    assert find(strategy, lambda d: d.value is None).value is None
    assert find(strategy, lambda d: isinstance(d.value, list)).value == [0]


def test_drawn_values_are_literals_in_programs_and_reports():
    cfg = model_config(resolve(name_of(Tagged)), "threads", ())
    assert cfg.keys == ("tags",) and cfg.values[:3] == values.PLAIN and values.is_strategy(cfg.values[-1])
    fns = cfg.functions()
    # b picks the kind (mask 1, kind index = len(PLAIN)): the strategy's, whose value is the drawn one
    raw = [(0, 0, fns.index("persist"), 1 * 0 + len(values.PLAIN), (values.drawn([3, 1]),))]
    steps = decode(raw, cfg)
    assert steps[0].op.fields == (("tags", values.Drawn("[3, 1]")),)
    data = json.loads(json.dumps(program_to_json(steps)))  # JSON text, as a report holds it
    assert data == [["start", 0, ["persist", 0, [["tags", {"value": [3, 1]}]]]]]
    assert program_from_json(data) == steps
    # the config lists the strategy by name: data, and loads back
    assert config_from_json({"values": list(cfg.values)}).values == cfg.values
    with pytest.raises(ReportError, match="not JSON data"):
        program_from_json([["start", 0, ["persist", 0, [["tags", {"value": math.nan}]]]]])
    with pytest.raises(ReportError, match="bad field"):
        program_from_json([["start", 0, ["persist", 0, [["tags", {"code": "import os"}]]]]])


def test_the_engine_writes_the_drawn_value():
    spec = resolve(name_of(Tagged))
    cfg = model_config(spec, "threads", ())
    fns = cfg.functions()
    raw = [(0, 0, fns.index("persist"), len(values.PLAIN), (values.drawn([4, 2]),)),
           (0, 1, fns.index("read"), 0)]
    with Executor(spec, "threads", cfg) as ex:
        out = ex.run(decode(raw, cfg))
    assert not out.failed
    final = [o for o in out.ops if o.process == "final"][0]
    assert final.output["metadata"] == {"tags": [4, 2]}


def test_a_value_that_is_not_json_is_a_configuration_error():
    spec = resolve(name_of(NotJson))
    cfg = model_config(spec, "threads", ())
    with Executor(spec, "threads", cfg) as ex, pytest.raises(ConfigError, match="not JSON data"):
        explore(ex, budget=30.0, max_examples=50, seed=1, systematic=False)


@pytest.mark.parametrize("seed", [2, 3])
def test_a_store_mishandling_drawn_values_is_caught(seed):
    spec = resolve(name_of(TaggedFlattens))
    with Executor(spec, "threads", model_config(spec, "threads", ())) as ex:
        x = explore(ex, budget=120.0, max_examples=BUDGET, seed=seed, shrink_runs=5)
    assert x.outcome is not None, f"missed in {x.examples} examples"
    # the text read back is a value no write wrote (I4), or a stale one (I3)
    assert x.outcome.violations[0].invariant in ("I3", "I4"), x.outcome.violations[0].summary


def test_the_same_store_passes_without_the_strategy():
    spec = resolve(name_of(TaggedFlattens))
    cfg = replace(model_config(spec, "threads", ()), values=values.PLAIN)
    with Executor(spec, "threads", cfg) as ex:
        x = explore(ex, budget=120.0, max_examples=300, seed=1, shrink_runs=5)
    assert x.outcome is None, x.outcome.violations[0].summary


class FlattensMachine(SessionMachine):
    store = TaggedFlattens
    actors, sessions = 2, 1
    values = values.PLAIN + (st.lists(st.booleans(), min_size=1, max_size=2),)


def test_a_machine_with_a_strategy_among_its_values_catches_it():
    fast = settings(max_examples=300, stateful_step_count=8, derandomize=True, database=None, deadline=None,
                    phases=[Phase.generate, Phase.shrink])
    with pytest.raises(MachineViolation, match="I[34]") as caught:
        run_state_machine_as_test(FlattensMachine, settings=fast)
    # the story's program holds the drawn value as data, and replays
    text = json.dumps(caught.value.program)
    assert '{"value": [' in text
    with pytest.raises(MachineViolation):
        FlattensMachine.replay(text)
