"""What a benchmark's results line says about the machine it ran on."""
from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else the platform's name."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def describe(*extra: str) -> str:
    """"N cores, CPU, CPython X, EXTRA..., load average a, b, c" (the load
    read now: the machines are shared, so every result carries it)."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    parts = [f"{os.cpu_count()} cores", cpu_model(), f"CPython {platform.python_version()}", *extra]
    return ", ".join(parts) + f", load average {load}"
