"""The ``sessioncheck`` command: one tree of subcommands.

This module only wires verbs to their modules in ``sessioncheck.cli``;
each verb module has ``add_arguments(parser)`` and ``main(args) -> int``.

Exit codes everywhere: 0 nothing found, 1 a violation found, 2 a usage or
configuration error (one line on stderr saying what and how to fix it),
128 + N for signal N (130 for Ctrl-C).

Streams everywhere: results (summaries, stories, tables, statistics) on
stdout; errors, warnings and live progress on stderr.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from sessioncheck.errors import SessionCheckError

#: verb -> (module in sessioncheck.cli, one-line help)
VERBS = {
    "run": ("run", "controlled interleavings (Hypothesis) against one store"),
    "replay": ("replay", "replay a saved report to the same story"),
    "stress": ("stress", "free-running threads and processes; record and check a history"),
    "check": ("check", "check a history file (JSON lines)"),
    "gallery": ("gallery", "every mutant and correct store in every mode: the headline table"),
    "scenario": ("scenario", "run one named regression scenario against a store"),
    "scenarios": ("scenarios", "run every named scenario against a store"),
    "explain": ("explain", "print a saved report as a story"),
    "report": ("report", "render a saved report as a self-contained HTML timeline"),
    "fuzz": ("fuzz", "long runs on a Dask cluster (or all local cores), one finding per bug"),
    "stores": ("stores", "list the built-in stores, mutants and adapters"),
}


DESCRIPTION = ("Concurrency verification for chat-session stores: controlled interleavings, "
               "stress histories, crashes and I/O faults.")

#: What bare ``sessioncheck`` prints (to stderr, exit 2: it is a usage error).
SHORT_USAGE = """usage: sessioncheck VERB [options]
verbs: {verbs}
start with: sessioncheck run --store json      every verb: sessioncheck --help
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"sessioncheck: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sessioncheck", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    for verb, (module, help_) in VERBS.items():
        try:
            mod = importlib.import_module(f"sessioncheck.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"sessioncheck.cli.{module}":
                raise
            continue  # a verb not built yet is simply absent
        p = sub.add_parser(verb, help=help_, description=help_)
        mod.add_arguments(p)
        p.set_defaults(_main=mod.main)
    return parser


def _version() -> str:
    from sessioncheck import __version__

    return f"sessioncheck {__version__}"


def _from_hypothesis(exc: BaseException) -> bool:
    try:
        from hypothesis.errors import HypothesisException
    except ImportError:
        return False
    return isinstance(exc, HypothesisException)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # a usage error (2) or --help (0), already printed
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "_main", None):
        sys.stderr.write(SHORT_USAGE.format(verbs=", ".join(VERBS)))
        return 2
    try:
        return int(args._main(args))
    except SessionCheckError as exc:
        print(f"sessioncheck: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        # A Hypothesis error here means the harness asked for something
        # Hypothesis refuses (a setting out of range): configuration, not a
        # finding about the store.
        if _from_hypothesis(exc):
            print(f"sessioncheck: error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                  file=sys.stderr)
            return 2
        import traceback

        traceback.print_exc()
        signum = _interrupted_behind(exc)
        if signum is not None:
            # the cleanup after a signal failed (the traceback shows how):
            # the signal is still what ended the run
            return _interrupted(signum)
        # A fault of the harness itself: never exit 1, which says "a
        # violation was found", nor 0.
        print(f"sessioncheck: internal error: {type(exc).__name__}: {exc}; this is a fault of sessioncheck, "
              "not a finding about the store (the traceback above; please report it)", file=sys.stderr)
        return 3
    except KeyboardInterrupt as exc:  # Ctrl-C; SIGTERM or SIGHUP where a verb turned them into one
        import signal

        return _interrupted(getattr(exc, "signum", signal.SIGINT))


def _interrupted(signum: int) -> int:
    """Say which signal ended the run; its exit code, 128 + N."""
    import signal

    print(f"sessioncheck: interrupted by {signal.Signals(signum).name}", file=sys.stderr)
    return 128 + signum


def _interrupted_behind(exc: BaseException) -> int | None:
    """The signal number of a Ctrl-C or SIGTERM/SIGHUP that ``exc`` was
    raised while handling (its ``__context__`` chain), else ``None``."""
    import signal

    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, KeyboardInterrupt):
            return int(getattr(e, "signum", signal.SIGINT))
        e = e.__context__
    return None


if __name__ == "__main__":
    sys.exit(main())
