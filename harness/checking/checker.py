"""The history checker: decides invariants I1-I4 for a recorded history.

Both engines call :func:`check`: the controlled engine after every example
(histories of a few dozen operations, so that path has no setup cost), the
stress runner once on histories of up to millions of events.

Design notes
------------

*Partitioning.*  Sessions are independent objects and so is every metadata
field of a session (linearizability is local: a history is linearizable iff
each object's sub-history is), so the checker splits the history by
session for messages (I1, I2) and by ``(session, field)`` for metadata
(I3).  Cost therefore grows with the size of the largest partition, not the
product of all of them.

*Messages.*  A session's messages are an append-only list.  Because it only
grows at its end, every read of a session with no delete must be a prefix
of its longest read.  The fast path proves a session clean with that fact
in time linear in the total size of its reads: order (I2) is checked once
on the longest read, and "acknowledged implies present" (I1) becomes a
comparison of positions, using for each message the earliest instant it
was known to exist (its ``ok``, or the end of the first read that saw it:
a message once seen must never vanish).  When the fast path does not prove
the session clean, a slower per-read pass finds and explains every
violation.  Deletes are handled soundly: a message is required in a read
only if no delete could have fallen between its append and the read, and
the prefix rule is not applied across deletes.

*Registers.*  Each field is a last-writer-wins register whose initial value
is ``None``; a read that lacks the field read ``None``.  The checker sweeps
the register's call and return events in time order and keeps the set of
possible configurations ``(value, reads not yet linearized, writes that
must still take effect, writes that may still take effect or be dropped)``,
the just-in-time linearization of Lowe's checker.  Three facts keep that
set small (usually one configuration):

- a read is linearized as soon as the current value equals its value (that
  choice is never worse);
- a write that overlaps any linearized write, or whose value equals the
  current value, can be placed just before that point with no visible
  effect, so at its return it may be *dropped* instead of taking effect;
- an ``info`` write (outcome unknown) may take effect at any later instant
  or never; after the last read of its value has returned it can no longer
  matter, so it expires there (and one whose value is never read later is
  ignored outright).

At a quiescent instant this set collapses to the possible values, which is
the segment cut of Porcupine, found for free.  An empty set is a
violation; the checker then cuts the smallest time window that still fails
from *any* starting value, and shrinks it by dropping reads and making
writes optional while it still fails.  What is left is the explanation.
Running out of ``budget`` seconds or ``max_states`` configurations gives
``unknown``, never ``ok``.
"""
from __future__ import annotations

import bisect
import gc
import json
import math
import time
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import combinations
from typing import Any, Iterable, Literal, Sequence

from sessioncheck.errors import HistoryError
from sessioncheck.checking.history import Event, Operation, pair
from sessioncheck.words import plural

INF = math.inf

#: Findings kept per invariant; the rest are counted in ``stats``.
MAX_FINDINGS_PER_INVARIANT = 25

#: A register window larger than this is reported without shrinking it.
_MAX_SHRINK_OPS = 150


@dataclass(frozen=True)
class Finding:
    """One violated invariant, explained.

    ``invariant`` is ``"I1"`` (lost, duplicated or phantom message),
    ``"I2"`` (order), ``"I3"`` (metadata register) or ``"I4"`` (a state the
    specification does not allow).  ``subject`` names the message id or the
    metadata field.  ``summary`` is one plain sentence; ``ops`` is the
    smallest set of operations that shows the violation, in start order.
    """

    invariant: str
    session: str
    subject: str | None
    summary: str
    ops: tuple[Operation, ...]


@dataclass
class CheckResult:
    """The verdict on a history.

    ``unknown`` means the search ran out of budget before deciding every
    register; it is never a pass.  When a violation is found, the verdict
    is ``violation`` even if some other register ran out of budget.
    """

    verdict: Literal["ok", "violation", "unknown"]
    findings: list[Finding]
    reason: str = ""
    stats: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


class _OutOfBudget(Exception):
    pass


def check(
    history: Sequence[Event] | Sequence[Operation],
    *,
    budget: float | None = None,
    max_states: int = 1_000_000,
) -> CheckResult:
    """Decide I1-I4 for ``history``.

    ``history`` is either the recorded events (paired here with
    :func:`sessioncheck.checking.history.pair`) or operations, used as given.  A final
    state is simply a read that starts after everything else.  ``budget``
    bounds the seconds spent on register search, and ``max_states`` the
    width of that search: the configurations one register may have open
    at one instant (usually one or two).  Exceeding either gives the
    verdict ``unknown`` with the reason (unless a violation was found).

    Raises :class:`HistoryError` when a message id is added twice to one
    session (message ids must be unique).
    """
    started = time.perf_counter()
    # The checker makes millions of small acyclic objects on big histories;
    # the cycle collector would rescan them all again and again for nothing.
    pause_gc = len(history) > 10_000 and gc.isenabled()
    if pause_gc:
        gc.disable()
    try:
        return _check(history, started, budget, max_states)
    finally:
        if pause_gc:
            gc.enable()


def _check(history: Sequence[Event] | Sequence[Operation], started: float, budget: float | None,
           max_states: int) -> CheckResult:
    ops = _as_operations(history)
    ctx = _Context(ops, started + budget if budget is not None else None, max_states)
    sessions: dict[str, list[Operation]] = {}
    for op in ops:
        s = sessions.get(op.session)
        if s is None:
            sessions[op.session] = [op]
        else:
            s.append(op)
    for sid, sops in sessions.items():
        _check_session(sid, sops, ctx)
    findings = ctx.findings
    if findings:
        verdict = "violation"
    elif ctx.unknown:
        verdict = "unknown"
    else:
        verdict = "ok"
    stats = {
        "ops": len(ops),
        "sessions": len(sessions),
        "registers": ctx.registers,
        "states": ctx.states,
        "findings_total": dict(ctx.counts),
        "seconds": time.perf_counter() - started,
    }
    return CheckResult(verdict, findings, "; ".join(ctx.unknown), stats)


# -- plumbing ---------------------------------------------------------------------


def _as_operations(history: Sequence[Event] | Sequence[Operation]) -> list[Operation]:
    if not history:
        return []
    first = history[0]
    if isinstance(first, Event):
        return pair(history)  # type: ignore[arg-type]
    if isinstance(first, Operation):
        return list(history)  # type: ignore[arg-type]
    raise TypeError(f"check() takes events or operations, not {type(first).__name__}")


class _Context:
    """Run-wide state: findings, budget, time formatting."""

    __slots__ = ("ops", "deadline", "max_states", "findings", "counts", "unknown",
                 "registers", "states", "_integral", "_t0")

    def __init__(self, ops: list[Operation], deadline: float | None, max_states: int) -> None:
        self.ops = ops
        self.deadline = deadline
        self.max_states = max_states
        self.findings: list[Finding] = []
        self.counts: dict[str, int] = {}
        self.unknown: list[str] = []
        self.registers = 0
        self.states = 0
        self._integral: bool | None = None
        self._t0 = 0.0

    def add(self, invariant: str, session: str, subject: Any, summary: str,
            ops: Iterable[Operation]) -> None:
        n = self.counts.get(invariant, 0) + 1
        self.counts[invariant] = n
        if n <= MAX_FINDINGS_PER_INVARIANT:
            uniq = {id(o): o for o in ops}
            ordered = tuple(sorted(uniq.values(), key=lambda o: (o.start, o.index)))
            self.findings.append(Finding(invariant, session, None if subject is None else str(subject),
                                         summary, ordered))

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.perf_counter() > self.deadline

    # Times: logical steps print as they are; monotonic clock readings print
    # as seconds since the first invocation, which is what a person can use.
    def t(self, x: float) -> str:
        if self._integral is None:
            finite = [v for o in self.ops for v in (o.start, o.end) if v != INF]
            self._integral = _logical(finite)
            self._t0 = min((o.start for o in self.ops), default=0.0)
        if x == INF:
            return "never"
        if self._integral:
            return _step(x)
        return f"{x - self._t0:.4f}s"

    def span(self, op: Operation) -> str:
        if op.end == INF:
            return f"t={self.t(op.start)}.. (no reply)"
        return f"t={self.t(op.start)}..{self.t(op.end)}"


def _logical(times: list[float]) -> bool:
    """Are these logical steps (whole numbers, or halves placed between
    steps) rather than clock readings?"""
    return all(float(2 * v).is_integer() and abs(v) < 1e9 for v in times)


def _step(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _read_state(op: Operation) -> tuple[list | None, dict | None]:
    out = op.output
    if not isinstance(out, dict):
        return None, None
    msgs, meta = out.get("messages"), out.get("metadata", {})
    if not isinstance(msgs, list):
        return None, None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        return msgs, None
    return msgs, meta


_BUILTIN_EFFECT = {"add": "append", "persist": "registers", "read": "read", "delete": "delete",
                   "pop": "remove_last", "clear": "clear", "rename": "registers"}


def _check_session(sid: str, sops: list[Operation], ctx: _Context) -> None:
    adds: dict[Any, Operation] = {}
    reads: list[tuple[Operation, list, dict]] = []
    writes: list[Operation] = []
    deletes: list[Operation] = []
    removals: list[Operation] = []  # pops and clears: messages only
    for op in sops:
        f = _BUILTIN_EFFECT.get(op.f) or op.effect
        if f == "read":
            if op.status != "ok":
                continue  # an unanswered read constrains nothing
            msgs, meta = _read_state(op)
            if msgs is None or meta is None:
                ctx.add("I4", sid, None,
                        f"the read by {op.process} at {ctx.span(op)} returned {op.output!r}, "
                        "which is not a session state (messages list and metadata map)", [op])
                continue
            try:
                set(msgs)  # ids must be hashable; duplicates are the message pass's job
            except TypeError:
                ctx.add("I4", sid, None,
                        f"the read by {op.process} at {ctx.span(op)} returned a message list "
                        "with entries that are not message ids", [op])
                continue
            reads.append((op, msgs, meta))
        elif f == "append":
            prev = adds.get(op.value)
            if prev is not None:
                raise HistoryError(
                    f"message id {op.value!r} is added twice to session {sid!r} "
                    f"(by {prev.process} and {op.process}); message ids must be unique")
            adds[op.value] = op
        elif f == "registers":
            if op.status != "fail":
                writes.append(op)
        elif f == "delete":
            if op.status != "fail":
                deletes.append(op)
        elif f in ("remove_last", "clear"):
            if op.status != "fail":
                removals.append(op)
        elif f is None:
            raise HistoryError(f"operation {op.f!r} of {op.process} is not defined: register it "
                               "(sessioncheck.operations) or give its events an 'effect'")
    if reads or adds:
        _Messages(sid, adds, reads, deletes, ctx, removals).check()
    if reads:
        _check_registers(sid, reads, writes, deletes, ctx)


# -- messages: I1, I2 ---------------------------------------------------------------


class _Messages:
    def __init__(self, sid: str, adds: dict[Any, Operation],
                 reads: list[tuple[Operation, list, dict]], deletes: list[Operation],
                 ctx: _Context, removals: Sequence[Operation] = ()) -> None:
        self.sid = sid
        self.adds = adds
        self.reads = reads
        self.ctx = ctx
        # A pop that answered names the message it removed: it excuses that
        # message alone.  A clear, and a pop whose outcome is unknown, may
        # have removed any message, as a delete may (the messages' part).
        self.popped: dict[Any, Operation] = {}
        self.removers = list(deletes)
        self.deletes = deletes
        for op in removals:
            f = _BUILTIN_EFFECT.get(op.f) or op.effect
            if f == "remove_last" and op.status == "ok":
                if op.output is not None:
                    self._pop(op)
            else:
                self.removers.append(op)
        self.clean_list = not self.removers and not removals

    def _pop(self, op: Operation) -> None:
        ctx, sid, m = self.ctx, self.sid, op.output
        a = self.adds.get(m)
        where = f"the {op.f} by {op.process} at {ctx.span(op)} returned {m}"
        prev = self.popped.get(m)
        if prev is not None:
            ctx.add("I1", sid, m, f"{where}, which the {prev.f} by {prev.process} at {ctx.span(prev)} "
                    "had removed already", [x for x in (a, prev, op) if x is not None])
        elif a is None:
            ctx.add("I1", sid, m, f"{where}, which was never added", [op])
        elif a.status == "fail":
            ctx.add("I1", sid, m, f"{where}, but its add by {a.process} at {ctx.span(a)} failed", [a, op])
        elif a.start > op.end:
            ctx.add("I1", sid, m, f"{where}, but its add by {a.process} was invoked only at "
                    f"t={ctx.t(a.start)}, after the {op.f} ended", [a, op])
        self.popped.setdefault(m, op)

    def check(self) -> None:
        if self.clean_list and self._fast_clean():
            return
        self._explain()

    # The fast path: True only if the session certainly has no violation.
    def _fast_clean(self) -> bool:
        adds, reads = self.adds, self.reads
        if not reads:
            return True  # nothing observed, nothing to contradict
        longest = max(reads, key=lambda r: len(r[1]))[1]
        n = len(longest)
        if len(set(longest)) != n:
            return False
        for _, msgs, _ in reads:
            if len(msgs) != n and longest[:len(msgs)] != msgs:
                return False
            if len(msgs) == n and msgs != longest:
                return False
        # Phantoms and the latest add start along the list.
        pm_start = []
        run = -INF
        for m in longest:
            a = adds.get(m)
            if a is None or a.status == "fail":
                return False
            if a.start > run:
                run = a.start
            pm_start.append(run)
        # Earliest end of a read whose length exceeds p, for every position p.
        best = [INF] * (n + 1)
        for op, msgs, _ in reads:
            k = len(msgs)
            if op.end < best[k]:
                best[k] = op.end
            if k and pm_start[k - 1] > op.end:
                return False  # holds a message whose add began after the read ended
        suffix = [INF] * (n + 1)  # suffix[p] = min end of reads with length > p
        run = INF
        for k in range(n, 0, -1):
            if best[k] < run:
                run = best[k]
            suffix[k - 1] = run
        # Order (I2) on the longest read, with acknowledgement times.
        pos = {}
        run_start = -INF
        for p, m in enumerate(longest):
            a = adds[m]
            ack = a.end if a.status == "ok" else INF
            if suffix[p] < ack:
                ack = suffix[p]
            if ack < run_start:
                return False
            if a.start > run_start:
                run_start = a.start
            pos[m] = (ack, p)
        # Presence (I1): every message known to exist before a read began
        # must sit inside that read's prefix.
        acked: list[tuple[float, float]] = []
        for m, a in adds.items():
            hit = pos.get(m)
            if hit is not None:
                acked.append(hit)
            elif a.status == "ok":
                acked.append((a.end, INF))
        if not acked:
            return True
        acked.sort()
        ack_times = [x[0] for x in acked]
        pmax = []
        run = -1.0
        for _, p in acked:
            if p > run:
                run = p
            pmax.append(run)
        for op, msgs, _ in reads:
            i = bisect.bisect_left(ack_times, op.start)
            if i and pmax[i - 1] >= len(msgs):
                return False
        return True

    # The slow path: find and explain every violation.
    def _explain(self) -> None:
        ctx, sid, adds = self.ctx, self.sid, self.adds
        reads = sorted(self.reads, key=lambda r: (r[0].start, r[0].index))
        # first_seen[m] = the read that ended first among those holding m.
        first_seen: dict[Any, Operation] = {}
        for op, msgs, _ in reads:
            for m in set(msgs):
                prev = first_seen.get(m)
                if prev is None or op.end < prev.end:
                    first_seen[m] = op
        ack: dict[Any, tuple[float, Operation]] = {}
        for m, a in adds.items():
            t = a.end if a.status == "ok" else INF
            seen = first_seen.get(m)
            if seen is not None and seen.end < t:
                ack[m] = (seen.end, seen)
            elif t < INF:
                ack[m] = (t, a)
        for m, seen in first_seen.items():
            if m not in adds and m not in ack:
                ack[m] = (seen.end, seen)
        before = len(ctx.findings)
        counts_before = dict(ctx.counts)
        reported_missing: set = set()
        order = sorted(ack.items(), key=lambda kv: kv[1][0])
        ack_times = [v[0] for _, v in order]
        for op, msgs, _ in reads:
            self._phantoms_and_duplicates(op, msgs)
            self._order(op, msgs, ack)
            present = set(msgs)
            # a delete that began before the read ended may have taken
            # effect before the read did
            limit = self._last_delete_before(op.end)
            # A message known before ``limit`` was appended before it too:
            # a delete may have removed it, so start after those.
            first = bisect.bisect_right(ack_times, limit) if limit > -INF else 0
            for m, (t, witness) in order[first:bisect.bisect_left(ack_times, op.start)]:
                if m in present or m in reported_missing:
                    continue
                p = self.popped.get(m)
                if p is not None and p.start < op.end:
                    continue  # a pop removed it, and may have done so before the read
                a = adds.get(m)
                start = a.start if a is not None else witness.start
                if start <= limit:
                    continue  # a delete may have removed it
                reported_missing.add(m)
                ctx.add("I1", sid, m, f"{m}, {self._known(m, t, witness)}, is missing from the "
                        f"read by {op.process} at {ctx.span(op)}",
                        [x for x in (a, witness, op) if x is not None])
        ok_deletes = [d for d in self.removers if d.status == "ok"]  # deletes and clears
        reappeared: set = set()
        for op, msgs, _ in reads if self.popped else ():
            for m in msgs:
                p = self.popped.get(m)
                if p is not None and p.end < op.start and m not in reappeared:
                    reappeared.add(m)
                    ctx.add("I1", sid, m, f"{m}, removed by the {p.f} by {p.process} at {ctx.span(p)}, "
                            f"reappears in the read by {op.process} at {ctx.span(op)}",
                            [x for x in (adds.get(m), p, op) if x is not None])
                    break
        for op, msgs, _ in reads if ok_deletes else ():
            # Only the latest-starting delete that ended before the read
            # matters: anything known before an earlier one is known before it.
            d = max((d for d in ok_deletes if d.end < op.start), key=lambda d: d.start, default=None)
            if d is None:
                continue
            for m in msgs:
                hit = ack.get(m)
                if hit is not None and hit[0] < d.start and m not in reappeared:
                    reappeared.add(m)
                    ctx.add("I1", sid, m, f"{m}, {self._known(m, hit[0], hit[1])}, before the "
                            f"{_removal(d)} by {d.process} at {ctx.span(d)}, reappears in the read by "
                            f"{op.process} at {ctx.span(op)}",
                            [x for x in (adds.get(m), hit[1], d, op) if x is not None])
                    break
        if self.clean_list and ctx.counts == counts_before and len(ctx.findings) == before:
            self._prefixes(reads)

    def _known(self, m: Any, t: float, witness: Operation) -> str:
        if witness.f != "read" and (_BUILTIN_EFFECT.get(witness.f) or witness.effect) == "append":
            return f"acknowledged to {witness.process} at t={self.ctx.t(t)}"
        return f"seen by {witness.process} in a read that ended at t={self.ctx.t(t)}"

    def _last_delete_before(self, t: float) -> float:
        """The latest instant a delete, clear or unanswered pop that began
        before ``t``, or at ``t``, may have taken effect (operations that
        touch at one instant are concurrent: only ``a.end < b.start`` orders
        a before b)."""
        limit = -INF
        for d in self.removers:
            if d.start <= t and d.end > limit:
                limit = d.end
        return limit

    def _phantoms_and_duplicates(self, op: Operation, msgs: list) -> None:
        ctx, sid = self.ctx, self.sid
        where = f"the read by {op.process} at {ctx.span(op)}"
        if len(set(msgs)) != len(msgs):
            seen: set = set()
            for m in msgs:
                if m in seen:
                    a = self.adds.get(m)
                    ctx.add("I1", sid, m, f"{m} appears {msgs.count(m)} times in {where}",
                            [x for x in (a, op) if x is not None])
                    break
                seen.add(m)
        for m in msgs:
            a = self.adds.get(m)
            if a is None:
                ctx.add("I1", sid, m, f"{m} appears in {where} but was never added", [op])
            elif a.status == "fail":
                ctx.add("I1", sid, m, f"{m} appears in {where} but its add by {a.process} at "
                        f"{ctx.span(a)} failed (it certainly did not take effect)", [a, op])
            elif a.start > op.end:
                ctx.add("I1", sid, m, f"{m} appears in {where} but its add by {a.process} was "
                        f"invoked only at t={ctx.t(a.start)}, after the read ended", [a, op])

    def _order(self, op: Operation, msgs: list, ack: dict) -> None:
        """I2 within one read: a later position must not have been known to
        exist before an earlier position's add was even invoked."""
        ctx = self.ctx
        run_start, run_msg = -INF, None
        for m in msgs:
            hit = ack.get(m)
            if hit is not None and hit[0] < run_start and hit[1] is not op:
                a = self.adds[run_msg]
                ctx.add("I2", self.sid, m,
                        f"{run_msg} precedes {m} in the read by {op.process} at {ctx.span(op)}, "
                        f"but {m} was {self._known(m, hit[0], hit[1])}, before the add of "
                        f"{run_msg} by {a.process} was invoked at t={ctx.t(a.start)}",
                        [x for x in (a, self.adds.get(m), hit[1], op) if x is not None])
                return
            a = self.adds.get(m)
            if a is not None and a.start > run_start:
                run_start, run_msg = a.start, m

    def _prefixes(self, reads: list[tuple[Operation, list, dict]]) -> None:
        """Every read of an append-only list is a prefix of its longest read."""
        ctx = self.ctx
        lop, longest, _ = max(reads, key=lambda r: len(r[1]))
        for op, msgs, _ in reads:
            if longest[:len(msgs)] == msgs:
                continue
            i = next(i for i, (x, y) in enumerate(zip(msgs, longest)) if x != y)
            ctx.add("I2", self.sid, msgs[i],
                    f"the reads by {op.process} at {ctx.span(op)} and by {lop.process} at "
                    f"{ctx.span(lop)} disagree at position {i + 1} ({msgs[i]} vs {longest[i]}); "
                    "an append-only list cannot show both", [op, lop])
            return


# -- metadata: I3, I4 ---------------------------------------------------------------

_ANY = ("\0any",)  # starting value "whatever it was": only used to cut witnesses


def _json_number(v: Any) -> Any:
    """``v`` with every float that holds an integer written as that integer:
    JSON has one number type, and a store that keeps JSON (PostgreSQL's
    ``jsonb``, a JavaScript client) gives ``1e+16`` back as
    ``10000000000000000`` and ``2.0`` as ``2``.  The same number is the
    same value (the decimal number of the float's shortest text, as JSON
    writes it); a number that changed (``0.25`` read as ``0``, ``2**53 + 1``
    as ``2**53``) still differs.  Booleans stay booleans."""
    if type(v) is float:
        if not v.is_integer():
            return v
        # the decimal number the float's JSON text says (its shortest repr),
        # which a decimal store keeps: 4.394500063374095e+16 is
        # 43945000633740950, not the binary float's 43945000633740952
        return int(Decimal(repr(v)))
    if type(v) is list:
        return [_json_number(x) for x in v]
    if type(v) is dict:
        return {k: _json_number(x) for k, x in v.items()}
    return v


def _vkey(v: Any) -> Any:
    """A hashable key with JSON equality (so 1 and True stay different, and
    1 and 1.0, one JSON number, are the same: :func:`_json_number`)."""
    if v is None or type(v) is str:
        return v
    try:
        return ("\0json", json.dumps(_json_number(v), sort_keys=True))
    except (TypeError, ValueError):
        return ("\0repr", repr(v))


def _show(v: Any) -> str:
    return "None" if v is None else repr(v)


class _RegOp:
    """One operation as seen by one register."""

    __slots__ = ("start", "end", "write", "key", "optional", "op", "value")

    def __init__(self, start: float, end: float, write: bool, key: Any, optional: bool,
                 op: Operation, value: Any) -> None:
        self.start, self.end, self.write, self.key = start, end, write, key
        self.optional, self.op, self.value = optional, op, value


def _check_registers(sid: str, reads: list[tuple[Operation, list, dict]],
                     writes: list[Operation], deletes: list[Operation], ctx: _Context) -> None:
    fields: dict[str, list[tuple[Operation, Any]]] = {}
    for w in writes:
        value = w.value if isinstance(w.value, dict) else {}
        for k, v in value.items():
            fields.setdefault(k, []).append((w, v))
    for _, _, meta in reads:
        for k in meta:
            if k not in fields:
                fields[k] = []
    for fname, fwrites in fields.items():
        ctx.registers += 1
        if not fwrites and not deletes:
            # Never written: every read must show None.
            for op, _, meta in reads:
                v = meta.get(fname)
                if v is not None:
                    where = f"field {fname}: the read by {op.process} at {ctx.span(op)} returned {_show(v)}"
                    if not _misplaced_value(sid, fname, v, where, [op], ctx):
                        ctx.add("I4", sid, fname, f"{where}, a value nothing ever wrote to it", [op])
                    break
            continue
        if ctx.out_of_time():
            ctx.unknown.append(f"ran out of the time budget before field {fname!r} of session {sid!r}")
            continue
        rops = _register_ops(fname, reads, fwrites, deletes)
        try:
            failed = _sweep(rops, None, ctx, count=True)
        except _OutOfBudget as exc:
            ctx.unknown.append(f"field {fname!r} of session {sid!r}: {exc}")
            continue
        if failed is not None:
            _explain_register(sid, fname, rops, failed, ctx)


def _register_ops(fname: str, reads: list[tuple[Operation, list, dict]],
                  fwrites: list[tuple[Operation, Any]], deletes: list[Operation]) -> list[_RegOp]:
    rops: list[_RegOp] = []
    last_read_end: dict[Any, float] = {}
    for op, _, meta in reads:
        v = meta.get(fname)
        k = _vkey(v)
        rops.append(_RegOp(op.start, op.end, False, k, False, op, v))
        if op.end > last_read_end.get(k, -INF):
            last_read_end[k] = op.end
    allw = [*fwrites, *((d, None) for d in deletes)]  # a delete clears every field
    for op, v in allw:
        k = _vkey(v)
        if op.status == "ok":
            rops.append(_RegOp(op.start, op.end, True, k, False, op, v))
            continue
        # Outcome unknown: it may take effect at any later instant or never.
        # Once the last read of its value has returned it can no longer be
        # observed, so it expires there; unobserved it is ignored.
        last = last_read_end.get(k, -INF)
        if last >= op.start:
            rops.append(_RegOp(op.start, last, True, k, True, op, v))
    return rops


def _sweep(rops: list[_RegOp], initial: Any, ctx: _Context, *, count: bool = False) -> int | None:
    """Just-in-time linearization of one register.

    Returns ``None`` if the operations are linearizable from ``initial``
    (``_ANY`` = any starting value), or the index in ``rops`` of the read
    whose return left no possible configuration.  Raises
    :class:`_OutOfBudget` when ``max_states`` or the time budget runs out.
    """
    events = []
    for i, r in enumerate(rops):
        events.append((r.start, 0, i))
        events.append((r.end, 1, i))
    events.sort()
    keys = [r.key for r in rops]
    isw = [r.write for r in rops]
    opt = [r.optional for r in rops]
    # Optional writes of one value that expire together are interchangeable
    # once called: the search uses the lowest-numbered one of such a class,
    # or n unanswered writes of None would open 2**n configurations.
    sig = [(r.key, r.end) if r.optional else i for i, r in enumerate(rops)]
    empty: frozenset = frozenset()
    # configuration: (value, pending reads, writes that must take effect,
    #                 writes that may take effect or be dropped)
    configs = {(initial, empty, empty, empty)}
    states = 0
    max_states = ctx.max_states
    tick = 0
    for _, kind, i in events:
        key = keys[i]
        if kind == 0:
            if isw[i]:
                if opt[i]:
                    configs = {(v, R, F, H | {i}) for v, R, F, H in configs}
                else:
                    configs = {(v, R, F, H | {i}) if v == key else (v, R, F | {i}, H)
                               for v, R, F, H in configs}
            else:
                if all(c[0] == key for c in configs):
                    continue  # the common case: read at once, nothing changes
                new = set()
                for c in configs:
                    v = c[0]
                    if v == key:
                        new.add(c)
                    elif v is _ANY:
                        new.add((key, c[1], c[2], c[3]))
                        new.add((v, c[1] | {i}, c[2], c[3]))
                    else:
                        new.add((v, c[1] | {i}, c[2], c[3]))
                configs = new
        else:
            if isw[i]:
                if not any(i in c[2] or i in c[3] for c in configs):
                    continue  # already took effect in every configuration
                new = set()
                for c in configs:
                    v, R, F, H = c
                    if i in F:
                        _linearize(c, i, keys, sig, new, max_states)
                    elif i in H:
                        new.add((v, R, F, H - {i}))  # it was hidden behind another write
                        _linearize(c, i, keys, sig, new, max_states)
                    else:
                        new.add(c)
                    if len(new) > max_states:
                        raise _OutOfBudget(f"more than {max_states} configurations at once")
            else:
                if not any(i in c[1] for c in configs):
                    continue  # linearized when it was called
                new = set()
                for c in configs:
                    if i not in c[1]:
                        new.add(c)
                        continue
                    used = set()
                    for z in sorted(c[2] | c[3]):
                        if keys[z] == key and sig[z] not in used:
                            used.add(sig[z])
                            _linearize(c, z, keys, sig, new, max_states)
                    if len(new) > max_states:
                        raise _OutOfBudget(f"more than {max_states} configurations at once")
            if not new:
                return i
            configs = new
        n = len(configs)
        states += n
        if n > max_states:
            raise _OutOfBudget(f"more than {max_states} configurations at once")
        tick += n  # weighted by the work an event costs
        if tick >= 1024:
            tick = 0
            if ctx.out_of_time():
                raise _OutOfBudget("ran out of the time budget")
    if count:
        ctx.states += states
    return None


def _linearize(c: tuple, z: int, keys: list, sig: list, out: set, max_states: int) -> None:
    """Add to ``out`` every configuration in which write ``z`` takes effect
    now, preceded by any set of other pending writes that lets pending
    reads of their values be linearized on the way."""
    v, R, F, H = c
    others = (F | H) - {z}
    zkey = keys[z]
    if not R:
        out.add((zkey, R, frozenset(), others))
        return
    wanted = {keys[r] for r in R}
    useful = []
    seen = set()
    for w in sorted(others):
        if keys[w] in wanted and keys[w] != zkey and sig[w] not in seen:
            seen.add(sig[w])
            useful.append(w)
    if len(useful) > 20 or (1 << len(useful)) > max_states:
        raise _OutOfBudget(f"{len(useful)} overlapping writes to choose an order for")
    for n in range(len(useful) + 1):
        for pre in combinations(useful, n):
            vals = {keys[w] for w in pre}
            vals.add(zkey)
            out.add((zkey, frozenset(r for r in R if keys[r] not in vals), frozenset(),
                     others.difference(pre)))


def _explain_register(sid: str, fname: str, rops: list[_RegOp], failed: int, ctx: _Context) -> None:
    x = rops[failed]
    before = [r for r in rops if r.start <= x.end]
    witness = _cut_window(before, x, ctx)
    writers = [r for r in before if r.write and r.key == x.key]
    last_writer = _last_writer(before, x)
    # Show the writes that must take effect, the optional ones whose value
    # some shown read returned, and the latest write of each value read (a
    # reader needs them to follow the explanation).
    reads = [r for r in witness if not r.write]
    read_keys = {r.key for r in reads}
    shown = [r.op for r in witness if not r.optional or r.key in read_keys]
    for r in reads:
        w = _last_writer(before, r)
        if w is not None:
            shown.append(w.op)
    where = f"field {fname}: the read by {x.op.process} at {ctx.span(x.op)} returned {_show(x.value)}"
    all_writers = [r for r in rops if r.write and r.key == x.key]
    if x.value is not None and not all_writers:
        if not _misplaced_value(sid, fname, x.value, where, [x.op], ctx):
            ctx.add("I4", sid, fname, f"{where}, a value nothing ever wrote to this field", [x.op])
        return
    if x.value is not None and not writers:
        first = min(all_writers, key=lambda r: r.start)
        ctx.add("I3", sid, fname, f"{where}, but that value was first written by {first.op.process} "
                f"at {ctx.span(first.op)}, after the read ended", [x.op, first.op])
        return
    # The write that certainly overwrote the value the read returned.
    over = [r for r in witness if r.write and not r.optional and r.key != x.key and r.end < x.start]
    if over:
        o = max(over, key=lambda r: r.end)
        verb = f"cleared to None by {o.op.process}" if o.value is None else \
            f"set to {_show(o.value)} by {o.op.process}"
        if last_writer is None:
            tail = "and it was never cleared" if x.value is None else f"and nothing wrote {_show(x.value)}"
        elif last_writer.end < o.start:
            tail = f"and nothing wrote {_show(x.value)} afterwards"
        else:
            tail = f"after the last write of {_show(x.value)} (by {last_writer.op.process} at {ctx.span(last_writer.op)}) could have taken effect"
        ctx.add("I3", sid, fname, f"{where}, but it was {verb} at {ctx.span(o.op)}, before the read "
                f"began, {tail}", shown)
        return
    others = [r for r in witness if not r.write and r is not x]
    if others:
        o = others[0]
        ctx.add("I3", sid, fname, f"{where} and the read by {o.op.process} at {ctx.span(o.op)} "
                f"returned {_show(o.value)}; no order of the writes consistent with real time "
                "gives both", shown)
        return
    ctx.add("I3", sid, fname, f"{where}, which no order of the overlapping writes consistent "
            "with real time allows", shown)


def _misplaced_value(sid: str, fname: str, value: Any, where: str, shown: list[Operation],
                     ctx: _Context) -> bool:
    """Report (I3) a read value no write of this field produced, but which
    a metadata write did produce in the wrong form or place: the text
    ``"None"`` for a clear of this field (a store writing ``str(None)``),
    or a value written to another session (metadata copied across
    sessions).  Both are a wrong register value, not a state no write
    produced (I4).  Returns whether it reported."""
    if value == "None":
        clears = [op for op in ctx.ops if _writes_registers(op) and op.session == sid
                  and isinstance(op.value, dict) and fname in op.value and op.value[fname] is None]
        if clears:
            c = clears[0]
            ctx.add("I3", sid, fname, f"{where}: the text 'None', where {c.process} at {ctx.span(c)} cleared the "
                    "field to None (the clear was stored as the string)", [*shown, c])
            return True
    key = _vkey(value)
    same_field, other_field = None, None
    for op in ctx.ops:
        if not _writes_registers(op) or op.session == sid or not isinstance(op.value, dict):
            continue
        if fname in op.value and _vkey(op.value[fname]) == key:
            same_field = same_field or op
        elif other_field is None and any(_vkey(v) == key for v in op.value.values() if v is not None):
            other_field = op
    src = same_field or other_field
    if src is None:
        return False
    fields = fname if src is same_field else "another field"
    ctx.add("I3", sid, fname, f"{where}, a value written to {fields} of session {src.session} by {src.process} "
            f"at {ctx.span(src)}, never to this session (metadata copied across sessions)", [*shown, src])
    return True


def _writes_registers(op: Operation) -> bool:
    return (_BUILTIN_EFFECT.get(op.f) or op.effect) == "registers"


def _removal(op: Operation) -> str:
    return {"delete": "delete", "clear": "clear"}.get(_BUILTIN_EFFECT.get(op.f) or op.effect or "", op.f)


def _last_writer(rops: list[_RegOp], read: _RegOp) -> _RegOp | None:
    """The write of the read's value that could have taken effect last before it."""
    best = None
    for r in rops:
        if r.write and r.key == read.key and r.start <= read.end:
            if best is None or min(r.end, read.end) > min(best.end, read.end):
                best = r
    return best


def _cut_window(before: list[_RegOp], x: _RegOp, ctx: _Context) -> list[_RegOp]:
    """The smallest time window ending at read ``x`` that fails from any
    starting value, shrunk while it still fails."""
    starts = sorted({r.start for r in before if r.start <= x.start}, reverse=True)
    window = None
    step = 1
    while True:
        if step > len(starts):
            window = [r for r in before]
            initial: Any = None
            break
        cut = starts[step - 1]
        cand = []
        for r in before:
            if r.end < cut:
                continue
            if r.start < cut:
                if not r.write:
                    continue  # may have been linearized before the window
                # May have taken effect before the window, hidden by others.
                r = _RegOp(r.start, r.end, True, r.key, True, r.op, r.value)
            cand.append(r)
        if _fails(cand, _ANY, x, ctx):
            window, initial = cand, _ANY
            break
        step *= 2
    if len(window) > _MAX_SHRINK_OPS:
        return window
    i = 0
    while i < len(window):
        r = window[i]
        if r is x or (r.write and r.optional):
            i += 1
            continue
        if r.write:
            trial = list(window)
            trial[i] = _RegOp(r.start, r.end, True, r.key, True, r.op, r.value)
        else:
            trial = window[:i] + window[i + 1:]
        if _fails(trial, initial, x, ctx):
            window = trial
            if not r.write:
                continue
        i += 1
    return window


def _fails(rops: list[_RegOp], initial: Any, x: _RegOp, ctx: _Context) -> bool:
    try:
        return _sweep(rops, initial, ctx) is not None
    except _OutOfBudget:
        return False


def explain(finding: Finding, t0: float = 0.0) -> list[str]:
    """A finding as text lines: the summary, then one line per operation
    (actor, call, outcome, interval, and what a read returned).  Times are
    printed as given when they are whole numbers (logical steps), else as
    seconds since ``t0``."""
    times = [v for o in finding.ops for v in (o.start, o.end) if v != INF]
    integral = _logical(times)

    def t(x: float) -> str:
        if x == INF:
            return "no reply"
        return _step(x) if integral else f"{x - t0:.4f}s"

    lines = [f"{finding.invariant} session {finding.session}: {finding.summary}"]
    for op in finding.ops:
        out = ""
        if op.f == "read" and op.status == "ok" and isinstance(op.output, dict):
            msgs = op.output.get("messages") or []
            tail = ", ".join(map(str, msgs[-8:]))
            more = "..., " if len(msgs) > 8 else ""
            out = f" -> {plural(len(msgs), 'message')} [{more}{tail}], metadata {op.output.get('metadata')}"
        extra = f" ({op.error})" if op.error else ""
        lines.append(f"    {op.describe()}  [{op.status}{extra}, t={t(op.start)}..{t(op.end)}]{out}")
    return lines
