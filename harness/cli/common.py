"""Options and helpers shared by the verbs that run the controlled engine."""
from __future__ import annotations

import argparse
import contextlib
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


REDIS_URL_HELP = ("a Redis server of your own for server-backed stores (redis://host:port/db or "
                  "unix:///path?db=N; its database must be empty); default: $SESSIONCHECK_REDIS_URL, "
                  "else a private redis-server started and stopped by sessioncheck")


def add_store_option(parser) -> None:
    parser.add_argument("--store", default="json", help=STORE_HELP)
    add_redis_option(parser)
    add_postgres_option(parser)


class _RedisUrl(argparse.Action):
    # An environment variable, not an argument passed down: every process
    # the harness starts (gallery and fuzz workers) sees the same server.
    def __call__(self, parser, namespace, values, option_string=None) -> None:
        import os

        os.environ["SESSIONCHECK_REDIS_URL"] = values
        setattr(namespace, self.dest, values)


def add_redis_option(parser) -> None:
    parser.add_argument("--redis-url", default=None, metavar="URL", action=_RedisUrl, help=REDIS_URL_HELP)


POSTGRES_DSN_HELP = ("a PostgreSQL server of your own for server-backed stores (a libpq connection string or "
                     "postgresql:// URL; the harness works in a schema of its own there and drops it at the end); "
                     "default: $SESSIONCHECK_POSTGRES_DSN, else a private server started and stopped by sessioncheck")


class _PostgresDsn(argparse.Action):
    # Carried by the environment, as --redis-url is.  A DSN libpq cannot
    # parse is a configuration error here, before anything starts.
    def __call__(self, parser, namespace, values, option_string=None) -> None:
        import os

        from sessioncheck.servers.postgres import ENV_DSN, check_dsn

        try:
            os.environ[ENV_DSN] = check_dsn(values)
        except ConfigError as exc:
            parser.error(str(exc))  # exit 2, naming the problem
        setattr(namespace, self.dest, values)


def add_postgres_option(parser) -> None:
    parser.add_argument("--postgres-dsn", default=None, metavar="DSN", action=_PostgresDsn, help=POSTGRES_DSN_HELP)


def add_watchdog_option(parser) -> None:
    parser.add_argument("--watchdog", type=seconds(0.0, 3600.0), default=10.0, metavar="SECONDS", help=WATCHDOG_HELP)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model")
    g.add_argument("--actor-count", type=count(1, 26), default=3, metavar="N", help="actors writing at once (default: 3)")
    g.add_argument("--sessions", type=count(1, 26), default=2, metavar="N", help="sessions in one location (default: 2)")
    g.add_argument("--processes", type=count(1, 26), default=None, metavar="M",
                   help="with --actors tasks: spread the task actors over M processes, an event loop each "
                        "(as app-server workers serving concurrent requests; names p0.t0, p1.t0, ...); "
                        "the default runs them all on one loop")
    g.add_argument("--max-steps", type=count(1, 1000), default=24, metavar="N", help="steps per program (default: 24)")
    g.add_argument("--without", action="append", default=[], metavar="OP", choices=OPTIONAL,
                   help="leave an operation the store supports out of the model (persist, delete, pop, clear; "
                        "repeatable): to look past a bug already known in it")
    from sessioncheck.controlled.messages import SETS as MESSAGE_SETS
    from sessioncheck.controlled.values import SETS as VALUE_SETS

    g.add_argument("--values", default="plain", choices=tuple(VALUE_SETS),
                   help="metadata values the model writes: plain (a fresh string, None, ''; the default) or rich "
                        "(also unicode, numbers, nested JSON, a 100 KB string)")
    g.add_argument("--messages", default="plain", choices=tuple(MESSAGE_SETS),
                   help="messages the model adds to a store that declares no message_kinds: plain (user "
                        "messages; the default) or rich (also assistant, system, tool calls and tool results, "
                        "unicode, a 100 KB content)")
    add_watchdog_option(g)
    g.add_argument("--no-db", action="store_true",
                   help="do not use the example database (.sessioncheck/examples)")


def model_from_args(args: argparse.Namespace) -> ModelConfig:
    for name in ("actor_count", "sessions", "max_steps"):
        v = getattr(args, name)
        if not 1 <= v <= 26 and name != "max_steps":
            raise ConfigError(f"--{name.replace('_', '-')} must be between 1 and 26")
        if name == "max_steps" and not 1 <= v <= 1000:
            raise ConfigError("--max-steps must be between 1 and 1000")
    if args.watchdog <= 0:
        raise ConfigError("--watchdog must be a positive number of seconds")
    processes = getattr(args, "processes", None)
    if processes is not None and getattr(args, "actors", "tasks") != "tasks":
        raise ConfigError(f"--processes {processes} hosts task actors in processes: add --actors tasks "
                          "(for one process per actor use --actors processes)")
    return ModelConfig(actors=args.actor_count, sessions=args.sessions, max_steps=args.max_steps,
                       without=tuple(dict.fromkeys(args.without)), values=value_set(args),
                       messages=message_set(args), task_processes=processes or 0)


def message_set(args: argparse.Namespace) -> tuple[str, ...]:
    from sessioncheck.controlled.messages import SETS

    return SETS[getattr(args, "messages", None) or "plain"]


def value_set(args: argparse.Namespace) -> tuple[str, ...]:
    from sessioncheck.controlled.values import SETS

    return SETS[getattr(args, "values", None) or "plain"]


def database_for(args: argparse.Namespace):
    """Hypothesis' example database: a failure found once is tried first
    next time.  Off when seeded, so that a seed alone decides the run."""
    if getattr(args, "no_db", False) or getattr(args, "seed", None) is not None:
        return None
    from hypothesis.database import DirectoryBasedExampleDatabase

    return DirectoryBasedExampleDatabase(str(Path(".sessioncheck") / "examples"))


@contextlib.contextmanager
def progress(budget: float, examples: int | None) -> Iterator[Callable]:
    """A progress bar on a terminal (stderr: stdout is for results) for
    runs longer than a second."""
    if not sys.stderr.isatty() or budget <= 1:
        yield lambda stats: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    t0 = time.monotonic()
    with Progress(TextColumn("[bold]exploring"), BarColumn(), TextColumn("{task.fields[n]} examples"),
                  TimeRemainingColumn(), transient=True, console=Console(stderr=True)) as bar:
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
