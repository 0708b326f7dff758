"""Recording overhead of the stress runner, measured in one run.

Usage::

    python benchmarks/bench_recording.py [--stores json,sqlite,memory] [--ops 2000] [--rounds 5]

For each store, the same seeded plan (the one ``sessioncheck stress``
uses) is executed by one actor in this process, alternately *bare* (the
store calls alone) and *recorded* (``sessioncheck.stress.runner.run_actor``: the
deadline check, the invoke/ok tuples with ``time.monotonic()`` and the
conversion of each read into ids and metadata), each time on a fresh
directory.  Rounds alternate in ABBA order so that machine noise and drift hit both
sides alike;
the medians are reported with the overhead in percent and in microseconds
per operation.  ``memory`` is a dictionary-backed store defined here: it
has almost no cost of its own, so it shows the absolute per-operation cost
of recording, the worst case for the percentage.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sessioncheck.protocol import SessionState  # noqa: E402
from sessioncheck.specs import resolve  # noqa: E402
from sessioncheck.stress.runner import plan, run_actor  # noqa: E402


class MemoryStore:
    """A store in a dictionary: near-zero cost, to expose recording cost."""

    def __init__(self, location) -> None:
        self.sessions: dict[str, tuple[list, dict]] = {}

    def add_message(self, session_id, message):
        self.sessions.setdefault(session_id, ([], {}))[0].append(message)

    def persist_state(self, session_id, fields):
        meta = self.sessions.setdefault(session_id, ([], {}))[1]
        for k, v in fields.items():
            if v is None:
                meta.pop(k, None)
            else:
                meta[k] = v

    def read(self, session_id):
        msgs, meta = self.sessions.get(session_id, ([], {}))
        return SessionState(messages=list(msgs), metadata=dict(meta))


def bare(store, ops) -> None:
    """The same calls as run_actor makes, without recording anything."""
    for f, session, _, arg in ops:
        if f == "add":
            store.add_message(session, arg)
        elif f == "persist":
            store.persist_state(session, dict(arg))
        else:
            store.read(session)


def one_round(factory, ops, recorded: bool) -> float:
    tmp = tempfile.mkdtemp(prefix="sessioncheck-bench-")
    try:
        store = factory(Path(tmp))
        t = time.perf_counter()
        if recorded:
            record: list = []
            run_actor(store, ops, record, duration=1e9)
            assert len(record) == 2 * len(ops)
        else:
            bare(store, ops)
        return len(ops) / (time.perf_counter() - t)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stores", default="json,sqlite,memory")
    ap.add_argument("--ops", type=int, default=2000)
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores; "
          f"{args.ops} ops per round, {args.rounds} rounds each side, alternating")
    print("| store | bare ops/s (median) | recorded ops/s (median) | overhead | recording cost per op |")
    print("| --- | --- | --- | --- | --- |")
    ops = plan("t0", args.ops, args.sessions, args.seed)
    for name in args.stores.split(","):
        factory = MemoryStore if name == "memory" else resolve(name).factory
        one_round(factory, ops[:50], True)  # warm up imports and caches
        b, r = [], []
        for k in range(args.rounds):
            # ABBA order, so that a drift (disk cache, page cache) hits both sides alike
            for recorded in ((False, True) if k % 2 == 0 else (True, False)):
                (r if recorded else b).append(one_round(factory, ops, recorded))
        mb, mr = statistics.median(b), statistics.median(r)
        per_op_us = (1 / mr - 1 / mb) * 1e6
        print(f"| {name} | {mb:.0f} | {mr:.0f} | {(mb / mr - 1) * 100:+.1f} % | {per_op_us:.2f} us |",
              flush=True)


if __name__ == "__main__":
    main()
