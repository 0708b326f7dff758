"""The report file: one violation, saved as versioned JSON.

Schema ``sessioncheck-report`` version 1 (documented in the README):

``schema``, ``version``, ``store`` (the spec, for information: replay
loads code only from the spec on its own command line or a built-in
name), ``mode``, ``config`` (the model's settings), ``seed``,
``program`` (the schedule: a list of steps), ``violations`` (invariant,
summary, subject), ``story`` (the text, byte for byte), ``trace`` (what
each actor did, for the HTML timeline), ``stats`` and ``versions``.

A report is data: it is parsed and validated, never evaluated or
unpickled, and nothing named in it is imported.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from sessioncheck import datafile
from sessioncheck.errors import ReportError
from sessioncheck.controlled.program import ModelConfig, Step, program_from_json, program_to_json

SCHEMA = "sessioncheck-report"
VERSION = 1
DEFAULT_DIR = Path(".sessioncheck") / "reports"


def versions(store_module: str = "") -> dict:
    from importlib import metadata

    from sessioncheck import __version__

    out = {"python": platform.python_version(), "sessioncheck": __version__}
    for pkg in ("hypothesis", "filelock", "multiprocess"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    top = store_module.split(".")[0]
    if top and top != "sessioncheck":
        try:
            out["store_package"] = f"{top} {metadata.version(top)}"
        except metadata.PackageNotFoundError:
            pass
    return out


def default_path(store: str, mode: str, program: list[Step]) -> Path:
    digest = hashlib.sha1(json.dumps(program_to_json(program)).encode()).hexdigest()[:10]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", store).strip("-")
    return DEFAULT_DIR / f"{safe}-{mode}-{digest}.json"


def build(*, store: str, store_module: str, mode: str, cfg: ModelConfig, seed: int | None,
          program: list[Step], violations: list, story: str, trace: list[dict], stats: dict) -> dict:
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "store": store,
        "mode": mode,
        "config": {**asdict(cfg), "io_faults": list(cfg.io_faults), "without": list(cfg.without),
                   "allow_errors": list(cfg.allow_errors), "keys": list(cfg.keys), "values": list(cfg.values),
                   "messages": list(cfg.messages)},
        "seed": seed,
        "program": program_to_json(program),
        "violations": [v.to_json() for v in violations],
        "story": story,
        "trace": trace,
        "stats": stats,
        "versions": versions(store_module),
    }


def save(report: dict, path: Path) -> Path:
    """Write ``report`` to ``path`` atomically (a temporary file, then a
    rename).  A path that exists and is not a regular file (``/dev/null``,
    a FIFO) is written in place: renaming over it would replace the device
    itself."""
    import stat

    path = Path(path)
    try:
        special = not stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        special = False
    if special:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(report, indent=1, sort_keys=False) + "\n")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(report, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load(path: str | Path, program: bool = True) -> dict:
    """Read and validate a report.  Raises :class:`ReportError` (exit 2)
    with one line saying what is wrong.  ``program=False`` leaves the
    program unparsed (``data["_program"]`` unset) for :func:`parse_program`
    once the modules that register the user's operations and message
    kinds are imported (``sessioncheck replay`` imports the store first)."""
    try:
        raw = datafile.read_text(path, datafile.MAX_REPORT_BYTES)
    except FileNotFoundError:
        raise ReportError(f"no report at {path}") from None
    except datafile.DataError as exc:
        raise ReportError(f"cannot read report: {exc}") from None
    except OSError as exc:
        raise ReportError(f"cannot read report {path}: {exc}") from None
    try:
        data = datafile.loads(raw)
    except datafile.DataError as exc:
        raise ReportError(f"{path} is not a sessioncheck report ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path} is not a sessioncheck report (not JSON: {exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ReportError(f"{path} is not a sessioncheck report (no \"schema\": \"{SCHEMA}\")")
    if data.get("version") != VERSION:
        raise ReportError(f"{path} has report version {data.get('version')!r}; this sessioncheck reads version {VERSION}")
    for key, kind in (("store", str), ("mode", str), ("config", dict), ("program", list),
                      ("violations", list), ("story", str), ("trace", list)):
        if not isinstance(data.get(key), kind):
            raise ReportError(f"{path}: field {key!r} is missing or not a {kind.__name__}")
    if data["mode"] not in ("threads", "processes", "mixed", "tasks"):
        raise ReportError(f"{path}: unknown mode {data['mode']!r}")
    seed = data.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ReportError(f"{path}: 'seed' must be an integer or null")
    for n, e in enumerate(data["trace"]):
        if not isinstance(e, dict) or not isinstance(e.get("t"), int) or not isinstance(e.get("actor"), str) \
                or not isinstance(e.get("ev"), str):
            raise ReportError(f"{path}: trace entry {n} is malformed")
    data["_config"] = config_from_json(data["config"], path)
    if len(data["program"]) > data["_config"].max_steps:
        raise ReportError(f"{path}: the program has {len(data['program'])} steps, more than the config's "
                          f"max_steps ({data['_config'].max_steps})")
    if program:
        parse_program(data)
    return data


def parse_program(data: dict) -> list[Step]:
    """Parse a loaded report's program (``data["_program"]``): data, never
    code; an operation or message kind must be registered in this process."""
    data["_program"] = program_from_json(data["program"])
    return data["_program"]


def config_from_json(raw: dict, path: Any = "report") -> ModelConfig:
    known = {f.name: f.type for f in fields(ModelConfig)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ReportError(f"{path}: unknown config field {key!r}")
        if key == "io_faults":
            from sessioncheck.controlled.program import INJECTABLE

            if not isinstance(value, list) or any(v not in INJECTABLE for v in value):
                raise ReportError(f"{path}: config io_faults must list {', '.join(INJECTABLE)}")
            value = tuple(value)
        elif key == "without":
            from sessioncheck.controlled.program import OPTIONAL

            if not isinstance(value, list) or any(v not in OPTIONAL for v in value):
                raise ReportError(f"{path}: config without must list {', '.join(OPTIONAL)}")
            value = tuple(value)
        elif key in ("keys", "values"):
            from sessioncheck.controlled.program import RICH, valid_key  # RICH: the value kinds a program may name

            from sessioncheck.controlled.program import valid_value_kind

            # values: built-in kinds, or the names of strategies (their
            # draws are literals in the program: replay needs no strategy)
            ok = valid_key if key == "keys" else valid_value_kind
            if not isinstance(value, list) or not value or len(value) > 8 or not all(ok(v) for v in value) \
                    or len(set(value)) != len(value):
                raise ReportError(f"{path}: config {key} must list 1 to 8 distinct "
                                  + ("field names" if key == "keys" else f"value kinds ({', '.join(RICH)})"))
            value = tuple(value)
        elif key == "messages":
            from sessioncheck.controlled.program import MESSAGE_KINDS_BUILTIN, listable_message_kind

            # a user's kind may be registered only once the store is imported:
            # the program's kinds are checked then (parse_program)
            if not isinstance(value, list) or not value or len(value) > 16 or len(set(value)) != len(value) \
                    or not all(listable_message_kind(v) for v in value):
                raise ReportError(f"{path}: config messages must list 1 to 16 distinct message kinds "
                                  f"({', '.join(MESSAGE_KINDS_BUILTIN)}, or kinds of your own)")
            value = tuple(value)
        elif key == "identity":
            from sessioncheck.controlled.program import valid_key

            if not valid_key(value):
                raise ReportError(f"{path}: config identity must name a message field")
        elif key == "allow_errors":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ReportError(f"{path}: config allow_errors must list regular expressions")
            try:
                for pattern in value:
                    re.compile(pattern)
            except re.error as exc:
                raise ReportError(f"{path}: config allow_errors: {exc}") from None
            value = tuple(value)
        elif key == "task_processes":
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 26:
                raise ReportError(f"{path}: config task_processes must be an integer from 0 to 26")
        elif key in ("metadata", "delete", "pop", "clear", "rename", "crash", "power_loss", "server_crash"):
            if not isinstance(value, bool):
                raise ReportError(f"{path}: config {key} must be true or false")
        elif not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 1000:
            raise ReportError(f"{path}: config {key} must be a positive integer")
        kwargs[key] = value
    return ModelConfig(**kwargs)
