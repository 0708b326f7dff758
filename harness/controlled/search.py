"""The search: Hypothesis draws programs, the executor runs them, and a
failing one is shrunk to the shortest interleaving.

``explore()`` is the only place Hypothesis is driven from.  It keeps
Hypothesis in charge of every choice (so shrinking works), ends the search
from inside when the budget is spent, and bounds shrinking.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from sessioncheck.controlled.engine import Executor, Outcome
from sessioncheck.errors import ConfigError, SessionCheckError
from sessioncheck.controlled.program import Step

class NondeterministicStore(SessionCheckError):
    """The same program gave different outcomes: something outside the
    harness's control (real time, randomness, a thread of the store's own)
    decides the run."""


class BudgetSpent(BaseException):
    """Raised inside the Hypothesis test to end the search: the budget is
    spent, or nothing new is left to generate (``Exploration.saturated``)."""


#: Generated programs in a row whose runs were all done already, after
#: which the search ends: the model has (almost) nothing new left.
#: Hypothesis would go on mutating and rejecting for thousands of
#: attempts (3,456, 21 s, for 7 distinct runs of a one-step model); a
#: search of the default model rarely repeats more than a few in a row.
SATURATED = 300


class _Abort(BaseException):
    """Carries a configuration error out of Hypothesis unshrunk."""

    def __init__(self, error: ConfigError) -> None:
        super().__init__(str(error))
        self.error = error


class ShrinkCut(BaseException):
    """Ends Hypothesis' shrinking once its budget is spent, with the
    smallest failure run so far, which is what the search reports.
    Answering each later candidate "passes" instead left Hypothesis to
    try them all, each a full draw of a program: 1,060 of them, 18 s, in
    a search whose shrink budget was 5 runs."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.violations[0].summary)
        self.outcome = outcome


class Found(Exception):
    """Raised inside the Hypothesis test when a run breaks an invariant."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.violations[0].summary)
        self.outcome = outcome


@dataclass
class Exploration:
    examples: int = 0
    interleavings: set = field(default_factory=set)
    #: distinct warnings of passing runs (a temp file a killed writer left),
    #: each with the first example that showed it
    warnings: dict = field(default_factory=dict)
    seconds: float = 0.0
    first_failure_example: int | None = None
    first_failure_seconds: float | None = None
    outcome: Outcome | None = None
    unknown: int = 0
    budget_exhausted: bool = False
    #: programs of the systematic pass run (the first examples)
    systematic: int = 0
    #: the outcome of the example just run, for ``on_example`` observers
    #: (schedule coverage); not kept after the call
    last: Outcome | None = None
    #: the clock, not the example limit, ended a seeded search (so the
    #: same seed may explore more or fewer examples on another machine)
    clock_cut: bool = False
    #: why shrinking stopped before Hypothesis was done ("" if it was not
    #: cut short): the story shown may not be the smallest
    shrink_cut: str = ""
    #: store runs spent shrinking
    shrink_runs: int = 0
    #: programs Hypothesis generated that repeated a run already done
    #: (:mod:`sessioncheck.controlled.repeats`), rejected without a run
    repeats: int = 0
    #: the pass ran to its end (a later round of ``--keep-going`` skips it)
    systematic_done: bool = False
    #: the unshrunk failure the search met first (its signature is known
    #: too, :mod:`sessioncheck.controlled.keep_going`)
    found_raw: Outcome | None = None
    #: failures of an already known signature, counted and not shrunk
    #: (``ignore``), by signature
    known_failures: dict = field(default_factory=dict)
    #: why ``--keep-going`` stopped searching before the budget ("" if it did not)
    keep_going_stopped: str = ""
    #: the search ended because generation kept repeating runs already
    #: done (:data:`SATURATED` in a row): little is left to explore
    saturated: bool = False

    @property
    def distinct_share(self) -> float:
        """The share of examples whose interleaving no earlier one had."""
        return len(self.interleavings) / self.examples if self.examples else 1.0


def grace(budget: float) -> float:
    """How far past its budget a search may run to finish shrinking: 10 %,
    at least 2 s, at most 10 s."""
    return min(max(0.1 * budget, 2.0), 10.0)


def explore(executor: Executor, *, budget: float = 60.0, max_examples: int | None = None,
            seed: int | None = None, database: Any = None,
            shrink_budget: float = 10.0, shrink_runs: int = 400,
            on_example: Callable[[Exploration], None] | None = None,
            settings_kwargs: dict | None = None, systematic: bool = True,
            seed_chosen: bool = True, ignore: Callable[[Outcome], str | None] | None = None,
            into: Exploration | None = None, systematic_skip: int = 0) -> Exploration:
    """Search for a violating program within ``budget`` seconds and at most
    ``max_examples`` examples.  Returns the shrunk counterexample in
    ``.outcome``, or ``None`` if none was found within the budget.

    One Hypothesis run does the search; the budget ends it from inside
    (:class:`BudgetSpent`).  A seeded exploration is deterministic as long
    as the example budget, not the clock, ends it (with ``database=None``).

    The budget is a promise: the search stops starting examples at
    ``budget`` seconds and shrinking stops at ``budget`` + :func:`grace`,
    so the whole exploration ends by then, plus at most one ``watchdog``
    period for a run already under way.  Shrinking also stops after
    ``shrink_budget`` seconds (unseeded only), ``shrink_runs`` runs, or
    the first shrink run that took a watchdog period (a stuck run costs
    one period, not one per attempt).  The next candidate Hypothesis asks
    for then ends its shrinking (:class:`ShrinkCut`) with the smallest
    failure run so far, and ``shrink_cut`` says why.  A seeded search is
    bounded by the run count (and the hard end) alone, so that the same
    seed shrinks to the same story on a fast or a loaded machine unless
    the budget runs out first; ``clock_cut`` says when the clock ended a
    seeded search.

    ``systematic=False`` (or phases without ``Phase.explicit``) skips the
    systematic pass (:mod:`sessioncheck.controlled.systematic`): the random search alone.

    ``seed_chosen=False``: the seed was drawn by the caller, not asked for
    by the user, so the run promises a time bound, not reproducibility:
    shrinking is bounded by ``shrink_budget`` as in an unseeded search and
    ``clock_cut`` stays ``False``.

    For ``--keep-going`` (:mod:`sessioncheck.controlled.keep_going`):
    ``ignore(outcome)`` returns a known failure's signature, and that
    failure then counts as a pass (``known_failures``), in the search and
    in shrinking alike; ``into`` continues the counts of an earlier round
    (the example limit is on the total); ``systematic_skip`` skips the
    first programs of the pass, run by an earlier round."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, reject, settings
    from hypothesis import seed as hseed
    from hypothesis.errors import Flaky

    from sessioncheck.controlled.program import decode, programs
    from sessioncheck.controlled.systematic import programs as systematic_pass

    stats = into if into is not None else Exploration()
    stats.outcome, stats.budget_exhausted, stats.found_raw, stats.saturated = None, False, None, False
    t0 = time.monotonic()
    deadline = t0 + budget
    limit = max_examples if max_examples is not None else 10**12
    strategy = programs(executor.cfg)
    digest = f"sessioncheck|{executor.spec.name}|{executor.mode}|{executor.cfg}".encode()
    shrinking = [False]
    best: list[Outcome] = []
    raw_of: dict[int, list] = {}  # id of an outcome in ``best`` (which keeps it alive) -> its raw program
    shrink = {"runs": 0, "until": 0.0, "why": ""}
    hard_end = deadline + grace(budget)
    watchdog = float(getattr(executor, "watchdog", 10.0))

    cfg = executor.cfg

    from sessioncheck.controlled.exits import check_signals

    reproducible = seed is not None and seed_chosen
    from sessioncheck.controlled.repeats import Schedules

    # The runs done so far, so that generation never spends a run on a
    # program whose run is one of them.  Only generation is steered:
    # Hypothesis still makes every choice, and shrinking runs every
    # candidate it asks for.
    schedules = Schedules(cfg.actors)
    generating = [False]
    streak = [0]  # generated programs in a row that repeated a done run
    owner: dict[int, tuple] = {}  # a done run's node -> the raw program that ran it first
    watched = getattr(executor, "watch", None)

    def body(raw: list) -> None:
        check_signals()  # a signal whose exception something swallowed
        if not shrinking[0] and (stats.examples >= limit or time.monotonic() > deadline):
            # A BaseException that is not an Exception ends Hypothesis at
            # once: no shrinking, no "flaky" verdict.
            stats.budget_exhausted = True
            if stats.examples < limit and reproducible:
                stats.clock_cut = True
            raise BudgetSpent()
        program = decode(raw, cfg)
        key = tuple(map(tuple, raw))
        if generating[0] and not shrinking[0]:
            node = schedules.predict(program)
            # the program that did a run may be asked for again (Hypothesis
            # replays a case now and then): it must meet the same answer
            if node is not None and node in schedules.done and owner.get(node, key) != key:
                stats.repeats += 1
                streak[0] += 1
                if streak[0] >= SATURATED:
                    stats.saturated = True
                    raise BudgetSpent()
                reject()
            streak[0] = 0
        if shrinking[0]:
            if not shrink["why"]:
                now = time.monotonic()
                if shrink["runs"] >= shrink_runs:
                    shrink["why"] = f"shrinking stopped at its limit of {shrink_runs} runs"
                elif now > hard_end:
                    shrink["why"] = (f"shrinking was cut short by the time budget after {shrink['runs']} runs")
                elif not reproducible and now > shrink["until"]:
                    shrink["why"] = (f"shrinking was cut short after {shrink_budget:g} s "
                                     f"({shrink['runs']} runs)")
            if shrink["why"]:
                raise ShrinkCut(best[-1])
            shrink["runs"] += 1
        began = time.monotonic()
        try:
            outcome = executor.run(program)
        except ConfigError as exc:
            # the harness's own blind spot (an unseen wait): stop at once,
            # Hypothesis must not shrink or retry it
            raise _Abort(exc) from None
        if shrinking[0] and time.monotonic() - began >= 0.9 * watchdog and not shrink["why"]:
            # a run that waited out the watchdog: the next would too
            shrink["why"] = (f"shrinking stopped after a run took a whole watchdog period ({watchdog:g} s), "
                             f"after {shrink['runs']} runs")
        if not shrinking[0]:
            node = schedules.predict(program)
            if node is not None:
                owner.setdefault(node, key)
            stats.examples += 1
            stats.interleavings.add(outcome.schedule_hash())
            for w in outcome.warnings:
                key = re.sub(r"^[A-Z]+ |step \d+|tmp\d+", "_", w)
                if key not in stats.warnings and len(stats.warnings) < 10:
                    stats.warnings[key] = (w, stats.examples)
            if outcome.unknown:
                stats.unknown += 1
            if on_example is not None:
                stats.last = outcome
                on_example(stats)
                stats.last = None
        if outcome.failed and ignore is not None:
            known = ignore(outcome)
            if known is not None:
                if not shrinking[0]:
                    stats.known_failures[known] = stats.known_failures.get(known, 0) + 1
                return
        if outcome.failed:
            if not shrinking[0]:
                stats.found_raw = outcome
                shrinking[0] = True
                shrink["until"] = time.monotonic() + shrink_budget
                stats.first_failure_example = stats.examples
                stats.first_failure_seconds = time.monotonic() - t0
            best.append(outcome)
            raw_of[id(outcome)] = raw
            raise Found(outcome)

    body._hypothesis_internal_add_digest = digest  # type: ignore[attr-defined]
    kwargs = dict(
        deadline=None, database=database, verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    )
    kwargs.update(settings_kwargs or {})
    kwargs["max_examples"] = min(limit, 10**9)
    test = given(strategy)(body)
    # The systematic pass (sessioncheck.controlled.systematic) runs first, through the same
    # body, before Hypothesis starts: its programs are built as it goes
    # (profiles cost store runs), which explicit examples cannot be.  A
    # failure there is shrunk by reduce_pass_failure, within the same
    # shrink budget as Hypothesis' shrinking.  Callers whose
    # phases leave out explicit examples skip it.
    phases = kwargs["phases"]
    run_pass = systematic and Phase.explicit in phases
    kwargs["phases"] = [p for p in phases if p is not Phase.explicit]
    test = settings(**kwargs)(test)
    if seed is not None:
        test = hseed(seed)(test)
        if database is not None:
            # ``hypothesis.seed`` turns the database off; keep it, so that a
            # seeded run (the pytest gate's ci profile) still replays a saved
            # failure first; the seed decides what is generated after that.
            test._hypothesis_internal_use_settings = settings(  # type: ignore[attr-defined]
                test._hypothesis_internal_use_settings, database=database)  # type: ignore[attr-defined]
    if hasattr(executor, "watch"):
        executor.watch = schedules
    reduced = [False]  # the failure is the pass's, already reduced
    try:
        if run_pass:
            for i, raw in enumerate(systematic_pass(executor)):
                if i < systematic_skip:
                    continue
                stats.systematic += 1
                try:
                    body(raw)
                except Found as exc:
                    reduced[0] = True
                    raise Found(reduce_pass_failure([tuple(r) for r in raw], exc.outcome, body, shrink)) from None
            stats.systematic_done = True
        generating[0] = True
        test()
    except BudgetSpent:
        pass
    except _Abort as exc:
        raise exc.error from None
    except ShrinkCut as exc:
        stats.outcome = exc.outcome
    except Found as exc:
        stats.outcome = exc.outcome
        # Hypothesis' shrinker stops where no single change of its own
        # passes; long programs often keep a step or a draw that the
        # pass's greedy reduction still removes (one step at a time, each
        # draw lowered), within what is left of the same shrink budget
        raw = raw_of.get(id(exc.outcome))
        if not reduced[0] and raw is not None:
            stats.outcome = reduce_pass_failure([tuple(r) for r in raw], exc.outcome, body, shrink)
    except Flaky as exc:
        # Hypothesis could not confirm its last candidate.  A failure we
        # ran ourselves is still a failure if it happens again.  (Once
        # shrinking is cut short, ShrinkCut ends Hypothesis before it can
        # replay anything.)
        again = executor.run(best[-1].program) if best else None
        if again is None or not again.failed:
            first = best[0].violations[0].summary if best else str(exc)
            raise NondeterministicStore(
                "the store behaves differently under the same schedule, so no failure can be replayed; "
                f"the first run said: {first}") from None
        stats.outcome = again
    finally:
        if hasattr(executor, "watch"):
            executor.watch = watched
    stats.shrink_runs = shrink["runs"]
    if stats.outcome is not None:
        stats.shrink_cut = shrink["why"]
    stats.seconds = time.monotonic() - t0
    return stats


def reduce_pass_failure(raw: list, first: Outcome, body: Callable[[list], None], shrink: dict) -> Outcome:
    """Make a failure of the systematic pass as small as the search's are,
    and finish the search's own after Hypothesis' shrinker.

    The pass builds its programs outside Hypothesis (they depend on
    profiles of the store), so Hypothesis has no choice sequence to shrink
    them from.  This is the same greedy reduction its shrinker starts with,
    on the program's raw steps: delete one step at a time (last first),
    then lower each step's draws to 0 (the smallest operation, the fewest
    points), keeping every change after which the run still breaks the
    same invariant first.  Every candidate runs through ``body`` in its
    shrinking mode, so the shrink budget (runs, seconds, a watchdog-long
    run) bounds this as it bounds Hypothesis' shrinking; returns the
    smallest failing outcome met (``first`` if none is smaller)."""
    invariant = first.violations[0].invariant
    best = first

    def fails(candidate: list) -> Outcome | None:
        try:
            body(candidate)
        except Found as exc:
            if exc.outcome.violations[0].invariant == invariant:
                return exc.outcome
        except ShrinkCut:
            pass  # the budget is spent: the loop below ends with ``best``
        return None

    changed = True
    while changed and not shrink["why"]:
        changed = False
        i = len(raw) - 1
        while i >= 0 and not shrink["why"]:
            out = fails(raw[:i] + raw[i + 1:])
            if out is not None:
                raw, best, changed = raw[:i] + raw[i + 1:], out, True
            i -= 1
        for i, (kind, actor, a, b, *drawn) in enumerate(raw):
            # a 5-tuple's drawn values (a value strategy's) are kept as drawn
            for smaller in ((kind, actor, 0, 0, *drawn), (kind, actor, 0, b, *drawn), (kind, actor, a, 0, *drawn),
                            (kind, actor, a // 2, b, *drawn)):
                if shrink["why"] or smaller == raw[i]:
                    continue
                out = fails(raw[:i] + [smaller] + raw[i + 1:])
                if out is not None:
                    raw, best, changed = raw[:i] + [smaller] + raw[i + 1:], out, True
                    break
    return best

