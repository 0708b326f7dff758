"""``stress`` draws the store's declared edits (pop, clear, rename) and the
history checker decides them: the reference store with all three passes,
and a pop that hides what it removed is caught.  (A free-running stress
catches a race only when the timing happens to expose it; the races of
``pop-races-append`` and ``rename-overwrites-metadata`` are the controlled
engine's to catch every time, ``tests/test_operations_rename.py``.)"""
from __future__ import annotations

import pytest

from sessioncheck.protocol import Capabilities
from sessioncheck.stores.reference.json_store import JsonFileStore
from sessioncheck.stress.runner import StressConfig, plan, run_stress


class SilentPopStore(JsonFileStore):
    """Declares pop only; its pop removes the last message but returns None."""

    capabilities = Capabilities(pop=True)

    def pop_message(self, session_id):
        JsonFileStore.pop_message(self, session_id)
        return None


def test_plans_draw_only_declared_edits():
    assert not any(f in ("pop", "clear", "rename") for f, *_ in plan("t0", 500, 2, seed=1))
    drawn = {f for f, *_ in plan("t0", 500, 2, seed=1, edits=("pop", "rename"))}
    assert {"pop", "rename"} <= drawn and "clear" not in drawn


@pytest.mark.parametrize("store, edits, verdict", [
    ("json-edits", {"pop", "clear", "rename"}, "ok"),
    (f"{__name__}:SilentPopStore", {"pop"}, "violation"),
])
def test_stress_decides_the_declared_edits(store, edits, verdict):
    result = run_stress(StressConfig(store=store, processes=0, threads=2, sessions=2, ops=1000,
                                     duration=30, seed=1))
    assert edits == {e.f for e in result.events} & {"pop", "clear", "rename"}
    assert result.verdict == verdict, [f.summary for f in result.run_findings]
    if verdict == "violation":  # the removed message is lost: no pop returned it
        assert result.check.findings[0].invariant == "I1", result.check.findings[0].summary
