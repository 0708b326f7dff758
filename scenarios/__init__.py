"""Named regressions: each a fixed interleaving or fault a real bug needed,
with the outcome every store must show.

``SCENARIOS`` is the registry, a fixed tuple: ``sessioncheck scenario NAME``
looks a name up here and never imports a module named on the command
line.  One module per scenario; its docstring tells the bug's story and
where it was seen.  ``sessioncheck.scenario`` runs them.

Programs name *where* an actor stops by marks (``until("B", "read")``),
resolved per store by a calibration run, so one program means the same on
every store; see ``harness/scenario.py``.
"""
from __future__ import annotations

from sessioncheck.scenarios import (
    clear_compute_instance_then_resume,
    delete_races_append,
    eio_on_read_then_append,
    killed_between_temp_and_rename,
    pr1727_stale_write_back,
    retention_overflow,
)

SCENARIOS = (
    pr1727_stale_write_back.SCENARIO,
    clear_compute_instance_then_resume.SCENARIO,
    delete_races_append.SCENARIO,
    killed_between_temp_and_rename.SCENARIO,
    eio_on_read_then_append.SCENARIO,
    retention_overflow.SCENARIO,
)
