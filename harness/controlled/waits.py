"""Why an actor reached no point: a wait the harness cannot see, or a loop.

An actor that reaches no preemption point within the watchdog is either
blocked in a wait nobody modelled (a lock made before interception, a
``queue.get``, a socket, ``select``) or spinning in store code.  The first
is the harness's blind spot, not the store's bug: it is a configuration
error (exit 2) naming the line and the fix.  The second stays I5 (stuck).

The evidence is the actor thread's stack, sampled a few times a few
milliseconds apart: ``sys._current_frames()`` for a thread actor, a
``faulthandler`` dump written to a pipe for a process actor.  A thread
blocked in a wait shows the same innermost frame at the same instruction
in every sample, and that frame is in a module whose calls wait (threading,
queue, selectors, socket, multiprocessing...) or sits on a call that
waits (``acquire``, ``wait``, ``get``, ``recv``, ``with lock:``).  A
spinning thread moves between samples, or sits on a line that calls
nothing that waits.
"""
from __future__ import annotations

import dis
import linecache
import os
import re
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from types import CodeType, FrameType

#: Standard-library modules whose functions block: a thread stopped inside
#: one (directly or in what it calls) is waiting, not computing.
BLOCKING_MODULES = ("threading", "queue", "selectors", "socket", "ssl", "subprocess", "select",
                    "multiprocessing", "multiprocess", "concurrent", "asyncio")
#: A source line whose call waits (a lock's ``with``, an acquire, a get).
BLOCKING_CALL = re.compile(r"\.(acquire|wait|wait_for|get|join|recv\w*|accept|select|poll|read|readline|"
                           r"connect|communicate|result)\s*\(|^\s*(async\s+)?with\b")
_STDLIB = os.path.realpath(sysconfig.get_paths()["stdlib"])


@dataclass(frozen=True)
class Frame:
    file: str
    line: int
    func: str
    lasti: int = -1
    code: CodeType | None = field(default=None, compare=False, repr=False)

    @property
    def module(self) -> str:
        """The standard-library module this frame runs in ("" for others)."""
        path = os.path.realpath(self.file)
        if not path.startswith(_STDLIB + os.sep) or "site-packages" in path:
            return ""
        rel = os.path.relpath(path, _STDLIB)
        return rel.split(os.sep)[0].removesuffix(".py")

    def text(self) -> str:
        return linecache.getline(self.file, self.line).strip()


def thread_stack(ident: int | None) -> list[Frame]:
    """The stack of a thread of this process, innermost last."""
    frame: FrameType | None = sys._current_frames().get(ident) if ident is not None else None
    out = []
    while frame is not None:
        out.append(Frame(frame.f_code.co_filename, frame.f_lineno or 0, frame.f_code.co_name, frame.f_lasti,
                         frame.f_code))
        frame = frame.f_back
    return out[::-1]


def sample_thread(ident: int | None, samples: int = 3, gap: float = 0.02) -> list[list[Frame]]:
    out = []
    for i in range(samples):
        if i:
            time.sleep(gap)
        out.append(thread_stack(ident))
    return out


_FAULTHANDLER_LINE = re.compile(r'File "(.+)", line (\d+) in (\S+)')


def parse_faulthandler(text: str) -> list[Frame]:
    """The first thread of a ``faulthandler`` dump, innermost last."""
    frames = []
    for line in text.splitlines():
        if frames and not line.startswith("  "):
            break
        m = _FAULTHANDLER_LINE.search(line)
        if m:
            frames.append(Frame(m.group(1), int(m.group(2)), m.group(3)))
    return frames[::-1]


def _calls_wait(frame: Frame) -> bool:
    if frame.lasti >= 0 and frame.code is not None:
        # a thread blocked in a C call is stopped at the call instruction
        # (BEFORE_WITH for ``with lock:``); anywhere else it is computing
        op = next((i.opname for i in dis.get_instructions(frame.code) if i.offset == frame.lasti), "")
        if op and not op.startswith(("CALL", "PRECALL", "BEFORE_WITH", "BEFORE_ASYNC_WITH")):
            return False
    return bool(BLOCKING_CALL.search(frame.text()))


def blocked_at(samples: list[list[Frame]]) -> tuple[Frame, Frame] | None:
    """If the samples show a thread blocked in a wait: (the store's frame,
    the innermost frame); None for a thread that computes, or no evidence."""
    if not samples or not all(samples):
        return None
    inner = [s[-1] for s in samples]
    if any(f != inner[0] for f in inner[1:]):
        return None  # it moved: computing
    stack = samples[0]
    innermost = stack[-1]
    waiting = any(f.module in BLOCKING_MODULES for f in stack[-3:]) if innermost.module else False
    if not waiting and not innermost.module:
        waiting = _calls_wait(innermost)
    if not waiting:
        return None
    # the store's own frame: the innermost one outside the standard library
    # and outside the harness
    mine = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    own = [f for f in stack if not f.module and not os.path.abspath(f.file).startswith(mine + os.sep)]
    where = own[-1] if own else innermost
    return where, innermost


def describe(where: Frame, innermost: Frame) -> str:
    """``FILE:LINE in FUNC`` and what it is waiting in."""
    text = where.text()
    out = f"{where.file}:{where.line} in {where.func}" + (f" ({text})" if text else "")
    if innermost != where:
        out += f", waiting in {os.path.basename(innermost.file)}:{innermost.line} in {innermost.func}"
    return out
