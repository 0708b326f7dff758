"""The controlled engine on the real, unmodified third-party stores.

Runs where the adapters' packages are installed (``pip install -e
'.[test,adapters,praisonai-agent]'``; ``.ci/run`` does it in its own
venv); skipped elsewhere, naming the extra.
"""
from __future__ import annotations

import pytest

from sessioncheck import servers
from sessioncheck.verify import verify

pytestmark = pytest.mark.quality


def needs(package: str, extra: str):
    return pytest.importorskip(package, reason=f"pip install 'sessioncheck[{extra}]'")


def needs_server(name: str) -> None:
    why = servers.unavailable(name)
    if why:
        pytest.skip(f"needs a {name} server: {why}")


def test_praisonai_clear_to_none_comes_back():
    needs("praisonaiagents", "praisonai")
    r = verify("praisonai", mode="threads", budget=120, seed=1, save_report=False)
    assert r.found, r.summary()
    v = r.outcome.violations[0]
    assert v.invariant == "I3" and "cleared to None" in v.summary, r.story


def test_praisonai_prefix_breaks_i1_across_processes():
    """Two I1 bugs live here: the pre-fix stale write-back (a message goes
    missing; the pr1727 scenario replays it exactly) and delete_session
    without the lock (a deleted message comes back).  The search may meet
    either first."""
    needs("praisonaiagents", "praisonai")
    r = verify("praisonai-prefix", mode="processes", budget=120, seed=1, save_report=False)
    assert r.found, r.summary()
    v = r.outcome.violations[0]
    assert v.invariant == "I1" and ("is missing" in v.summary or "reappears" in v.summary), r.story


def test_praisonai_agent_resumes_with_a_stale_compute_instance():
    needs("praisonai", "praisonai-agent")
    r = verify("praisonai-agent", mode="threads", budget=120, seed=1, save_report=False)
    assert r.found, r.summary()
    v = r.outcome.violations[0]
    assert v.invariant == "I3" and v.subject == "compute_instance_id", r.story


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_openai_agents_sqlite_session_passes(mode):
    needs("agents", "openai-agents")
    r = verify("openai-agents", mode=mode, budget=300, max_examples=150, seed=1, save_report=False)
    assert not r.found, r.story


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_openai_agents_pop_item_and_clear_session_keep_every_acknowledged_item(mode):
    """SQLiteSession's pop_item and clear_session racing add_items: every
    item is either read back or removed by an acknowledged pop or clear,
    and the pass reached the pops (the model drew them)."""
    needs("agents", "openai-agents")
    r = verify("openai-agents-edits", mode=mode, budget=300, max_examples=150, seed=1, save_report=False)
    assert not r.found, r.story
    assert r.coverage.operations.get("pop", 0) > 0 and r.coverage.operations.get("clear", 0) > 0


def test_langgraph_put_writes_keeps_every_append_but_shows_them_out_of_order():
    """No append is lost, but a write whose task id was drawn earlier can
    become visible after a later one was already read: the list a reader
    saw grows in the middle (I2).  Found after about 1400 examples."""
    needs("langgraph.checkpoint.sqlite", "langgraph")
    r = verify("langgraph", mode="threads", budget=400, seed=1, save_report=False)
    assert r.found, r.summary()
    v = r.outcome.violations[0]
    assert v.invariant == "I2" and "disagree" in v.summary, r.story


def test_langgraph_ids_across_processes_keep_their_order():
    """LangGraph's uuid6 ids never go below the last timestamp the process
    saw.  The contract probe runs in the harness's process on the real
    clock, and forked actors inherit that state: with a virtual clock
    behind the real one, every id of every actor was "last + 1", the ids
    of two processes sorted by their random bits, and two appends made one
    after the other read back swapped (a false I2 at example 2).  The same
    happens when an earlier campaign of this process ran thread actors
    further ahead in virtual time than the next one starts: virtual time
    never goes back within a process."""
    needs("langgraph.checkpoint.sqlite", "langgraph")
    first = verify("langgraph", mode="threads", budget=120, max_examples=300, seed=1, save_report=False)
    assert not first.found, first.story
    r = verify("langgraph", mode="processes", budget=120, max_examples=100, seed=1, save_report=False)
    assert not r.found, r.story


def test_langgraph_read_then_put_loses_an_append():
    needs("langgraph.checkpoint.sqlite", "langgraph")
    r = verify("langgraph-read-put", mode="threads", budget=120, seed=1, save_report=False)
    assert r.found, r.summary()
    assert r.outcome.violations[0].invariant == "I1", r.story


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_openai_agents_redis_session_passes(mode, tmp_path):
    """RedisSession appends in a WATCHed MULTI/EXEC; each redis.asyncio
    command is a point (4 distinct per add), and no run loses or reorders."""
    needs("agents.extensions.memory.redis_session", "openai-agents")
    needs_server("redis")
    r = verify("openai-agents-redis", mode=mode, budget=120, max_examples=150, seed=1, report_dir=tmp_path,
               save_report=False)
    assert not r.found, r.story
    assert "redis" in r.coverage.kinds, r.coverage.kinds


def test_langgraph_postgres_read_then_put_loses_an_append(tmp_path):
    needs("langgraph.checkpoint.postgres", "langgraph")
    needs_server("postgres")
    r = verify("langgraph-postgres-read-put", mode="threads", budget=120, max_examples=120, seed=1,
               report_dir=tmp_path, save_report=False)
    assert r.found, r.summary()
    assert r.outcome.violations[0].invariant == "I1", r.story


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_praisonai_clear_session_and_rename_session_pass(mode):
    """DefaultSessionStore's clear_session and rename_session (both locked
    read-modify-writes) racing add_message: no violation in 300 examples
    with rich values and messages, and the pass reached both operations.
    persist and delete are left out: their bugs (a None clear skipped,
    delete without the lock) are found at once and are told by the tests
    above and in test_adapters.py."""
    needs("praisonaiagents", "praisonai")
    from sessioncheck.controlled.messages import RICH as RICH_MESSAGES
    from sessioncheck.controlled.program import ModelConfig
    from sessioncheck.controlled.values import RICH

    cfg = ModelConfig(without=("persist", "delete"), values=RICH, messages=RICH_MESSAGES)
    r = verify("praisonai-edits", mode=mode, budget=300, max_examples=300, seed=1, cfg=cfg, save_report=False)
    assert not r.found, r.story
    assert r.coverage.operations.get("clear", 0) > 0 and r.coverage.operations.get("rename", 0) > 0


def test_praisonai_set_agent_info_skips_a_clear():
    """set_agent_info as an operation of the user's (praisonai_agent_info),
    started by a SessionMachine rule: it skips falsy values, so clearing
    agent_name or user_id (or setting it to '') never reaches disk (I3),
    the sibling of the None-skipping metadata update."""
    needs("praisonaiagents", "praisonai")
    from hypothesis import Phase, settings
    from hypothesis import strategies as st
    from hypothesis.stateful import rule, run_state_machine_as_test

    from sessioncheck import MachineViolation, SessionMachine
    from sessioncheck.stores.adapters.praisonai import AGENT_INFO, AGENT_INFO_OP

    class AgentInfo(SessionMachine):
        store = "praisonai-edits"
        actors, sessions = 2, 1
        builtins = ("add", "read")

        @rule(actor=SessionMachine.actor_ids, data=st.data())
        def agent_info(self, actor, data):
            fields = data.draw(self.field_strategy(AGENT_INFO_OP.name))
            self.start(AGENT_INFO_OP.name, actor=actor, fields=fields)

    fast = settings(max_examples=200, stateful_step_count=10, derandomize=True, database=None, deadline=None,
                    phases=[Phase.generate, Phase.shrink])
    with pytest.raises(MachineViolation) as caught:
        run_state_machine_as_test(AgentInfo, settings=fast)
    v = caught.value.outcome.violations[0]
    assert v.invariant == "I3" and v.subject in AGENT_INFO, caught.value.story
    # the write lost is a falsy one: a clear (None) or an empty name
    assert "cleared to None" in v.summary or "set to ''" in v.summary, caught.value.story


def test_praisonai_clear_session_keeps_the_archive():
    """clear_session empties the active window only: messages the compact
    retention moved to archived_messages survive it, so a cleared message
    is still in the durable record (I1, "reappears"; no concurrency
    needed, five appends reach the archive of a window of 4)."""
    needs("praisonaiagents", "praisonai")
    from sessioncheck.controlled.program import ModelConfig

    r = verify("sessioncheck.stores.adapters.praisonai:small_window_edits", mode="threads", budget=120,
               seed=1, cfg=ModelConfig(without=("persist", "delete")), save_report=False)
    assert r.found, r.summary()
    v = r.outcome.violations[0]
    assert v.invariant == "I1" and "reappears" in v.summary and "clear" in v.summary, r.story
