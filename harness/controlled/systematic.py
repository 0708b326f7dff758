"""The systematic pass: small programs every search runs before anything
random, chosen from what the store's own operations touch.

Design notes
------------
Most concurrency bugs need few operations and few preemptions (CHESS's
preemption bounding; Musuvathi and Qadeer, PLDI 2007).  So before
Hypothesis draws random programs, the search runs a bounded set of small
schedules: two or three operations, at most two preemptions, one session
(two where the sessions share a file).

*Where* to preempt is the expensive question: an ``add_message`` of a JSON
store is a dozen preemption points, and a pass that tries every point for
every pair of operations runs hundreds of programs before the interesting
ones.  The pass therefore first *profiles* each operation: it runs it
alone, on a fresh location and on a session that already holds a message,
and records the accesses it makes (kind and path of each point).  A preemption after an access can
change an outcome only if the other operation touches the same name (a
temporary file with a random name, or the directory itself, is touched by
one writer alone): the classic argument of partial-order reduction.  Of
those points, the ones right after an *effect* (a lock taken, a file read,
a rename, a truncating open, an SQL statement) come first; the other shared
points come last.

What it does not do: it is not exhaustive (random programs follow it), and
a profile is one run, so a branch the store takes only under contention
(a retry, a fallback) is seen by the random phase alone.

The order is measured (``benchmarks/bench_search.py`` names the pattern
whose program failed first, for each bug of the gallery and the real
adapters): a *head* of the cheapest likely counterexamples runs first (a
second instance reading what the first wrote; each pair of writes in turn,
a clear after a set first; each pair with B's write right after the last
read of A's that a write follows; the first stale-cache and lock-timeout
programs), then the full patterns, each program once.

The pass is plain data, raw programs in the strategy's own encoding
(:func:`sessioncheck.controlled.program.programs`), so a failure among them is reported
and replayed like any other.  :func:`sessioncheck.controlled.search.explore` runs them in
order through the same test body before Hypothesis starts, and does not
shrink them (they are small already).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

from sessioncheck.controlled.program import KEYS, ModelConfig, OpSpec, Step, advance_raw, decode, step_kinds

if TYPE_CHECKING:
    from sessioncheck.controlled.engine import Executor

Raw = tuple[int, int, int, int]
#: Points after which another writer's view can change: a lock taken, a
#: file read, a name replaced or removed, a file truncated, a statement or
#: a Redis command run.
EFFECTS = ("flock", "lock", "read", "replace", "rename", "unlink", "sql", "truncate", "redis")
ACQUIRE = ("flock", "lock")
#: A session that holds this many messages is longer than any small window
#: a store keeps (retention that drops instead of archiving shows here).
CHAIN = 5


@dataclass(frozen=True)
class Access:
    kind: str
    path: str
    detail: str = ""

    @property
    def acquires(self) -> bool:
        return self.kind in ACQUIRE and self.path != "."


def _effects(accesses: list[Access]) -> list[bool]:
    """Which accesses are effects: a lock taken, a read, a name replaced
    or removed, a truncating open, a statement; and an open for reading
    that no read follows (it found no file: that absence is what was read)."""
    out = []
    for i, acc in enumerate(accesses):
        mode = acc.detail.split("+")[0]
        if acc.kind == "open" and mode == "r":
            nxt = accesses[i + 1] if i + 1 < len(accesses) else None
            out.append(not (nxt is not None and nxt.kind == "read" and nxt.path == acc.path))
        else:
            # an open that truncates or appends ("w", "a", O_TRUNC) changes
            # the file; "rw" (a lock file, a temp file) does not by itself
            writes = acc.kind == "open" and ("trunc" in acc.detail or mode[:1] in ("w", "a"))
            out.append(acc.kind in EFFECTS or writes)
    return out


#: Redis commands that read (the window of a read-modify-write opens after them)
_REDIS_READS = ("GET", "HGET", "HGETALL", "HMGET", "MGET", "LRANGE", "LLEN", "EXISTS", "SMEMBERS", "ZRANGE",
                "XRANGE", "JSON.GET", "LINDEX", "HKEYS", "HVALS", "SCAN", "KEYS")


def _reads(accesses: list[Access]) -> list[bool]:
    """Which accesses read the shared state: a file read (or an open that
    found no file), a SELECT, a Redis read command."""
    effects = _effects(accesses)
    out = []
    for acc, effect in zip(accesses, effects):
        word = acc.detail.split(" ")[0].upper()
        out.append(acc.kind == "read" or (acc.kind == "open" and effect)
                   or (acc.kind == "sql" and word in ("SELECT", "WITH"))
                   or (acc.kind == "redis" and word in _REDIS_READS))
    return out


_SQL_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "UPSERT", "MERGE")
_REDIS_WRITES = ("SET", "HSET", "HMSET", "MSET", "RPUSH", "LPUSH", "DEL", "HDEL", "XADD", "MULTI", "EXEC",
                 "JSON.SET", "LTRIM", "EXPIRE", "INCR", "HINCRBY", "SADD", "ZADD")


def _writes(acc: Access) -> bool:
    """Whether an access changes the shared state: a file written,
    replaced, renamed, truncated or removed, a row written, a Redis write."""
    word = acc.detail.split(" ")[0].upper()
    if acc.kind == "sql":
        return word in _SQL_WRITES
    if acc.kind == "redis":
        return word in _REDIS_WRITES
    mode = acc.detail.split("+")[0]
    return acc.kind in ("write", "replace", "rename", "unlink", "truncate") or (
        acc.kind == "open" and ("trunc" in acc.detail or mode[:1] in ("w", "a")))


@dataclass(frozen=True)
class Op:
    """One operation the pass can start: its start step's ``a`` and ``b``."""

    f: str
    a: int
    b: int = 0
    session: int = 0

    @property
    def mutates(self) -> bool:
        return self.f != "read"


def operations(cfg: ModelConfig, session: int = 0) -> list[Op]:
    """Every function once on ``session``; ``persist`` twice: a fresh value,
    and a clear to ``None`` (the clear is where merges go wrong)."""
    fns = cfg.functions()
    masks = 2 ** len(cfg.keys) - 1
    base = len(fns) * session
    out = []
    for i, f in enumerate(fns):
        if f == "persist":
            out += [Op(f, base + i, 0, session), Op(f, base + i, masks, session)]
        else:
            out.append(Op(f, base + i, 0, session))
    return out


def profile(executor: "Executor", op: Op, warm: bool) -> list[Access]:
    """The accesses ``op`` makes run alone by actor A, in order (one per
    preemption point): on a fresh location, or (``warm``) on a session that
    already holds one message.  The two differ: a first write creates the
    files and the lock file, later ones find them."""
    steps = [Step("start", 0, OpSpec("add", op.session))] if warm else []
    out = executor.run(steps + [Step("start", 0, _spec(executor.cfg, op))])
    started = 0
    accesses: list[Access] = []
    for e in out.trace:
        if e["actor"] != "A":
            continue
        if e["ev"] == "start" and e.get("call") not in ("open", "close"):
            started += 1
        elif started == len(steps) + 1:
            if e["ev"] == "point" and not e.get("recorded"):  # a recorded access is no point
                accesses.append(Access(e["kind"], e["path"], e.get("detail") or ""))
            elif e["ev"] == "done":
                break
    return accesses


def profile_opening(executor: "Executor", op: Op) -> list[Access]:
    """The accesses ``op`` makes as the first operation of a new instance
    (actor B) on a location where A already wrote a message: its instance
    opens inside it, so opening's accesses (a migration, a compaction, a
    cache load) come first."""
    if executor.cfg.actors < 2:
        return []
    # A's add runs to its end first: B opens on a session that holds a
    # message (started alone, A would be parked at its first point while B
    # opened on an empty location, and the profile would be a fresh one's)
    steps = [Step("start", 0, OpSpec("add", op.session)), Step("advance", 0, points=10_000),
             Step("start", 1, _spec(executor.cfg, op))]
    out = executor.run(steps)
    accesses: list[Access] = []
    started = False
    for e in out.trace:
        if e["actor"] != "B":
            continue
        if e["ev"] == "start" and e.get("call") not in ("open", "close"):
            started = True
        elif started and e["ev"] == "point" and not e.get("recorded"):
            accesses.append(Access(e["kind"], e["path"], e.get("detail") or ""))
        elif started and e["ev"] == "done":
            break
    return accesses


def _spec(cfg: ModelConfig, op: Op) -> OpSpec:
    step = decode([(0, 0, op.a, op.b)], cfg)[0]
    assert step.op is not None
    return step.op


class Plan:
    """Builds the pass for one store from its operations' profiles.

    ``lookup(op, warm)`` gives a profile (:func:`profile`); it is called
    only when a program needs it, at most once per ``(op, warm)``, so the
    programs that need no profile run before any profiling is paid for."""

    def __init__(self, cfg: ModelConfig, lookup: Callable[[Op, bool], list[Access]],
                 opening: Callable[[Op], list[Access]] | None = None) -> None:
        self.cfg = cfg
        self._lookup = lookup
        self._opening = opening
        self._profiles: dict[tuple[Op, bool], list[Access]] = {}
        self.max = cfg.max_points
        self.b = 1 % cfg.actors  # the second writer (A alone with one actor)
        #: the pattern of each program yielded so far, in order (what
        #: ``benchmarks/bench_search.py`` reports as the pattern that caught a bug)
        self.labels: list[str] = []
        self._label = ""

    def profile(self, op: Op, warm: bool) -> list[Access]:
        key = (op, warm)
        if key not in self._profiles:
            self._profiles[key] = self._lookup(op, warm)
        return self._profiles[key]

    # -- the vocabulary of programs -------------------------------------
    def start(self, actor: int, op: Op) -> list[Raw]:
        return [(0, actor, op.a, op.b)]

    def advance(self, actor: int, points: int) -> list[Raw]:
        out = []
        while points > 0:
            n = min(points, self.max)
            out.append((1, actor, advance_raw(n, self.max), 0))
            points -= n
        return out

    def run_out(self, actor: int) -> list[Raw]:
        """Advance ``actor`` until it finishes or blocks (a lock it waits for)."""
        return self.advance(actor, 4 * self.max)

    def turn(self, actor: int, op: Op) -> list[Raw]:
        """``actor`` runs ``op`` whole before anything else happens."""
        return self.start(actor, op) + self.run_out(actor)

    def names(self, y: Op) -> set[str]:
        """The names ``y`` touches, fresh or warm, but the directory."""
        return {a.path for w in (False, True) for a in self.profile(y, w)} - {"", "."}

    def shared(self, x: Op, warm: bool, y: Op, effects: bool | None = None) -> list[int]:
        """Preemption counts ``k`` for ``x`` against ``y``: after access
        ``k`` of ``x``, on a name ``y`` also touches; ``effects`` keeps only
        effects (True) or only the rest (False)."""
        names = self.names(y)
        accesses = self.profile(x, warm)
        out = []
        for k, (acc, effect) in enumerate(zip(accesses[:-1], _effects(accesses)), start=1):
            # after the last access x is done: no preemption there
            if acc.path in names and (effects is None or effect == effects):
                out.append(k)
        return out

    def first_read(self, x: Op, warm: bool, y: Op) -> list[int]:
        """The one count ``k`` most likely to open a race window of ``x``
        against ``y``: after x's last read of a name y touches that a
        write of x follows (what a read-modify-write without the lock
        gets wrong; a schema check or migration before it opens no such
        window), else after its first such read, else after its first
        effect on a shared name; empty if x shares nothing with y."""
        names = self.names(y)
        accesses = self.profile(x, warm)
        reads = [k for k, (acc, read) in enumerate(zip(accesses[:-1], _reads(accesses)), start=1)
                 if read and acc.path in names]
        last_write = max((k for k, acc in enumerate(accesses, start=1) if _writes(acc)), default=0)
        before = [k for k in reads if k < last_write]
        if before:
            return before[-1:]
        return reads[:1] or self.shared(x, warm, y, effects=True)[:1]

    def holding(self, x: Op, warm: bool) -> list[int]:
        """Counts ``k`` after which ``x`` holds a lock it took, effects only."""
        out, held = [], False
        accesses = self.profile(x, warm)
        for k, (acc, effect) in enumerate(zip(accesses[:-1], _effects(accesses)), start=1):
            if acc.acquires:
                held = True
            elif acc.kind == "unlock":
                held = False
            if held and effect:
                out.append(k)
        return out

    # -- the pass -------------------------------------------------------
    def programs(self) -> Iterator[list[Raw]]:
        """The pass in the order it runs, each program once."""
        seen: set = set()
        for p in self._programs():
            key = tuple(p)
            if key not in seen:
                seen.add(key)
                self.labels.append(self._label)
                yield p

    def _programs(self) -> Iterator[list[Raw]]:
        # Each pattern yields as it goes: a failure early in the pass never
        # waits for a profile that a later pattern needs.
        cfg, A, B = self.cfg, 0, self.b
        ops = operations(cfg, 0)
        writes = [o for o in ops if o.mutates]
        add = ops[0]

        # 2. (below) One preemption after an effect on a shared name: A
        #    runs x up to access k, B runs y whole, A finishes.  A
        #    destructive operation (delete) needs something to destroy: the
        #    session gets a message first, and x runs warm.
        def pair(x: Op, y: Op, k: int, warm: bool, tail: tuple[Raw, ...] = ()) -> list[Raw]:
            before = self.turn(A, add) if warm else []
            return before + self.start(A, x) + self.advance(A, k) + self.start(B, y) + list(tail)

        def warm_for(x: Op, y: Op) -> bool:
            # removals act only on a session that holds a message
            return any(f in ("delete", "pop", "clear") for f in (x.f, y.f))

        # 1. No preemption: one long session.
        self._label = "1 chain"
        yield [r for _ in range(CHAIN) for r in self.start(A, add)]
        if len(cfg.messages) > 1:
            # 1b. Message shapes (cfg.messages: tool calls, tool results,
            #     ...): a session holding one message of each kind, alone,
            #     then with each other operation after it (a rewrite that
            #     keeps only some shapes; a merge that compares content).
            #     The add's ``b`` picks its kind (program.decode).
            self._label = "1 shapes"
            shapes = [r for i in range(len(cfg.messages)) for r in self.turn(A, Op("add", add.a, i))]
            yield shapes
            yield from (shapes + self.turn(A, y) for y in ops if y.f != "add")
        if cfg.actors > 1:
            # 0. The head of the pass, the cheapest likely counterexamples
            #    (measured on the gallery and the real adapters,
            #    benchmarks/bench_search.py): for each pair of writes, the
            #    two in turn (a merge that loses a clear), then B's write
            #    after x's first read of a shared name (a read-modify-write
            #    without the lock; :meth:`first_read`).  Every program here comes again below and
            #    runs once (programs() drops repeats).
            # a second instance reading what the first wrote (the plainest
            # check of all, and the only read in the head), then a clear
            # after a set: the merge that skips None
            self._label = "1 turns"
            yield from (self.turn(A, add) + self.start(B, y) for y in ops if y.f == "read")
            ww = sorted(((x, y) for x in writes for y in writes),
                        key=lambda p: not (p[0].f == p[1].f == "persist" and p[0].b == 0 and p[1].b != 0))
            for x, y in ww:
                self._label = "1 turns"
                yield self.turn(A, x) + self.start(B, y)
                self._label = "2 effect preemption"
                warm = warm_for(x, y)
                yield from (pair(x, y, k, warm) for k in self.first_read(x, warm, y))
            # then the first of patterns 8 (a stale cache: A acts on what it
            # read before B wrote) and 3 (a lock timeout that lets B in)
            self._label = "8 three in turn"
            yield from (self.turn(A, add) + self.turn(self.b, add) + self.start(A, z) for z in ops)
            self._label = "3 impatient writer"
            for y in writes:
                yield from (pair(add, y, k, False, tuple(self.run_out(self.b))) for k in self.holding(add, False)[:1])
        # 1. Two writers in turn.
        self._label = "1 turns"
        yield from (self.turn(A, x) + self.start(B, y) for x in ops for y in ops)
        if cfg.actors < 2:
            return

        later: list[list[Raw]] = []
        self._label = "2 effect preemption"
        for x in ops:
            for y in ops:
                if not (x.mutates or y.mutates):
                    continue
                warm = warm_for(x, y)
                yield from (pair(x, y, k, warm) for k in self.shared(x, warm, y, effects=True))
                later += [pair(x, y, k, warm) for k in self.shared(x, warm, y, effects=False)]

        # 3. An impatient second writer: B keeps polling while A holds the
        #    lock, long enough for a lock timeout to fire.
        self._label = "3 impatient writer"
        for x in writes:
            for y in writes:
                for k in self.holding(x, False)[:1]:
                    yield pair(x, y, k, False, tuple(self.run_out(B)))

        # 4. Two sessions that share a name (one file for all sessions):
        #    only where the profiles say they do.
        self._label = "4 shared name"
        other = [o for o in operations(cfg, 1) if o.mutates] if cfg.sessions > 1 else []
        for x in writes:
            for y in other:
                yield from (pair(x, y, k, True) for k in self.shared(x, True, y, effects=True))

        # 5. Faults: an I/O error at each access of x to a name the session
        #    owns (touched by more than one operation), on a session holding
        #    a message: what the error may cost.
        self._label = "5 fault"
        if cfg.io_faults:
            fault = (step_kinds(cfg).index("fault"), A, 0, 0)
            touched = [self.names(o) for o in ops]
            owned = {p for names in touched for p in names if sum(p in n for n in touched) > 1}
            for x in ops:
                for k, acc in enumerate(self.profile(x, True)):
                    if acc.path in owned:
                        yield self.turn(A, add) + self.start(A, x) + self.advance(A, k) + [fault]

        # 6. A crash (kill -9) of A after each access of a write, on a
        #    session holding a message; B reads what is left.
        self._label = "6 crash"
        if cfg.crash:
            crash = (step_kinds(cfg).index("crash"), A, 0, 0)
            read = next((o for o in ops if o.f == "read"), add)
            for x in writes:
                for k in range(1, len(self.profile(x, True))):
                    yield self.turn(A, add) + self.start(A, x) + self.advance(A, k) + [crash] + self.start(B, read)

        # 6b. A crash of the store's server (kill -9, restarted from its
        #     files) after a write is acknowledged, and after each access
        #     of a write in flight; B reads what the server kept.
        self._label = "6b server crash"
        if cfg.server_crash:
            down = (step_kinds(cfg).index("server-crash"), A, 0, 0)
            read = next((o for o in ops if o.f == "read"), add)
            for x in writes:
                yield self.turn(A, x) + [down] + self.start(B, read)
                for k in range(1, len(self.profile(x, True))):
                    yield self.turn(A, add) + self.start(A, x) + self.advance(A, k) + [down] + self.start(B, read)

        # 7. Two preemptions, three lock acquisitions: A holds the lock, B
        #    queues for it, A releases and takes it again for a second
        #    operation while B goes on (a lock whose identity changes on
        #    release lets both in).
        self._label = "7 relock"
        for y in writes:
            for k1 in self.holding(add, False)[:1]:
                for k3 in self.holding(add, True):
                    yield (self.start(A, add) + self.advance(A, k1) + self.start(B, y) + self.run_out(B)
                           + self.start(A, add) + self.advance(A, k3) + self.run_out(B))

        # 8. Three operations in turn, no preemption: A acts on what it
        #    read or cached before B wrote.
        self._label = "8 three in turn"
        yield from (self.turn(A, x) + self.turn(B, y) + self.start(A, z)
                    for x in ops for y in writes for z in ops)

        # 9. The preemptions after shared accesses that are not effects.
        self._label = "9 other preemption"
        yield from later

        # 10. A second instance opening while the first writes: B's first
        #     operation opens its instance, B is preempted after each effect
        #     of the opening (the accesses it makes before those y makes on
        #     an open instance), A appends whole, B goes on.  A store that
        #     migrates or compacts sessions in __init__ without their lock
        #     loses A's message here.
        self._label = "10 opening"
        if self._opening is not None:
            for y in ops:
                fresh = self._opening(y)
                opened = len(fresh) - len(self.profile(y, True))
                if opened <= 0:
                    continue
                for k, effect in enumerate(_effects(fresh)[:opened], start=1):
                    if effect:
                        yield self.turn(A, add) + self.start(B, y) + self.advance(B, k) + self.start(A, add)


def programs(executor: "Executor") -> Iterator[list[Raw]]:
    """The systematic pass for the executor's store and model, in the order
    it runs.  Profiles an operation (one store run) when first needed."""
    return Plan(executor.cfg, lambda op, warm: profile(executor, op, warm),
                lambda op: profile_opening(executor, op)).programs()
