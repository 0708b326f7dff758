"""Each mutant alone is a working store, and each one really has its bug.

Two kinds of tests, both on real files, real locks and real SQLite, with
no engine involved:

- *alone*: one instance, one thread, no faults: add, persist (including a
  ``None`` clear) and read behave as the protocol says.  A mutant must be
  wrong only where its bug is, or the gallery measures the wrong thing.
  ``silent-truncate`` is the exception: its bug shows alone, and its test
  asserts the loss.
- *bug*: the bug shown by hand, with instances called in a fixed order
  (a writer that "gets in" at a chosen step is run from a hook at that
  step), or a fault injected at a chosen call, or a forked process.  Where
  it helps, the same steps on the reference store show no loss.
"""
from __future__ import annotations

import builtins
import errno
import importlib
import logging
import os
import select
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest
from filelock import Timeout

from sessioncheck.protocol import SessionState, capabilities_of

from sessioncheck.specs import resolve
from sessioncheck.stores.reference.json_store import JsonFileStore
from sessioncheck.stores.reference.sqlite_store import SqliteStore

MUTANTS = [
    "thread-lock-only",
    "non-atomic-write",
    "no-fsync",
    "eio-empty",
    "lock-unlinked",
    "read-outside-lock",
    "stale-cache",
    "cached-read",
    "one-file-all-sessions",
    "delete-unlocked",
    "swallowed-timeout",
    "stale-history-replace",
    "silent-truncate",
    "sqlite-rmw",
    "torn-and-lost",
]
#: Mutants whose bug does not show in a sequential run of one instance.
CORRECT_ALONE = [m for m in MUTANTS if m != "silent-truncate"]


def module(name: str):
    return importlib.import_module(f"sessioncheck.stores.mutants.{name.replace('-', '_')}")


def msg(content: str) -> dict:
    return {"role": "user", "content": content}


def ids(state: SessionState) -> list[str]:
    return state.message_ids()


def cleared(state: SessionState, key: str) -> bool:
    return state.metadata.get(key) is None


def close(store: object) -> None:
    closer = getattr(store, "close", None)
    if callable(closer):
        closer()


@pytest.fixture(autouse=True)
def _import_time_state_stays_here() -> Iterator[None]:
    """``thread-lock-only`` creates its lock when its module is imported.
    Forget the module after each test, so that an engine run later in this
    process imports it afresh, under the engine's interception."""
    yield
    sys.modules.pop("sessioncheck.stores.mutants.thread_lock_only", None)


def with_hook(cls: type, method: str, before: Callable[[], None]) -> type:
    """A subclass of ``cls`` that runs ``before()`` once, at its first ``method`` call.

    This is how a test places another writer's whole operation at one
    chosen step of an operation, in one thread and in a fixed order.
    """
    fired = []

    def hooked(self, *args, **kwargs):
        if not fired:
            fired.append(True)
            before()
        return getattr(super(sub, self), method)(*args, **kwargs)

    sub = type(f"Hooked{cls.__name__}", (cls,), {method: hooked})
    return sub


# -- alone: every mutant is a working store without concurrency or faults --


@pytest.mark.parametrize("name", CORRECT_ALONE)
def test_alone_without_faults_the_mutant_is_correct(name: str, tmp_path: Path) -> None:
    spec = resolve(f"mutant:{name}")
    store = spec.open(tmp_path)
    try:
        assert ids(store.read("a")) == [] and store.read("a").metadata == {}
        store.add_message("a", msg("a1"))
        store.persist_state("a", {"model": "m-1", "compute_instance_id": "ci-7"})
        store.add_message("a", msg("a2"))
        store.add_message("b", msg("b1"))
        store.persist_state("a", {"compute_instance_id": None, "tokens": 12})
        store.add_message("a", msg("a3"))
        state = store.read("a")
        assert ids(state) == ["a1", "a2", "a3"]
        assert state.metadata.get("model") == "m-1" and state.metadata.get("tokens") == 12
        assert cleared(state, "compute_instance_id")
        assert ids(store.read("b")) == ["b1"]
    finally:
        close(store)
    # What was acknowledged is on disk: a fresh instance reads the same.
    fresh = spec.open(tmp_path)
    try:
        again = fresh.read("a")
        assert ids(again) == ["a1", "a2", "a3"] and cleared(again, "compute_instance_id")
        assert again.metadata.get("tokens") == 12 and ids(fresh.read("b")) == ["b1"]
    finally:
        close(fresh)


def test_every_mutant_named_here_is_in_the_gallery() -> None:
    from sessioncheck.specs import mutant_names

    assert set(MUTANTS) <= set(mutant_names())


# -- thread-lock-only -------------------------------------------------------


class ForkedCall:
    """Run ``fn`` in a forked child when :meth:`run` is called; reap it always.

    The child is forked at construction, before the parent takes any lock,
    as the engine's process actors are.  ``fn`` returns bytes to send back.
    """

    def __init__(self, fn: Callable[[], bytes]) -> None:
        go_r, self.go_w = os.pipe()
        self.res_r, res_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # child: never returns into pytest
            code = 1
            try:
                os.close(self.go_w)
                os.close(self.res_r)
                if os.read(go_r, 1) == b"g":
                    os.write(res_w, fn())
                    code = 0
            finally:
                os._exit(code)
        os.close(go_r)
        os.close(res_w)

    def run(self, timeout: float = 5.0) -> bytes:
        os.write(self.go_w, b"g")
        ready, _, _ = select.select([self.res_r], [], [], timeout)
        return os.read(self.res_r, 64) if ready else b"timeout"

    def reap(self) -> None:
        for fd in (self.go_w, self.res_r):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid == 0:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


@contextmanager
def forked(fn: Callable[[], bytes]) -> Iterator[ForkedCall]:
    child = ForkedCall(fn)
    try:
        yield child
    finally:
        child.reap()


def _try_lock(lock) -> bytes:
    """One non-blocking attempt on a store's lock object: b"got" or b"busy"."""
    if hasattr(lock, "lock_file"):  # filelock
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return b"busy"
        lock.release()
        return b"got"
    if lock.acquire(blocking=False):
        lock.release()
        return b"got"
    return b"busy"


@pytest.mark.parametrize("name, other_process", [("json", b"busy"), ("thread-lock-only", b"got")])
def test_thread_lock_only_excludes_threads_but_not_processes(name, other_process, tmp_path: Path) -> None:
    cls = JsonFileStore if name == "json" else module(name).Store
    with forked(lambda: _try_lock(cls(tmp_path)._lock("s"))) as child:
        with cls(tmp_path)._lock("s"):
            # Another instance in this process (another thread actor) waits...
            assert _try_lock(cls(tmp_path)._lock("s")) == b"busy"
            # ...but another process gets in only if the lock is a threading lock.
            assert child.run() == other_process


def test_thread_lock_only_loses_a_message_written_by_another_process(tmp_path: Path) -> None:
    mutant = module("thread-lock-only").Store

    def child_appends() -> bytes:
        mutant(tmp_path).add_message("s", msg("from-child"))
        return b"ok"

    replies: list[bytes] = []
    with forked(child_appends) as child:
        mutant(tmp_path).add_message("s", msg("first"))
        # The child's whole append runs while this process is inside its lock,
        # between its read and its write.
        parent = with_hook(mutant, "_save", lambda: replies.append(child.run()))(tmp_path)
        parent.add_message("s", msg("from-parent"))
    assert replies == [b"ok"]  # acknowledged in the child
    assert ids(JsonFileStore(tmp_path).read("s")) == ["first", "from-parent"]  # "from-child" lost


# -- non-atomic-write -------------------------------------------------------


class ReadsWhileSerialised(dict):
    """A metadata value that, while ``json.dump`` serialises it, reads the
    session with another instance (a lock-free reader mid-write)."""

    def __init__(self, reader: object, session_id: str, seen: list) -> None:
        super().__init__(x=1)
        self.reader, self.session_id, self.seen = reader, session_id, seen

    def items(self):
        try:
            self.seen.append(ids(self.reader.read(self.session_id)))
        except ValueError as exc:  # json.JSONDecodeError: torn or empty file
            self.seen.append(exc)
        return super().items()


@pytest.mark.parametrize("cls, torn", [(JsonFileStore, False), (module("non-atomic-write").Store, True)])
def test_non_atomic_write_shows_a_torn_file_to_a_lock_free_reader(cls, torn, tmp_path: Path) -> None:
    writer, reader = cls(tmp_path), cls(tmp_path)
    writer.add_message("s", msg("m1"))
    seen: list = []
    writer.persist_state("s", {"probe": ReadsWhileSerialised(reader, "s", seen)})
    assert len(seen) == 1
    if torn:
        assert isinstance(seen[0], ValueError)  # the file was empty mid-write
    else:
        assert seen[0] == ["m1"]
    assert ids(reader.read("s")) == ["m1"]


class NotJson:
    """A value json cannot serialise: ``json.dump`` fails half-way, like a crash."""


@pytest.mark.parametrize("cls, lost", [(JsonFileStore, False), (module("non-atomic-write").Store, True)])
def test_non_atomic_write_interrupted_mid_write_loses_the_session(cls, lost, tmp_path: Path) -> None:
    store = cls(tmp_path)
    store.add_message("s", msg("m1"))
    store.add_message("s", msg("m2"))
    with pytest.raises(TypeError):
        store.persist_state("s", {"bad": NotJson()})
    if lost:
        with pytest.raises(ValueError):  # the session file is torn: m1, m2 gone
            JsonFileStore(tmp_path).read("s")
    else:
        assert ids(JsonFileStore(tmp_path).read("s")) == ["m1", "m2"]


# -- no-fsync ---------------------------------------------------------------


@pytest.mark.parametrize("cls, synced", [(JsonFileStore, True), (module("no-fsync").Store, False)])
def test_no_fsync_acknowledges_without_any_fsync(cls, synced, tmp_path: Path, monkeypatch) -> None:
    real_fsync = os.fsync
    calls: list[int] = []

    def counting_fsync(fd: int) -> None:
        calls.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    store = cls(tmp_path)
    store.add_message("s", msg("m1"))
    store.persist_state("s", {"k": 1})
    # The reference fsyncs the file and the directory on every write (2 each).
    assert len(calls) == (4 if synced else 0)


# -- eio-empty --------------------------------------------------------------


@contextmanager
def eio_on_next_read_of(path: Path, monkeypatch) -> Iterator[list]:
    """Make the next open of ``path`` for reading fail with EIO (once)."""
    real_open = builtins.open
    fired: list = []

    def faulty_open(file, mode="r", *args, **kwargs):
        if not fired and "r" in mode and "+" not in mode and os.fspath(file) == os.fspath(path):
            fired.append(True)
            raise OSError(errno.EIO, os.strerror(errno.EIO), os.fspath(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", faulty_open)
    try:
        yield fired
    finally:
        monkeypatch.setattr(builtins, "open", real_open)


def test_eio_empty_turns_a_read_error_into_an_empty_session(tmp_path: Path, monkeypatch) -> None:
    store = module("eio-empty").Store(tmp_path)
    store.add_message("s", msg("m1"))
    with eio_on_next_read_of(store._path("s"), monkeypatch) as fired:
        state = store.read("s")  # no error reaches the caller
    assert fired and ids(state) == []


@pytest.mark.parametrize("cls, lost", [(JsonFileStore, False), (module("eio-empty").Store, True)])
def test_eio_empty_writes_the_empty_session_back(cls, lost, tmp_path: Path, monkeypatch) -> None:
    store = cls(tmp_path)
    store.add_message("s", msg("m1"))
    store.add_message("s", msg("m2"))
    with eio_on_next_read_of(store._path("s"), monkeypatch) as fired:
        if lost:
            store.add_message("s", msg("m3"))  # acknowledged...
        else:
            with pytest.raises(OSError):
                store.add_message("s", msg("m3"))  # the reference reports the error
    assert fired
    # ...and the two earlier acknowledged messages are gone for good.
    assert ids(cls(tmp_path).read("s")) == (["m3"] if lost else ["m1", "m2"])


# -- lock-unlinked ----------------------------------------------------------


def _fds_open_on(path: str) -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}") == path
        except OSError:
            pass
    return n


def test_lock_unlinked_lets_two_writers_hold_the_lock(tmp_path: Path) -> None:
    cls = module("lock-unlinked").Store
    a, b, c = cls(tmp_path)._lock("s"), cls(tmp_path)._lock("s"), cls(tmp_path)._lock("s")
    lock_path = os.path.realpath(a.path)
    holding: dict[str, int] = {}  # holder -> inode of the lock file it holds
    done = threading.Event()

    def hold(name: str, lock) -> None:
        with lock:
            holding[name] = os.fstat(lock.fd).st_ino
            done.wait(5)

    a.__enter__()
    tb = threading.Thread(target=hold, args=("B", b), daemon=True)
    tb.start()
    deadline = time.monotonic() + 3
    while _fds_open_on(lock_path) < 2 and time.monotonic() < deadline:
        time.sleep(0.002)  # until B has opened the lock file and waits on it
    assert _fds_open_on(lock_path) == 2 and "B" not in holding
    a.__exit__(None, None, None)  # unlock, then unlink: B gets the old inode
    tc = threading.Thread(target=hold, args=("C", c), daemon=True)
    try:
        while "B" not in holding and time.monotonic() < deadline:
            time.sleep(0.002)
        assert "B" in holding
        tc.start()  # C opens the path after the unlink: a new inode, locked at once
        while "C" not in holding and time.monotonic() < deadline:
            time.sleep(0.002)
        assert set(holding) == {"B", "C"}  # both hold "the" lock at the same time
        assert holding["B"] != holding["C"]
    finally:
        done.set()
        tb.join(3)
        if tc.ident is not None:  # started
            tc.join(3)


# -- read-outside-lock ------------------------------------------------------


@pytest.mark.parametrize("cls, lost", [(JsonFileStore, False), (module("read-outside-lock").Store, True)])
def test_read_outside_lock_overwrites_a_message_appended_before_the_lock(cls, lost, tmp_path: Path) -> None:
    cls(tmp_path).add_message("s", msg("m0"))
    other = cls(tmp_path)
    # The other writer's whole append happens just before A takes its lock.
    a = with_hook(cls, "_lock", lambda: other.add_message("s", msg("m1")))(tmp_path)
    a.add_message("s", msg("m2"))
    assert ids(cls(tmp_path).read("s")) == (["m0", "m2"] if lost else ["m0", "m1", "m2"])


# -- stale-cache / cached-read / stale-history-replace ---------------------


@pytest.mark.parametrize("cls, lost", [(JsonFileStore, False), (module("stale-cache").Store, True)])
def test_stale_cache_persist_writes_back_the_cached_copy(cls, lost, tmp_path: Path) -> None:
    a, b = cls(tmp_path), cls(tmp_path)
    a.add_message("s", msg("m0"))
    b.add_message("s", msg("m1"))
    b.persist_state("s", {"owner": "b"})
    a.persist_state("s", {"model": "x"})
    state = cls(tmp_path).read("s")
    if lost:
        assert ids(state) == ["m0"] and "owner" not in state.metadata
    else:
        assert ids(state) == ["m0", "m1"] and state.metadata == {"owner": "b", "model": "x"}


@pytest.mark.parametrize("cls, stale", [(JsonFileStore, False), (module("cached-read").Store, True)])
def test_cached_read_does_not_see_other_writers(cls, stale, tmp_path: Path) -> None:
    a, b = cls(tmp_path), cls(tmp_path)
    a.add_message("s", msg("m0"))
    assert ids(a.read("s")) == ["m0"]
    b.add_message("s", msg("m1"))
    b.persist_state("s", {"k": 1})
    state = a.read("s")  # starts after B's acknowledgements
    if stale:
        assert ids(state) == ["m0"] and "k" not in state.metadata
    else:
        assert ids(state) == ["m0", "m1"] and state.metadata == {"k": 1}
    assert ids(cls(tmp_path).read("s")) == ["m0", "m1"]  # the file itself is right


@pytest.mark.parametrize("cls, lost", [(JsonFileStore, False), (module("stale-history-replace").Store, True)])
def test_stale_history_replace_drops_messages_appended_since_its_read(cls, lost, tmp_path: Path) -> None:
    a, b = cls(tmp_path), cls(tmp_path)
    b.add_message("s", msg("m0"))
    assert ids(a.read("s")) == ["m0"]
    b.add_message("s", msg("m1"))
    a.add_message("s", msg("m2"))
    assert ids(cls(tmp_path).read("s")) == (["m0", "m2"] if lost else ["m0", "m1", "m2"])


# -- one-file-all-sessions --------------------------------------------------


@pytest.mark.parametrize("cls, lost", [(JsonFileStore, False), (module("one-file-all-sessions").Store, True)])
def test_one_file_all_sessions_loses_another_sessions_write(cls, lost, tmp_path: Path) -> None:
    cls(tmp_path).add_message("b", msg("b0"))
    other = cls(tmp_path)
    # A writer of session "b" gets in between A's read and write of session "a".
    a = with_hook(cls, "_save", lambda: other.add_message("b", msg("b1")))(tmp_path)
    a.add_message("a", msg("a1"))
    fresh = cls(tmp_path)
    assert ids(fresh.read("a")) == ["a1"]
    assert ids(fresh.read("b")) == (["b0"] if lost else ["b0", "b1"])


# -- delete-unlocked --------------------------------------------------------


def test_delete_unlocked_deletes_when_alone(tmp_path: Path) -> None:
    cls = module("delete-unlocked").Store
    store = cls(tmp_path)
    assert capabilities_of(store).delete
    for delete in (store.delete_session, store.delete_locked):
        store.add_message("s", msg("old"))
        store.persist_state("s", {"k": 1})
        delete("s")
        assert ids(store.read("s")) == [] and store.read("s").metadata == {}
        delete("s")  # deleting a missing session is a no-op
    store.add_message("s", msg("new"))
    assert ids(cls(tmp_path).read("s")) == ["new"]


def test_delete_unlocked_a_deleted_session_comes_back(tmp_path: Path) -> None:
    cls = module("delete-unlocked").Store
    cls(tmp_path).add_message("s", msg("old"))
    deleter = cls(tmp_path)
    # The delete lands while the writer holds the lock, after its read.
    writer = with_hook(cls, "_save", lambda: deleter.delete_session("s"))(tmp_path)
    writer.add_message("s", msg("new"))
    assert ids(cls(tmp_path).read("s")) == ["old", "new"]  # "old" was deleted


def test_delete_under_the_lock_waits_for_the_writer(tmp_path: Path) -> None:
    cls = module("delete-unlocked").Store
    cls(tmp_path).add_message("s", msg("old"))
    deleter = cls(tmp_path)
    t = threading.Thread(target=deleter.delete_locked, args=("s",), daemon=True)
    # The correct delete, started at the same step, waits for the lock.
    writer = with_hook(cls, "_save", t.start)(tmp_path)
    writer.add_message("s", msg("new"))
    t.join(5)
    assert not t.is_alive()
    assert ids(cls(tmp_path).read("s")) == []


# -- swallowed-timeout ------------------------------------------------------


def test_swallowed_timeout_acknowledges_an_update_it_never_made(tmp_path: Path, caplog) -> None:
    store = module("swallowed-timeout").Store(tmp_path)
    store.persist_state("s", {"compute_instance_id": "ci-7"})
    holder = JsonFileStore(tmp_path)._lock("s")  # another writer, busy with the session
    with holder, caplog.at_level(logging.WARNING):
        store.persist_state("s", {"compute_instance_id": None})  # returns: "done"
        with pytest.raises(Timeout):
            store.add_message("s", msg("m1"))  # add_message reports it, as it should
    assert "state update skipped" in caplog.text
    state = store.read("s")
    assert state.metadata == {"compute_instance_id": "ci-7"}  # the clear never happened
    assert ids(state) == []


# -- silent-truncate --------------------------------------------------------


def test_silent_truncate_drops_old_messages_even_alone(tmp_path: Path) -> None:
    mod = module("silent-truncate")
    store = mod.Store(tmp_path)
    assert capabilities_of(store).retention and mod.KEEP == 3
    for i in range(1, 4):
        store.add_message("s", msg(f"m{i}"))
    store.persist_state("s", {"k": 1})
    store.persist_state("s", {"k": None, "j": 2})
    state = store.read("s")
    assert ids(state) == ["m1", "m2", "m3"] and state.metadata == {"j": 2}
    store.add_message("s", msg("m4"))
    state = mod.Store(tmp_path).read("s")
    # The retention window moved m1 out of messages, but not into archived:
    # the durable record lost an acknowledged message.
    assert state.messages == [msg("m2"), msg("m3"), msg("m4")]
    assert state.archived == [] and "m1" not in ids(state)


# -- sqlite-rmw -------------------------------------------------------------


def test_sqlite_rmw_loses_an_append_between_select_and_update(tmp_path: Path) -> None:
    cls = module("sqlite-rmw").Store
    first, other = cls(tmp_path), cls(tmp_path)
    first.add_message("s", msg("m0"))
    a = with_hook(cls, "_put", lambda: other.add_message("s", msg("m1")))(tmp_path)
    try:
        a.add_message("s", msg("m2"))
        assert ids(first.read("s")) == ["m0", "m2"]  # m1 acknowledged, then lost
    finally:
        for s in (first, other, a):
            s.close()


def test_sqlite_reference_keeps_both_appends_in_the_same_steps(tmp_path: Path) -> None:
    first, other = SqliteStore(tmp_path), SqliteStore(tmp_path)
    first.add_message("s", msg("m0"))
    a = with_hook(SqliteStore, "_write", lambda: other.add_message("s", msg("m1")))(tmp_path)
    try:
        a.add_message("s", msg("m2"))
        assert ids(first.read("s")) == ["m0", "m1", "m2"]
    finally:
        for s in (first, other, a):
            s.close()
