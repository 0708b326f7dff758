"""``stress`` sends a store only the operations it declares."""
from __future__ import annotations

from sessioncheck.protocol import Capabilities
from sessioncheck.stores.reference.json_store import JsonFileStore
from sessioncheck.stress.runner import StressConfig, plan, run_stress


class NoMetadataStore(JsonFileStore):
    """Declares metadata=False (and no delete); refuses persist_state loudly."""

    capabilities = Capabilities(metadata=False, delete=False)

    def persist_state(self, session_id, fields):
        raise AssertionError("persist_state called on a store that declares metadata=False")

    def delete_session(self, session_id):
        raise AssertionError("delete_session called on a store that does not declare delete")


def test_plans_have_no_persist_without_metadata():
    ops = plan("t0", 500, 2, seed=1, metadata=False)
    assert not any(f in ("persist", "delete") for f, *_ in ops)
    assert any(f == "add" for f, *_ in ops) and any(f == "read" for f, *_ in ops)
    assert any(f == "persist" for f, *_ in plan("t0", 500, 2, seed=1))


def test_stress_sends_no_persist_or_delete_a_store_does_not_declare():
    result = run_stress(StressConfig(store=f"{__name__}:NoMetadataStore", processes=0, threads=2, sessions=2,
                                     ops=200, duration=30, seed=3))
    assert result.verdict == "ok", [f.summary for f in result.run_findings]
    assert not any(e.f in ("persist", "delete") for e in result.events)
    assert result.completed == 200
