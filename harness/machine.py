"""A Hypothesis stateful front end to the controlled engine.

    from hypothesis.stateful import rule
    from hypothesis import strategies as st
    from sessioncheck import SessionMachine

    class PopMachine(SessionMachine):
        store = "mutant:pop-races-append"

        @rule(actor=SessionMachine.actor_ids, session=SessionMachine.session_ids)
        def pop(self, actor, session):
            self.start("pop", actor=actor, session=session)

    TestPopStore = PopMachine.TestCase

A :class:`SessionMachine` is a ``RuleBasedStateMachine`` whose rules do
not call the store: they append steps to a *program* (``start`` an
operation on an actor, ``advance`` an actor by some preemption points,
``crash`` a process actor), the engine's own representation
(:mod:`sessioncheck.controlled.program`).  At teardown (or after every
rule, with ``check_each_step``) the machine runs the program on an
:class:`~sessioncheck.controlled.engine.Executor` and raises
:class:`MachineViolation`, whose text is the story ``sessioncheck run``
prints, ending with the program as JSON and the call that replays it.
Hypothesis shrinks the rule sequence, so the program in the story is a
small one.

The executor is made on a test case's first run and closed at its
teardown, whatever happens; the adapter contract is checked once per
machine class (it decides which built-in operations the store has).
"""
from __future__ import annotations

import inspect
import json
import re
import shlex
import weakref
from pathlib import Path
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sessioncheck import operations
from sessioncheck.controlled.engine import MODES, Executor, Outcome
from sessioncheck.controlled.program import (KEYS, MESSAGE_KINDS, VALUE_KINDS, ModelConfig, OpSpec, Step, field_keys,
                                             program_from_json, program_to_json, takes_fields, takes_message)
from sessioncheck.errors import ConfigError
from sessioncheck.specs import name_of, resolve

#: what a rule draws for an actor (taken modulo the machine's actor count)
#: and a session (modulo its session count)
ACTOR_IDS = st.integers(0, 7)
SESSION_IDS = st.integers(0, 7)
#: metadata fields for an operation that takes them: (key, value kind) pairs
FIELDS = st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(VALUE_KINDS)),
                  min_size=1, max_size=len(KEYS), unique_by=lambda kv: kv[0]).map(tuple)

_CONFIGS: dict[tuple, tuple[str, ModelConfig]] = {}
#: per Hypothesis run (its wrapped test function): the programs that failed
#: and the runs done since the first failure (the shrink bound)
_SHRINKING: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def _shrink_state() -> dict | None:
    """The shrink record of the Hypothesis run under way, ``None`` outside
    one (then shrinking is not bounded)."""
    try:
        from hypothesis.control import current_build_context

        return _SHRINKING.setdefault(current_build_context().wrapped_test, {"failed": set(), "runs": 0})
    except Exception:  # no build context, or one without a test to key on
        return None


class MachineViolation(AssertionError):
    """The program a machine built breaks an invariant; ``str()`` is the
    story.  ``outcome`` is the engine's, ``program`` the steps as JSON,
    ``report_path`` the report saved for it (``None`` if none was)."""

    def __init__(self, story: str, outcome: Outcome, report_path: Path | None = None) -> None:
        super().__init__(story)
        self.story = story
        self.outcome = outcome
        self.program = program_to_json(outcome.program)
        self.report_path = report_path


class SessionMachine(RuleBasedStateMachine):
    """A stateful model of one store, run on the controlled engine.

    Class attributes: ``store`` (a spec string or a factory, as
    :func:`~sessioncheck.testing.check_store` takes), ``actors`` (how
    many), ``mode`` (``threads``, ``processes``, ``mixed`` or ``tasks``),
    ``sessions``, ``max_points`` (the most points one ``advance`` takes),
    ``crash`` (a rule that kills a busy process actor; process modes
    only), ``watchdog`` (seconds), ``check_each_step`` (run the program
    after every rule, not only at teardown: the first failing prefix is
    found sooner, at one engine run per rule), ``builtins`` (the built-in
    operations the ``start_operation`` rule draws from, ``None``: every
    one in the store's model) and ``shrink_runs``.

    Shrinking is bounded as ``sessioncheck run`` bounds it: after the
    first failure of a Hypothesis run, at most ``shrink_runs`` more
    programs run; from then on a program that has not failed already is
    answered "passes" without a run, so Hypothesis settles on the
    smallest failure it has (a count, not a clock: the same seed shrinks
    to the same story on any machine).  A failure is always a real run.
    ``shrink_runs = None`` turns the bound off: do so under a fuzzer that
    keeps calling one test function after its first failure (HypoFuzz),
    where the bound would answer its later programs without running them.

    A subclass adds rules that call :meth:`start` with an operation of the
    registry (:mod:`sessioncheck.operations`), built in or its own
    registered with :func:`sessioncheck.operations.register`."""

    store: ClassVar[Any] = None
    actors: ClassVar[int] = 3
    mode: ClassVar[str] = "threads"
    sessions: ClassVar[int] = 2
    max_points: ClassVar[int] = 16
    crash: ClassVar[bool] = False
    watchdog: ClassVar[float] = 10.0
    check_each_step: ClassVar[bool] = False
    shrink_runs: ClassVar[int | None] = 100
    builtins: ClassVar[tuple[str, ...] | None] = None
    #: where a failure's report is saved, as ``sessioncheck run`` saves one
    #: (``sessioncheck replay`` replays it): one file per machine class and
    #: mode, ``<module>.<class>-<mode>.json``, rewritten by each failing
    #: run, so it ends holding the shrunk program Hypothesis reports (its
    #: last run); ``None``: no report
    report_dir: ClassVar[str | Path | None] = Path(".sessioncheck") / "reports"
    #: the metadata value kinds the model writes (``sessioncheck.controlled.
    #: values.PLAIN``, the default, or ``RICH``), and Hypothesis strategies
    #: of values of your own among them (``None`` is mixed in: a clear);
    #: the fields are the store's declared ``Capabilities.metadata_fields``
    values: ClassVar[tuple[Any, ...]] = VALUE_KINDS
    #: the message kinds the model adds (``sessioncheck.controlled.
    #: messages.PLAIN``, the default, ``RICH``, or kinds of your own
    #: registered with ``messages.register``), unless the store declares
    #: ``Capabilities.message_kinds``; the message's identity field is the
    #: store's ``Capabilities.message_identity``
    messages: ClassVar[tuple[str, ...]] = MESSAGE_KINDS

    actor_ids = ACTOR_IDS
    session_ids = SESSION_IDS
    fields = FIELDS

    def __init__(self) -> None:
        super().__init__()
        self.program: list[Step] = []
        self._executor: Executor | None = None
        self._checked = 0  # program length of the last run

    # -- configuration ------------------------------------------------------
    @classmethod
    def _store_name(cls) -> str:
        store = inspect.getattr_static(cls, "store", None)
        if isinstance(store, (staticmethod, classmethod)):
            store = store.__func__
        if store is None:
            raise ConfigError(f"{cls.__qualname__}: set the class attribute `store` to a spec or a factory")
        return store if isinstance(store, str) else name_of(store)

    @classmethod
    def config(cls) -> tuple[str, ModelConfig]:
        """The store's spec name and its model (capabilities decide the
        built-in operations); the adapter contract is checked on first use."""
        name = cls._store_name()
        if cls.mode not in MODES:
            raise ConfigError(f"{cls.__qualname__}.mode must be one of {', '.join(MODES)}, not {cls.mode!r}")
        if cls.crash and cls.mode not in ("processes", "mixed"):
            raise ConfigError(f"{cls.__qualname__}: crash needs process actors (mode 'processes' or 'mixed')")
        if not 1 <= cls.actors <= 26 or cls.sessions < 1 or cls.max_points < 1:
            raise ConfigError(f"{cls.__qualname__}: actors must be 1..26, sessions and max_points positive")
        key = (cls, name, cls.mode, cls.actors, cls.sessions, cls.crash, tuple(cls.values), tuple(cls.messages))
        if key not in _CONFIGS:
            from sessioncheck.verify import model_config

            base = ModelConfig(actors=cls.actors, sessions=cls.sessions, max_points=cls.max_points,
                               values=cls._value_kinds(), messages=tuple(cls.messages))
            cfg = model_config(resolve(name), cls.mode, ("crash",) if cls.crash else (), base,
                               watchdog=cls.watchdog)
            _CONFIGS[key] = (name, cfg)
        return _CONFIGS[key]

    @classmethod
    def _value_kinds(cls) -> tuple[str, ...]:
        """``values`` with each strategy in it registered as a kind of
        its own (``sessioncheck.controlled.values.register``)."""
        from hypothesis.strategies import SearchStrategy

        from sessioncheck.controlled import values as value_kinds

        out = []
        for i, v in enumerate(cls.values):
            if isinstance(v, SearchStrategy):
                v = value_kinds.register(f"{cls.__module__}.{cls.__qualname__}.values[{i}]", v, replace=True)
            elif not (v in value_kinds.RICH or value_kinds.is_strategy(v)):
                raise ConfigError(f"{cls.__qualname__}.values: {v!r} is neither a value kind "
                                  f"({', '.join(value_kinds.RICH)}, or a registered name) nor a strategy")
            out.append(v)
        return tuple(dict.fromkeys(out))

    def model_operations(self) -> list[str]:
        """The built-in operations ``start_operation`` draws: those in
        the store's model (its capabilities), narrowed to ``builtins``."""
        model = self.config()[1].functions()
        if self.builtins is None:
            return model
        missing = [f for f in self.builtins if f not in model]
        if missing or not self.builtins:
            raise ConfigError(f"{type(self).__qualname__}.builtins: {missing or 'none'} not in the store's "
                              f"model ({', '.join(model)})")
        return list(self.builtins)

    def field_strategy(self, name: str | None = None) -> st.SearchStrategy:
        """(key, value kind) pairs over the model's fields and value kinds:
        what ``start_operation`` draws for an operation taking fields.
        With ``name``, the keys are that operation's own when it has some
        (``OperationDef.keys``: a rename's ``name``), as the engine draws
        them (:func:`~sessioncheck.controlled.program.field_keys`)."""
        from sessioncheck.controlled import values as value_kinds

        cfg = self.config()[1]
        keys = field_keys(name, cfg.keys) if name is not None else cfg.keys
        if keys == KEYS and cfg.values == VALUE_KINDS:
            return FIELDS
        kinds = st.sampled_from(cfg.values)
        drawn = value_kinds.strategy_of(cfg.values)
        if drawn is not None:  # a strategy's name stands for a value it draws
            kinds = kinds.flatmap(lambda k: drawn if value_kinds.is_strategy(k) else st.just(k))
        return st.lists(st.tuples(st.sampled_from(keys), kinds),
                        min_size=1, max_size=len(keys), unique_by=lambda kv: kv[0]).map(tuple)

    # -- what rules call ----------------------------------------------------
    def message_strategy(self) -> st.SearchStrategy:
        """The message kinds of the model: what ``start_operation`` draws
        for an operation adding a message."""
        return st.sampled_from(self.config()[1].messages)

    def start(self, name: str, *, actor: int = 0, session: int = 0,
              fields: tuple[tuple[str, str], ...] | dict[str, str] = (), message: str = "") -> Step:
        """Append a step starting operation ``name`` on ``actor`` (modulo
        the actor count) on session ``session`` (modulo the session
        count).  ``fields``: (key, value kind) pairs, for an operation that
        takes metadata fields (``persist``); a key of the model's fields
        (``Capabilities.metadata_fields``, default
        :data:`~sessioncheck.controlled.program.KEYS`), a kind of its
        ``values``.  ``message``: for an operation adding a message, its
        kind (one of the model's ``messages``; default: the first)."""
        op = operations.find(name)
        if op is None:
            raise ConfigError(f"unknown operation {name!r}; register it with sessioncheck.operations.register")
        cfg = self.config()[1]
        if op.capability is not None and getattr(cfg, op.capability, True) is False:
            raise ConfigError(f"the store does not declare capabilities.{op.capability}, which {name} needs")
        pairs = tuple(fields.items()) if isinstance(fields, dict) else tuple(tuple(kv) for kv in fields)
        if takes_fields(name):
            if not pairs:
                raise ConfigError(f"{name} takes metadata fields: give fields=")
            from sessioncheck.controlled.values import Drawn

            from sessioncheck.controlled.values import is_strategy

            keys = field_keys(name, cfg.keys)
            for key, kind in pairs:
                if is_strategy(kind):
                    raise ConfigError(f"field ({key!r}, {kind!r}): {kind!r} is a strategy; give a value it "
                                      "drew (self.field_strategy() draws them) or a built-in kind")
                if key not in keys or not (isinstance(kind, Drawn) or kind in cfg.values):
                    raise ConfigError(f"bad field ({key!r}, {kind!r}): {name}'s keys are {keys}, "
                                      f"kinds {cfg.values}")
        elif pairs:
            raise ConfigError(f"{name} takes no metadata fields")
        if message and not takes_message(name):
            raise ConfigError(f"{name} adds no message: message= is for add and input='message' operations")
        if takes_message(name):
            message = message or cfg.messages[0]
            if message not in cfg.messages:
                raise ConfigError(f"message kind {message!r} is not in the model's {list(cfg.messages)}")
        step = Step("start", actor % self.actors,
                    OpSpec(name, session % self.sessions, pairs, "" if message == "user" else message))
        self.program.append(step)
        return step

    def advance(self, *, actor: int = 0, points: int = 1) -> Step:
        """Append a step advancing ``actor`` by up to ``points`` points."""
        step = Step("advance", actor % self.actors, points=max(1, min(points, self.max_points)))
        self.program.append(step)
        return step

    # -- built-in rules -----------------------------------------------------
    @rule(actor=ACTOR_IDS, session=SESSION_IDS, data=st.data())
    def start_operation(self, actor: int, session: int, data: Any) -> None:
        """Start a built-in operation of the store's model."""
        names = self.model_operations()
        name = names[0] if len(names) == 1 else data.draw(st.sampled_from(names), label="operation")
        fields = data.draw(self.field_strategy(name), label="fields") if takes_fields(name) else ()
        kinds = self.config()[1].messages
        message = ""
        if takes_message(name):
            message = kinds[0] if len(kinds) == 1 else data.draw(self.message_strategy(), label="message")
        self.start(name, actor=actor, session=session, fields=fields, message=message)

    @rule(actor=ACTOR_IDS, points=st.integers(1, 16))
    def advance_actor(self, actor: int, points: int) -> None:
        self.advance(actor=actor, points=points)

    @precondition(lambda self: self.crash)
    @rule(actor=ACTOR_IDS)
    def crash_actor(self, actor: int) -> None:
        """Kill -9 a busy process actor at its current point."""
        self.program.append(Step("crash", actor % self.actors))

    # -- running ------------------------------------------------------------
    @invariant()
    def program_holds(self) -> None:
        if self.check_each_step:
            self.check()

    def check(self) -> Outcome | None:
        """Run the program built so far (if it grew since the last run);
        raise :class:`MachineViolation` if it breaks an invariant."""
        if len(self.program) == self._checked or not any(s.kind == "start" for s in self.program):
            return None
        self._checked = len(self.program)
        key = json.dumps(program_to_json(self.program))
        shrink = _shrink_state()
        if shrink is not None and shrink["failed"] and key not in shrink["failed"]:
            if self.shrink_runs is not None and shrink["runs"] >= self.shrink_runs:
                return None  # shrinking is over: only failures met already run
            shrink["runs"] += 1
        name, cfg = self.config()
        if self._executor is None:
            self._executor = Executor(resolve(name), self.mode, cfg, watchdog=self.watchdog)
        outcome = self._executor.run(list(self.program))
        if outcome.failed:
            if shrink is not None:
                shrink["failed"].add(key)
            cls = type(self)
            saved = cls.save_report(outcome)
            raise MachineViolation(cls.story(outcome, saved), outcome, saved)
        return outcome

    def teardown(self) -> None:
        try:
            if not self.check_each_step:
                self.check()
        finally:
            if self._executor is not None:
                self._executor.close()
                self._executor = None

    # -- stories and replay -------------------------------------------------
    @classmethod
    def story(cls, outcome: Outcome, report_path: Path | None = None) -> str:
        """The story ``sessioncheck run`` prints for ``outcome``, its
        replay line naming this machine's :meth:`replay`; with
        ``report_path``, a last line gives the ``sessioncheck replay``
        command of the saved report."""
        from sessioncheck.reporting.story import render
        from sessioncheck.verify import header, steps_wording

        name, cfg = cls.config()
        for v in outcome.violations:
            v.summary = steps_wording(v.summary)
        program = json.dumps(program_to_json(outcome.program))
        where = f"{cls.__module__}.{cls.__qualname__}"
        story = render(header=header(name, cls.mode, cfg, outcome), trace=outcome.trace, ops=outcome.ops,
                       violations=outcome.violations, replay_command=f"{where}.replay({program!r})")
        if report_path is not None:
            story = story.rstrip("\n") + f"\nReport: {cls.replay_command(outcome, report_path)}\n"
        return story

    @classmethod
    def report_file(cls) -> Path | None:
        """Where this machine saves a failure's report (``report_dir``)."""
        if cls.report_dir is None:
            return None
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{cls.__module__}.{cls.__qualname__}").strip("-")
        return Path(cls.report_dir) / f"{safe}-{cls.mode}.json"

    @classmethod
    def replay_command(cls, outcome: Outcome, report_path: Path) -> str:
        """``sessioncheck replay`` of the saved report: ``--store`` names the
        machine's store, and ``--operations`` this machine's module when the
        program starts an operation that is not built in (the module that
        registers it, imported from the current directory)."""
        from sessioncheck.verify import replay_command

        command = replay_command(report_path, cls.config()[0])
        own = {s.op.f for s in outcome.program if s.kind == "start" and s.op is not None} - set(operations.BUILTIN)
        if own and cls.__module__ not in ("__main__", "builtins"):
            command += f" --operations {shlex.quote(cls.__module__)}"
        return command

    @classmethod
    def save_report(cls, outcome: Outcome) -> Path | None:
        """Save ``outcome`` as the report ``sessioncheck run`` saves (story
        told as ``run`` tells it, so ``sessioncheck replay`` says "the same
        story"); ``None`` when ``report_dir`` is ``None``.  A report that
        cannot be written is not the test's failure: it is skipped."""
        path = cls.report_file()
        if path is None:
            return None
        from sessioncheck.reporting import report as reports
        from sessioncheck.verify import tell

        name, cfg = cls.config()
        try:
            spec = resolve(name)
            story = tell(name, cls.mode, cfg, outcome, path)
            data = reports.build(store=name, store_module=spec.module, mode=cls.mode, cfg=cfg, seed=None,
                                 program=outcome.program, violations=outcome.violations, story=story,
                                 trace=outcome.trace,
                                 stats={"steps": len(outcome.program), "machine": f"{cls.__module__}.{cls.__qualname__}"})
            return reports.save(data, path)
        except OSError:
            return None

    @classmethod
    def replay(cls, program: str | list) -> Outcome:
        """Run a program (its JSON text or list, as a story prints it)
        again; raise :class:`MachineViolation` if it still fails, return
        the outcome if it passes.  The program is parsed as data."""
        __tracebackhide__ = True
        steps = program_from_json(json.loads(program) if isinstance(program, str) else program)
        name, cfg = cls.config()
        with Executor(resolve(name), cls.mode, cfg, watchdog=cls.watchdog) as ex:
            outcome = ex.run(steps)
        if outcome.failed:
            raise MachineViolation(cls.story(outcome), outcome)
        return outcome
