"""The schedule as data: a *program* of steps, and the strategy that draws it.

Hypothesis owns every choice of a run by drawing one program up front: a
list of steps, each naming an actor by a small index.  The engine resolves
the index against the actors that can take the step *at that moment*
(``start`` picks among idle actors, ``advance`` and ``crash`` among busy
ones, modulo their number), so every step means something and deleting
any step during shrinking still leaves a valid program.  The same program
always gives the same run: it is all a replay needs (Shuttle's
``Schedule``).

Message ids (``m1``, ``m2``, ...) and fresh metadata values (``v1``, ...)
are assigned by the engine in the order the steps take effect, so they are
stable under replay and read naturally in a story.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from sessioncheck.controlled import messages
from sessioncheck.controlled import values as value_kinds
from sessioncheck.controlled.values import PLAIN, RICH, Drawn
from sessioncheck.errors import ReportError

#: Metadata keys the model writes: one named after the seed's bug, one
#: ordinary, so that "writes to other fields never disturb it" is tested.
KEYS = ("compute_instance_id", "model")
VALUE_KINDS = PLAIN  # the default value kinds (:mod:`sessioncheck.controlled.values`)
IDENTITY = messages.IDENTITY  # the default field naming a message
MESSAGE_KINDS = messages.PLAIN  # the default message kinds (:mod:`sessioncheck.controlled.messages`)
FUNCTIONS = ("add", "persist", "read", "delete", "pop", "clear", "rename")
#: Operations a model may leave out (``--without``): the others are the
#: protocol's core, always in.
OPTIONAL = ("persist", "delete", "pop", "clear", "rename")
#: The I/O errors a ``fault`` step may inject, by name.
INJECTABLE = {"EIO": errno.EIO, "ENOSPC": errno.ENOSPC, "EACCES": errno.EACCES,
              "cancel": -1}  # cancel: Task.cancel() of a task actor at its await


@dataclass(frozen=True)
class OpSpec:
    f: str
    session: int = 0
    fields: tuple[tuple[str, str], ...] = ()  # (key, value kind)
    #: for an operation adding a message: its kind ("" is the default
    #: ``user`` message, written as before: no third element)
    message: str = ""

    def to_json(self) -> list:
        out: list[Any] = [self.f, self.session]
        if takes_fields(self.f):
            out.append([[k, v.to_json() if isinstance(v, Drawn) else v] for k, v in self.fields])
        elif self.message and self.message != "user":
            out.append(self.message)
        return out


@dataclass(frozen=True)
class Step:
    """``start`` an operation on an idle actor; ``advance`` a busy actor by
    up to ``points`` preemption points; ``crash`` a busy process actor
    (kill -9 at its current point); ``fault`` a busy actor: the call it is
    parked at fails with ``errno_name`` instead of running."""

    kind: str
    actor: int = 0
    op: OpSpec | None = None
    points: int = 1
    errno_name: str = ""

    def to_json(self) -> list:
        if self.kind == "start":
            assert self.op is not None
            return ["start", self.actor, self.op.to_json()]
        if self.kind == "advance":
            return ["advance", self.actor, self.points]
        if self.kind == "fault":
            return ["fault", self.actor, self.errno_name]
        return [self.kind, self.actor]


_NO_FIELDS = ("add", "read", "delete", "pop", "clear", "persist")  # built-ins, without a look-up


def takes_fields(f: str) -> bool:
    """Does operation ``f`` take metadata fields (``persist`` and the
    user's register operations)?"""
    if f in _NO_FIELDS:
        return f == "persist"
    from sessioncheck import operations

    op = operations.find(f)
    return op is not None and op.input == "fields"


def takes_message(f: str) -> bool:
    """Does operation ``f`` add a message (``add`` and the user's
    ``input="message"`` operations)?"""
    if f in _NO_FIELDS:
        return f == "add"
    from sessioncheck import operations

    op = operations.find(f)
    return op is not None and op.input == "message"


def field_keys(f: str, model_keys: tuple[str, ...] = KEYS) -> tuple[str, ...]:
    """The register keys operation ``f`` draws fields from: its own
    (``OperationDef.keys``, a rename's ``name``) or else ``model_keys``
    (the model's: the store's declared metadata fields)."""
    from sessioncheck import operations

    op = operations.find(f)
    return op.keys if op is not None and op.keys else model_keys


def program_to_json(steps: list[Step]) -> list:
    return [s.to_json() for s in steps]


def program_from_json(data: Any) -> list[Step]:
    """Validate and rebuild a program from a report.  Data, never code."""
    if not isinstance(data, list):
        raise ReportError("'program' must be a list of steps")
    steps = []
    for n, raw in enumerate(data):
        where = f"program step {n}"
        if not isinstance(raw, list) or not raw or raw[0] not in ("start", "advance", "crash", "fault", "server-crash"):
            raise ReportError(f"{where}: not a step")
        kind = raw[0]
        if len(raw) < 2 or not _small_int(raw[1]):
            raise ReportError(f"{where}: actor index must be a small integer")
        if kind == "start":
            if len(raw) != 3 or not isinstance(raw[2], list) or len(raw[2]) < 2:
                raise ReportError(f"{where}: start needs an operation")
            f, session = raw[2][0], raw[2][1]
            if isinstance(f, str) and f.isidentifier() and f not in FUNCTIONS and not _registered(f):
                raise ReportError(f"{where}: operation {f!r} is not registered in this process: import the "
                                  "module that registers it (sessioncheck replay --operations MODULE, or a "
                                  "--store module that registers it when imported)")
            if (f not in FUNCTIONS and not _registered(f)) or not _small_int(session):
                raise ReportError(f"{where}: bad operation {raw[2]!r}")
            fields: tuple = ()
            if takes_fields(f):
                if len(raw[2]) != 3 or not isinstance(raw[2][2], list):
                    raise ReportError(f"{where}: {f} needs fields")
                pairs = []
                for kv in raw[2][2]:
                    own = field_keys(f, ())
                    if (not isinstance(kv, list) or len(kv) != 2 or not valid_key(kv[0])
                            or (own and kv[0] not in own)):
                        raise ReportError(f"{where}: bad field {kv!r}")
                    kind = kv[1]
                    if isinstance(kind, dict) and set(kind) == {"value"}:  # a drawn value, as data
                        try:
                            kind = value_kinds.drawn(kind["value"], f"{where}: field {kv[0]!r}")
                        except ValueError as exc:
                            raise ReportError(str(exc)) from None
                    elif not isinstance(kind, str) or kind not in RICH:
                        raise ReportError(f"{where}: bad field {kv!r}")
                    pairs.append((kv[0], kind))
                fields = tuple(pairs)
            message = ""
            if takes_message(f) and len(raw[2]) == 3:
                if not messages.known(raw[2][2]):
                    raise ReportError(f"{where}: unknown message kind {raw[2][2]!r} (built in: "
                                      f"{', '.join(messages.RICH)}; a user's kind must be registered)")
                message = raw[2][2]
            steps.append(Step("start", raw[1], OpSpec(f, session, fields, message)))
        elif kind == "advance":
            if len(raw) != 3 or not _small_int(raw[2]) or raw[2] < 1:
                raise ReportError(f"{where}: advance needs a positive point count")
            steps.append(Step("advance", raw[1], points=raw[2]))
        elif kind == "fault":
            if len(raw) != 3 or raw[2] not in INJECTABLE:
                raise ReportError(f"{where}: fault needs one of {', '.join(INJECTABLE)}")
            steps.append(Step("fault", raw[1], errno_name=raw[2]))
        else:
            steps.append(Step(kind, raw[1]))
    return steps


def valid_value_kind(kind: Any) -> bool:
    """A value kind a config may list (:func:`sessioncheck.controlled.values.valid_kind_name`)."""
    return value_kinds.valid_kind_name(kind)


def listable_message_kind(kind: Any) -> bool:
    """A message kind a config may list: known here, or an identifier (a
    user's kind, registered once the store's module is imported)."""
    return messages.known(kind) or (isinstance(kind, str) and kind.isidentifier())


#: the built-in message kinds, for messages naming them
MESSAGE_KINDS_BUILTIN = messages.RICH


def valid_key(key: Any) -> bool:
    """A metadata field name as a program or a config may hold one."""
    return isinstance(key, str) and 0 < len(key) <= 200 and key.isprintable()


def _registered(f: Any) -> bool:
    """A user's operation named in a program: known only if registered in
    this process (a name is looked up, never imported)."""
    from sessioncheck import operations

    return isinstance(f, str) and operations.find(f) is not None


def _small_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10_000


@dataclass(frozen=True)
class ModelConfig:
    """What the model may generate for one store."""

    actors: int = 3
    sessions: int = 2
    max_steps: int = 24
    max_points: int = 16
    metadata: bool = True
    delete: bool = False
    pop: bool = False
    clear: bool = False
    rename: bool = False
    crash: bool = False
    power_loss: bool = False
    #: kill -9 the store's server at a step and restart it from its files
    server_crash: bool = False
    io_faults: tuple[str, ...] = ()
    #: operations left out although the store supports them (a bug already
    #: known in one, while looking for the next)
    without: tuple[str, ...] = ()
    #: regular expressions (``--allow-errors``): an exception whose
    #: "Type: message", or that of one behind it in its chain, matches one
    #: is a refusal ("not acknowledged"), not a finding
    allow_errors: tuple[str, ...] = ()
    #: the metadata fields the model writes (the store's declared
    #: ``Capabilities.metadata_fields``, else :data:`KEYS`)
    keys: tuple[str, ...] = KEYS
    #: the value kinds it writes (:mod:`sessioncheck.controlled.values`)
    values: tuple[str, ...] = VALUE_KINDS
    #: with task actors: 0 runs them all on one loop in the harness's
    #: process; M >= 1 spreads them over M forked processes with a loop
    #: each (controlled/task_host.py)
    task_processes: int = 0
    #: the message kinds it adds (:mod:`sessioncheck.controlled.messages`)
    messages: tuple[str, ...] = MESSAGE_KINDS
    #: the message field naming a message (the store's declared
    #: ``Capabilities.message_identity``)
    identity: str = IDENTITY

    def functions(self) -> list[str]:
        fs = ["add", "read"]
        if self.metadata and "persist" not in self.without:
            fs.insert(1, "persist")
        for name in ("delete", "pop", "clear", "rename"):
            if getattr(self, name) and name not in self.without:
                fs.append(name)
        return fs


def step_kinds(cfg: ModelConfig) -> list[str]:
    """The step kinds by the raw step's first draw (modulo their number).

    ``start`` and ``advance`` stand twice, each fault once: with programs
    averaging half of ``max_steps``, a uniform kind made a third of the
    steps crashes (4.2 a program where 1.9 had been), each a process
    killed and started again, and left few operations whole between them.
    Index 0 is ``start`` (shrinking's target); ``kinds.index(fault)`` is a
    fault's first place."""
    kinds = ["start", "advance", "start", "advance"]
    if cfg.crash:
        kinds.append("crash")
    if cfg.io_faults:
        kinds.append("fault")
    if cfg.server_crash:
        kinds.append("server-crash")
    return kinds


#: how many extra times each of the advance counts 1 to 4 stands in the
#: table an ``advance`` step's ``a`` indexes (:func:`advance_table`):
#: most windows a bug needs open after one to four points (a read, then a
#: write-back), so short advances are drawn four times as often as under a
#: uniform count, and every count up to ``max_points`` is still one step
SHORT_ADVANCE_WEIGHT = 4
SHORT_ADVANCES = (1, 2, 3, 4)


def advance_table(max_points: int) -> tuple[int, ...]:
    """The points of an ``advance`` step by its ``a % len(table)``.

    Index 0 is one point, so a step shrinks toward the smallest advance;
    then every count from 1 to ``max_points``, then the short counts again
    (:data:`SHORT_ADVANCE_WEIGHT` times)."""
    short = tuple(n for n in SHORT_ADVANCES if n <= max_points)
    return tuple(range(1, max_points + 1)) + short * SHORT_ADVANCE_WEIGHT


def advance_raw(points: int, max_points: int) -> int:
    """The ``a`` of an ``advance`` step of ``points`` (1 to ``max_points``):
    its first place in :func:`advance_table`."""
    return advance_table(max_points).index(points)


#: the share of ``max_steps`` a drawn program averages (:func:`_long_lists`)
AVERAGE_SHARE = 1 / 2


def _long_lists(step: st.SearchStrategy, max_size: int) -> st.SearchStrategy[list]:
    """Lists of 1 to ``max_size`` steps that average :data:`AVERAGE_SHARE`
    (half) of ``max_size`` (a third was measured later on seven of eight
    bugs: benchmarks/RESULTS-search-random.md).

    ``st.lists`` averages ``min_size + 5`` elements (6 here), so most
    programs were too short to hold the start, the advances and the second
    writer's start that a window needs; every length is still drawn, and
    the shrinker deletes steps as from any list.  The average is set on
    Hypothesis' own list strategy (the attribute its draw reads); where a
    version has no such attribute, plain ``st.lists`` is used."""
    plain = st.lists(step, min_size=1, max_size=max_size)
    try:
        from hypothesis.strategies._internal.collections import ListStrategy
    except ImportError:  # pragma: no cover - another Hypothesis layout
        return plain
    strategy = ListStrategy(step, min_size=1, max_size=max_size)
    if not hasattr(strategy, "average_size"):  # pragma: no cover - another Hypothesis version
        return plain
    strategy.average_size = max(strategy.average_size, max_size * AVERAGE_SHARE)
    return strategy


def _flat_tuples(bounds: tuple[int, ...]) -> st.SearchStrategy[tuple[int, ...]]:
    """Tuples of integers, each from 0 to its bound: what
    ``st.tuples(*(st.integers(0, b) for b in bounds))`` draws, made by the
    same integer strategies (their own constraints and weights, in the same
    order, so a saved example replays as the same tuple), each called
    straight on the choice sequence instead of through a nested draw of
    its own.

    A step was a third of an example's cost in Hypothesis' nested draws
    (``benchmarks/bench_engine.py``, "its floor": 3.2 s of generation for
    1000 programs, 1.9 s drawn this way).  Calling a strategy's
    ``do_draw`` is Hypothesis' internal API; where its integer strategy
    has none, this is plain ``st.tuples``."""
    integers = [st.integers(0, b) for b in bounds]
    plain = st.tuples(*integers)
    try:
        from hypothesis.strategies._internal.strategies import SearchStrategy
    except ImportError:  # pragma: no cover - another Hypothesis layout
        return plain
    draws = [getattr(getattr(i, "wrapped_strategy", None), "do_draw", None) for i in integers]
    if not all(draws):  # pragma: no cover - another Hypothesis version
        return plain

    class FlatTuples(SearchStrategy):
        def do_draw(self, data: Any) -> tuple[int, ...]:
            return tuple(draw(data) for draw in draws)

        def __repr__(self) -> str:
            return f"flat_tuples({bounds!r})"

    return FlatTuples()


def programs(cfg: ModelConfig) -> st.SearchStrategy[list[tuple[int, int, int, int]]]:
    """Raw programs: lists of flat integer 4-tuples ``(kind, actor, a, b)``.

    Flat integers, drawn in one strategy call a step
    (:func:`_flat_tuples`), are several times cheaper for Hypothesis to
    generate than nested ``builds``/``one_of`` trees, and they shrink the same way
    (toward 0 = start an ``add`` on the first actor, first session, or an
    advance of one point).  Programs average half of ``max_steps`` steps
    (:func:`_long_lists`) and advances favour 1 to 4 points
    (:func:`advance_table`).  :func:`decode` turns a raw program into steps."""
    nf = len(cfg.functions())
    a_max = max(nf * cfg.sessions, len(advance_table(cfg.max_points)), len(cfg.io_faults) or 1) - 1
    b_max = max((2 ** len(cfg.keys) - 1) * len(cfg.values) ** len(cfg.keys), len(cfg.messages)) - 1
    step = _flat_tuples((len(step_kinds(cfg)) - 1, cfg.actors - 1, a_max, b_max))
    drawn = value_kinds.strategy_of(cfg.values)
    if drawn is not None:
        # a strategy's values (values.register): one per field a step may
        # write, a fifth element the decoder takes a field's value from
        # when the field's kind is a strategy's name
        n = max(len(cfg.keys), 1)
        step = st.tuples(step, st.tuples(*[drawn] * n)).map(lambda p: (*p[0], p[1]))
    return _long_lists(step, cfg.max_steps)


def decode(raw: list[tuple], cfg: ModelConfig) -> list[Step]:
    """Steps from a raw program (:func:`programs`): 4-tuples, or 5-tuples
    whose last element holds a strategy's drawn values."""
    kinds = step_kinds(cfg)
    fns = cfg.functions()
    advances = advance_table(cfg.max_points)
    out = []
    for raw_step in raw:
        kind_i, actor, a, b = raw_step[:4]
        drawn = raw_step[4] if len(raw_step) > 4 else ()
        kind = kinds[kind_i % len(kinds)]
        if kind == "start":
            f = fns[a % len(fns)]
            session = (a // len(fns)) % cfg.sessions
            fields: tuple = ()
            if f == "persist" or takes_fields(f):
                keys, values = field_keys(f, cfg.keys), cfg.values
                masks = 2 ** len(keys) - 1
                mask = b % masks + 1
                rest = b // masks
                chosen = []
                for i, key in enumerate(keys):
                    if mask >> i & 1:
                        v = values[rest % len(values)]
                        if v not in RICH:  # a strategy's name: its drawn value (fresh without one)
                            v = drawn[i % len(drawn)] if drawn else "fresh"
                        chosen.append((key, v))
                    rest //= len(values)
                fields = tuple(chosen)
            kind = cfg.messages[b % len(cfg.messages)] if takes_message(f) else ""
            out.append(Step("start", actor, OpSpec(f, session, fields, "" if kind == "user" else kind)))
        elif kind == "advance":
            out.append(Step("advance", actor, points=advances[a % len(advances)]))
        elif kind == "crash":
            out.append(Step("crash", actor))
        elif kind == "server-crash":
            out.append(Step("server-crash", actor))
        else:
            out.append(Step("fault", actor, errno_name=cfg.io_faults[a % len(cfg.io_faults)]))
    return out
