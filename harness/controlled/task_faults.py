"""Which faults task actors take (``--actors tasks``), a configuration check.

Task actors are asyncio tasks of one loop (in the harness's process, or
one loop in each of the processes of ``--processes M``): they cannot be
killed alone (``crash`` needs process actors), and they stop
only at awaits, never at a file call, so ``power-loss`` and ``io-error``
(which act at file calls) do not apply.  ``cancel`` (``Task.cancel()`` at
the current await) applies only to them."""
from __future__ import annotations

from sessioncheck.errors import ConfigError


def check_task_faults(mode: str, faults: tuple[str, ...]) -> None:
    if mode == "tasks":
        bad = [f for f in faults if f != "cancel"]
        if bad:
            raise ConfigError(f"--faults {bad[0]}: task actors stop only at awaits and take only the "
                              "cancel fault; tasks in processes (--processes) are not killed one process "
                              "at a time either (use --actors processes for crash, threads or processes for file faults)")
    elif "cancel" in faults:
        raise ConfigError("--faults cancel cancels asyncio tasks: add --actors tasks")
