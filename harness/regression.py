"""The nouns of a named regression: a :class:`Scenario`, its steps and its
expected outcome.  Scenario modules (``sessioncheck.scenarios``) build
from these alone; running them is :mod:`sessioncheck.scenario`, which is
the only part that reads the registry.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Union

from sessioncheck.checking.invariants import INVARIANTS
from sessioncheck.controlled.engine import MODES
from sessioncheck.controlled.program import ModelConfig, OpSpec, Step

#: An advance longer than any one operation (``finish``), and the bound
#: of a calibration run.
_CALIBRATION_POINTS = 400


@dataclass(frozen=True)
class Expect:
    """An expected outcome: ``invariant`` ``None`` means the run must pass
    (no violation, verdict not unknown); otherwise the run must report
    that invariant (others may come with it).  ``warning``, if given, is
    text one of the run's warnings must contain (an orphan temp file)."""

    invariant: str | None = None
    warning: str = ""

    def __post_init__(self) -> None:
        if self.invariant is not None and self.invariant not in INVARIANTS:
            raise ValueError(f"Expect: unknown invariant {self.invariant!r}; use one of {', '.join(INVARIANTS)}")

    def text(self) -> str:
        base = self.invariant or "pass"
        return f"{base}, warns '{self.warning}'" if self.warning else base


PASS = Expect()


def violates(invariant: str) -> Expect:
    return Expect(invariant)


@dataclass(frozen=True)
class Until:
    """Advance actor ``actor`` (an index) to ``mark`` in its current
    operation: ``"reading"``, ``"read"`` or ``"created"`` (see the module notes).  It must
    come after the start of that operation with no other step on the same
    actor in between; resolved to an ``advance`` before the run."""

    actor: int
    mark: str

    def __post_init__(self) -> None:
        if self.mark not in MARKS:
            raise ValueError(f"Until: unknown mark {self.mark!r}; use one of {', '.join(MARKS)}")


MARKS = ("reading", "read", "created")

ProgramStep = Union[Step, Until]


@dataclass(frozen=True)
class Scenario:
    """One named regression.

    ``program`` is a tuple of steps and :class:`Until` marks.
    ``expect`` maps store specs, as a user writes them after ``--store``,
    to their outcome; ``default`` is the outcome of every other store.
    ``notes`` maps a store spec to what the scenario means there when
    that differs from the story (shown under its story).
    """

    name: str
    doc: str
    mode: str
    config: ModelConfig
    program: tuple[ProgramStep, ...]
    expect: Mapping[str, Expect]
    default: Expect = PASS
    notes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Checked when the scenario module is imported, naming the fix.
        where = f"scenario {self.name!r}"
        if self.mode not in MODES:
            raise ValueError(f"{where}: mode must be one of {', '.join(MODES)}")
        kinds = {s.kind for s in self.program if isinstance(s, Step)}
        if "crash" in kinds and (self.mode != "processes" or not self.config.crash):
            raise ValueError(f"{where}: a crash step needs mode='processes' and config crash=True")
        if "fault" in kinds and not self.config.io_faults:
            raise ValueError(f"{where}: a fault step needs config io_faults")
        for i, s in enumerate(self.program):
            if s.actor >= self.config.actors:
                raise ValueError(f"{where}: step {i} names actor {chr(65 + s.actor)}, "
                                 f"but config has {self.config.actors} actors")
            if isinstance(s, Until):
                before = [p for p in self.program[:i] if p.actor == s.actor]
                if not before or not (isinstance(before[-1], Step) and before[-1].kind == "start"):
                    raise ValueError(f"{where}: step {i} (until {s.mark}) must follow the start of "
                                     f"actor {chr(65 + s.actor)}'s operation with no step on it in between")

    @property
    def title(self) -> str:
        return (self.doc or "").strip().splitlines()[0] if self.doc else self.name

    def expected(self, store: str) -> Expect:
        return self.expect.get(store, self.default)

    def needs(self) -> list[str]:
        """Capabilities the program calls."""
        fs = {s.op.f for s in self.program if isinstance(s, Step) and s.kind == "start" and s.op is not None}
        return [c for c, f in (("metadata", "persist"), ("delete", "delete")) if f in fs]


def _index(actor: str) -> int:
    if len(actor) != 1 or not "A" <= actor <= "Z":
        raise ValueError(f"actor must be a letter A-Z, not {actor!r}")
    return ord(actor) - ord("A")


def start(actor: str, f: str, session: int = 0, **fields: str) -> Step:
    """Begin ``f`` (add, persist, read, delete) on ``actor``; for persist,
    ``fields`` maps each key to a value kind: ``fresh`` (a new value
    ``v1``, ``v2``, ...), ``none`` (clear it) or ``empty`` (``''``).
    On a busy actor its current operation finishes first."""
    return Step("start", _index(actor), OpSpec(f, session, tuple(fields.items())))


def advance(actor: str, points: int) -> Step:
    """Let ``actor`` perform up to ``points`` preemption points (fewer if
    its operation ends or it must wait for a lock)."""
    return Step("advance", _index(actor), points=points)


def finish(actor: str) -> Step:
    """Let ``actor`` run its current operation to its end (when nothing
    holds it back): an ``advance`` longer than any one operation."""
    return Step("advance", _index(actor), points=_CALIBRATION_POINTS)


def crash(actor: str) -> Step:
    """kill -9 of process actor ``actor`` before the point it is parked at."""
    return Step("crash", _index(actor))


def fault(actor: str, errno_name: str) -> Step:
    """The file call ``actor`` is parked at fails with ``errno_name``
    (EIO, ENOSPC, EACCES) instead of running; at a point that is not a
    file call (a lock, an SQL statement) nothing happens."""
    return Step("fault", _index(actor), errno_name=errno_name)


def until(actor: str, mark: str) -> Until:
    """Advance ``actor`` to ``mark`` (``"reading"``, ``"read"``, ``"created"``) in its
    current operation; see the module notes."""
    return Until(_index(actor), mark)
