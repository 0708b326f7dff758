"""Tool-neutral measurement: how many schedules ran, when the first failed.

A :class:`Probe` wraps the invariant a tool calls once per explored
schedule.  It reads the real clocks bound at import, before any tool
replaces ``time.time``/``time.monotonic`` with a virtual clock, so "seconds
to the first failure" is wall time from the start of the tool's call to the
end of the first schedule whose invariant failed, the same way for every
tool and for sessioncheck.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

_now = time.perf_counter  # bound before any tool patches the time module


@dataclass
class Measurement:
    tool: str
    target: str
    mode: str
    seed: int | None
    found: bool = False
    first_failure_seconds: float | None = None  # wall time, call start -> first failing schedule
    schedules_to_first_failure: int | None = None
    schedules: int = 0  # schedules explored (invariant evaluations) before the call returned
    seconds: float = 0.0  # wall time of the whole call (includes replays / minimising after a find)
    verdict: str = ""  # what the tool itself said, first line
    error: str = ""  # the tool could not run the case: why
    extra: dict = field(default_factory=dict)

    @property
    def schedules_per_second(self) -> float:
        return self.schedules / self.seconds if self.seconds else 0.0


class Probe:
    """Counts invariant evaluations and times the first failing one."""

    def __init__(self, m: Measurement) -> None:
        self.m = m
        self.t0 = _now()

    def wrap(self, invariant: Callable[[Any], bool]) -> Callable[[Any], bool]:
        def checked(state: Any) -> bool:
            ok = bool(invariant(state))
            self.record(ok)
            return ok
        return checked

    def record(self, ok: bool) -> None:
        self.m.schedules += 1
        if not ok and self.m.first_failure_seconds is None:
            self.m.first_failure_seconds = _now() - self.t0
            self.m.schedules_to_first_failure = self.m.schedules
            self.m.found = True

    def done(self) -> Measurement:
        self.m.seconds = _now() - self.t0
        return self.m


def first_line(text: str) -> str:
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def cli(tool: str, run: Callable[[str, str, int | None, dict], Measurement]) -> None:
    """``python peer_X.py TARGET MODE [--seed N] [--opt k=v ...]``: one JSON line on stdout."""
    p = argparse.ArgumentParser(description=f"one {tool} measurement")
    p.add_argument("target")
    p.add_argument("mode")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--opt", action="append", default=[], help="tool option key=value")
    a = p.parse_args()
    opts = dict(o.split("=", 1) for o in a.opt)
    m = run(a.target, a.mode, a.seed, opts)
    sys.stdout.write("RESULT " + json.dumps(asdict(m)) + "\n")
    sys.stdout.flush()
