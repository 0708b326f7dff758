"""A semaphore only one actor takes is no preemption point; it becomes one
from the first take by a second actor of the run on (as a threading lock,
``CooperativeLock``), the same way in every run of the same program."""
from __future__ import annotations

import os
import threading

import pytest

from sessioncheck.controlled.engine import Executor
from sessioncheck.controlled.program import OpSpec, Step
from sessioncheck.specs import resolve
from sessioncheck.stores.reference.json_store import JsonFileStore


class InstanceSemaphoreStore(JsonFileStore):
    """Correct: the file lock orders actors; each instance also takes a
    semaphore of its own, which orders nothing between them."""

    def __init__(self, location):
        super().__init__(location)
        self._sem = threading.BoundedSemaphore(1)

    def add_message(self, session_id, message):
        with self._sem:
            return super().add_message(session_id, message)


PROGRAM = [Step("start", 0, OpSpec("add", 0)), Step("start", 1, OpSpec("add", 0)),
           Step("start", 0, OpSpec("add", 0))]


def semaphore_points(spec: str) -> list[list[str]]:
    """The actors of the semaphore points of two runs of PROGRAM."""
    out = []
    with Executor(resolve(spec), "threads") as ex:
        for _ in range(2):
            run = ex.run(PROGRAM)
            assert not run.failed
            out.append([e["actor"] for e in run.trace if e["ev"] == "point" and "semaphore" in (e.get("detail") or "")])
    return out


def test_a_semaphore_of_one_instance_is_no_point() -> None:
    assert semaphore_points("test_private_points:InstanceSemaphoreStore") == [[], []]


def test_a_shared_semaphore_is_a_point_from_the_second_taker_on() -> None:
    # wait_stores:SemaphoreStore: one module-level semaphore for every instance
    first, again = semaphore_points("wait_stores:SemaphoreStore")
    # A's first take is private (no point); from B's take on (B waits at its
    # point until A's second add is done) every take is one
    assert first == ["A", "B"]
    assert again == first


# -- private temporary files ---------------------------------------------------
# Recorded accesses are off by default (engine.RECORD_PRIVATE_TEMPS); each
# test here turns them on for the executors it makes.


@pytest.fixture
def recording():
    from sessioncheck.controlled import engine

    saved = engine.RECORD_PRIVATE_TEMPS[0]
    engine.RECORD_PRIVATE_TEMPS[0] = True
    try:
        yield
    finally:
        engine.RECORD_PRIVATE_TEMPS[0] = saved


def test_temp_file_accesses_are_points_by_default() -> None:
    with Executor(resolve("json"), "threads") as ex:
        run = ex.run([Step("start", 0, OpSpec("add", 0))])
    assert [e["kind"] for e in _entries(run.trace, "A")] == ["open", "flush", "fsync", "close"]
    assert not any(e.get("recorded") for e in run.trace)


class PeekingStore(JsonFileStore):
    """Correct appends; ``read`` also opens every temporary file it finds
    in the directory (as a recovery scan would): a second actor touching
    the first one's temp file."""

    def read(self, session_id):
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".tmp"):
                try:
                    with open(self.dir / name, encoding="utf-8") as fh:
                        fh.read()
                except FileNotFoundError:
                    pass
        return super().read(session_id)


def _entries(trace, actor, suffix=".tmp"):
    return [e for e in trace if e["actor"] == actor and e["ev"] == "point" and suffix in (e.get("path") or "")]


def test_a_temp_file_only_its_maker_touches_is_recorded_not_a_point(recording) -> None:
    for mode in ("threads", "processes"):
        with Executor(resolve("json"), mode) as ex:
            run = ex.run([Step("start", 0, OpSpec("add", 0))])
        temp = _entries(run.trace, "A")
        # made, flushed, synced and closed: in the trace, and none a point
        assert [e["kind"] for e in temp] == ["open", "flush", "fsync", "close"], (mode, temp)
        assert all(e.get("recorded") for e in temp), (mode, temp)
        # the replace that publishes it stays a point (its source is the temp file)
        replace = [e for e in run.trace if e["ev"] == "point" and e["kind"] == "replace"]
        assert replace and not any(e.get("recorded") for e in replace)
        # filelock's probe of the directory (an O_TMPFILE file) is nobody else's either
        assert all(e.get("recorded") for e in run.trace if e["ev"] == "point" and e["path"] == "."
                   and e["kind"] in ("open", "flock", "close"))


class TempFirstStore(PeekingStore):
    """Correct: makes its temp file first, then reads the session file
    (points) while the temp file is still empty, then fills it."""

    def add_message(self, session_id, message):
        import json
        import tempfile

        with self._lock(session_id):
            fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
            data = self._load(session_id)
            data["messages"].append(message)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._path(session_id))


def test_a_temp_file_another_actor_touches_becomes_a_point(recording) -> None:
    spec = resolve("test_private_points:TempFirstStore")
    with Executor(spec, "threads") as ex:
        alone = ex.run([Step("start", 0, OpSpec("add", 0))])
        real = [e for e in alone.trace if e["ev"] == "point" and e["actor"] == "A" and not e.get("recorded")]
        k = next(i for i, e in enumerate(real) if e["kind"] == "open" and e["path"] == "s0.json")
        # A parks reading the session file, its temp file made and empty;
        # B's read opens it: from then on it is shared
        run = ex.run([Step("start", 0, OpSpec("add", 0)), Step("advance", 0, points=k),
                      Step("start", 1, OpSpec("read", 0))])
        untouched = ex.run([Step("start", 0, OpSpec("add", 0)), Step("advance", 0, points=k),
                            Step("start", 1, OpSpec("add", 0))])
    assert not run.failed, [v.summary for v in run.violations]
    peeks = _entries(run.trace, "B")
    assert peeks and not any(e.get("recorded") for e in peeks)  # B did not make it: points
    temp = _entries(run.trace, "A")
    assert temp[0]["kind"] == "open" and temp[0].get("recorded")  # made before B looked
    after = [e["kind"] for e in temp[1:] if not e.get("recorded")]
    assert after == ["flush", "fsync", "close"], temp  # touched by B: points from then on
    # the same program where B never looks: A's accesses stay recorded
    assert all(e.get("recorded") for e in _entries(untouched.trace, "A"))


def test_a_temp_file_shared_from_the_second_toucher_on() -> None:
    from sessioncheck.controlled.intercept import context

    ctx_a = context.ActorContext("A", "/nonexistent-root", lambda *a: None)
    ctx_b = context.ActorContext("B", "/nonexistent-root", lambda *a: None)
    ctx_a.record = ctx_b.record = True
    path = "/nonexistent-root/.s0.json.abc.tmp"
    ctx_a.made_temp(path)
    try:
        assert ctx_a.is_private("flush", path)
        assert not ctx_a.is_private("replace", path)  # publishing it is a point
        assert not ctx_b.is_private("read", path)  # B's access: a point, and it shares the file
        assert not ctx_a.is_private("flush", path)  # from then on, A's too
    finally:
        ctx_a.forget_temp(path)
    assert path not in context._temp_owners and path not in context._shared_temps


def test_power_loss_and_io_faults_keep_every_temp_file_access_a_point(recording) -> None:
    from sessioncheck.controlled.program import ModelConfig

    for cfg in (ModelConfig(actors=1, power_loss=True), ModelConfig(actors=1, io_faults=("EIO",))):
        with Executor(resolve("json"), "threads", cfg) as ex:
            run = ex.run([Step("start", 0, OpSpec("add", 0))])
        temp = _entries(run.trace, "A")
        assert [e["kind"] for e in temp] == ["open", "flush", "fsync", "close"]
        assert not any(e.get("recorded") for e in run.trace)
