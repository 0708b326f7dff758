"""The pytest gate's options as one table, and where each value came from.

Every option is a command-line option (``--sessioncheck-<name>``) and an
ini option (``sessioncheck_<name>`` in ``pytest.ini`` or
``[tool.pytest.ini_options]``); most are also a keyword of the
``@pytest.mark.sessioncheck`` marker and of the ``sessioncheck`` fixture.
Text from the command line and the ini file is parsed by the same functions
as the ``sessioncheck`` command's (:mod:`sessioncheck.cli.numbers`), and a
keyword's value by its text, so a value is accepted or refused the same way
wherever it is written.

Precedence (:func:`merge`), lowest first: the default, the ini file, the
command line; then the test's own arguments (module or class marker,
function marker, fixture keyword; the closest wins), which override the
ini file and the default always, and the command line:

* never for a **run** option (``budget``, ``examples``, ``seed``,
  ``watchdog``): how long and with which seeds this run searches is the
  command line's to say, so ``--sessioncheck-examples 50`` shortens every
  check;
* for a **test** option (``actors``, ``faults``, the model: ``actor_count``,
  ``sessions``, ``max_steps``, ``without``, ``values``, ``messages``) only
  when they agree: a test
  argument that differs from a value given on the command line is a
  :class:`OptionConflict` naming both, never a silent choice;
* ``suppress_health_check`` and ``allow_errors`` add up from every source.

Imports nothing heavy: the pytest plugin reads this table in every run.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable

from sessioncheck.cli.numbers import count, seconds
from sessioncheck.controlled.messages import SETS as MESSAGE_SETS  # the choices of --messages
from sessioncheck.controlled.values import SETS as VALUE_SETS  # and of --values
from sessioncheck.cli.numbers import seed as seed_number

RUN, TEST = "run", "test"


class OptionError(ValueError):
    """A value is refused; the message names where it was written."""


class OptionConflict(OptionError):
    """A test's argument differs from the command line's value of a test option."""


def _choice(*names: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip()
        if value not in names:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(names)}")
        return value

    return parse


def _faults(text: str) -> tuple[str, ...]:
    known = ("crash", "power-loss", "io-error", "server-crash", "cancel")  # sessioncheck.verify.FAULTS, without importing the engine
    out = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    bad = [f for f in out if f not in known]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown fault {bad[0]!r}; choose from {', '.join(known)}")
    return out


def _operation(text: str) -> str:
    known = ("persist", "delete", "pop", "clear", "rename")  # sessioncheck.controlled.program.OPTIONAL
    value = text.strip()
    if value not in known:
        raise argparse.ArgumentTypeError(f"{text!r} is not an optional operation ({', '.join(known)})")
    return value


def _text(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty value")
    return text.strip()


def _health_check(text: str) -> str:
    from sessioncheck.health import parse_suppressed
    from sessioncheck.errors import ConfigError

    try:
        parse_suppressed([text])
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def _pattern(text: str) -> str:
    from sessioncheck.controlled.refusals import compile_allowed

    try:
        compile_allowed([text])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


@dataclass(frozen=True)
class Option:
    """One option of the gate.  ``parse`` turns one text into a value (a
    list option parses each item); ``scope`` is ``run`` or ``test`` for an
    option a test may set, ``None`` for one only the run sets."""

    name: str
    parse: Callable[[str], Any]
    help: str
    metavar: str = "VALUE"
    scope: str | None = None
    many: bool = False  # repeatable on the command line, a list in ini and keywords
    flag: bool = False  # on or off (store_true, ini bool)

    @property
    def cli(self) -> str:
        return "--sessioncheck-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        return "sessioncheck_" + self.name


OPTIONS: tuple[Option, ...] = (
    Option("store", _text, "check this store (repeatable): one test per store", "SPEC", many=True),
    Option("scenarios", _text, "also run every named scenario against each store, one test each", flag=True),
    Option("profile", _choice("ci", "fuzz"), "ci: bounded and deterministic (default); fuzz: long and random",
           "ci|fuzz"),
    Option("budget", seconds(), "time per check (default: the profile's: ci 120 as a ceiling, fuzz 600)",
           "SECONDS", RUN),
    Option("examples", count(), "examples per check (default: the profile's max_examples: ci 1000)", "N", RUN),
    Option("seed", seed_number, "base seed (default: 0 in ci, random in fuzz); a test's seed= is the "
           "check's own seed", "N", RUN),
    Option("watchdog", seconds(0.0, 3600.0), "report an actor that reaches no preemption point for this long "
           "as stuck (default: 10)", "SECONDS", RUN),
    Option("actors", _choice("threads", "processes", "mixed", "tasks"), "how writers run (default: threads)",
           "threads|processes|mixed|tasks", TEST),
    Option("processes", count(1, 26), "with actors tasks: run the task actors in M processes, an event loop "
           "each (default: one loop)", "M", TEST),
    Option("faults", _faults, "what may go wrong: crash,power-loss,io-error (default: none)", "LIST", TEST),
    Option("actor_count", count(1, 26), "actors writing at once (default: 3)", "N", TEST),
    Option("sessions", count(1, 26), "sessions in one location (default: 2)", "N", TEST),
    Option("max_steps", count(1, 1000), "steps per program (default: 24)", "N", TEST),
    Option("without", _operation, "leave an operation the store supports out of the model (persist, delete, pop, clear; "
           "repeatable)", "OP", TEST, many=True),
    Option("values", _choice(*VALUE_SETS), "metadata values the model writes: plain (a fresh string, None, "
           "''; the default) or rich (also unicode, numbers, nested JSON, a 100 KB string)", "plain|rich", TEST),
    Option("messages", _choice(*MESSAGE_SETS), "messages the model adds to a store that declares no "
           "message_kinds: plain (user messages; the default) or rich (also assistant, system, tool calls and "
           "results, unicode, a 100 KB message)", "plain|rich", TEST),
    Option("suppress_health_check", _health_check, "do not fail a check on this health check (repeatable): "
           "no_preemption_point, no_acknowledged_write, no_overlap, too_few_distinct, actor_vanished, or all",
           "NAME", TEST, many=True),
    Option("allow_errors", _pattern, "a regular expression: an exception whose 'Type: message' (or that of "
           "one in its chain) it matches counts as 'not acknowledged' (repeatable)", "PATTERN", TEST, many=True),
    Option("db", _text, "Hypothesis example database directory, or none (default: none in ci, read only when "
           "given; .sessioncheck/examples in fuzz)", "DIR|none"),
    Option("report_dir", _text, "where reports go, one subdirectory per worker (default: "
           ".sessioncheck/reports/gate)", "DIR"),
    Option("statistics", _text, "show what each check explored in the terminal summary", flag=True),
    Option("keep_going", _text, "go on searching after a violation, within the same budget, and fail the check "
           "with every distinct one (by invariant and operations), each shrunk and saved", flag=True),
)
BY_NAME = {o.name: o for o in OPTIONS}
#: options whose values from every source add up instead of overriding
ADDITIVE = ("suppress_health_check", "allow_errors")
#: what a test may set: its marker's and its fixture call's keywords
KEYWORDS = tuple(o.name for o in OPTIONS if o.scope) + ("store", "replay")


@dataclass(frozen=True)
class Value:
    """A value and where it was written (for messages)."""

    value: Any
    where: str  # "default", "ini", "command line", or the test's wording

    def told(self, name: str) -> str:
        o = BY_NAME[name]
        text = ",".join(self.value) if isinstance(self.value, (tuple, list)) else str(self.value)
        if self.where == "ini":
            return f"ini option {o.ini} = {text}"
        if self.where == "command line":
            return f"{o.cli} {text}"
        if self.where == "default":
            return "the default"
        shown = text if isinstance(self.value, (tuple, list)) else self.value
        return f"{self.where}({name}={shown!r})"


def _parse(option: Option, text: str, where: str) -> Any:
    try:
        return option.parse(text)
    except (argparse.ArgumentTypeError, ValueError) as exc:
        raise OptionError(f"{where}: {exc}") from None


def from_run(getoption: Callable[[str], Any], getini: Callable[[str], Any]) -> dict[str, Value]:
    """The run's values: the command line over the ini file.  A name
    without either is absent (its default is the caller's).  Raises
    :class:`OptionError` naming the ini key or the option."""
    out: dict[str, Value] = {}
    for o in OPTIONS:
        given = getoption(o.ini)
        if o.flag:
            if given:
                out[o.name] = Value(True, "command line")
            elif getini(o.ini):
                out[o.name] = Value(True, "ini")
            continue
        if given is not None and given != []:
            if o.many:
                out[o.name] = Value(tuple(_parse(o, t, o.cli) for t in given), "command line")
            else:
                out[o.name] = Value(_parse(o, given, o.cli), "command line")
            continue
        ini = getini(o.ini)
        if o.many and ini:
            out[o.name] = Value(tuple(_parse(o, t, f"ini option {o.ini}") for t in ini), "ini")
        elif not o.many and isinstance(ini, str) and ini.strip():
            out[o.name] = Value(_parse(o, ini, f"ini option {o.ini}"), "ini")
    for name in ADDITIVE:
        if name in out and out[name].where == "command line":
            # the ini file's and the command line's add up
            extra = tuple(_parse(BY_NAME[name], t, f"ini option sessioncheck_{name}")
                          for t in getini(f"sessioncheck_{name}"))
            out[name] = Value(extra + out[name].value, "command line")
    return out


def from_test(kwargs: dict[str, Any], where: str) -> dict[str, Value]:
    """A test's arguments (``where``: ``@pytest.mark.sessioncheck`` or
    ``sessioncheck``), each checked as its text would be."""
    out: dict[str, Value] = {}
    for name, value in kwargs.items():
        if name not in KEYWORDS:
            raise OptionError(f"{where}() got an unknown keyword {name!r}; it takes {', '.join(KEYWORDS)}")
        if value is None:
            continue
        if name in ("store", "replay"):
            out[name] = Value(value, where)
            continue
        o = BY_NAME[name]
        if name == "seed":  # the check's own seed, not the base
            out[name] = Value(_parse(o, _as_text(value, name, where), f"{where}(seed=...)"), where)
            continue
        if o.many or name == "faults":
            items = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
            if items is None or not all(isinstance(t, str) for t in items):
                raise OptionError(f"{where}({name}=...) takes a string or a list of strings, not {value!r}")
            if name == "faults":
                out[name] = Value(_parse(o, ",".join(items), f"{where}(faults=...)"), where)
            else:
                out[name] = Value(tuple(_parse(o, t, f"{where}({name}=...)") for t in items), where)
            continue
        out[name] = Value(_parse(o, _as_text(value, name, where), f"{where}({name}=...)"), where)
    return out


def _as_text(value: Any, name: str, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise OptionError(f"{where}({name}=...) takes a number or its text, not {value!r}")
    return str(value)


def merge(run: dict[str, Value], *tests: dict[str, Value]) -> dict[str, Value]:
    """The values one check runs with: ``run`` (:func:`from_run`) under
    the test's layers, farthest first (module marker, ..., fixture call),
    by the rules of this module's docstring.  Raises :class:`OptionConflict`."""
    # the run's stores are items of their own, not a test's store
    out = {k: v for k, v in run.items() if k in KEYWORDS and k not in ("store", "replay")}
    for layer in tests:
        for name, v in layer.items():
            base = out.get(name)
            o = BY_NAME.get(name)
            if name in ADDITIVE:
                out[name] = Value((base.value if base else ()) + v.value, v.where)
            elif base is None or base.where != "command line" or o is None:
                out[name] = v
            elif o.scope == RUN:
                continue  # the command line decides how long and with which seeds
            elif _same(base.value, v.value):
                out[name] = v
            else:
                raise OptionConflict(
                    f"{v.told(name)} conflicts with {base.told(name)} on the command line: a test option is "
                    f"the test's or the command line's to set, not both; drop one of them")
    actors = out.get("actors", Value("threads", "default"))
    faults = out.get("faults", Value((), "default"))
    if "crash" in faults.value and actors.value == "threads":
        raise OptionError(f"crash faults ({faults.told('faults')}) need process actors, but actors is threads "
                          f"({actors.told('actors')}): set actors='processes' (or 'mixed') in the test's marker or "
                          f"fixture call, {BY_NAME['actors'].cli} processes, or ini option "
                          f"{BY_NAME['actors'].ini} = processes")
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return sorted(a) == sorted(b)
    return a == b
