"""A semaphore only one actor takes is no preemption point; it becomes one
from the first take by a second actor of the run on (as a threading lock,
``CooperativeLock``), the same way in every run of the same program."""
from __future__ import annotations

import threading

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
