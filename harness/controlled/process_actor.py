"""Process actors: one forked OS process per actor, a baton over raw pipes.

The process is started with ``multiprocess`` (fork), so it inherits the
installed interception and the resolved store factory.  Control messages
travel over two raw ``os.pipe`` pairs as length-prefixed pickles of plain
tuples: the notes measured raw pipes at 4-5x the speed of a dill-pickled
``multiprocess.Pipe``.  Only the harness writes to these pipes; nothing
read from them names code to load.

Running ahead (:meth:`ProcessActor.run_ahead`): the child takes the
points the scheduler would let it take anyway by itself and writes each
to the pipe without waiting for an answer (the parent reads them in
bulk); only the point it stops at waits for the parent.

A process actor can be killed (``crash``): SIGKILL at its current point,
which is what ``kill -9`` of a real writer does.  Every process is reaped:
``shutdown`` asks it to exit, waits briefly, then kills it; the parent's
pipe ends are closed in every case.
"""
from __future__ import annotations

import _thread
import os
import pickle
import select
import signal
import struct
import time
from typing import Any

import multiprocess

from sessioncheck.controlled import exits, intercept
from sessioncheck.controlled.actor import ActorDied, Ahead, Done, OpCall, Point, Runner, Stop, Stuck
from sessioncheck.controlled.intercept import threads
from sessioncheck.controlled.intercept.context import RECORD_PRIVATE
from sessioncheck.errors import UnsupportedStore
from sessioncheck.protocol import StoreSpec

_LEN = struct.Struct("!I")


def _send(fd: int, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    os.write(fd, _LEN.pack(len(data)) + data)


def _recv_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        b = os.read(fd, n)
        if not b:
            raise EOFError("actor channel closed")
        chunks.append(b)
        n -= len(b)
    return b"".join(chunks)


def _recv(fd: int) -> Any:
    (n,) = _LEN.unpack(_recv_exact(fd, _LEN.size))
    return pickle.loads(_recv_exact(fd, n))


def _child(name: str, spec: StoreSpec, down_r: int, up_w: int, close_fds: list[int], dump_w: int = -1) -> None:
    """The actor process: wait for calls, run them, report points."""
    for fd in close_fds:
        try:
            os.close(fd)
        except OSError:
            pass
    if dump_w >= 0:
        import faulthandler

        # SIGUSR1 dumps this process's stack to the parent (a stuck actor's
        # wait is classified from it: sessioncheck.controlled.waits)
        faulthandler.register(signal.SIGUSR1, file=dump_w, all_threads=False)
    # A Ctrl-C in the terminal (or a SIGTERM/SIGHUP sent to the whole
    # process group) reaches every actor; the parent decides when actors
    # end, and cleans up after them.
    for sig in _PARENT_DECIDES:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _PARENT_DECIDES)  # blocked across the fork
    die_with_parent()
    runner = Runner()
    ctx: intercept.ActorContext | None = None
    location = ""
    # Any thread of this process may make a point (the actor's own, one the
    # store started, pool work it submitted): the mutex serializes them on
    # the one channel, and ``active`` says an operation is running.
    mutex = _thread.allocate_lock()
    state: dict[str, Any] = {"active": False, "ahead": None}

    def point(kind: str, path: str, detail: str) -> int | None:
        with mutex:
            assert ctx is not None
            if not state["active"]:
                # Nobody waits for this point: leave the reason in the
                # channel, where the next call finds it, and unwind.
                why = threads.background_message(kind, path)
                _send(up_w, ("unsupported", why))
                threads.refuse(why, ctx)
            why = threads.unsupported(ctx)
            if why:
                _send(up_w, ("unsupported", why))
            else:
                events, ctx.events = ctx.events, []
                ahead = state["ahead"]
                if ahead is not None and ahead.take(kind, detail, events):
                    # The scheduler would let it go on: no hand-over.  The
                    # point is reported without waiting for an answer, so a
                    # child that gets stuck later has told every point it
                    # took, and the watchdog still bounds the time between
                    # two points.
                    ctx.now = ahead.now
                    _send(up_w, ("ran", kind, path, detail, events, ahead.now))
                    return None
                state["ahead"] = None
                _send(up_w, ("point", kind, path, detail, events))
            msg = _recv(down_r)
            if msg[0] == "exit" or why:  # shut down while parked: leave at once
                exits.real_exit(0)
            ctx.now = msg[1]
            if msg[0] == "ahead":
                state["ahead"] = Ahead(msg[1], msg[2], msg[3], msg[4])
                return None
            return msg[2]

    try:
        while True:
            msg = _recv(down_r)
            if msg[0] == "exit":
                break
            _, f, session, value, message, now, loc = msg
            if f == "open" or ctx is None or loc != location or runner.store is None:
                location = loc
                ctx = intercept.ActorContext(name, location, point)
                ctx.record = RECORD_PRIVATE[0]  # as the executor set it when it forked this actor
                intercept.enter(ctx)
            ctx.now = now
            with mutex:
                state["active"] = True
            try:
                done: Done | None = runner.run(spec, location, OpCall(f, session, value, message))
            except threads.Unsupported:
                done = None
            with mutex:
                state["active"] = False
                state["ahead"] = None
                why = threads.unsupported(ctx)
                if why or done is None:
                    _send(up_w, ("unsupported", why or "unsupported"))
                else:
                    events, ctx.events = ctx.events, []
                    _send(up_w, ("done", done.status, done.value, done.error, events, done.causes))
    except (EOFError, OSError):
        pass
    finally:
        exits.real_exit(0)  # no atexit handlers, no flushing of inherited buffers


_PR_SET_PDEATHSIG = 1
#: signals the parent handles for its actors (they ignore them)
_PARENT_DECIDES = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _block_signals() -> set:
    return signal.pthread_sigmask(signal.SIG_BLOCK, _PARENT_DECIDES)


def _restore_signals(old: set) -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, old)


def die_with_parent() -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux
    ``prctl(PR_SET_PDEATHSIG)``), so a ``kill -9`` of the harness leaves no
    actor running.  Elsewhere the actor still ends when it reads EOF on
    its channel, which it does between calls."""
    parent = os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        exits.real_exit(0)


class ProcessActor:
    can_crash = True
    kind = "process"

    def __init__(self, name: str, spec: StoreSpec, watchdog: float = 10.0) -> None:
        self.name = name
        self.spec = spec
        self.watchdog = watchdog
        self.location = ""
        down_r, self._down_w = os.pipe()
        self._up_r, up_w = os.pipe()
        self._dump_r, dump_w = os.pipe()
        ctx = multiprocess.get_context("fork")
        self._proc = ctx.Process(target=_child, args=(name, spec, down_r, up_w,
                                                      [self._down_w, self._up_r, self._dump_r], dump_w),
                                 name=f"sessioncheck-{name}", daemon=True)
        # No signal handler may run during the fork: one raising in an
        # at-fork callback (logging's) is printed and swallowed there, so a
        # Ctrl-C or SIGTERM would be lost, and the child must not run the
        # parent's handlers before it ignores those signals.
        blocked = _block_signals()
        try:
            self._proc.start()
        finally:
            _restore_signals(blocked)
        os.close(down_r)
        os.close(up_w)
        os.close(dump_w)
        self._poll = select.poll()
        self._poll.register(self._up_r, select.POLLIN)
        self._buf = bytearray()  # read from the child, not yet parsed
        self._closed = False
        self._refused: str | None = None
        self._exitcode: int | None = None

    def set_location(self, location: str) -> None:
        self.location = location

    def _wait(self, went_on: Any = None) -> Stop:
        while True:
            msg = self._next()
            if msg[0] != "ran":
                break
            if went_on is not None:
                went_on(Point(msg[1], msg[2], msg[3], msg[4], msg[5]))
        if msg[0] == "unsupported":
            self._refused = msg[1]
            raise UnsupportedStore(msg[1])
        if msg[0] == "point":
            return Point(msg[1], msg[2], msg[3], msg[4])
        if msg[1] == "died":
            raise ActorDied(f"actor {self.name}: {msg[3]}")
        return Done(msg[1], msg[2], msg[3], msg[4], tuple(msg[5]))

    def _next(self) -> tuple:
        """The child's next message (buffered: a child running ahead
        writes several before the parent reads)."""
        while True:
            buf = self._buf
            if len(buf) >= _LEN.size:
                (n,) = _LEN.unpack_from(buf)
                if len(buf) >= _LEN.size + n:
                    msg = pickle.loads(buf[_LEN.size:_LEN.size + n])
                    del buf[:_LEN.size + n]
                    return msg
            self._fill()

    def _fill(self) -> None:
        if not self._poll.poll(int(self.watchdog * 1000)):
            samples = self._stacks()
            self._kill()
            raise Stuck(self.name, self.watchdog, samples)
        try:
            data = os.read(self._up_r, 1 << 16)
            if not data:
                raise EOFError("actor channel closed")
            self._buf += data
        except (EOFError, OSError):
            pid = self._proc.pid
            self._kill()  # reaps it and closes the process object
            code = self._exitcode
            how = (f"was killed by signal {-code}" if code is not None and code < 0
                   else f"exited with code {code}" if code is not None else "exited")
            raise ActorDied(f"actor {self.name} (pid {pid}) {how} in the middle of an operation") from None

    def _check(self) -> None:
        # Sticky: once the store did something unsupported, every later
        # call on this actor says so at once (Hypothesis replays it).
        if self._refused:
            raise UnsupportedStore(self._refused)

    def _stacks(self, samples: int = 3, gap: float = 0.02) -> list:
        """The child's stack, dumped by faulthandler a few times (bounded:
        a dump that does not come within half a second is left out)."""
        from sessioncheck.controlled.waits import parse_faulthandler

        out = []
        poll = select.poll()
        poll.register(self._dump_r, select.POLLIN)
        for i in range(samples):
            try:
                os.kill(self._proc.pid, signal.SIGUSR1)
            except (ProcessLookupError, TypeError):
                break
            chunks = []
            wait = 500
            while poll.poll(wait):
                chunks.append(os.read(self._dump_r, 65536))
                wait = 30  # the rest of this dump follows at once
            frames = parse_faulthandler(b"".join(chunks).decode("utf-8", "replace"))
            if frames:
                out.append(frames)
            if i + 1 < samples:
                time.sleep(gap)
        return out

    def begin(self, call: OpCall, now: float) -> Stop:
        self._check()
        _send(self._down_w, ("call", call.f, call.session, call.value, call.message, now, self.location))
        return self._wait()

    def resume(self, now: float, fault: int | None = None) -> Stop:
        self._check()
        _send(self._down_w, ("go", now, fault))
        return self._wait()

    def run_ahead(self, now: float, budget: int, drain: bool, blocked_on: Any, went_on: Any) -> Stop:
        """Resume, and let the child go on by itself through the points
        :class:`~sessioncheck.controlled.actor.Ahead` allows, at most
        ``budget`` in all.  The child reports each point it went on from as
        it goes, without waiting (the parent handles one while the child
        runs to the next: sending them all with the stop instead measured
        slower, 11.7 against 10.2-10.5 ms a median ``json`` run), then the
        point or result it stops at; ``went_on(point)`` is called for each,
        in order, before that stop is returned."""
        self._check()
        _send(self._down_w, ("ahead", now, budget, drain, blocked_on))
        return self._wait(went_on)

    def crash(self) -> None:
        """kill -9 at the current point; the kernel releases its locks."""
        self._kill()

    def _kill(self) -> None:
        if self._closed:
            return
        try:
            os.kill(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, TypeError):
            pass
        self._proc.join(timeout=5)
        self._exitcode = self._proc.exitcode
        self._close_fds()

    def _close_fds(self) -> None:
        if self._closed:
            return
        self._closed = True
        for fd in (self._down_w, self._up_r, self._dump_r):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self._proc.close()
        except (ValueError, AttributeError):
            pass

    def shutdown(self) -> None:
        """Ask the process to exit; kill it if it does not within a second."""
        if self._closed:
            return
        try:
            _send(self._down_w, ("exit",))
        except OSError:
            pass
        self._proc.join(timeout=1.0)
        if self._proc.exitcode is None:
            self._kill()
        else:
            self._close_fds()
