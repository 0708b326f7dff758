"""The ``rename`` operation (agno-style ``rename_session``): the mutant
that writes back a stale copy of the whole metadata is caught in both
modes on every seed within a stated budget; the reference store with
rename is never flagged."""
from __future__ import annotations

import pytest

from sessioncheck import operations
from sessioncheck.controlled.engine import Executor
from sessioncheck.controlled.program import decode, program_from_json, program_to_json
from sessioncheck.controlled.search import explore
from sessioncheck.specs import resolve
from sessioncheck.verify import model_config

#: Stated budget: the systematic pass catches it at example 88 on seeds 1..5
#: in both modes (measured); the budget leaves room above that.
BUDGET = 150
REFERENCE_EXAMPLES = 300


def _explore(store: str, mode: str, seed: int, examples: int):
    spec = resolve(store)
    with Executor(spec, mode, model_config(spec, mode, ())) as ex:
        return explore(ex, budget=60.0, max_examples=examples, seed=seed, shrink_runs=5)


def test_rename_is_a_register_named_name():
    op = operations.get("rename")
    assert (op.effect, op.input, op.keys, op.capability) == ("registers", "fields", ("name",), "rename")
    spec = resolve("json-edits")
    cfg = model_config(spec, "threads", ())
    assert "rename" in cfg.functions() and "rename" not in model_config(resolve("json-pop"), "threads", ()).functions()
    # every drawn rename writes exactly the name, and survives a report round trip
    fns = cfg.functions()
    a = fns.index("rename")
    steps = decode([(0, 0, a, b) for b in range(12)], cfg)
    assert {s.op.fields[0][0] for s in steps} == {"name"} and all(len(s.op.fields) == 1 for s in steps)
    assert program_from_json(program_to_json(steps)) == steps


@pytest.mark.parametrize("mode", ["threads", "processes"])
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_rename_overwrites_metadata_is_caught(mode, seed):
    x = _explore("mutant:rename-overwrites-metadata", mode, seed, BUDGET)
    assert x.outcome is not None, f"missed in {x.examples} examples"
    first = x.outcome.violations[0]
    assert first.invariant == "I3", first.summary
    # the shrunk program needs the rename: the bug is in no other operation
    assert any(s.op is not None and s.op.f == "rename" for s in x.outcome.program)


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_reference_with_rename_is_never_flagged(mode):
    x = _explore("json-edits", mode, 1, REFERENCE_EXAMPLES)
    assert x.outcome is None, x.outcome.violations[0].summary
    assert x.examples == REFERENCE_EXAMPLES
