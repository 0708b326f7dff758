"""``sessioncheck replay REPORT.json``: run a saved failure again."""
from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from sessioncheck.reporting import report as reports
from sessioncheck.errors import ConfigError
from sessioncheck.specs import BUILTIN, mutant_names
from sessioncheck.verify import rerun
from sessioncheck.cli.numbers import seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("report", type=Path, help="a report saved by sessioncheck run")
    parser.add_argument("--store", default=None,
                        help="the store to replay against (needed unless the report names a built-in store)")
    parser.add_argument("--actors", default=None, choices=("threads", "processes", "mixed", "tasks"),
                        help="replay with other actors than the report's (the same program runs in any mode)")
    parser.add_argument("--watchdog", type=seconds(0.0, 3600.0), default=10.0, metavar="SECONDS")
    parser.add_argument("--operations", action="append", default=[], metavar="MODULE",
                        help="import MODULE (repeatable) before reading the program: the module that registers "
                             "the report's own operations or message kinds (sessioncheck.operations.register), "
                             "when the --store module does not register them itself")


def import_registrations(modules: list[str]) -> None:
    """Import the modules named by ``--operations`` (from the current
    directory or the installed packages): code named on the command line,
    never in the report."""
    import importlib

    from sessioncheck.specs import _import_from_cwd

    _import_from_cwd()
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a usage error, said in one line
            raise ConfigError(f"--operations {name}: importing it raised {type(exc).__name__}: {exc}") from None


def store_for(report: dict, given: str | None) -> str:
    """Code is loaded only from the command line or a built-in name, never
    from a spec written inside the report."""
    if given:
        return given
    name = report["store"]
    from sessioncheck.stores.adapters import ADAPTERS

    if name in BUILTIN or name in ADAPTERS or (name.startswith("mutant:") and name[7:] in mutant_names()):
        return name
    raise ConfigError(f"the report names store {name!r}, which is not built in; pass --store {name} to load it")


def _told(story: str) -> list[str]:
    """The lines of a story that tell the run: without its ``Replay:``
    line, which names the report file (another path from another folder)."""
    return [line for line in story.splitlines() if not line.startswith("Replay: ")]


def main(args: argparse.Namespace) -> int:
    data = reports.load(args.report, program=False)
    store = store_for(data, args.store)
    # the store's module (and --operations) first: either may register the
    # operations and message kinds the program names
    from sessioncheck.specs import resolve

    resolve(store)
    import_registrations(args.operations)
    reports.parse_program(data)
    other = store != data["store"]
    if other:
        # on purpose (--store), but never silently: a pass here says
        # nothing about the store the report was saved for
        print(f"replaying a report saved for store {data['store']!r} against {store!r} (--store)",
              file=sys.stderr)
    mode = args.actors or data["mode"]
    cfg = data["_config"]
    if mode != "tasks" and cfg.task_processes:
        # tasks in processes replayed with other actors: one actor per task
        from dataclasses import replace

        cfg = replace(cfg, task_processes=0)
    outcome, story = rerun(store, mode, cfg, data["_program"], args.report, args.watchdog)
    if not outcome.failed:
        whose = f"; the report was saved for {data['store']!r}" if other else ""
        print(f"the saved violation did not happen again: {store} ({mode}) passes this schedule{whose}")
        return 0
    # the verdict first, then the story (as ``run`` prints its summary
    # first): the story's last line stays the Replay: line
    if mode == data["mode"] and story == data["story"]:
        verdict = "replayed: the same story, byte for byte"
    elif mode == data["mode"] and _told(story) == _told(data["story"]):
        verdict = "replayed: the same story (only the path of the report in its last line differs)"
    elif mode == data["mode"]:
        diff = difflib.unified_diff(_told(data["story"]), _told(story), "saved", "replayed", lineterm="")
        verdict = "replayed: the violation happened again, but the story differs:\n" + "\n".join(diff)
    else:
        verdict = f"replayed with {mode} actors (the report's: {data['mode']}): the violation happened again"
    sys.stdout.write(f"{verdict}\n\n{story}")
    return 1
