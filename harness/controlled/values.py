"""The metadata values a model writes, by *kind*: the program names a kind
(data, cheap to draw and shrink), the engine turns it into a value.

``PLAIN`` is the default, as cheap as ever: a fresh string, ``None``,
``''``.  ``RICH`` adds unicode, numbers, nested JSON and a 100 KB string.
Every kind but ``none`` and ``empty`` carries the write's counter ``n``, so
two writes never give equal values and the checker can tell which write a
read shows (values are compared as JSON data).

Values of the user's own: any Hypothesis strategy, registered under a
name (:func:`register`, or declared as ``Capabilities.metadata_values``,
or put in ``SessionMachine.values``).  ``None`` is always among what it
draws (a clear: :func:`register` mixes it in).  A name is a kind like the
others in the model's ``values``; what it draws goes into the program as
a literal, :class:`Drawn` (``[key, {"value": V}]`` in a report's JSON), so
a report replays without the strategy and never holds code.  A drawn
value must be JSON data that compares equal to itself after a round trip
(no NaN, no tuples, string keys): the checker compares values as JSON.
Drawn values may repeat; the register check stays sound (a read matching
two writes may be either), it only tells fewer schedules apart.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sessioncheck.errors import ConfigError


class ValueKindError(ConfigError, ValueError):
    """A strategy drew a value that is not JSON data, or a kind is misnamed."""

PLAIN = ("fresh", "none", "empty")  # shrinks toward a fresh value
RICH = PLAIN + ("unicode", "integer", "float", "nested", "large")
#: value sets by the name ``--values`` takes
SETS = {"plain": PLAIN, "rich": RICH}
LARGE_CHARS = 100_000


#: the most JSON text one drawn value may take in a program
MAX_DRAWN_CHARS = 1_000_000


@dataclass(frozen=True)
class Drawn:
    """A value a strategy drew, kept as its JSON text (hashable, data)."""

    text: str

    @property
    def value(self) -> Any:
        return json.loads(self.text)

    def to_json(self) -> dict:
        return {"value": self.value}


def drawn(value: Any, where: str = "a value strategy") -> Drawn:
    """``value`` as a :class:`Drawn`; ``ValueError`` unless it is JSON
    data equal to itself after a round trip."""
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueKindError(f"{where} drew {value!r:.200}, which is not JSON data ({exc})") from None
    if json.loads(text) != value:
        raise ValueKindError(f"{where} drew {value!r:.200}, which does not read back equal from JSON "
                         "(a tuple, a non-string key?): metadata values are compared as JSON data")
    if len(text) > MAX_DRAWN_CHARS:
        raise ValueKindError(f"{where} drew a value of {len(text)} characters of JSON, more than {MAX_DRAWN_CHARS}")
    return Drawn(text)


_STRATEGIES: dict[str, Any] = {}


def register(name: str, strategy: Any, *, replace: bool = False) -> str:
    """Make ``strategy`` (a Hypothesis strategy of JSON values) a value
    kind named ``name``; ``None`` is mixed in (a clear is always among
    what the kind draws).  Returns ``name``."""
    from hypothesis import strategies as st
    from hypothesis.strategies import SearchStrategy

    if not isinstance(strategy, SearchStrategy):
        raise ValueError(f"value kind {name!r}: {strategy!r} is not a Hypothesis strategy")
    if not isinstance(name, str) or not name or not name.isprintable() or len(name) > 200 or name in RICH:
        raise ValueError(f"value kind name {name!r} must be a printable name other than {', '.join(RICH)}")
    if name in _STRATEGIES and not replace and _STRATEGIES[name][0] is not strategy:
        raise ValueError(f"a value kind named {name!r} is already registered")
    where = f"value kind {name!r}"
    _STRATEGIES[name] = (strategy, st.one_of(st.none(), strategy).map(lambda v: drawn(v, where)))
    return name


def sample(name: str, n: int, seed: int) -> list[Drawn]:
    """Up to ``n`` values the registered strategy ``name`` draws (``None``
    mixed in), the same ones for the same seed: a free-running plan
    (``sessioncheck stress``) takes its values from them.  One Hypothesis
    run of ``n`` examples under ``seed``, each example one value (fewer
    when the strategy has fewer to give), through the public API only."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    out: list[Drawn] = []

    @hypothesis_seed(seed)
    @settings(max_examples=n, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(_STRATEGIES[name][1])
    def take(value: Drawn) -> None:
        out.append(value)

    take()
    return out[:n]


def is_strategy(kind: Any) -> bool:
    """Is ``kind`` the name of a registered strategy (its values drawn)?"""
    return isinstance(kind, str) and kind in _STRATEGIES


def strategy_of(kinds: tuple[str, ...]) -> Any:
    """What the registered kinds among ``kinds`` draw together (each a
    :class:`Drawn`), ``None`` if there is none."""
    from hypothesis import strategies as st

    found = [_STRATEGIES[k][1] for k in kinds if k in _STRATEGIES]
    return None if not found else found[0] if len(found) == 1 else st.one_of(found)


def valid_kind_name(kind: Any) -> bool:
    """A value kind a config may list: built in, registered, or a name the
    harness gives a strategy (``<store>.metadata_values``, ``<machine>.
    values[i]``: dotted), which a report lists though the process that
    replays it has not registered it yet (replay needs only the program's
    literals)."""
    return kind in RICH or is_strategy(kind) or (
        isinstance(kind, str) and "." in kind and 0 < len(kind) <= 200 and kind.isprintable())


def numbered(kind: Any) -> bool:
    """Does a value of ``kind`` use up a counter (a distinct value)?"""
    return kind not in ("none", "empty") and not isinstance(kind, Drawn)


def value_of(kind: Any, n: int) -> Any:
    """The value of ``kind`` for the ``n``-th numbered write."""
    if isinstance(kind, Drawn):
        return kind.value
    if kind == "fresh":
        return f"v{n}"
    if kind == "none":
        return None
    if kind == "empty":
        return ""
    if kind == "unicode":
        return f"v{n} ünïcødé ✓ 😀 中文 \u202eǝ"
    if kind == "integer":
        return n
    if kind == "float":
        return n + 0.25
    if kind == "nested":
        return {"v": n, "list": [1, None, "", True, {"deep": [False, 2.5, "ü"]}], "empty": {}}
    if kind == "large":
        return f"v{n}:" + "x" * LARGE_CHARS
    raise ValueError(f"unknown value kind {kind!r}")
