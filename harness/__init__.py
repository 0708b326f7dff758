"""sessioncheck: concurrency verification for chat-session stores.

The package reads like its architecture:

- ``store``       the store protocol, capabilities and spec loading
- ``history``     events and operations (the nouns of a run)
- ``checker``     decides invariants I1-I4 for a history
- ``intercept``   preemption points inside unmodified store code
- ``scheduler``   one actor at a time, locks, virtual time
- ``thread_actor`` / ``process_actor``  the two kinds of actor
- ``program``     the schedule as data and its Hypothesis strategy
- ``engine``      runs programs, drives Hypothesis, produces reports
- ``story``       a counterexample told as numbered steps
- ``report``      the versioned JSON report, parsed and validated
- ``cli``         the ``sessioncheck`` command
- ``pytest_plugin`` the pytest entry point
"""
from __future__ import annotations

__version__ = "0.1.0"
