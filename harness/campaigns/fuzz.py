"""Long fuzz runs: rounds on a Dask cluster, each distinct bug once.

Design notes.

*Rounds.*  A round is one :func:`sessioncheck.verify.verify` with its own
seed (drawn from one stream, ``Random(base)``) and time budget, run as one
Dask task (:func:`fuzz_round`).  The client (:mod:`sessioncheck.campaigns.cluster`)
keeps one round in flight per worker thread of the cluster, merges what
each round returns as it completes, and submits another until the
deadline.  Without ``--cluster`` the cluster is a local one on this
machine's cores.

*Known failures first.*  Every round is handed the programs of the
failures known so far (from earlier runs and from earlier rounds of this
one, on any worker) and replays them before its search: a failure met
once is met again by every later round at the cost of one run each, and
counted as a hit of its finding.  The search itself only generates new
programs (the systematic pass and Hypothesis' saved examples run in the
first round alone), so a known failure does not crowd it out.

*Shared example database.*  Workers share one Hypothesis example
database: a directory on shared storage, or Hypothesis' Redis database
(``redis://host:port/db``, ``redis+unix:///path/to/socket``).

*Deduplication: one bug is one finding.*  A failure's key
(:func:`failure_key`) is its violated invariant, the operations the
violation involves by function (the lost message's ``add`` and the
``persist`` that wrote a stale copy over it), the cause's shape where the
story computes one (:func:`sessioncheck.reporting.story.stale_copy`: what
the culprit read and how it wrote back) and the faults the program needs;
not the program itself, so the same bug reached by different schedules,
actors, sessions or values is one finding.  A round still finishes each
shrink greedily (:func:`reduce_program`) so the saved report is small; a
reduction the deadline cut short may keep faults its bug does not need,
so such a failure is a hit of a finding already met that it covers
(:func:`covers`), not a new one.

*Earlier runs.*  Reports already in the output directory are replayed
when the run starts: one that still fails is a known finding (its program
joins the replay list); one that passes now and is not met in this run
is reported "fixed (passes now)", not as a current finding.
"""
from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from sessioncheck.reporting import report as reports
from sessioncheck.reporting.coverage import Coverage
from sessioncheck.errors import ConfigError, SessionCheckError
from sessioncheck.controlled.program import ModelConfig, Step, program_from_json, program_to_json

REDUCE_RUNS = 200  # reruns the greedy step-removal pass may spend per failure
PROGRESS_EVERY = 0.5  # seconds between a round's progress events (the display refreshes faster)


class StopRound(BaseException):
    """Raised from ``on_example`` when the campaign is stopping: a
    BaseException, so Hypothesis lets it through at once and the round
    unwinds normally (actors closed, locations removed) between two
    examples."""


def failure_key(outcome: Any) -> str:
    """The dedup key of a failed run's first violation, e.g.
    ``I1 add+persist stale:read>replace`` or ``I3 persist``.

    Parts: the invariant; the functions of the operations the violation
    involves, reads left out (a read only observes; which read saw the
    damage is not the bug) unless nothing else is involved; for a lost
    message whose story names a culprit (:func:`stale_copy`), the
    culprit's operation joins them and the shape of its read and
    write-back is added; and the faults the program injects (a reduced
    program keeps only the faults it needs)."""
    from sessioncheck.reporting.story import stale_copy

    v = outcome.violations[0]
    fns = {outcome.ops[i].f for i in v.ops if 0 <= i < len(outcome.ops)}
    shape = ""
    if v.invariant == "I1" and v.subject:
        cause = stale_copy(v.subject, outcome.trace)
        if cause is not None:
            at = {e["t"]: e for e in outcome.trace}
            culprit = None
            for e in outcome.trace:  # the culprit's operation in flight at the write-back
                if e["t"] > cause.write_t:
                    break
                if e["actor"] == cause.actor and e["ev"] == "start":
                    culprit = e.get("call")
            if culprit:
                fns.add(culprit)
            # opening a file for reading and reading it are one access here:
            # which of the two came last before the acknowledgement is timing
            read = at[cause.read_t].get("kind")
            shape = f"stale:{'read' if read == 'open' else read}>{at[cause.write_t].get('kind')}"
    writes = sorted(f for f in fns if f != "read") or sorted(fns)
    faults = sorted({s.errno_name or s.kind for s in outcome.program if s.kind not in ("start", "advance")})
    parts = [v.invariant, "+".join(str(f) for f in writes) or "-"]
    if shape:
        parts.append(shape)
    if faults:
        parts.append("faults:" + "+".join(faults))
    return " ".join(parts)


def simpler(step: Step, cfg: ModelConfig | None = None) -> list[Step]:
    """Simpler versions of one step, simplest first: the first actor, the
    first session, the model's first value kind (a fresh value) instead of
    any other but a clear (``empty``, unicode, a number, nested JSON, a
    large string, a value a strategy drew; a drawn ``None`` becomes the
    ``none`` kind), the model's first message kind (a plain user message)
    instead of another, one point.  ``cfg``: the model (``None``: the
    default one)."""
    from sessioncheck.controlled.values import RICH, Drawn

    fresh = cfg.values[0] if cfg is not None and cfg.values and cfg.values[0] in RICH else "fresh"
    plain = cfg.messages[0] if cfg is not None and cfg.messages else "user"
    out: list[Step] = []
    if step.actor != 0:
        out.append(replace(step, actor=0))
    if step.kind == "start" and step.op is not None:
        op = step.op
        if op.session != 0:
            out.append(replace(step, op=replace(op, session=0)))

        def simplest(v: Any) -> Any:
            if isinstance(v, Drawn):
                return "none" if v.value is None else fresh
            return v if v in (fresh, "none") else fresh

        fields = tuple((k, simplest(v)) for k, v in op.fields)
        if fields != op.fields:
            out.append(replace(step, op=replace(op, fields=fields)))
        if op.message and op.message != plain:
            out.append(replace(step, op=replace(op, message="" if plain == "user" else plain)))
    if step.kind == "advance" and step.points > 1:
        out.append(replace(step, points=1))
    return out


def renamed(program: list[Step]) -> list[Step]:
    """The program with actors and sessions renamed in order of first
    appearance (actors are alike, and so are sessions: the same run)."""
    actors: dict[int, int] = {}
    sessions: dict[int, int] = {}
    out = []
    for step in program:
        step = replace(step, actor=actors.setdefault(step.actor, len(actors)))
        if step.kind == "start" and step.op is not None:
            step = replace(step, op=replace(step.op, session=sessions.setdefault(step.op.session, len(sessions))))
        out.append(step)
    return out


def covers(key: str, known: str) -> bool:
    """Whether a failure of ``key`` whose reduction was cut short (the
    deadline) may be the finding ``known``: the same invariant, operations
    and shape, and its program injects every fault ``known`` needs, and
    maybe more that only a finished reduction would have removed."""
    base, _, faults = key.partition(" faults:")
    known_base, _, known_faults = known.partition(" faults:")
    return base == known_base and set(filter(None, known_faults.split("+"))) <= set(faults.split("+"))


def reduce_program(run: Callable[[list[Step]], Any], program: list[Step], invariant: str,
                   max_runs: int = REDUCE_RUNS, stop: Callable[[], bool] = lambda: False,
                   cfg: ModelConfig | None = None) -> list[Step]:
    """Finish a shrink that its bounds cut short: rename actors and
    sessions (:func:`renamed`), remove steps one at a time (last first),
    then simplify the steps left (:func:`simpler`, toward ``cfg``'s first
    value and message kinds),
    keeping each change after which ``run`` still violates ``invariant``
    first; repeat until nothing changes, ``max_runs`` reruns are spent or
    ``stop()`` says so."""
    runs = 0

    def still_fails(candidate: list[Step]) -> bool:
        nonlocal runs
        runs += 1
        out = run(candidate)
        return bool(out.failed and out.violations[0].invariant == invariant)

    def budget_left() -> bool:
        return runs < max_runs and not stop()

    changed = True
    while changed and budget_left():
        changed = False
        canonical = renamed(program)
        if canonical != program and still_fails(canonical):
            program = canonical
        i = len(program) - 1
        while i >= 0 and budget_left():
            candidate = program[:i] + program[i + 1:]
            if candidate and still_fails(candidate):
                program = candidate
                changed = True
            i -= 1
        for i in range(len(program)):
            for option in simpler(program[i], cfg):
                if not budget_left():
                    return program
                candidate = program[:i] + [option] + program[i + 1:]
                if still_fails(candidate):
                    program = candidate
                    changed = True
                    break
    return program


@dataclass
class FuzzConfig:
    """What a campaign runs.  ``database`` is a directory (made absolute
    by the client, so that workers elsewhere find the same one on shared
    storage), a Redis URL (``redis://``, ``rediss://``, ``redis+unix://``)
    or ``None`` (no example database).  ``cluster`` is a Dask scheduler
    address, or ``None`` for a local cluster of ``workers`` processes."""

    store: str
    hours: float
    workers: int
    mode: str = "threads"
    faults: tuple[str, ...] = ()
    seed: int | None = None
    out_dir: Path = Path(".sessioncheck") / "fuzz"
    database: str | None = str(Path(".sessioncheck") / "examples")
    round_seconds: float = 60.0
    shrink_budget: float = 10.0
    cfg: ModelConfig | None = None
    watchdog: float = 10.0
    #: after the deadline: how long a round may go on shrinking and
    #: reducing a failure it met (``None``: as ``run``'s search, 10 % of
    #: the hours, at least 2 s, at most 10 s)
    grace: float | None = None
    cluster: str | None = None

    @property
    def grace_seconds(self) -> float:
        from sessioncheck.controlled.search import grace

        return grace(self.hours * 3600) if self.grace is None else self.grace

    def validate(self) -> None:
        if not self.hours > 0:
            raise ConfigError("--hours must be a positive number")
        if not 1 <= self.workers <= 256:
            raise ConfigError("--workers must be between 1 and 256")
        if self.mode not in ("threads", "processes", "mixed", "tasks"):
            raise ConfigError(f"unknown actor mode {self.mode!r}")
        if not self.round_seconds > 0:
            raise ConfigError("--round must be a positive number of seconds")
        if self.database and is_redis_url(self.database):
            try:
                import redis  # noqa: F401
            except ImportError:
                raise ConfigError("--database redis://... needs the redis package: "
                                  "pip install 'sessioncheck[cluster]'") from None


@dataclass
class Failure:
    key: str
    invariant: str
    summary: str
    report: Path
    worker: str
    first_seconds: float
    steps: int
    hits: int = 1
    known: bool = False  # found by an earlier run (its report was already there)
    fixed: bool = False  # known, and its program passes on replay now
    program: list = field(default_factory=list)  # JSON form, replayed first by every round

    @property
    def status(self) -> str:
        if self.hits:
            return "met again" if self.known else "new"
        return "fixed (passes now)" if self.fixed else "not met"


@dataclass
class WorkerStats:
    rounds: int = 0
    examples: int = 0
    interleavings: set = field(default_factory=set)
    findings: int = 0  # hits this worker reported


@dataclass
class FuzzResult:
    seconds: float = 0.0
    rounds: int = 0
    examples: int = 0
    coverage: Coverage = field(default_factory=Coverage)
    failures: dict[str, Failure] = field(default_factory=dict)
    interrupted: bool = False
    worker_errors: list[str] = field(default_factory=list)
    workers: int = 0
    where: str = ""  # "local cluster, 2 processes" or the scheduler's address
    startup_seconds: float | None = None  # connecting, or starting the local cluster
    per_worker: dict[str, WorkerStats] = field(default_factory=dict)
    live: dict[int, tuple[str, int, set]] = field(default_factory=dict)  # round id -> worker, examples, hashes

    @property
    def found(self) -> bool:
        return bool(self.failures)

    @property
    def current(self) -> list[Failure]:
        return [f for f in self.failures.values() if f.hits]

    def live_examples(self) -> int:
        return self.examples + sum(n for _, n, _ in self.live.values())

    def live_interleavings(self) -> int:
        extra: set = set()
        for _, _, hashes in self.live.values():
            extra |= hashes
        return len(self.coverage.interleavings | extra)


def is_redis_url(text: str) -> bool:
    return text.startswith(("redis://", "rediss://", "redis+unix://", "unix://"))


def store_dir(config: FuzzConfig) -> Path:
    import re

    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", config.store).strip("-")
    return config.out_dir / f"{safe}-{config.mode}"


def _model(config: FuzzConfig) -> tuple[Any, ModelConfig]:
    from sessioncheck.specs import resolve
    from sessioncheck.verify import model_config

    spec = resolve(config.store)
    return spec, model_config(spec, config.mode, config.faults, config.cfg)


def known_failures(config: FuzzConfig, replays: int = 2) -> dict[str, Failure]:
    """Reports saved by earlier runs, by key, each replayed on the store as
    it is now.  A program that still fails is keyed by that run; one that
    passes ``replays`` times in a row is marked ``fixed`` (keyed by the
    key it was saved with).  Files that are not valid reports are skipped
    (a report is data: nothing in it is run but its program)."""
    from sessioncheck.controlled.engine import Executor

    out: dict[str, Failure] = {}
    directory = store_dir(config)
    if not directory.is_dir():
        return out
    paths = sorted(directory.glob("*.json"))
    if not paths:
        return out
    spec, cfg = _model(config)
    with Executor(spec, config.mode, cfg, watchdog=config.watchdog) as ex:
        for path in paths:
            try:
                data = reports.load(path)
            except SessionCheckError:
                continue
            if not data["violations"]:
                continue
            program = data["_program"]
            outcome = None
            for _ in range(replays):
                try:
                    run = ex.run(program)
                except SessionCheckError:
                    break
                if run.failed:
                    outcome = run
                    break
            v = data["violations"][0]
            invariant, summary = str(v.get("invariant")), str(v.get("summary", ""))
            if outcome is not None:
                key, fixed = failure_key(outcome), False
                invariant, summary = outcome.violations[0].invariant, outcome.violations[0].summary
            else:
                stats = data.get("stats") if isinstance(data.get("stats"), dict) else {}
                key, fixed = str(stats.get("fuzz_key") or f"{invariant} (earlier run) {path.name}"), True
            if key in out:
                continue
            out[key] = Failure(key, invariant, summary, path, "earlier run", 0.0, len(program), hits=0, known=True,
                               fixed=fixed, program=[] if fixed else program_to_json(program))
    return out


# -- one round: a Dask task -----------------------------------------------------------


@dataclass
class Round:
    """Everything one round needs; picklable, so it travels to a worker."""

    id: int
    config: FuzzConfig
    seed: int
    deadline_wall: float
    known: list[tuple[str, list]]  # (key, program JSON) of every finding so far
    first: bool = False  # the systematic pass and Hypothesis' saved examples run here
    stop_event: str | None = None  # the campaign's id, for :func:`stop_rounds`
    topic: str | None = None  # progress events go here


_DATABASES: dict[str, Any] = {}
_STOPPED: set = set()  # campaigns told to stop, in this worker process (:func:`stop_rounds`)


def stop_rounds(campaign: str) -> None:
    """Tell the rounds of ``campaign`` running in this process to stop
    between two examples.  The client runs it on every worker
    (``Client.run``): a local flag, so a round's look at it costs nothing."""
    _STOPPED.add(campaign)


def open_database(spec: str | None) -> Any:
    """The Hypothesis example database named by ``spec``, one per process."""
    if not spec:
        return None
    db = _DATABASES.get(spec)
    if db is None:
        if is_redis_url(spec):
            import redis
            from hypothesis.extra.redis import RedisExampleDatabase

            url = "unix://" + spec[len("redis+unix://"):] if spec.startswith("redis+unix://") else spec
            db = RedisExampleDatabase(redis.Redis.from_url(url))
        else:
            from hypothesis.database import DirectoryBasedExampleDatabase

            db = DirectoryBasedExampleDatabase(spec)
        _DATABASES[spec] = db
    return db


def _worker_name() -> str:
    try:
        from distributed import get_worker

        name = str(get_worker().name)
        return f"w{name}" if name.isdigit() else name
    except (ImportError, ValueError):
        return f"pid{os.getpid()}"


def fuzz_round(task: Round) -> dict:
    """Run one round where it is called (a Dask worker): replay the known
    programs, then search for ``config.round_seconds`` (or until the
    deadline, or the stop flag).  Returns the round's statistics and its
    findings (JSON-ready): ``{"id", "worker", "examples", "interleavings",
    "coverage", "findings": [{"key", ...}], "error"}``.  A configuration
    error is returned as ``error``, not raised, so the client can say it
    once."""
    import warnings

    from hypothesis.errors import HypothesisDeprecationWarning

    # A worker's own threads (heartbeats, comms) use the global random
    # module while a strategy draws; Hypothesis takes that for the
    # strategy's doing.  Programs are drawn from Hypothesis' data only.
    warnings.filterwarnings("ignore", message="Do not use the `random` module", category=HypothesisDeprecationWarning)
    name = _worker_name()
    out: dict = {"id": task.id, "worker": name, "examples": 0, "interleavings": [], "coverage": {},
                 "findings": [], "error": ""}
    try:
        _round(task, name, out)
    except StopRound:
        pass
    except SessionCheckError as exc:
        out["error"] = str(exc)
    return out


def _round(task: Round, name: str, out: dict) -> None:
    from hypothesis import Phase

    from sessioncheck.controlled.engine import Executor
    from sessioncheck.verify import rerun, verify

    config = task.config

    def stopping() -> bool:
        return task.stop_event in _STOPPED or time.time() > task.deadline_wall + config.grace_seconds

    emit = _emitter(task, name)
    coverage = Coverage()
    spec, cfg = _model(config)

    # Known failures first: one run each, a hit if it still fails.
    if task.known:
        with Executor(spec, config.mode, cfg, watchdog=config.watchdog) as ex:
            for key, program_json in task.known:
                if stopping():
                    raise StopRound()
                outcome = ex.run(program_from_json(program_json))
                coverage.observe(outcome)
                if outcome.failed:
                    out["findings"].append({"key": failure_key(outcome), "replayed": key})
    left = min(config.round_seconds, task.deadline_wall - time.time())
    _fill(out, coverage)
    if left <= 0.5 or stopping():
        return
    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink] if task.first else \
        [Phase.generate, Phase.shrink]
    search: dict = {}

    def observe(stats: Any) -> None:
        search["x"] = stats
        coverage.on_example(stats)
        emit(coverage)
        if stopping():
            raise StopRound()

    # A known bug met by the search is a hit, counted, and the search goes
    # on: it neither stops at it nor shrinks it again, so a round spends
    # its time on new interleavings.  Not in the first round: it replays
    # the example database, and Hypothesis deletes a saved example that
    # passes there (the database is the pytest gate's too).
    known = {key for key, _ in task.known}

    def ignore(outcome: Any) -> str | None:
        key = failure_key(outcome)
        return key if key in known else None

    try:
        result = verify(config.store, mode=config.mode, faults=config.faults, budget=left, seed=task.seed,
                        database=open_database(config.database), save_report=False, cfg=config.cfg,
                        watchdog=config.watchdog, shrink_budget=config.shrink_budget, on_example=observe,
                        settings_kwargs={"phases": phases}, ignore=None if task.first or not known else ignore)
    finally:
        _fill(out, coverage)
        for key, hits in getattr(search.get("x"), "known_failures", {}).items():
            out["findings"].append({"key": key, "hits": hits})
    if not result.found:
        return
    x = result.exploration
    early = failure_key(result.outcome)
    if any(early == key for key, _ in task.known):
        # a known bug met again: a hit; no need to reduce and tell it twice
        out["findings"].append({"key": early})
        return
    invariant = result.outcome.violations[0].invariant
    with Executor(spec, config.mode, cfg, watchdog=config.watchdog) as ex:
        program = reduce_program(ex.run, result.outcome.program, invariant, stop=stopping, cfg=cfg)
    reduced = not stopping()  # else the program may keep faults it does not need
    directory = store_dir(config)
    path = directory / reports.default_path(config.store, config.mode, program).name
    outcome, story = rerun(config.store, config.mode, cfg, program, path, config.watchdog)
    if not outcome.failed:  # the reduced program must fail on its own; else keep Hypothesis' own
        program = result.outcome.program
        path = directory / reports.default_path(config.store, config.mode, program).name
        outcome, story = rerun(config.store, config.mode, cfg, program, path, config.watchdog)
        if not outcome.failed:
            return
    key = failure_key(outcome)
    stats = {"examples": x.examples, "interleavings": len(x.interleavings), "seconds": round(x.seconds, 3),
             "first_failure_example": x.first_failure_example,
             "first_failure_seconds": round(x.first_failure_seconds or 0.0, 3), "steps": len(program),
             "coverage": coverage.to_json(), "fuzz_worker": name, "fuzz_key": key}
    report = reports.build(store=config.store, store_module=spec.module, mode=config.mode, cfg=cfg,
                           seed=task.seed, program=program, violations=outcome.violations, story=story,
                           trace=outcome.trace, stats=stats)
    v = outcome.violations[0]
    out["findings"].append({"key": key, "invariant": v.invariant, "summary": v.summary, "path": str(path),
                            "steps": len(program), "program": program_to_json(program), "report": report,
                            "reduced": reduced})


def _fill(out: dict, coverage: Coverage) -> None:
    out["examples"] = coverage.examples
    out["interleavings"] = sorted(coverage.interleavings)
    out["coverage"] = coverage.to_json()


def _emitter(task: Round, name: str) -> Callable[[Coverage], None]:
    """Progress events for the live display: at most one per
    ``PROGRESS_EVERY`` seconds, each with the round's example count and the
    interleavings new since the last event (so the client's union is exact)."""
    if not task.topic:
        return lambda coverage: None
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return lambda coverage: None
    sent: set = set()
    last = [0.0]

    def emit(coverage: Coverage) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_EVERY:
            return
        last[0] = now
        new = coverage.interleavings - sent
        sent.update(new)
        # "round_worker", not "worker": the scheduler sets "worker" to the worker's address
        worker.log_event(task.topic, {"id": task.id, "round_worker": name, "examples": coverage.examples,
                                      "new": sorted(new)})

    return emit


# -- the client -----------------------------------------------------------------------


def absorb(result: FuzzResult, done: dict, t0: float) -> list[Failure]:
    """Merge one finished round into ``result``; return the findings it
    made that are new to this run (their reports saved)."""
    worker = done["worker"]
    result.live.pop(done["id"], None)
    w = result.per_worker.setdefault(worker, WorkerStats())
    w.rounds += 1
    w.examples += done["examples"]
    w.interleavings.update(done["interleavings"])
    result.rounds += 1
    result.examples += done["examples"]
    c = Coverage.from_json(done["coverage"]) if done["coverage"] else Coverage()
    c.interleavings = set(done["interleavings"])
    result.coverage.merge(c)
    if done["error"]:
        result.worker_errors.append(f"{worker}: {done['error']}")
    fresh = []
    for f in done["findings"]:
        w.findings += f.get("hits", 1)
        seen = result.failures.get(f["key"])
        if seen is None and "replayed" in f:
            # a known program now fails differently: count it where it was known
            seen = result.failures.get(f["replayed"])
        if seen is None and not f.get("reduced", True):
            seen = next((k for k in result.failures.values() if covers(f["key"], k.key)), None)
        if seen is not None:
            seen.hits += f.get("hits", 1)
            seen.fixed = False
            if not seen.program and f.get("program"):
                seen.program = f["program"]
            continue
        if "report" not in f:
            continue
        saved = reports.save(f["report"], Path(f["path"]))
        failure = Failure(f["key"], f["invariant"], f["summary"], saved, worker, round(time.monotonic() - t0, 1),
                          f["steps"], program=f["program"])
        result.failures[f["key"]] = failure
        fresh.append(failure)
    return fresh


def progress(result: FuzzResult, event: dict) -> None:
    """Fold one progress event of a running round into ``result.live``."""
    rid = event.get("id")
    if not isinstance(rid, int):
        return
    _, _, hashes = result.live.get(rid, ("", 0, set()))
    hashes.update(event.get("new", ()))
    result.live[rid] = (str(event.get("round_worker", "?")), int(event.get("examples", 0)), hashes)


def run_fuzz(config: FuzzConfig, on_event: Callable[[FuzzResult, list[Failure]], None] | None = None) -> FuzzResult:
    """Run rounds on the cluster until the time is up or Ctrl-C; return
    what they found.  Raises :class:`ConfigError` for a bad store or
    cluster before any round starts."""
    from sessioncheck.campaigns.cluster import campaign

    config.validate()
    if config.database and not is_redis_url(config.database):
        config = replace(config, database=str(Path(config.database).absolute()))
    _model(config)  # a bad spec is a usage error here, not in N workers
    directory = store_dir(config)
    directory.mkdir(parents=True, exist_ok=True)
    result = FuzzResult(workers=config.workers)
    result.failures.update(known_failures(config))
    base = config.seed if config.seed is not None else random.SystemRandom().getrandbits(32)
    return campaign(config, result, random.Random(base), on_event, Round=Round, fuzz_round=fuzz_round,
                    absorb=absorb, progress=progress, stop_rounds=stop_rounds)
