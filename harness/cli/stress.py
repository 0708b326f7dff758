"""``sessioncheck stress``: free-running threads and processes, then a check.

Runs ``--processes`` worker processes with ``--threads`` actor threads each
(``--processes 0``: the threads run in this process), every actor with its
own store instance on one shared temporary directory, ``--ops`` operations
in total, for at most ``--duration`` seconds.  Prints the verdict, the
throughput, latency percentiles per operation type, lock starvation per
actor, and each violation with the operations that show it.

Exit codes: 0 the history checked ok; 1 a violation (I1-I4 from the
checker, I5 for an operation that did not return within ``--op-timeout``)
*or* an inconclusive check: verdict ``unknown`` (the checker ran out of
budget, or a worker's history could not be collected) is printed as
UNKNOWN and exits 1, because it must never read as a pass; 2 a usage or
configuration error.
"""
from __future__ import annotations

import argparse
import contextlib
import math
from typing import Callable, Iterator

from sessioncheck.checking.checker import explain
from sessioncheck.errors import ConfigError
from sessioncheck.checking.history import write_jsonl
from sessioncheck.stress.runner import StressConfig, StressResult, percentile, run_stress
from sessioncheck.cli.numbers import count, seconds, seed
from sessioncheck.words import plural


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True, metavar="SPEC",
                        help="store spec: json, sqlite, mutant:<name>, an adapter, or package.module:factory")
    parser.add_argument("--threads", type=count(0, 1024), default=4, metavar="N",
                        help="actor threads per process (default 4)")
    parser.add_argument("--processes", type=count(0, 1024), default=0, metavar="M",
                        help="worker processes; 0 runs the threads in this process (default 0)")
    parser.add_argument("--tasks", type=count(0, 100_000), default=0, metavar="N",
                        help="asyncio tasks per process on one event loop, instead of threads "
                             "(requests of one web process); 0: threads (default)")
    parser.add_argument("--sessions", type=count(1, 10_000), default=4, metavar="S", help="sessions to spread over (default 4)")
    parser.add_argument("--ops", type=count(1, 10**8), default=2000, metavar="K",
                        help="operations in total over all actors (default 2000)")
    parser.add_argument("--duration", type=seconds(), default=60.0, metavar="SECONDS",
                        help="stop issuing operations after this long (default 60)")
    parser.add_argument("--op-timeout", type=seconds(0.0, 3600.0), default=30.0, metavar="SECONDS",
                        help="an operation taking longer violates liveness (I5) (default 30)")
    parser.add_argument("--check-budget", type=seconds(), default=300.0, metavar="SECONDS",
                        help="seconds the checker may search before the verdict is unknown (default 300)")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the operation plans (default 0)")
    parser.add_argument("--history", metavar="PATH", help="also write the recorded history as JSON lines")
    parser.add_argument("--messages", default="plain", choices=("plain", "rich"),
                        help="messages added to a store that declares no message_kinds: plain (user messages; "
                             "the default) or rich (also assistant, system, tool calls and results, unicode, "
                             "a 100 KB message)")
    parser.add_argument("--values", default="plain", choices=("plain", "rich"),
                        help="metadata values persists write: plain (unique strings, None, ''; the default) or "
                             "rich (also unicode, numbers, nested JSON, a 100 KB string); a store's declared "
                             "Capabilities.metadata_values strategy is drawn from either way")
    from sessioncheck.cli.run import add_allow_errors_option, add_health_option

    add_allow_errors_option(parser)
    add_health_option(parser)


def _value_set(name: str) -> tuple[str, ...]:
    """``--values``: plain is the plan's own values (the plan earlier
    versions drew), rich the model's rich kinds."""
    from sessioncheck.controlled.values import RICH

    return RICH if name == "rich" else ()


def main(args: argparse.Namespace) -> int:
    import sys

    from sessioncheck.cli.common import message_set

    from rich.console import Console

    from sessioncheck.controlled.exits import terminate_cleanly

    # results on stdout, live progress on stderr
    console = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    config = StressConfig(store=args.store, threads=args.threads, processes=args.processes,
                          sessions=args.sessions, ops=args.ops, duration=args.duration,
                          seed=args.seed, op_timeout=args.op_timeout, check_budget=args.check_budget,
                          allow_errors=tuple(args.allow_errors), tasks=args.tasks,
                          messages=message_set(args), values=_value_set(args.values))
    config.validate()
    from sessioncheck.health import parse_suppressed

    suppressed = parse_suppressed(args.suppress_health_check)
    from sessioncheck.specs import resolve

    resolve(config.store)  # a bad spec: one line on stderr, before the banner on stdout
    actors = len(config.actor_names)
    unit = plural(config.tasks, "asyncio task") + " of one loop" if config.tasks else plural(config.threads, "thread")
    where = f"{plural(config.processes, 'process', 'processes')} x {unit}" \
        if config.processes else f"{unit} in one process"
    console.print(f"stress: store {config.store}, {plural(actors, 'actor')} ({where}), "
                  f"{plural(config.sessions, 'session')}, {plural(config.ops, 'op')}, at most "
                  f"{config.duration:g} s, seed {config.seed}", markup=False)
    done = Done()
    try:
        # SIGTERM and SIGHUP unwind like Ctrl-C, so that the runner still
        # kills and reaps its workers; its folder is a private one, removed
        # even on kill -9 (sessioncheck.scratch)
        with terminate_cleanly(), _private_temp():
            if err.is_terminal:
                result = _with_progress(err, config, done)
            else:
                result = run_stress(config, progress=done)
    except KeyboardInterrupt as exc:
        from sessioncheck.cli.run import interrupted

        return interrupted(exc, f"interrupted: {plural(done.count, 'operation')} completed in "
                                f"{done.seconds():.1f} s, not checked; seed {config.seed}")
    if args.history:
        try:
            write_jsonl(result.events, args.history)
        except OSError as exc:
            raise ConfigError(f"cannot write history {args.history}: {exc.strerror or exc}") from None
    _print(console, result, args.history)
    from sessioncheck import health

    for name, text in health.check(config.store, None, None, suppressed=suppressed,
                                   found=health.stress_failures(result)):
        console.print(f"note: health check {name} suppressed: {text.split(';')[0]}", markup=False)
    sys.stdout.flush()
    return 0 if result.verdict == "ok" else 1


class Done:
    """The runner's progress callback: operations completed so far, and
    since when (for the summary of an interrupted run)."""

    def __init__(self) -> None:
        import time

        self.count, self.t0 = 0, time.monotonic()

    def __call__(self, done: int) -> None:
        self.count = done

    def seconds(self) -> float:
        import time

        return time.monotonic() - self.t0


@contextlib.contextmanager
def _private_temp() -> Iterator[None]:
    """The runner's directory (made by ``tempfile`` in the system's
    temporary directory, as always) inside a private folder there, which
    the reaper removes even when the harness is killed outright."""
    import tempfile

    from sessioncheck.scratch import private_folder, tempfiles_in

    with private_folder("sessioncheck-stress-run-", base=tempfile.gettempdir()) as mine, tempfiles_in(mine):
        yield


def _with_progress(console, config: StressConfig, done: Callable[[int], None]) -> StressResult:
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]} ops/s"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("running", total=config.ops, rate="-")
        started = [0.0]

        def progress(n: int) -> None:
            done(n)
            now = time.monotonic()
            if not started[0]:
                started[0] = now
            elapsed = now - started[0]
            bar.update(task, completed=n, rate=f"{n / elapsed:.0f}" if elapsed > 0.2 else "-")

        return run_stress(config, progress=progress)


def _ms(x: float) -> str:
    return "-" if math.isnan(x) else f"{x * 1000:.1f}"


def _print(console, result: StressResult, history_path: str | None) -> None:
    from rich.table import Table

    done = result.completed
    rate = done / result.seconds if result.seconds > 0 else 0.0
    console.print(f"{plural(done, 'operation')} in {result.seconds:.2f} s: {rate:.0f} ops/s overall")
    lat = Table("operation", "count", "p50 ms", "p95 ms", "p99 ms", "max ms", title="latency")
    for f, values in result.latencies.items():
        if not values and f == "delete":
            continue  # the store does not declare delete_session
        v = sorted(values)
        lat.add_row(f, str(len(v)), _ms(percentile(v, 50)), _ms(percentile(v, 95)),
                    _ms(percentile(v, 99)), _ms(v[-1] if v else math.nan))
    console.print(lat)
    starving = [a for a in result.actors if a.lock_timeouts or a.info or a.unfinished or a.slow]
    if starving:
        t = Table("actor", "ops", "lock timeouts", "other errors", "slow", "no reply",
                  title="lock starvation and errors per actor")
        for a in starving:
            t.add_row(a.name, str(a.ops), str(a.lock_timeouts), str(a.info - a.lock_timeouts),
                      str(a.slow), str(a.unfinished))
        console.print(t)
    else:
        console.print("lock starvation: none (no operation failed to get a lock in time)")
    if result.lost:
        console.print(f"[bold]history lost[/bold] for {', '.join(result.lost)}: the worker did not report "
                      "within the bound and was killed")
    findings = [*result.check.findings, *result.run_findings]
    t0 = result.events[0].time if result.events else 0.0
    for f in findings:
        for line in explain(f, t0):
            console.print(line, markup=False)
    totals = result.check.stats.get("findings_total", {})
    shown = len(result.check.findings)
    if sum(totals.values()) > shown:
        console.print(f"({sum(totals.values())} violations in all: "
                      + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())) + f"; {shown} shown)")
    verdict = result.verdict
    if verdict == "ok":
        console.print(f"[bold green]OK[/bold green]: {plural(result.check.stats['ops'], 'operation')} checked, "
                      "no violation of I1-I5")
    elif verdict == "violation":
        console.print(f"[bold red]VIOLATION[/bold red]: {len(findings)} shown")
    else:
        reason = result.check.reason or f"history of {', '.join(result.lost)} lost"
        console.print(f"[bold yellow]UNKNOWN[/bold yellow]: not a pass; {reason}")
    if history_path:
        console.print(f"history written to {history_path}; check it again with: "
                      f"sessioncheck check {history_path}")
    else:
        console.print("rerun with --history PATH to keep the history")
