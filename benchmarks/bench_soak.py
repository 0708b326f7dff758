"""No-false-alarm soak: every reference store and every real adapter under
the rich model (``--values rich`` plus a JSON value strategy of its own,
``--messages rich``, every operation the store declares), thread and
process actors, a fixed number of examples per run.

Usage::

    python benchmarks/bench_soak.py [--examples 200] [--seed 1] [--budget 120]
                                    [--only SPEC ...] [--out benchmarks/RESULTS-soak.md]

Each run is ``verify(spec, mode, max_examples=N, seed=S)`` with
``ModelConfig(values=RICH + (SOAK_VALUES,), messages=RICH, without=...)``.
What a run may find is decided up front, per store, in :data:`KNOWN`:

- a *correct* store (every reference store, and adapters found correct)
  must pass: any violation is a **false alarm** until shown otherwise;
- an adapter whose real bugs are known runs with the operations that carry
  them left out (``without``: the bug is told elsewhere, with its test), so
  the soak still covers what is left;
- where the bug lies in an operation that cannot be left out (an append),
  the finding is expected: it counts as a *known finding* only if its
  invariant and a phrase of its summary match the entry; anything else is
  **unexpected** and printed in full.

The exit status is 1 if any run ended with a false alarm or an unexpected
finding, 0 otherwise.  A store whose package or server is missing is
skipped and says why.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostinfo import describe  # noqa: E402

MODES = ("threads", "processes")


@dataclass(frozen=True)
class Known:
    """What the soak expects of one store: operations left out (their
    bugs known, told where ``why`` says) and findings it may report
    (``(invariant, phrase of the summary)``), per mode (``None``: any)."""

    without: tuple[str, ...] = ()
    findings: tuple[tuple[str, str], ...] = ()
    modes: tuple[str, ...] | None = None
    why: str = ""


#: real adapters' known bugs (README "Real stores"); reference stores have none
KNOWN: dict[str, Known] = {
    "praisonai": Known(("persist", "delete"), why="update_session_metadata skips None (I3); delete_session "
                                                  "without the lock (I1): tests/test_adapters_engine.py"),
    "praisonai-prefix": Known(("persist", "delete"), why="the pre-fix persist loses an append (I1); the rest "
                                                         "is praisonai's"),
    "praisonai-edits": Known(("persist", "delete"), why="as praisonai; clear and rename stay in"),
    "praisonai-agent": Known(("persist",), why="_restore_state restores truthy values only (I3)"),
    "langgraph": Known(findings=(("I2", ""),), why="put_writes of two writers show appends out of order (I2)"),
    "langgraph-async": Known(findings=(("I2", ""),), why="as langgraph"),
    "langgraph-postgres": Known(findings=(("I2", ""),), why="as langgraph"),
    "langgraph-read-put": Known(findings=(("I1", "missing"), ("I2", ""), ("I3", "")),
                                why="read then put: a racing append or write is lost (the mapping's race)"),
    "langgraph-async-read-put": Known(findings=(("I1", "missing"), ("I2", ""), ("I3", "")), why="as langgraph-read-put"),
    "langgraph-postgres-read-put": Known(findings=(("I1", "missing"), ("I2", ""), ("I3", "")),
                                         why="as langgraph-read-put"),
    "openai-agents-sqlalchemy": Known(findings=(("E1", "already exists"),), modes=("processes",),
                                      why="two processes both run create_all on a fresh database: "
                                          "an add fails only under concurrency (E1)"),
}

#: the value strategy the soak adds to the rich kinds (registered by name)
SOAK_VALUES = "soak.json"


def register_values() -> str:
    """A JSON value strategy beside the rich kinds: nested lists and maps
    of unicode text, integers, finite floats, booleans and None."""
    from hypothesis import strategies as st

    from sessioncheck.controlled import values

    leaves = st.none() | st.booleans() | st.integers(-2**53, 2**53) | \
        st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
    json_values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4)
                               | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
    return values.register(SOAK_VALUES, json_values, replace=True)


def stores() -> list[str]:
    from sessioncheck import specs
    from sessioncheck.stores import adapters

    return [*specs.BUILTIN, *specs.SERVER_BACKED, *adapters.ADAPTERS]


def unavailable(spec: str) -> str | None:
    """Why ``spec`` cannot run here (its package or server missing), else ``None``."""
    from sessioncheck import servers
    from sessioncheck.errors import ConfigError
    from sessioncheck.specs import resolve

    try:
        resolved = resolve(spec)
    except (ConfigError, ImportError) as exc:
        return str(exc).splitlines()[0]
    for name in resolved.resources:
        why = servers.unavailable(name)
        if why:
            return f"needs a {name} server: {why}"
    return None


@dataclass
class Row:
    spec: str
    mode: str
    examples: int = 0
    seconds: float = 0.0
    verdict: str = ""  # pass, known, FALSE ALARM?, UNEXPECTED, skipped, error
    detail: str = ""


def judge(spec: str, mode: str, r) -> tuple[str, str]:
    """The verdict of one run: ``pass``, ``known`` (an expected finding of
    a real bug), or a false alarm / unexpected finding."""
    if not r.found:
        return "pass", ""
    v = r.outcome.violations[0]
    known = KNOWN.get(spec)
    what = f"{v.invariant}: {v.summary.splitlines()[0]}"
    if known is None or not known.findings:
        return "FALSE ALARM?", what
    if known.modes is not None and mode not in known.modes:
        return "UNEXPECTED", what
    if any(v.invariant == inv and phrase in v.summary for inv, phrase in known.findings):
        return "known", what
    return "UNEXPECTED", what


def soak(spec: str, mode: str, examples: int, seed: int, budget: float) -> Row:
    from sessioncheck.controlled.messages import RICH as RICH_MESSAGES
    from sessioncheck.controlled.program import ModelConfig
    from sessioncheck.controlled.values import RICH
    from sessioncheck.verify import verify

    known = KNOWN.get(spec, Known())
    cfg = ModelConfig(values=(*RICH, SOAK_VALUES), messages=RICH_MESSAGES, without=known.without)
    row = Row(spec, mode)
    t0 = time.perf_counter()
    try:
        r = verify(spec, mode=mode, budget=budget, max_examples=examples, seed=seed, cfg=cfg, save_report=True,
                   report_dir=Path(".sessioncheck/soak"))
    except Exception as exc:  # a configuration error is a row of its own, never a crash of the soak
        row.verdict, row.detail = "error", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        row.seconds = time.perf_counter() - t0
        return row
    row.seconds = time.perf_counter() - t0
    row.examples = r.exploration.examples
    row.verdict, row.detail = judge(spec, mode, r)
    if row.verdict in ("FALSE ALARM?", "UNEXPECTED"):
        print(r.story, file=sys.stderr)
    elif row.examples < examples and not r.found:
        row.detail = f"the {budget:.0f} s budget ended it at {row.examples} examples"
    return row


def machine() -> str:
    return describe()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=200, help="examples per store and mode (default 200)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--budget", type=float, default=120.0, help="seconds at most per run (default 120)")
    p.add_argument("--only", nargs="*", default=None, metavar="SPEC", help="these stores only")
    p.add_argument("--modes", nargs="*", default=list(MODES), choices=MODES)
    p.add_argument("--out", type=Path, default=None, help="write the table as Markdown here")
    args = p.parse_args(argv)
    register_values()
    before = machine()
    rows: list[Row] = []
    for spec in args.only or stores():
        why = unavailable(spec)
        for mode in args.modes:
            if why:
                rows.append(Row(spec, mode, verdict="skipped", detail=why))
            else:
                rows.append(soak(spec, mode, args.examples, args.seed, args.budget))
            row = rows[-1]
            print(f"{row.spec:32} {row.mode:10} {row.examples:6} {row.seconds:7.1f} s  {row.verdict}  {row.detail}",
                  flush=True)
    ran = [r for r in rows if r.verdict not in ("skipped", "error")]
    bad = [r for r in rows if r.verdict in ("FALSE ALARM?", "UNEXPECTED", "error")]
    lines = [
        f"Soak: `python benchmarks/bench_soak.py --examples {args.examples} --seed {args.seed} "
        f"--budget {args.budget:g}`; values rich + `{SOAK_VALUES}` (a JSON strategy), messages rich.",
        f"Machine: {before} at the start, {machine().rsplit('load average ', 1)[1]} at the end.",
        "",
        f"{len(ran)} runs, {sum(r.examples for r in ran)} examples, "
        f"{sum(r.verdict == 'pass' for r in ran)} passes, {sum(r.verdict == 'known' for r in ran)} known findings, "
        f"{sum(r.verdict == 'FALSE ALARM?' for r in ran)} false alarms, "
        f"{sum(r.verdict == 'UNEXPECTED' for r in ran)} unexpected, {sum(r.verdict == 'error' for r in rows)} errors, "
        f"{sum(r.verdict == 'skipped' for r in rows)} skipped.",
        "",
        "| store | mode | left out | examples | seconds | verdict | detail |",
        "| --- | --- | --- | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        left = ", ".join(KNOWN.get(r.spec, Known()).without) or "-"
        detail = r.detail.replace("|", "\\|")[:200]
        lines.append(f"| `{r.spec}` | {r.mode} | {left} | {r.examples} | {r.seconds:.1f} | {r.verdict} | {detail} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
