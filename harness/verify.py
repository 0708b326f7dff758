"""One verification of one store: the function every front end calls.

The CLI's ``run``, the pytest plugin, ``gallery`` and ``fuzz`` all go
through :func:`verify`, so they find the same bugs and print the same
stories.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from sessioncheck import health
from sessioncheck.reporting import report as reports
from sessioncheck.reporting.coverage import Coverage
from sessioncheck.controlled.engine import Executor, Outcome, mode_label
from sessioncheck.controlled.search import SATURATED, Exploration, explore
from sessioncheck.errors import ConfigError
from sessioncheck.controlled.program import ModelConfig, Step
from sessioncheck.protocol import StoreSpec
from sessioncheck.specs import resolve
from sessioncheck.reporting.story import render
from sessioncheck.words import plural

FAULTS = ("crash", "power-loss", "io-error", "server-crash", "cancel")


@dataclass
class Result:
    store: str
    mode: str
    exploration: Exploration
    outcome: Outcome | None = None
    story: str = ""
    report_path: Path | None = None
    report: dict = field(default_factory=dict)
    coverage: Coverage | None = None  # what the search reached (``--stats``)
    #: health checks that failed but were suppressed, as (name, message)
    suppressed: list = field(default_factory=list)
    #: what the run had to assume about the store (``capabilities`` missing)
    notes: list = field(default_factory=list)
    #: the seed the search ran with (drawn by the caller when none was given)
    seed: int | None = None
    #: ``keep_going``: every distinct violation, the first one first, each
    #: a :class:`Told` (its own story and report); empty otherwise
    distinct: list = field(default_factory=list)
    #: the mode as the summary says it (``tasks in 2 processes``); the mode if empty
    label: str = ""

    @property
    def found(self) -> bool:
        return self.outcome is not None

    def summary(self) -> str:
        x = self.exploration
        what = (f"{plural(x.examples, 'example')}, {plural(len(x.interleavings), 'distinct interleaving')} "
                f"({x.distinct_share:.0%}), {x.seconds:.1f} s")
        if self.found:
            text = (f"violation found in {self.store} ({self.label or self.mode}) after "
                    f"{plural(x.first_failure_example or 0, 'example')} "
                    f"({x.first_failure_seconds:.2f} s); {what} in all")
        else:
            unknown = (f"; the checker ran out of budget on {plural(x.unknown, 'example')} (verdict unknown)"
                       if x.unknown else "")
            text = f"no violation found in {self.store} ({self.label or self.mode}): {what}{unknown}"
        if self.seed is not None:
            text += f"; seed {self.seed}"
        lines = [text]
        if self.distinct:
            lines.append(f"{plural(len(self.distinct), 'distinct violation')} (--keep-going):")
            lines += [f"  {d.line()}" for d in self.distinct]
            repeated = sum(x.known_failures.values())
            if repeated:
                lines.append(f"  and {plural(repeated, 'further failure')} of a signature already found (not shrunk)")
        return "\n".join([*lines, *self.remarks()])

    def remarks(self) -> list[str]:
        """What the summary adds: the clock cutting the search or its
        shrinking, suppressed health checks, assumed capabilities."""
        x = self.exploration
        out = [f"note: {n}" for n in self.notes]
        if x.clock_cut:
            out.append(f"note: the time budget ended the search after {plural(x.examples, 'example')}, before the "
                       "example limit: a seeded run is reproducible by its example count only when the "
                       "example limit ends it (--examples)")
        if x.keep_going_stopped:
            out.append(f"note: {x.keep_going_stopped}")
        if x.shrink_cut:
            out.append(f"note: {x.shrink_cut}; the story shown may not be the smallest one")
        out += [f"note: health check {name} suppressed: {text.split(';')[0]}" for name, text in self.suppressed]
        return out


def parse_faults(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    out = tuple(f.strip() for f in text.split(",") if f.strip())
    bad = [f for f in out if f not in FAULTS]
    if bad:
        raise ConfigError(f"unknown fault {bad[0]!r}; choose from {', '.join(FAULTS)}")
    return out


def model_config(spec: StoreSpec, mode: str, faults: tuple[str, ...], base: ModelConfig | None = None,
                 notes: list | None = None, watchdog: float = 10.0) -> ModelConfig:
    """The model for this store: capabilities decide what it may call.

    Checks the adapter contract first (:mod:`sessioncheck.contract`); what
    it had to assume is appended to ``notes``."""
    from sessioncheck.contract import check as check_contract

    cfg = base or ModelConfig()
    probed = check_contract(spec, watchdog=watchdog, allow_errors=cfg.allow_errors)
    caps = probed.capabilities
    if notes is not None and not probed.declared:
        notes.append(f"{spec.name} declares no capabilities: assumed the defaults (metadata={caps.metadata}, "
                     f"delete={caps.delete}); declare `capabilities = Capabilities(...)` on the store")
    if "crash" in faults and mode == "threads":
        raise ConfigError("crash faults need process actors: add --actors processes (or mixed)")
    from sessioncheck.controlled.task_faults import check_task_faults

    check_task_faults(mode, faults)
    keys = tuple(dict.fromkeys(caps.metadata_fields)) or cfg.keys
    from sessioncheck.controlled.program import valid_key

    if not all(valid_key(k) for k in keys) or len(keys) > 8:
        raise ConfigError(f"store {spec.name!r}: Capabilities.metadata_fields must name 1 to 8 fields "
                          f"(printable strings), not {caps.metadata_fields!r}")
    # the store's declared kinds drive the model, as its metadata fields do
    kinds = tuple(dict.fromkeys(caps.message_kinds)) or cfg.messages
    values = cfg.values
    if caps.metadata_values is not None:
        from sessioncheck.controlled import values as value_kinds

        try:  # the store's strategy, a value kind beside the model's
            name = value_kinds.register(f"{spec.name}.metadata_values", caps.metadata_values, replace=True)
        except ValueError as exc:
            raise ConfigError(f"store {spec.name!r}: Capabilities.metadata_values: {exc}") from None
        values = tuple(dict.fromkeys((*values, name)))
    return replace(
        cfg,
        keys=keys,
        messages=kinds,
        identity=caps.message_identity,
        values=values,
        metadata=caps.metadata,
        delete=caps.delete,
        pop=caps.pop,
        clear=caps.clear,
        rename=caps.rename,
        crash="crash" in faults,
        power_loss="power-loss" in faults,
        server_crash="server-crash" in faults,
        io_faults=(("EIO", "ENOSPC", "EACCES") if "io-error" in faults else ()) + (
            ("cancel",) if "cancel" in faults else ()),
    )


def replay_command(report_path: Path | None, store: str) -> str:
    path = str(report_path) if report_path else "REPORT.json"
    return f"sessioncheck replay {shlex.quote(path)} --store {shlex.quote(store)}"


def header(store: str, mode: str, cfg: ModelConfig, outcome: Outcome) -> str:
    first = outcome.violations[0]
    from sessioncheck.checking.invariants import INVARIANTS

    kinds = {"threads": "thread actors", "processes": "process actors", "mixed": "mixed actors",
             "tasks": "asyncio tasks of one event loop"}[mode]
    if mode == "tasks" and cfg.task_processes:
        m = cfg.task_processes
        kinds = f"asyncio tasks in {m} process{'es' if m != 1 else ''} (an event loop each)"
    return (f"sessioncheck: {first.invariant} ({INVARIANTS.get(first.invariant, '')}) violated by store "
            f"{store} with {cfg.actors} {kinds}")


_T_RANGE = re.compile(r"\bt=(\d+)\.\.(\d+)")
_T_ONE = re.compile(r"\bt=(\d+)")


def steps_wording(text: str) -> str:
    """The checker speaks in times; in a story the times are step numbers."""
    text = _T_RANGE.sub(lambda m: f"step {m[1]}" if m[1] == m[2] else f"steps {m[1]}-{m[2]}", text)
    return _T_ONE.sub(lambda m: f"step {m[1]}", text)


def tell(store: str, mode: str, cfg: ModelConfig, outcome: Outcome, report_path: Path | None) -> str:
    for v in outcome.violations:
        v.summary = steps_wording(v.summary)
    return render(header=header(store, mode, cfg, outcome), trace=outcome.trace, ops=outcome.ops,
                  violations=outcome.violations, replay_command=replay_command(report_path, store))


@dataclass
class Told:
    """One distinct violation of a ``keep_going`` search, told and saved."""

    signature: str
    example: int
    outcome: Outcome
    story: str
    report: dict
    report_path: Path | None = None
    shrink_cut: str = ""

    def line(self) -> str:
        invariant, _, ops = self.signature.partition(" ")
        saved = f"; report {self.report_path}" if self.report_path else ""
        cut = "; shrinking cut short" if self.shrink_cut else ""
        return f"{invariant} by {ops or 'no operation'}, first at example {self.example}{saved}{cut}"


def verify(store: str, *, mode: str = "threads", faults: tuple[str, ...] = (), budget: float = 60.0,
           max_examples: int | None = None, seed: int | None = None, report_path: Path | None = None,
           report_dir: Path | None = None, save_report: bool = True, database: Any = None, cfg: ModelConfig | None = None,
           watchdog: float = 10.0, on_example: Callable[[Exploration], None] | None = None,
           shrink_budget: float = 10.0, settings_kwargs: dict | None = None,
           suppress_health_check: Any = (), allow_errors: tuple[str, ...] = (),
           seed_chosen: bool = True, keep_going: bool = False,
           ignore: Callable[[Outcome], str | None] | None = None) -> Result:
    """Explore ``store`` and tell the story of the smallest violation.

    The run ends within ``budget`` plus 10 % (at least 2 s, at most 10 s), shrinking
    included, plus at most one ``watchdog`` period for a run that got
    stuck (:func:`~sessioncheck.controlled.search.explore`).  Health checks
    (:mod:`sessioncheck.health`) run on the exploration; one that fails
    and is not in ``suppress_health_check`` raises
    :class:`~sessioncheck.health.HealthCheckFailed` (exit 2).  The adapter
    contract is checked before the search
    (:mod:`sessioncheck.contract`).  ``allow_errors`` (regular
    expressions, ``--allow-errors``) adds to ``cfg.allow_errors``: an error
    one matches, anywhere in its exception chain, is "not acknowledged".

    ``seed_chosen=False`` says the caller drew ``seed`` itself (it is
    printed, so the run can be searched again): the search is then bounded
    by the clock like an unseeded one and makes no reproducibility note
    (:func:`~sessioncheck.controlled.search.explore`).

    ``keep_going``: the search goes on past a violation, within the same
    budget, and ``Result.distinct`` holds every distinct one
    (:mod:`sessioncheck.controlled.keep_going`), each with its own story
    and report (with ``report_path`` given, the second is saved beside it
    as ``<stem>-2.json`` and so on); ``outcome``, ``story`` and
    ``report`` are the first one's.

    ``ignore`` (not with ``keep_going``, which keeps its own): a known
    failure's key for an outcome, or ``None``; a failure it names counts
    as a pass, tallied in ``exploration.known_failures``
    (:func:`~sessioncheck.controlled.search.explore`)."""
    if not isinstance(store, str):  # a factory object: named as the pytest gate names it
        from sessioncheck.specs import name_of

        store = name_of(store)
    suppressed = health.parse_suppressed(suppress_health_check)
    if allow_errors:
        cfg = replace(cfg or ModelConfig(),
                      allow_errors=tuple(dict.fromkeys((*(cfg.allow_errors if cfg else ()), *allow_errors))))
    if mode not in ("threads", "processes", "mixed", "tasks"):
        raise ConfigError(f"unknown actor mode {mode!r}; choose threads, processes, mixed or tasks")
    if budget <= 0:
        raise ConfigError("--budget must be a positive number of seconds")
    spec = resolve(store)
    notes: list[str] = []
    model = model_config(spec, mode, faults, cfg, notes=notes, watchdog=watchdog)
    coverage = Coverage()
    tally = health.Tally()

    def observe(stats: Exploration) -> None:
        coverage.on_example(stats)
        tally.on_example(stats)
        if on_example is not None:
            on_example(stats)

    found: list = []
    with Executor(spec, mode, model, watchdog=watchdog) as ex:
        if keep_going:
            from sessioncheck.controlled.keep_going import explore_all

            x, found = explore_all(ex, budget=budget, max_examples=max_examples, seed=seed, database=database,
                                   on_example=observe, shrink_budget=shrink_budget,
                                   settings_kwargs=settings_kwargs, seed_chosen=seed_chosen)
        else:
            x = explore(ex, budget=budget, max_examples=max_examples, seed=seed, database=database,
                        on_example=observe, shrink_budget=shrink_budget, settings_kwargs=settings_kwargs,
                        seed_chosen=seed_chosen, ignore=ignore)
    result = Result(store, mode, x, coverage=coverage, notes=notes, seed=seed, label=mode_label(mode, model))
    # A search that Hypothesis ended itself, before the budget or the
    # example limit, found nothing new to generate: its programs rejected
    # as repeats of runs done count as generated examples with nothing new
    # (a model too small to explore anything).  Not in a search the budget
    # ended: a long one rejects more and more, rightly.
    if (not x.budget_exhausted and x.outcome is None
            and (max_examples is None or x.examples < max_examples)):
        tally.generated += x.repeats
    if x.saturated and x.outcome is None:
        notes.append(f"the search ended early, at {x.examples} examples: {SATURATED} programs in a row repeated runs "
                     "already done, so the model has little left to explore (--max-steps, --actor-count and "
                     "--sessions make it larger)")
    result.suppressed = health.check(store, coverage, tally, x.outcome, suppressed, faults=faults, mode=mode)
    if x.outcome is None:
        return result
    for n, d in enumerate(found or [None]):
        outcome = d.outcome if d is not None else x.outcome
        # tasks in processes apart from tasks of one loop: "tasks-2p"
        shown = f"tasks-{model.task_processes}p" if mode == "tasks" and model.task_processes else mode
        path = report_path or reports.default_path(store, shown, outcome.program)
        if report_dir is not None and report_path is None:
            path = Path(report_dir) / path.name
        if n and report_path is not None:
            path = path.with_name(f"{path.stem}-{n + 1}{path.suffix}")
        story = tell(store, mode, model, outcome, path if save_report else None)
        stats = {
            "examples": x.examples, "interleavings": len(x.interleavings), "seconds": round(x.seconds, 3),
            "first_failure_example": d.example if d is not None else x.first_failure_example,
            "first_failure_seconds": round((d.seconds if d is not None else x.first_failure_seconds) or 0.0, 3),
            "steps": len(outcome.program),
            "coverage": coverage.to_json(),
        }
        report = reports.build(store=store, store_module=spec.module, mode=mode, cfg=model, seed=seed,
                               program=outcome.program, violations=outcome.violations, story=story,
                               trace=outcome.trace, stats=stats)
        saved = reports.save(report, path) if save_report else None
        if n == 0:
            result.outcome, result.story, result.report, result.report_path = outcome, story, report, saved
        if d is not None:
            result.distinct.append(Told(d.signature, d.example, outcome, story, report, saved, d.shrink_cut))
    return result


def rerun(store: str, mode: str, cfg: ModelConfig, program: list[Step], report_path: Path | None,
          watchdog: float = 10.0) -> tuple[Outcome, str]:
    """Run one saved program again and tell its story (``replay``)."""
    spec = resolve(store)
    with Executor(spec, mode, cfg, watchdog=watchdog) as ex:
        outcome = ex.run(program)
    story = tell(store, mode, cfg, outcome, report_path) if outcome.failed else ""
    return outcome, story
