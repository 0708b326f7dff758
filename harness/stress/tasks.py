"""Stress with asyncio tasks: many requests of one web process (``--tasks N``).

``sessioncheck stress --tasks N`` runs, in this process or in each worker
process (``--processes M``), one event loop with N tasks instead of N
threads; each task opens its own store instance and issues its planned
operations at full speed, awaiting each one when the store's method
returns an awaitable (an ``async def`` store), calling it plainly
otherwise.  The record is the same as a thread actor's
(:func:`sessioncheck.stress.runner.run_actor`), so the history is checked
as any other.  The tasks start together: the loop meets the other
processes at the start barrier once, for all its tasks.
"""
from __future__ import annotations

import asyncio
import inspect
import time
from pathlib import Path
from typing import Any, NamedTuple

#: (type, f, session, value, time, error), as run_actor records them
Record = tuple


class Marks(NamedTuple):
    """The runner's conventions (stress/runner.py, which imports this module)."""

    allowed: str  # ALLOWED_MARK: ends the error of an allowed exception
    vanished: str  # VANISHED: prefix of an error saying the store ended an actor
    barrier_timeout: float


async def _settle(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


async def arun_actor(store: Any, ops: list, record: list, *, deadline: float, marks: "Marks",
                     counts: Any = None, slot: int = 0, allow_errors: tuple[str, ...] = ()) -> None:
    """:func:`run_actor` for one task: the same records, each call awaited."""
    from sessioncheck.controlled.refusals import allowed, compile_allowed, describe_chain

    ALLOWED_MARK = marks.allowed

    patterns = compile_allowed(allow_errors)
    mono = time.monotonic
    ap = record.append
    from sessioncheck.controlled.messages import identity_of

    identity = identity_of(store)
    done = 0
    for f, session, value, arg in ops:
        t = mono()
        if t > deadline:
            break
        ap(("invoke", f, session, value, t, None))
        try:
            if f == "add":
                await _settle(store.add_message(session, arg))
                out = None
            elif f == "persist":
                await _settle(store.persist_state(session, dict(arg)))
                out = None
            elif f == "delete":
                await _settle(store.delete_session(session))
                out = None
            else:
                state = await _settle(store.read(session))
                out = {"messages": state.message_ids(identity), "metadata": dict(state.metadata)}
        except Exception as exc:  # the store's own error: outcome unknown
            mark = ALLOWED_MARK if patterns and allowed(describe_chain(exc), patterns) else ""
            ap(("info", f, session, None, mono(), f"{type(exc).__name__}: {exc}{mark}"))
        else:
            ap(("ok", f, session, out, mono(), None))
        done += 1
        if counts is not None:
            counts[slot] = done
        if done % 8 == 0:
            await asyncio.sleep(0)  # a store that never suspends still lets the others run


async def _close(store: Any) -> None:
    close = getattr(store, "close", None)
    if callable(close):
        try:
            await _settle(close())
        except Exception:
            pass


def tasks_main(factory: Any, location: Path, plans: list[list], records: list[list], finished: list[bool],
               duration: float, op_timeout: float, barrier: Any, counts: Any, slots: list[int],
               errors: list[str], marks: Marks, allow_errors: tuple[str, ...] = ()) -> None:
    """One thread's event loop running one task per plan (see the module
    docstring).  ``finished[i]`` says whether task i ended within
    ``duration + op_timeout`` of the start; errors opening a store go to
    ``errors`` (and abort the barrier)."""
    import threading

    from sessioncheck.controlled import exits

    _BARRIER_TIMEOUT, VANISHED = marks.barrier_timeout, marks.vanished

    async def main() -> None:
        stores = []
        try:
            for _ in plans:
                stores.append(await _settle(factory.open(location)))
        except Exception as exc:
            errors.append(f"opening the store raised {type(exc).__name__}: {exc}")
            barrier.abort()
            for s in stores:
                await _close(s)
            return
        try:
            # blocks the loop on purpose: nothing runs before the start
            barrier.wait(_BARRIER_TIMEOUT)
        except threading.BrokenBarrierError:
            return
        deadline = time.monotonic() + duration
        tasks = [asyncio.ensure_future(arun_actor(s, p, r, deadline=deadline, marks=marks, counts=counts,
                                                  slot=slot, allow_errors=allow_errors))
                 for s, p, r, slot in zip(stores, plans, records, slots)]
        try:
            with exits.inside_store():
                await asyncio.wait(tasks, timeout=duration + op_timeout)
        except BaseException as exc:  # noqa: BLE001 - a store ending its actor is reported
            errors.append(f"{VANISHED}a task: {exits.describe(exc)}")
        for i, t in enumerate(tasks):
            finished[i] = t.done() and not t.cancelled()
            if t.done() and not t.cancelled() and t.exception() is not None:
                exc = t.exception()
                errors.append(f"{VANISHED}a task: {type(exc).__name__}: {exc}")
        for t in tasks:
            t.cancel()
        for s in stores:
            await _close(s)

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
    finally:
        from sessioncheck.controlled.aio import close_loop

        close_loop(loop)
