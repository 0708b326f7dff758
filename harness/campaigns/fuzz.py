"""Long fuzz runs: many workers, many rounds, each distinct failure once.

Design notes.

*Workers.*  ``workers`` OS processes (``multiprocess``), each running
rounds of :func:`sessioncheck.verify.verify` until the deadline or until told
to stop.  Every round has its own seed, drawn from the worker's own stream
(``Random(f"{base}|{worker}")``), so no two workers and no two rounds
explore the same schedules.  Workers ignore SIGINT: Ctrl-C reaches the
parent, which asks them to stop after their round, then terminates any
that do not (SIGTERM unwinds a worker through its ``finally`` blocks, so
actors are reaped and temporary locations removed), then kills; every
worker is joined before the run returns.

*Resuming.*  Every round uses Hypothesis' example database (a directory
shared by the workers; directory databases are safe for concurrent use).
A worker's first round replays what the database holds, so a failure
found by an earlier run is met again first; later rounds only generate,
so a known failure does not crowd out the search.  Reports already in the
output directory are read at start: a failure found again is counted, not
saved twice.

*Deduplication.*  A failure's key is its violated invariant and its
*normalised* shrunk program: actors, sessions and metadata fields renamed
in order of first appearance, and values told apart only as ``None`` or
set (the same bug shown by actor B on ``s1`` writing ``''`` to ``model``
is the same failure as by A on ``s0`` writing ``'v1'`` to
``compute_instance_id``).  Because Hypothesis' shrinking is bounded in
time, a worker first finishes it greedily (renames actors and sessions in
order of appearance, removes every step it can, and moves the rest toward
the first actor, the first session, one point), keeping each change that
keeps the same violation, bounded in runs; so leftovers of an unfinished
shrink do not make a known failure look new.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue as queue_mod
import random
import signal
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from sessioncheck.reporting import report as reports
from sessioncheck.reporting.coverage import Coverage
from sessioncheck.errors import ConfigError, SessionCheckError
from sessioncheck.controlled.program import ModelConfig, Step

REDUCE_RUNS = 200  # reruns the greedy step-removal pass may spend per failure


class StopRound(BaseException):
    """Raised from ``on_example`` when the parent asks a worker to stop: a
    BaseException, so Hypothesis lets it through at once and the round
    unwinds normally (actors closed, locations removed) between two
    examples."""


def normalise(program: list[Step]) -> list:
    """The program with actors, sessions and metadata fields renamed in
    order of first appearance, and every value written other than ``None``
    called ``set`` (JSON-ready)."""
    actors: dict[int, int] = {}
    sessions: dict[int, int] = {}
    keys: dict[str, str] = {}
    out = []
    for s in program:
        a = actors.setdefault(s.actor, len(actors))
        if s.kind == "start" and s.op is not None:
            op = s.op
            sess = sessions.setdefault(op.session, len(sessions))
            fields = [[keys.setdefault(k, f"k{len(keys)}"), "none" if v == "none" else "set"] for k, v in op.fields]
            out.append(["start", a, [op.f, sess, fields] if op.f == "persist" else [op.f, sess]])
        elif s.kind == "advance":
            out.append(["advance", a, s.points])
        elif s.kind == "fault":
            out.append(["fault", a, s.errno_name])
        else:
            out.append([s.kind, a])
    return out


def failure_key(invariant: str, program: list[Step]) -> str:
    """The dedup key: ``I3:1f0c...`` (invariant, hash of the normalised program)."""
    digest = hashlib.sha1(json.dumps(normalise(program)).encode()).hexdigest()[:12]
    return f"{invariant}:{digest}"


def simpler(step: Step) -> list[Step]:
    """Simpler versions of one step, simplest first: the first actor, the
    first session, a fresh value instead of an empty one, one point."""
    out: list[Step] = []
    if step.actor != 0:
        out.append(replace(step, actor=0))
    if step.kind == "start" and step.op is not None:
        op = step.op
        if op.session != 0:
            out.append(replace(step, op=replace(op, session=0)))
        if any(v == "empty" for _, v in op.fields):
            fields = tuple((k, "fresh" if v == "empty" else v) for k, v in op.fields)
            out.append(replace(step, op=replace(op, fields=fields)))
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


def reduce_program(run: Callable[[list[Step]], Any], program: list[Step], invariant: str,
                   max_runs: int = REDUCE_RUNS, stop: Callable[[], bool] = lambda: False) -> list[Step]:
    """Finish a shrink that its bounds cut short: rename actors and
    sessions (:func:`renamed`), remove steps one at a time (last first),
    then simplify the steps left (:func:`simpler`),
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
            for option in simpler(program[i]):
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
    store: str
    hours: float
    workers: int
    mode: str = "threads"
    faults: tuple[str, ...] = ()
    seed: int | None = None
    out_dir: Path = Path(".sessioncheck") / "fuzz"
    database: Path | None = Path(".sessioncheck") / "examples"
    round_seconds: float = 60.0
    shrink_budget: float = 10.0
    cfg: ModelConfig | None = None
    watchdog: float = 10.0
    grace: float = 20.0  # after the deadline or Ctrl-C: how long workers get to finish a round

    def validate(self) -> None:
        if not self.hours > 0:
            raise ConfigError("--hours must be a positive number")
        if not 1 <= self.workers <= 256:
            raise ConfigError("--workers must be between 1 and 256")
        if self.mode not in ("threads", "processes", "mixed"):
            raise ConfigError(f"unknown actor mode {self.mode!r}")
        if not self.round_seconds > 0:
            raise ConfigError("--round must be a positive number of seconds")


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

    @property
    def found(self) -> bool:
        return bool(self.failures)


def store_dir(config: FuzzConfig) -> Path:
    import re

    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", config.store).strip("-")
    return config.out_dir / f"{safe}-{config.mode}"


def known_failures(directory: Path) -> dict[str, Failure]:
    """Reports saved by earlier runs, by key.  Files that are not valid
    reports are skipped (a report is data: nothing in it is run)."""
    out: dict[str, Failure] = {}
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob("*.json")):
        try:
            data = reports.load(path)
        except SessionCheckError:
            continue
        if not data["violations"]:
            continue
        v = data["violations"][0]
        key = failure_key(str(v.get("invariant")), data["_program"])
        out.setdefault(key, Failure(key, str(v.get("invariant")), str(v.get("summary", "")), path, "earlier run",
                                    0.0, len(data["_program"]), hits=0, known=True))
    return out


# -- the worker ----------------------------------------------------------------------


def _worker_main(index: int, config: FuzzConfig, base_seed: int, deadline_wall: float, stop: Any,
                 out: Any) -> None:
    """One worker process: rounds until the deadline or ``stop``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle

    def on_term(signum, frame):  # unwind through finally blocks: actors reaped, locations removed
        # (a last resort after the grace period: what the unwinding prints is not news)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    name = f"w{index}"
    try:
        _rounds(name, config, base_seed, deadline_wall, stop, out)
    except SessionCheckError as exc:
        out.put(("error", name, str(exc)))
    except SystemExit:
        pass
    except BaseException as exc:  # noqa: BLE001 - report, never hang the parent
        out.put(("error", name, f"{type(exc).__name__}: {exc}"))
    finally:
        out.put(("done", name))


def _rounds(name: str, config: FuzzConfig, base_seed: int, deadline_wall: float, stop: Any, out: Any) -> None:
    from hypothesis import Phase
    from hypothesis.database import DirectoryBasedExampleDatabase

    from sessioncheck.controlled.engine import Executor
    from sessioncheck.specs import resolve
    from sessioncheck.verify import model_config, rerun, verify

    stream = random.Random(f"{base_seed}|{name}")
    parent = os.getppid()

    def stopping() -> bool:
        return stop.is_set() or os.getppid() != parent

    db = DirectoryBasedExampleDatabase(str(config.database)) if config.database else None
    directory = store_dir(config)
    first = True
    while not stopping():
        left = deadline_wall - time.time()
        if left <= 0.5:
            break
        seed = stream.getrandbits(32)
        # The systematic pass and the saved failures once per worker; later
        # rounds only draw new programs.
        phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink] if first else \
            [Phase.generate, Phase.shrink]
        first = False
        coverage = Coverage()

        def observe(stats: Any) -> None:
            coverage.on_example(stats)
            if stopping():
                raise StopRound()

        try:
            result = verify(config.store, mode=config.mode, faults=config.faults,
                            budget=min(config.round_seconds, left), seed=seed, database=db, save_report=False,
                            cfg=config.cfg, watchdog=config.watchdog, shrink_budget=config.shrink_budget,
                            on_example=observe, settings_kwargs={"phases": phases})
        except StopRound:
            out.put(("round", name, coverage.examples, sorted(coverage.interleavings), coverage.to_json()))
            return
        x = result.exploration
        out.put(("round", name, x.examples, sorted(x.interleavings), coverage.to_json()))
        if not result.found:
            continue
        spec = resolve(config.store)
        cfg = model_config(spec, config.mode, config.faults, config.cfg)
        invariant = result.outcome.violations[0].invariant
        with Executor(spec, config.mode, cfg, watchdog=config.watchdog) as ex:
            program = reduce_program(ex.run, result.outcome.program, invariant, stop=stopping)
        path = directory / reports.default_path(config.store, config.mode, program).name
        outcome, story = rerun(config.store, config.mode, cfg, program, path, config.watchdog)
        if not outcome.failed:  # the reduced program must fail on its own; else keep Hypothesis' own
            program = result.outcome.program
            path = directory / reports.default_path(config.store, config.mode, program).name
            outcome, story = rerun(config.store, config.mode, cfg, program, path, config.watchdog)
            if not outcome.failed:
                continue
        stats = {"examples": x.examples, "interleavings": len(x.interleavings), "seconds": round(x.seconds, 3),
                 "first_failure_example": x.first_failure_example,
                 "first_failure_seconds": round(x.first_failure_seconds or 0.0, 3), "steps": len(program),
                 "coverage": coverage.to_json(), "fuzz_worker": name}
        report = reports.build(store=config.store, store_module=spec.module, mode=config.mode, cfg=cfg,
                               seed=seed, program=program, violations=outcome.violations, story=story,
                               trace=outcome.trace, stats=stats)
        v = outcome.violations[0]
        out.put(("found", name, failure_key(v.invariant, program), v.invariant, v.summary, str(path),
                 len(program), report))


# -- the parent ----------------------------------------------------------------------


def run_fuzz(config: FuzzConfig, on_event: Callable[[FuzzResult], None] | None = None) -> FuzzResult:
    """Run the workers until the time is up or Ctrl-C; return what they
    found.  Raises :class:`ConfigError` for a bad store before any worker
    starts."""
    import multiprocess as mp

    from sessioncheck.specs import resolve
    from sessioncheck.verify import model_config

    config.validate()
    spec = resolve(config.store)  # a bad spec is a usage error here, not in N workers
    model_config(spec, config.mode, config.faults, config.cfg)
    directory = store_dir(config)
    directory.mkdir(parents=True, exist_ok=True)
    result = FuzzResult(workers=config.workers)
    result.failures.update(known_failures(directory))
    base = config.seed if config.seed is not None else random.SystemRandom().getrandbits(32)
    t0 = time.monotonic()
    deadline_wall = time.time() + config.hours * 3600
    ctx = mp.get_context("fork")
    stop = ctx.Event()
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker_main, args=(i, config, base, deadline_wall, stop, out),
                         name=f"sessioncheck-fuzz-w{i}") for i in range(config.workers)]
    # not daemonic: a worker with process actors has children of its own;
    # every worker is joined in the finally below, and one whose parent
    # died stops by itself (it watches its parent id)
    running = set()

    def on_term(signum, frame):  # a CI timeout or kill: stop like Ctrl-C, reap the workers
        raise KeyboardInterrupt()

    old_term = signal.signal(signal.SIGTERM, on_term)
    try:
        for p in procs:
            p.start()
            running.add(f"w{procs.index(p)}")
        stop_by: float | None = None
        while running:
            now = time.time()
            if stop_by is None and now >= deadline_wall:
                # workers end by themselves: each round's search ends at the
                # deadline, and a failure found just before is still shrunk
                # and reduced; only past the grace are they told to stop
                stop_by = now + config.grace + config.shrink_budget
            if stop_by is not None and now > stop_by:
                break
            try:
                msg = out.get(timeout=0.5)
            except queue_mod.Empty:
                if not any(p.is_alive() for p in procs):
                    break
                continue
            _absorb(msg, result, running, t0)
            if on_event is not None:
                on_event(result)
    except KeyboardInterrupt:
        result.interrupted = True
        stop.set()
        # workers ignore SIGINT and stop after the example they are running
        # (or after a shrink, bounded by shrink_budget); then SIGTERM, then kill
        _drain_until(out, result, running, t0, time.time() + config.shrink_budget + 5.0, procs)
    finally:
        signal.signal(signal.SIGTERM, old_term)
        stop.set()
        _drain_until(out, result, running, t0, time.time() + 2.0, procs)
        _reap(procs)
        out.close()
        out.join_thread()
    result.seconds = time.monotonic() - t0
    return result


def _absorb(msg: tuple, result: FuzzResult, running: set, t0: float) -> None:
    kind, name = msg[0], msg[1]
    if kind == "round":
        _, _, examples, hashes, cov = msg
        result.rounds += 1
        result.examples += examples
        c = Coverage.from_json(cov)
        c.interleavings = set(hashes)
        result.coverage.merge(c)
    elif kind == "found":
        _, _, key, invariant, summary, path, steps, report = msg
        seen = result.failures.get(key)
        if seen is not None:
            seen.hits += 1
            return
        saved = reports.save(report, Path(path))
        result.failures[key] = Failure(key, invariant, summary, saved, name, round(time.monotonic() - t0, 1), steps)
    elif kind == "error":
        result.worker_errors.append(f"{name}: {msg[2]}")
    elif kind == "done":
        running.discard(name)


def _drain_until(out: Any, result: FuzzResult, running: set, t0: float, until: float, procs: list) -> None:
    while running and time.time() < until:
        try:
            _absorb(out.get(timeout=0.2), result, running, t0)
        except queue_mod.Empty:
            if not any(p.is_alive() for p in procs):
                return
        except (EOFError, OSError):
            return


def _reap(procs: list) -> None:
    """Every worker is gone when this returns: SIGTERM (unwinds), then SIGKILL."""
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.time() + 10.0
    for p in procs:
        p.join(timeout=max(0.1, deadline - time.time()))
    for p in procs:
        if p.is_alive():
            os.kill(p.pid, signal.SIGKILL)
            p.join(timeout=5.0)
