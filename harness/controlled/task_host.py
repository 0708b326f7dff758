"""Task actors in processes: each of M forked processes runs an event loop
with its own task actors (``--actors tasks --task-processes M``).

Two app-server workers on one volume, each serving concurrent requests:
the tasks of one worker interleave at their awaits, the workers run side
by side.  A *host* is one forked OS process holding a
:class:`~sessioncheck.controlled.task_actor.TaskLoop` and the
:class:`~sessioncheck.controlled.task_actor.TaskActor` objects of its
tasks, exactly as the harness's own process holds them for
``--actors tasks`` alone.  The parent holds one :class:`TaskProxy` per
task: the scheduler sees one actor per task (named ``p0.t0``, ``p0.t1``,
``p1.t0``, ...: process, then task), begins and resumes each as any other
actor, and the proxy forwards the call over its host's one channel and
returns the task's next stop.  The scheduler drives one actor at a time
and waits for its stop, so one request and one answer at a time on each
channel is all the multiplexing there is.

What happens inside a host is what happens inside the harness for
``--actors tasks``: points at awaits that really suspend, at the
intercepted calls of the task's helper threads, at redis.asyncio
commands; code between two awaits runs as one step, also with respect to
the other processes (a limit: two real workers would interleave inside
it; a synchronous store served by tasks is one atomic step per operation,
so use process actors to interleave inside synchronous code).

The one thing the scheduler asks of a task besides begin and resume is
whether the future it is blocked on is done (the ``("await", actor)``
lock key, ``Scheduler.blocked``): inside a host the key names the task,
and the proxy puts itself in its place; its :meth:`TaskProxy.ready`
asks the host.

Faults: ``cancel`` is a resume with the cancellation code, forwarded as
is.  A host cannot be killed one task at a time, so ``crash`` (and the
file faults, as for tasks of one loop) are refused before the search
(:mod:`sessioncheck.controlled.task_faults`).

A host is reaped like a process actor: ``close`` asks it to exit, waits
briefly, then kills it; the kernel kills it if the harness dies
(``die_with_parent``).  A task that got stuck or a channel that broke
leaves its host *broken*: it is killed, and every proxy of it is *stale*;
the executor makes new ones (on a new host) before the next run.
"""
from __future__ import annotations

import dataclasses
import os
import pickle
import select
import signal
from typing import Any

import multiprocess

from sessioncheck.controlled import exits
from sessioncheck.controlled.actor import ActorDied, Done, OpCall, Point, Stop, Stuck
from sessioncheck.controlled.process_actor import (
    _PARENT_DECIDES, _block_signals, _recv, _restore_signals, _send, die_with_parent)
from sessioncheck.errors import UnsupportedStore
from sessioncheck.protocol import StoreSpec


def task_names(processes: int, n: int) -> list[str]:
    """The names of ``n`` task actors spread over ``processes`` hosts, one
    by one (``p0.t0, p1.t0, p0.t1, ...``): the first actors a program uses
    are in different processes."""
    return [f"p{i % processes}.t{i // processes}" for i in range(n)]


def host_of(name: str) -> int:
    """The host index in a name of :func:`task_names`."""
    return int(name.split(".", 1)[0][1:])


# -- the host process -------------------------------------------------------------

def _plain_events(events: list) -> list:
    """Lock events with the task's own key ``("await", TaskActor)`` named by
    the task's name instead (the proxy puts itself back: TaskProxy._stop)."""
    out = []
    for ev in events:
        key = ev[1] if len(ev) > 1 else None
        if isinstance(key, tuple) and len(key) == 2 and key[0] == "await" and hasattr(key[1], "name"):
            ev = (ev[0], ("await", key[1].name), *ev[2:])
        out.append(ev)
    return out


def _plain_samples(samples: list) -> list:
    """Stack samples without code objects (which do not pickle)."""
    try:
        return [[dataclasses.replace(f, code=None) for f in s] for s in samples]
    except (TypeError, AttributeError):
        return []


def _host(index: int, spec: StoreSpec, watchdog: float, down_r: int, up_w: int, close_fds: list[int]) -> None:
    """The host process: serve begin, resume, ready and shutdown of its
    tasks, one request at a time, until told to exit or the channel closes."""
    for fd in close_fds:
        try:
            os.close(fd)
        except OSError:
            pass
    for sig in _PARENT_DECIDES:  # the parent decides when hosts end (as process actors)
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _PARENT_DECIDES)
    die_with_parent()
    from sessioncheck.controlled.task_actor import TaskActor, TaskLoop

    group: TaskLoop | None = None
    tasks: dict[str, TaskActor] = {}

    def task(name: str) -> TaskActor:
        nonlocal group
        a = tasks.get(name)
        if a is None or a.group is not group:
            if group is None:
                group = TaskLoop(watchdog)
            a = tasks[name] = TaskActor(name, spec, group)
        return a

    try:
        while True:
            msg = _recv(down_r)
            what = msg[0]
            if what == "exit":
                break
            reply: tuple
            try:
                if what == "begin":
                    _, name, f, session, value, now, location = msg
                    a = task(name)
                    a.set_location(location)
                    reply = ("stop", a.begin(OpCall(f, session, value), now))
                elif what == "resume":
                    _, name, now, fault = msg
                    reply = ("stop", task(name).resume(now, fault))
                elif what == "ready":
                    a = tasks.get(msg[1])
                    reply = ("ready", a is None or a.ready())
                elif what == "shutdown":
                    a = tasks.pop(msg[1], None)
                    if a is not None:
                        a.shutdown()
                    reply = ("ok",)
                else:
                    reply = ("refused", f"unknown request {what!r}")
            except UnsupportedStore as exc:
                reply = ("unsupported", str(exc))
            except Stuck as exc:
                reply = ("stuck", exc.seconds, _plain_samples(exc.samples))
            except ActorDied as exc:
                reply = ("died", str(exc))
            if reply[0] == "stop":
                stop = reply[1]
                stop.events = _plain_events(stop.events)
            try:
                _send(up_w, reply)
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                _send(up_w, ("died", f"a result the harness cannot carry across processes: {exc}"))
            if reply[0] == "stuck":
                break  # the loop is abandoned: the parent kills this process
    except (EOFError, OSError):
        pass
    finally:
        try:
            if group is not None and not group.broken:
                for a in tasks.values():
                    a.shutdown()
                group.close()
        finally:
            exits.real_exit(0)  # no atexit handlers, no flushing of inherited buffers


# -- the harness's side ---------------------------------------------------------

class TaskHost:
    """One forked process running an event loop with task actors."""

    def __init__(self, index: int, spec: StoreSpec, watchdog: float = 10.0) -> None:
        self.index = index
        self.watchdog = watchdog
        down_r, self._down_w = os.pipe()
        self._up_r, up_w = os.pipe()
        ctx = multiprocess.get_context("fork")
        self._proc = ctx.Process(target=_host, args=(index, spec, watchdog, down_r, up_w,
                                                     [self._down_w, self._up_r]),
                                 name=f"sessioncheck-tasks-p{index}", daemon=True)
        blocked = _block_signals()  # as ProcessActor: no handler may run during the fork
        try:
            self._proc.start()
        finally:
            _restore_signals(blocked)
        os.close(down_r)
        os.close(up_w)
        self._poll = select.poll()
        self._poll.register(self._up_r, select.POLLIN)
        self.proxies: dict[str, TaskProxy] = {}
        self.broken = False
        self._closed = False

    def ask(self, name: str, msg: tuple) -> tuple:
        """Send one request about task ``name`` and wait for its answer."""
        if self.broken:
            raise ActorDied(f"actor {name}: its process (p{self.index}) was abandoned")
        try:
            _send(self._down_w, msg)
            # the host bounds a task's silence by the watchdog itself (it
            # answers "stuck"); this bound is for a host that stopped answering
            if not self._poll.poll(int((2 * self.watchdog + 5) * 1000)):
                self._abandon()
                raise Stuck(name, self.watchdog)
            reply = _recv(self._up_r)
        except (EOFError, OSError):
            code = self._abandon()
            how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
            raise ActorDied(f"actor {name}: its process p{self.index} {how} in the middle of an operation") from None
        if reply[0] == "stuck":
            self._abandon()
            raise Stuck(name, reply[1], reply[2])
        if reply[0] == "unsupported":
            raise UnsupportedStore(reply[1])
        if reply[0] in ("died", "refused"):
            raise ActorDied(reply[1] if reply[1].startswith("actor ") else f"actor {name}: {reply[1]}")
        return reply

    def _abandon(self) -> int | None:
        """Kill the process; every proxy of it is stale from now on."""
        self.broken = True
        return self._kill()

    def _kill(self) -> int | None:
        if self._closed:
            return None
        try:
            os.kill(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, TypeError):
            pass
        self._proc.join(timeout=5)
        code = self._proc.exitcode
        self._close_fds()
        return code

    def _close_fds(self) -> None:
        if self._closed:
            return
        self._closed = True
        for fd in (self._down_w, self._up_r):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self._proc.close()
        except (ValueError, AttributeError):
            pass

    def close(self) -> None:
        """Ask the process to exit; kill it if it does not within a second."""
        if self._closed:
            return
        self.broken = True
        try:
            _send(self._down_w, ("exit",))
        except OSError:
            pass
        self._proc.join(timeout=1.0)
        if self._proc.exitcode is None:
            self._kill()
        else:
            self._close_fds()


class TaskProxy:
    """The scheduler's actor for one task of a :class:`TaskHost`."""

    can_crash = False
    kind = "task"

    def __init__(self, name: str, host: TaskHost) -> None:
        self.name = name
        self.host = host
        self.location = ""
        self.closed = False
        host.proxies[name] = self

    @property
    def stale(self) -> bool:
        """Its host was abandoned: the executor makes a new actor."""
        return self.host.broken

    def set_location(self, location: str) -> None:
        self.location = location

    def begin(self, call: OpCall, now: float) -> Stop:
        return self._stop(self.host.ask(self.name, ("begin", self.name, call.f, call.session, call.value,
                                                    now, self.location)))

    def resume(self, now: float, fault: int | None = None) -> Stop:
        return self._stop(self.host.ask(self.name, ("resume", self.name, now, fault)))

    def ready(self) -> bool:
        """Whether the future the task is blocked on is done (asked of its host)."""
        if self.host.broken:
            return True
        return bool(self.host.ask(self.name, ("ready", self.name))[1])

    def _stop(self, reply: tuple) -> Stop:
        stop = reply[1]
        assert isinstance(stop, (Point, Done))
        proxies = self.host.proxies
        events = []
        for ev in stop.events:
            key = ev[1] if len(ev) > 1 else None
            if isinstance(key, tuple) and len(key) == 2 and key[0] == "await" and key[1] in proxies:
                ev = (ev[0], ("await", proxies[key[1]]), *ev[2:])
            events.append(ev)
        stop.events = events
        return stop

    def crash(self) -> None:
        raise RuntimeError("task actors cannot crash one at a time; use process actors")

    def shutdown(self) -> None:
        """Cancel the task in its host, if it still runs."""
        if self.closed:
            return
        self.closed = True
        if self.host.proxies.get(self.name) is self:
            del self.host.proxies[self.name]
        if not self.host.broken:
            try:
                self.host.ask(self.name, ("shutdown", self.name))
            except (Stuck, ActorDied, UnsupportedStore):
                pass
