"""Adapters to real third-party stores, run sequentially on real files.

Every adapter test imports the real package with ``pytest.importorskip``
and skips, naming the extra to install, when it is absent.  Each one opens
two instances on one temporary directory (two writers), has both write,
then reads from a third, freshly opened instance, and asserts what the real
store really does.  Where the real store breaks the protocol (a ``None``
that does not clear, an append lost to a stale write) the test asserts the
documented behaviour under a name that says so, so the finding is recorded
and a change in the package shows up here first.

Interleavings are forced by hand: a writer that "gets in" between two
steps of another is run from a wrapper around the real method that marks
the step.  No engine is involved.
"""
from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path

import pytest

from sessioncheck import servers
from sessioncheck.controlled.aio import Uncontrolled
from sessioncheck.errors import ConfigError
from sessioncheck.protocol import SessionState, capabilities_of
from sessioncheck.specs import resolve
from sessioncheck.stores import adapters


def skip_without(package: str, extra: str):
    return pytest.importorskip(
        package, reason=f"{package} is not installed: pip install 'sessioncheck[{extra}]'"
    )


def msg(content: str, role: str = "user") -> dict:
    return {"role": role, "content": content}


def open_three(spec: str, directory: Path):
    factory = resolve(spec)
    return factory.open(directory), factory.open(directory), factory


@contextlib.contextmanager
def server_namespace(spec: str):
    """Hold, and empty first, the servers a server-backed adapter keeps its
    data in (started now, stopped after); skip where they cannot run.  No-op
    for a store on files."""
    names = resolve(spec).resources
    for name in names:
        why = servers.unavailable(name)
        if why:
            pytest.skip(f"{spec} needs a {name} server: {why}")
    holding = servers.acquire(resolve(spec).factory)
    try:
        holding.reset()
        yield
    finally:
        holding.release()


def close_all(*stores, settle=lambda result: result) -> None:
    for store in stores:
        close = getattr(store, "close", None)
        if callable(close):
            settle(close())


# -- the table and its loading ----------------------------------------------


def test_missing_package_is_a_config_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(
        adapters.ADAPTERS, "nowhere", ("nowhere_pkg.mod:factory", "nowhere-extra", "nowhere_pkg")
    )
    with pytest.raises(ConfigError, match=r"pip install 'sessioncheck\[nowhere-extra\]'"):
        resolve("nowhere")


def test_missing_dotted_package_is_a_config_error(monkeypatch):
    monkeypatch.setitem(
        adapters.ADAPTERS, "nowhere", ("x:y", "nowhere-extra", "nowhere_pkg.sub.module")
    )
    with pytest.raises(ConfigError, match="nowhere_pkg.sub.module"):
        adapters.load("nowhere")


@pytest.mark.parametrize("spec", sorted(adapters.ADAPTERS))
def test_every_adapter_resolves_or_names_its_extra(spec):
    target, extra, packages = adapters.ADAPTERS[spec]
    if all(adapters._installed(p) for p in packages.split()):
        resolved = resolve(spec)
        assert resolved.module == target.partition(":")[0]
        assert resolved.describe()  # the factory's docstring names the store
    else:
        with pytest.raises(ConfigError, match=rf"sessioncheck\[{extra}\]"):
            resolve(spec)


# -- praisonai: DefaultSessionStore, update_session_metadata --------------------


@pytest.fixture
def praisonai():
    return skip_without("praisonaiagents", "praisonai")


def test_praisonai_two_instances_keep_both_messages(praisonai, tmp_path):
    a, b, factory = open_three("praisonai", tmp_path)
    a.add_message("s", msg("a1"))
    b.add_message("s", msg("b1", "assistant"))
    a.add_message("s", msg("a2"))
    state = factory.open(tmp_path).read("s")
    assert state.message_ids() == ["a1", "b1", "a2"]
    assert state.messages[1] == {"role": "assistant", "content": "b1"}
    assert state.archived == []
    # The store's own files, and nothing else, live in the directory.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.json", "s.json.lock"]


def test_praisonai_metadata_merge_keeps_other_fields(praisonai, tmp_path):
    a, b, factory = open_three("praisonai", tmp_path)
    a.add_message("s", msg("m1"))
    a.persist_state("s", {"compute_instance_id": "i-1", "model": "m"})
    b.persist_state("s", {"compute_provider": "modal"})
    state = factory.open(tmp_path).read("s")
    assert state.metadata == {"compute_instance_id": "i-1", "model": "m", "compute_provider": "modal"}
    assert state.message_ids() == ["m1"]


def test_praisonai_update_metadata_skips_none_documented(praisonai, tmp_path):
    """Finding: ``update_session_metadata`` skips ``None``, so a clear never
    reaches disk and a fresh instance reads the old value back (protocol:
    ``None`` clears the field)."""
    a, b, factory = open_three("praisonai", tmp_path)
    a.persist_state("s", {"compute_instance_id": "i-1"})
    b.persist_state("s", {"compute_instance_id": None})
    assert factory.open(tmp_path).read("s").metadata == {"compute_instance_id": "i-1"}
    on_disk = json.loads((tmp_path / "s.json").read_text())
    assert on_disk["metadata"] == {"compute_instance_id": "i-1"}


def test_praisonai_delete_removes_the_session(praisonai, tmp_path):
    a, b, factory = open_three("praisonai", tmp_path)
    assert capabilities_of(a).delete
    a.add_message("s", msg("m1"))
    a.persist_state("s", {"k": "v"})
    b.delete_session("s")
    assert factory.open(tmp_path).read("s") == SessionState()
    a.add_message("s", msg("m2"))  # a's cache must not bring m1 back
    assert factory.open(tmp_path).read("s").message_ids() == ["m2"]


def test_praisonai_failed_write_raises_and_spills_under_the_directory(praisonai, tmp_path):
    a, _, factory = open_three("praisonai", tmp_path)
    (tmp_path / "s.json").mkdir()  # reading the session file now fails with an OSError
    with pytest.raises(OSError, match="add_message returned False"):
        a.add_message("s", msg("lost?"))
    spilled = list((tmp_path / ".spill").glob("s.*.json"))
    assert len(spilled) == 1
    assert json.loads(spilled[0].read_text())["messages"][0]["content"] == "lost?"


def test_praisonai_compaction_archives_overflow(praisonai, tmp_path):
    from sessioncheck.stores.adapters.praisonai import small_window

    a, b = small_window(tmp_path), small_window(tmp_path)
    for i in range(7):
        (a if i % 2 else b).add_message("s", msg(f"m{i}"))
    state = small_window(tmp_path).read("s")
    assert state.message_ids() == [f"m{i}" for i in range(7)]
    assert state.archived and len(state.messages) <= 4
    assert "compact" in capabilities_of(a).retention
    # On disk the window starts with the store's synthetic summary, which the
    # adapter leaves out of ``messages`` because nobody appended it.
    raw = json.loads((tmp_path / "s.json").read_text())
    assert raw["messages"][0]["metadata"].get("compaction") is True


# -- praisonai-prefix: get_session -> update -> _save_session -----------------------


def test_praisonai_prefix_sequential_is_correct_and_clears_none(praisonai, tmp_path):
    a, b, factory = open_three("praisonai-prefix", tmp_path)
    a.add_message("s", msg("m1"))
    a.persist_state("s", {"compute_instance_id": "i-1"})
    b.add_message("s", msg("m2"))
    b.persist_state("s", {"compute_instance_id": None})
    state = factory.open(tmp_path).read("s")
    assert state.message_ids() == ["m1", "m2"]
    assert state.metadata.get("compute_instance_id") is None


def test_praisonai_prefix_loses_an_append_between_read_and_save_documented(praisonai, tmp_path):
    """The historic bug (PraisonAI PR #1727): the copy read by ``get_session``
    is written back whole, over a message another instance appended."""
    a, b, factory = open_three("praisonai-prefix", tmp_path)
    a.add_message("s", msg("m1"))
    real_get = b.store.get_session

    def get_then_foreign_append(session_id):
        session = real_get(session_id)
        a.add_message("s", msg("m2"))  # acknowledged here
        return session

    b.store.get_session = get_then_foreign_append
    b.persist_state("s", {"compute_instance_id": "i-1"})
    state = factory.open(tmp_path).read("s")
    assert state.message_ids() == ["m1"]  # m2 was acknowledged, then lost
    assert state.metadata == {"compute_instance_id": "i-1"}


# -- praisonai-agent: LocalManagedAgent ----------------------------------------------


@pytest.fixture
def praisonai_agent():
    return skip_without("praisonai", "praisonai-agent")


def test_praisonai_agent_messages_and_state_round_trip(praisonai_agent, tmp_path):
    a, b, factory = open_three("praisonai-agent", tmp_path)
    a.add_message("s", msg("a1"))
    b.add_message("s", msg("b1", "assistant"))
    a.persist_state("s", {"compute_instance_id": "i-1"})
    b.persist_state("s", {"environment_id": "env-1"})
    state = factory.open(tmp_path).read("s")
    assert state.message_ids() == ["a1", "b1"]
    assert state.metadata == {"compute_instance_id": "i-1", "environment_id": "env-1"}


def test_praisonai_agent_resumed_agent_keeps_cleared_compute_id_documented(praisonai_agent, tmp_path):
    """Finding: an agent that clears ``compute_instance_id`` (after shutting
    its compute down) and persists; a resumed agent restores the old id."""
    a, b, factory = open_three("praisonai-agent", tmp_path)
    a.persist_state("s", {"compute_instance_id": "i-1"})
    b.persist_state("s", {"compute_instance_id": None})
    assert factory.open(tmp_path).read("s").metadata == {"compute_instance_id": "i-1"}


def test_praisonai_agent_model_lives_in_config_and_clears(praisonai_agent, tmp_path):
    """``model`` is persisted inside the agent's ``config`` entry, a dict that
    is never ``None``, so clearing it does reach disk (unlike the top-level
    ``compute_instance_id``)."""
    a, b, factory = open_three("praisonai-agent", tmp_path)
    a.persist_state("s", {"model": "gpt-x", "compute_instance_id": "i-1"})
    assert factory.open(tmp_path).read("s").metadata == {"model": "gpt-x", "compute_instance_id": "i-1"}
    b.persist_state("s", {"model": None, "compute_instance_id": None})
    assert factory.open(tmp_path).read("s").metadata == {"compute_instance_id": "i-1"}


def test_praisonai_agent_rejects_fields_it_cannot_restore(praisonai_agent, tmp_path):
    a, _, _ = open_three("praisonai-agent", tmp_path)
    with pytest.raises(ValueError, match="compute_provider"):
        a.persist_state("s", {"compute_provider": "modal"})


# -- openai-agents: SQLiteSession -------------------------------------------------------


@pytest.fixture
def openai_agents():
    return skip_without("agents", "openai-agents")


def test_openai_agents_two_instances_keep_both_messages_in_the_calling_thread(openai_agents, tmp_path):
    threads_before = set(threading.enumerate())
    a, b, factory = open_three("openai-agents", tmp_path)
    try:
        a.add_message("s", msg("a1"))
        b.add_message("s", msg("b1", "assistant"))
        a.add_message("s", msg("a2"))
        a.add_message("t", msg("t1"))
        c = factory.open(tmp_path)
        state = c.read("s")
        assert state.message_ids() == ["a1", "b1", "a2"]
        assert state.messages[1] == {"role": "assistant", "content": "b1"}
        assert state.metadata == {}
        assert c.read("t").message_ids() == ["t1"]
        # The SQLite work ran in this thread: no worker thread was started and
        # every connection the sessions opened belongs to this thread.
        assert set(threading.enumerate()) == threads_before
        owners = {t for s in (*a.sessions.values(), *c.sessions.values())
                  for t in s._connection_owners.values()}
        assert owners == {threading.current_thread()}
    finally:
        close_all(a, b, locals().get("c"))


def test_openai_agents_has_no_metadata_declared(openai_agents, tmp_path):
    a, b, _ = open_three("openai-agents", tmp_path)
    try:
        assert capabilities_of(a).metadata is False
        with pytest.raises(NotImplementedError):
            a.persist_state("s", {"k": None})
    finally:
        close_all(a, b)


def test_openai_agents_delete_clears_only_that_session(openai_agents, tmp_path):
    a, b, factory = open_three("openai-agents", tmp_path)
    c = factory.open(tmp_path)
    try:
        a.add_message("s", msg("m1"))
        a.add_message("t", msg("t1"))
        b.delete_session("s")
        assert c.read("s") == SessionState()
        a.add_message("s", msg("m2"))
        assert c.read("s").message_ids() == ["m2"]
        assert c.read("t").message_ids() == ["t1"]
    finally:
        close_all(a, b, c)


def test_openai_agents_close_releases_the_process_wide_lock(openai_agents, tmp_path):
    from agents.memory.sqlite_session import SQLiteSession

    a, b, _ = open_three("openai-agents", tmp_path)
    a.add_message("s", msg("m1"))
    b.read("s")
    key = (tmp_path / "agents.db").resolve()
    assert SQLiteSession._file_lock_counts[key] == 2
    close_all(a, b)
    assert key not in SQLiteSession._file_locks


# -- openai-agents: RedisSession on the harness's Redis ---------------------------------


@pytest.fixture
def openai_agents_redis():
    skip_without("agents.extensions.memory.redis_session", "openai-agents")
    skip_without("redis", "openai-agents")
    with server_namespace("openai-agents-redis"):
        yield


def test_openai_agents_redis_two_instances_keep_both_messages(openai_agents_redis, tmp_path):
    with Uncontrolled() as settle:
        a, b, factory = open_three("openai-agents-redis", tmp_path)
        c = factory.open(tmp_path)
        try:
            settle(a.add_message("s", msg("a1")))
            settle(b.add_message("s", msg("b1", "assistant")))
            settle(a.add_message("s", msg("a2")))
            settle(b.add_message("t", msg("t1")))
            state = settle(c.read("s"))
            assert state.message_ids() == ["a1", "b1", "a2"]
            assert state.messages[1] == {"role": "assistant", "content": "b1"}
            assert settle(c.read("t")).message_ids() == ["t1"]
            assert capabilities_of(a).metadata is False
            with pytest.raises(NotImplementedError):
                a.persist_state("s", {"k": None})
            settle(b.delete_session("s"))
            assert settle(c.read("s")) == SessionState()
            assert settle(c.read("t")).message_ids() == ["t1"]
        finally:
            close_all(a, b, c, settle=settle)


def test_openai_agents_redis_keeps_items_under_the_package_prefix(openai_agents_redis, tmp_path):
    """The store really is in the server: the session's list, read back with
    a plain client, holds the serialised items."""
    import redis

    with Uncontrolled() as settle:
        a = resolve("openai-agents-redis").open(tmp_path)
        try:
            settle(a.add_message("s", msg("m1")))
        finally:
            close_all(a, settle=settle)
    client = redis.Redis.from_url(servers.get("redis").address, decode_responses=True)
    try:
        items = client.lrange("agents:session:s:messages", 0, -1)
    finally:
        client.close()
    assert [json.loads(item) for item in items] == [msg("m1")]


# -- langgraph: SqliteSaver --------------------------------------------------------------


@pytest.fixture
def langgraph():
    return skip_without("langgraph.checkpoint.sqlite", "langgraph")


@pytest.mark.parametrize("spec", ["langgraph", "langgraph-read-put"])
def test_langgraph_sequential_two_instances(langgraph, spec, tmp_path):
    a, b, factory = open_three(spec, tmp_path)
    c = factory.open(tmp_path)
    try:
        for i in range(6):
            (a if i % 2 else b).add_message("s", msg(f"m{i}"))
        a.persist_state("s", {"compute_instance_id": "i-1", "model": "m"})
        b.persist_state("s", {"compute_instance_id": None})
        b.add_message("t", msg("t1"))
        state = c.read("s")
        assert state.message_ids() == [f"m{i}" for i in range(6)]
        assert state.metadata.get("compute_instance_id") is None
        assert state.metadata == {"model": "m"}
        assert c.read("t").message_ids() == ["t1"]
        assert c.read("nothing") == SessionState()
    finally:
        close_all(a, b, c)


def test_langgraph_put_writes_stores_one_pending_write_per_append(langgraph, tmp_path):
    import sqlite3

    a, b, _ = open_three("langgraph", tmp_path)
    try:
        a.add_message("s", msg("m1"))
        b.add_message("s", msg("m2"))
        a.persist_state("s", {"k": 1})
    finally:
        close_all(a, b)
    with sqlite3.connect(tmp_path / "checkpoints.sqlite") as conn:
        writes = conn.execute("SELECT task_id FROM writes WHERE thread_id = 's'").fetchall()
        checkpoints = conn.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id = 's'").fetchone()
    conn.close()
    assert len(writes) == 2 and len(set(writes)) == 2
    assert checkpoints == (2,)  # the root and one metadata checkpoint


def test_langgraph_read_put_loses_an_append_between_read_and_put_documented(langgraph, tmp_path):
    """Read the latest checkpoint, another writer appends, put the child: the
    newer child does not hold the other append, which is lost."""
    a, b, factory = open_three("langgraph-read-put", tmp_path)
    c = factory.open(tmp_path)
    try:
        a.add_message("s", msg("m1"))
        real_get = a.saver.get_tuple

        def get_then_foreign_append(config):
            latest = real_get(config)
            b.add_message("s", msg("m2"))  # acknowledged here
            return latest

        a.saver.get_tuple = get_then_foreign_append
        a.add_message("s", msg("m3"))
        assert c.read("s").message_ids() == ["m1", "m3"]
    finally:
        close_all(a, b, c)


# -- langgraph: PostgresSaver on the harness's PostgreSQL -------------------------------


@pytest.fixture
def langgraph_postgres():
    skip_without("langgraph.checkpoint.postgres", "langgraph")
    with server_namespace("langgraph-postgres"):
        yield


@pytest.mark.parametrize("spec", ["langgraph-postgres", "langgraph-postgres-read-put"])
def test_langgraph_postgres_sequential_two_instances(langgraph_postgres, spec, tmp_path):
    a, b, factory = open_three(spec, tmp_path)
    c = factory.open(tmp_path)
    try:
        for i in range(4):
            (a if i % 2 else b).add_message("s", msg(f"m{i}"))
        a.persist_state("s", {"compute_instance_id": "i-1", "model": "m"})
        b.persist_state("s", {"compute_instance_id": None})
        b.add_message("t", msg("t1"))
        state = c.read("s")
        assert state.message_ids() == [f"m{i}" for i in range(4)]
        assert state.metadata == {"model": "m"}
        assert c.read("t").message_ids() == ["t1"]
        assert c.read("nothing") == SessionState()
    finally:
        close_all(a, b, c)


def test_langgraph_postgres_read_put_loses_an_append_between_read_and_put_documented(
        langgraph_postgres, tmp_path):
    a, b, factory = open_three("langgraph-postgres-read-put", tmp_path)
    c = factory.open(tmp_path)
    try:
        a.add_message("s", msg("m1"))
        real_get = a.saver.get_tuple

        def get_then_foreign_append(config):
            latest = real_get(config)
            b.add_message("s", msg("m2"))  # acknowledged here
            return latest

        a.saver.get_tuple = get_then_foreign_append
        a.add_message("s", msg("m3"))
        assert c.read("s").message_ids() == ["m1", "m3"]
    finally:
        close_all(a, b, c)


# -- separate OS processes ---------------------------------------------------------


SPEC_PACKAGES = {spec: (package, extra) for spec, (_, extra, package) in adapters.ADAPTERS.items()}


def _append_in_child(spec: str, directory: str, content: str) -> None:
    # An async adapter's calls are awaited, as the harness awaits them.
    with Uncontrolled() as settle:
        store = settle(resolve(spec).open(Path(directory)))
        try:
            settle(store.add_message("s", msg(content)))
            if capabilities_of(store).metadata:
                settle(store.persist_state("s", {"compute_instance_id": content}))
        finally:
            close_all(store, settle=settle)


@pytest.mark.parametrize("spec", sorted(adapters.ADAPTERS))
def test_writers_in_forked_processes(spec, tmp_path):
    """Each writer in its own forked OS process (one after the other), as the
    process actors run them; the parent reads what they left on disk or in
    the server."""
    import multiprocessing

    packages, extra = SPEC_PACKAGES[spec]
    for package in packages.split():
        skip_without(package, extra)
    ctx = multiprocessing.get_context("fork")
    with server_namespace(spec):
        _fork_two_writers_and_read(ctx, spec, tmp_path)


def _fork_two_writers_and_read(ctx, spec: str, tmp_path: Path) -> None:
    for content in ("p1", "p2"):
        child = ctx.Process(target=_append_in_child, args=(spec, str(tmp_path), content))
        child.start()
        child.join(60)
        if child.is_alive():
            child.kill()
            child.join()
            pytest.fail(f"{spec}: writer process did not finish within 60 s")
        assert child.exitcode == 0
    with Uncontrolled() as settle:
        reader = settle(resolve(spec).open(tmp_path))
        try:
            state = settle(reader.read("s"))
        finally:
            close_all(reader, settle=settle)
    assert state.message_ids() == ["p1", "p2"]
    if capabilities_of(reader).metadata:
        assert state.metadata.get("compute_instance_id") == "p2"
