"""Time: sleep is a point, the clocks read virtual time."""
from __future__ import annotations

from typing import Any, Callable

from sessioncheck.controlled.intercept.context import _real, current


def _sleep(seconds: float) -> None:
    ctx = current()
    if ctx is None:
        return _real["sleep"](seconds)
    ctx.point("sleep", "", repr(max(0.0, float(seconds))))
    return None


def _clock(real_name: str, offset: float, scale: float, as_int: bool) -> Callable:
    real = _real[real_name]

    def clock() -> Any:
        ctx = current()
        if ctx is None:
            return real()
        v = (offset + ctx.now) * scale
        return int(v) if as_int else v

    clock.__name__ = real_name
    return clock


def real_sleep(seconds: float) -> None:
    _real["sleep"](seconds)


def real_monotonic() -> float:
    return _real["monotonic"]()
