"""Events and operations: the nouns of a run, shared by both engines.

A *history* is a list of events in the order they were recorded.  Each
operation of a process contributes an ``invoke`` event and, later, one
completion: ``ok`` (it took effect and returned), ``fail`` (it certainly
did not take effect) or ``info`` (unknown: an exception that does not say
whether it took effect, a timeout, a crash).  A process has at most one
operation in flight.

Why an operation is a closed interval ``[invoke, complete]``: the store may
apply the operation at any instant between the call and the return, and
nothing outside can tell when.  Take two writers of one session::

    A  invoke add m1 ......................... ok      (t=1 .. t=4)
    B            invoke add m2 ... ok                  (t=2 .. t=3)
    C                                    invoke read . ok [m2, m1]   (t=5 .. t=6)

``[m2, m1]`` is legal: the two appends overlap, so either may have taken
effect first.  Had B been invoked at t=5, after A's ``ok`` at t=4, the
order ``[m2, m1]`` would break I2, because A was acknowledged before B
began.  An ``info`` operation never completes: its interval runs to the
end of time, so it may take effect at any later instant, or never.

Values by function (``f``):

- ``add``: invoke value is the message id (a string).
- ``persist``: invoke value is a dict of fields; ``None`` clears a field.
- ``read``: completion value is ``{"messages": [ids], "metadata": {...}}``.
- ``delete``, ``clear``: no value.
- ``pop``: completion value is the removed message's id, or ``null`` when
  the session had no message.

Any other ``f`` is an operation of the user's own: its events carry
``"effect"``, what it does to the specification (one of
``sessioncheck.operations.EFFECTS``), and its values follow that effect's
(``append`` as ``add``, ``registers`` as ``persist``, ``remove_last`` as
``pop``).  Old histories, with the four original functions and no
``effect``, stay valid.

Times are numbers that order events: logical steps in the controlled
engine, ``time.monotonic()`` (comparable across processes on one host) in
stress runs.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal

from sessioncheck import datafile
from sessioncheck.errors import HistoryError

EventType = Literal["invoke", "ok", "fail", "info"]
Fn = str  # an operation's name: sessioncheck.operations

EVENT_TYPES = ("invoke", "ok", "fail", "info")
#: the built-in operations a history names without an "effect"
FUNCTIONS = ("add", "persist", "read", "delete", "pop", "clear", "rename")


@dataclass(frozen=True, slots=True)
class Event:
    process: str
    type: EventType
    f: Fn
    session: str
    value: Any
    time: float
    error: str | None = None  # for fail / info: what the store raised
    effect: str | None = None  # a user operation's effect (sessioncheck.operations)

    def to_json(self) -> dict:
        out = {
            "process": self.process,
            "type": self.type,
            "f": self.f,
            "session": self.session,
            "value": self.value,
            "time": self.time,
        }
        if self.error is not None:
            out["error"] = self.error
        if self.effect is not None:
            out["effect"] = self.effect
        return out


@dataclass(slots=True)
class Operation:
    """An invoke paired with its completion.

    ``end`` is ``math.inf`` for an ``info`` operation and for one still in
    flight when the history ends (both are "may or may not have happened").
    ``index`` is the position of the operation in the history, so that an
    explanation can name it.
    """

    process: str
    f: Fn
    session: str
    value: Any  # the input: message id, fields dict, None
    start: float
    end: float = math.inf
    status: Literal["ok", "fail", "info", "pending"] = "pending"
    output: Any = None  # a read's result
    error: str | None = None
    index: int = 0
    meta: dict = field(default_factory=dict)  # engine annotations (steps)

    @property
    def acknowledged(self) -> bool:
        return self.status == "ok"

    @property
    def effect(self) -> str | None:
        """What the operation does to the specification
        (``sessioncheck.operations.EFFECTS``): the registered operation's,
        else the one its history declared."""
        from sessioncheck import operations

        return operations.effect_of(self.f) or self.meta.get("effect")

    def describe(self) -> str:
        from sessioncheck import operations

        known = operations.find(self.f)
        if known is not None:
            what = known.text(self.session, self.value)
        else:
            what = f"{self.f}({self.session})" if self.value is None else f"{self.f}({self.session}, {self.value!r})"
        return f"{self.process}: {what}"


def format_fields(fields: dict | None) -> str:
    if not fields:
        return "{}"
    return "{" + ", ".join(f"{k}: {v!r}" for k, v in fields.items()) + "}"


def pair(events: Iterable[Event]) -> list[Operation]:
    """Pair invokes with completions, per process, in history order.

    Raises :class:`HistoryError` for a completion without an invoke, or a
    second invoke while the process has one in flight.
    """
    ops: list[Operation] = []
    open_: dict[str, Operation] = {}
    for n, e in enumerate(events):
        if e.type == "invoke":
            if e.process in open_:
                raise HistoryError(
                    f"event {n}: process {e.process!r} invokes {e.f} while an operation is in flight"
                )
            op = Operation(e.process, e.f, e.session, e.value, e.time, index=len(ops))
            if e.effect is not None:
                op.meta["effect"] = e.effect
            open_[e.process] = op
            ops.append(op)
            continue
        op = open_.pop(e.process, None)
        if op is None:
            raise HistoryError(f"event {n}: {e.type} for process {e.process!r} without an invoke")
        if op.f != e.f or op.session != e.session:
            raise HistoryError(
                f"event {n}: {e.type} {e.f}/{e.session} does not match the invoke {op.f}/{op.session}"
            )
        op.status = e.type
        op.error = e.error
        if e.type == "ok":
            op.end = e.time
            op.output = e.value
        elif e.type == "fail":
            op.end = e.time
        # info: the operation may take effect at any later time: end stays inf
    return ops


# -- JSON lines ---------------------------------------------------------------


def _check_event(obj: Any, line: int) -> Event:
    where = f"line {line}"
    if not isinstance(obj, dict):
        raise HistoryError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for key in ("process", "type", "f", "session", "time"):
        if key not in obj:
            raise HistoryError(f"{where}: missing field {key!r}")
    process, type_, f, session, t = (obj[k] for k in ("process", "type", "f", "session", "time"))
    if not isinstance(process, (str, int)) or isinstance(process, bool):
        raise HistoryError(f"{where}: 'process' must be a string or integer")
    if type_ not in EVENT_TYPES:
        raise HistoryError(f"{where}: 'type' must be one of {', '.join(EVENT_TYPES)}")
    from sessioncheck.operations import EFFECTS

    effect = obj.get("effect")
    if not isinstance(f, str) or not f.isidentifier():
        raise HistoryError(f"{where}: 'f' must be an operation name")
    if effect is not None and effect not in EFFECTS:
        raise HistoryError(f"{where}: 'effect' must be one of {', '.join(EFFECTS)}")
    if f in FUNCTIONS:
        if effect is not None and effect != _BUILTIN_EFFECT[f]:
            raise HistoryError(f"{where}: {f} has the effect {_BUILTIN_EFFECT[f]}, not {effect}")
        effect = None
        kind = _BUILTIN_EFFECT[f]
    elif effect is None:
        raise HistoryError(f"{where}: 'f' must be one of {', '.join(FUNCTIONS)}, or an operation "
                           "of your own with its 'effect'")
    elif effect == "read":
        raise HistoryError(f"{where}: only the built-in read has the effect read")
    else:
        kind = effect
    if not isinstance(session, str):
        raise HistoryError(f"{where}: 'session' must be a string")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not _finite(t):
        raise HistoryError(f"{where}: 'time' must be a finite number")
    value = obj.get("value")
    if type_ == "invoke" and kind == "append" and (not isinstance(value, (str, int)) or isinstance(value, bool)):
        raise HistoryError(f"{where}: an {f} invoke needs the message id as 'value'")
    if type_ == "invoke" and kind == "registers":
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise HistoryError(f"{where}: a {f} invoke needs a fields object as 'value'")
    if type_ == "ok" and kind == "remove_last":
        if value is not None and (not isinstance(value, (str, int)) or isinstance(value, bool)):
            raise HistoryError(f"{where}: a {f} ok needs the removed message id (or null) as 'value'")
        if isinstance(value, int):
            value = str(value)
    if type_ == "ok" and f == "read":
        if not isinstance(value, dict) or not isinstance(value.get("messages"), list):
            raise HistoryError(f"{where}: a read ok needs 'value': {{\"messages\": [...], \"metadata\": {{...}}}}")
        meta = value.get("metadata", {})
        if not isinstance(meta, dict):
            raise HistoryError(f"{where}: a read's 'metadata' must be an object")
        value = {"messages": [str(m) for m in value["messages"]], "metadata": meta}
    if kind == "append" and type_ == "invoke" and isinstance(value, int):
        value = str(value)
    error = obj.get("error")
    return Event(str(process), type_, f, session, value, float(t), None if error is None else str(error),
                 effect)


_BUILTIN_EFFECT = {"add": "append", "persist": "registers", "read": "read", "delete": "delete",
                   "pop": "remove_last", "clear": "clear", "rename": "registers"}


def _finite(t: int | float) -> bool:
    try:
        return math.isfinite(t)
    except OverflowError:  # an integer too large for a float
        return False


def read_jsonl(path: str | Path) -> list[Event]:
    """Parse and validate a history file.  Never evaluates anything."""
    events = []
    try:
        datafile.check_regular(path, datafile.MAX_HISTORY_BYTES)
    except datafile.DataError as exc:
        raise HistoryError(f"cannot read history: {exc}") from None
    except OSError as exc:
        raise HistoryError(f"cannot read history {path}: {exc.strerror or exc}") from None
    try:
        with open(path, encoding="utf-8") as fh:
            for n, raw in enumerate(fh, 1):
                raw = raw.strip()
                if not raw:
                    continue
                try:
                    obj = datafile.loads(raw)
                except datafile.DataError as exc:
                    raise HistoryError(f"{path}: line {n}: {exc}") from None
                except json.JSONDecodeError as exc:
                    raise HistoryError(f"{path}: line {n} is not JSON: {exc.msg}") from None
                try:
                    events.append(_check_event(obj, n))
                except HistoryError as exc:
                    raise HistoryError(f"{path}: {exc}") from None
    except OSError as exc:
        raise HistoryError(f"cannot read history {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise HistoryError(f"{path} is not UTF-8 text; a history is JSON lines") from None
    return events


def write_jsonl(events: Iterable[Event], path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for e in events:
            fh.write(json.dumps(e.to_json(), separators=(",", ":")) + "\n")


def iter_sessions(ops: Iterable[Operation]) -> Iterator[tuple[str, list[Operation]]]:
    by: dict[str, list[Operation]] = {}
    for op in ops:
        by.setdefault(op.session, []).append(op)
    yield from by.items()
