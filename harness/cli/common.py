"""Options and helpers shared by the verbs that run the controlled engine."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

from sessioncheck.errors import ConfigError
from sessioncheck.controlled.program import OPTIONAL, ModelConfig
from sessioncheck.cli.numbers import count, seconds


STORE_HELP = ("built-in name (json, sqlite, mutant:<name>, an adapter) or package.module:factory "
              "(default: json)")
WATCHDOG_HELP = "report an actor that reaches no preemption point for this long as stuck (default: 10)"


def add_store_option(parser) -> None:
    parser.add_argument("--store", default="json", help=STORE_HELP)


def add_watchdog_option(parser) -> None:
    parser.add_argument("--watchdog", type=seconds(0.0, 3600.0), default=10.0, metavar="SECONDS", help=WATCHDOG_HELP)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--actor-count", type=count(1, 26), default=3, metavar="N", help="actors writing at once (default: 3)")
    g.add_argument("--sessions", type=count(1, 26), default=2, metavar="N", help="sessions in one location (default: 2)")
    g.add_argument("--max-steps", type=count(1, 1000), default=24, metavar="N", help="steps per program (default: 24)")
    g.add_argument("--without", action="append", default=[], metavar="OP", choices=OPTIONAL,
                   help="leave an operation the store supports out of the model (persist, delete; "
                        "repeatable): to look past a bug already known in it")
    add_watchdog_option(g)
    g.add_argument("--no-db", action="store_true",
                   help="do not use the example database (.sessioncheck/examples)")
    parser.add_argument_group("servers").add_argument(
        "--postgres-dsn", metavar="DSN", default=None,
        help="a PostgreSQL server of your own for stores that need one (libpq DSN or URL; the harness works "
             "in its own schema there and drops it at the end); default: a private server it starts and "
             "stops (also $SESSIONCHECK_POSTGRES_DSN)")


def model_from_args(args: argparse.Namespace) -> ModelConfig:
    for name in ("actor_count", "sessions", "max_steps"):
        v = getattr(args, name)
        if not 1 <= v <= 26 and name != "max_steps":
            raise ConfigError(f"--{name.replace('_', '-')} must be between 1 and 26")
        if name == "max_steps" and not 1 <= v <= 1000:
            raise ConfigError("--max-steps must be between 1 and 1000")
    if args.watchdog <= 0:
        raise ConfigError("--watchdog must be a positive number of seconds")
    if getattr(args, "postgres_dsn", None) is not None:
        from sessioncheck.servers.postgres import ENV_DSN, check_dsn

        # the environment carries it to the resource and to forked actors
        os.environ[ENV_DSN] = check_dsn(args.postgres_dsn)
    return ModelConfig(actors=args.actor_count, sessions=args.sessions, max_steps=args.max_steps,
                       without=tuple(dict.fromkeys(args.without)))


def database_for(args: argparse.Namespace):
    """Hypothesis' example database: a failure found once is tried first
    next time.  Off when seeded, so that a seed alone decides the run."""
    if getattr(args, "no_db", False) or getattr(args, "seed", None) is not None:
        return None
    from hypothesis.database import DirectoryBasedExampleDatabase

    return DirectoryBasedExampleDatabase(str(Path(".sessioncheck") / "examples"))


@contextlib.contextmanager
def progress(budget: float, examples: int | None) -> Iterator[Callable]:
    """A progress bar on a terminal for runs longer than a second."""
    if not sys.stderr.isatty() or budget <= 1:
        yield lambda stats: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    t0 = time.monotonic()
    with Progress(TextColumn("[bold]exploring"), BarColumn(), TextColumn("{task.fields[n]} examples"),
                  TimeRemainingColumn(), transient=True, console=None) as bar:
        total = float(examples) if examples else budget
        task = bar.add_task("run", total=total, n=0)
        last = [0.0]

        def tick(stats) -> None:
            now = time.monotonic()
            if now - last[0] < 0.1:
                return
            last[0] = now
            done = stats.examples if examples else min(now - t0, budget)
            bar.update(task, completed=done, n=stats.examples)

        yield tick
