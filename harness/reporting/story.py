"""A counterexample told as a short story a person can follow.

The trace of a run is grouped into numbered steps: a step is one actor
beginning an operation, or one actor running through consecutive points
(what it touched, in order), ending with what the operation returned.
Operation times in the history are these step numbers, so the checker's
sentence ("m3, acknowledged to B at step 7, is missing ...") points at a
line of the story.  Paths are relative to the store's directory,
scratch files are numbered in order of appearance (``tmp1``) and lock files
keep their names (``sessioncheck.controlled.trace.Names``), and each
violation is told once, so the same run prints the same story, byte for
byte.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

from sessioncheck.checking.history import Operation, format_fields
from sessioncheck.controlled.trace import Names, line_of, segments

POINT_TEXT = {
    "open": "open {path}{detail}",
    "read": "read {path}",
    "flush": "flush {path}",
    "write": "write {path}",
    "sync": "sync every file (os.sync)",
    "close": "close {path}",
    "truncate": "truncate {path}",
    "replace": "replace {detail} → {path}",
    "rename": "rename {detail} → {path}",
    "unlink": "unlink {path}",
    "fsync": "fsync {path}",
    "flock": "lock {path}",
    "flock-wait": "wait for lock {path}",
    "unlock": "unlock {path}",
    "lock": "take threading lock",
    "lock-wait": "wait for threading lock",
    "sleep": "sleep {detail}s",
    "await": "await in {detail}",  # a task actor suspended (controlled/task_actor.py)
    "sql": "{detail} on {path}",
    "redis": "{detail}",
}

WRITES = ("replace", "rename", "truncate")


@dataclass
class Line:
    number: int
    actor: str
    text: str
    first_t: int
    last_t: int


def point_text(e: dict, names: Names | None = None) -> str:
    n = names or (lambda p: p)
    kind = e.get("kind", "")
    path = n(e.get("path") or ".")
    detail = e.get("detail") or ""
    if kind == "open":
        detail = f" ({detail.replace('+excl', '')})" if detail else ""
    elif kind in ("replace", "rename"):
        detail = n(detail)
    elif kind == "flush" and detail == "msync":
        return f"msync {path}"
    elif kind in ("write", "flush", "close") and detail == "sync":
        return POINT_TEXT[kind].format(path=path, detail="") + " (O_SYNC)"
    if kind == "lock-wait" and detail.startswith("await "):
        return f"{detail} (blocked)"  # a task waiting for another task
    if kind == "sql" and detail in ("CONNECT", "CLOSE"):
        return f"{detail.lower()} {path}"
    if kind == "flock-wait" and detail.endswith("(held by the server)"):
        return f"wait in the server for {path}"  # a Redis BLPOP the server holds (intercept/redis_waits.py)
    if kind == "sql" and not detail:
        detail = "SQL"
    if kind == "sql" and not e.get("path"):
        return detail  # a statement on no table: SHOW, SET, SELECT version()
    text = POINT_TEXT.get(kind, kind + " {path}").format(path=path, detail=detail)
    return text + " (busy)" if e.get("busy") else text


def compress(items: list[str], longest: int = 8) -> list[str]:
    """Fold a block of points repeated back to back (a lock being polled)
    into one item: ``3× [lock a (busy) · close a · sleep 0.05s]``."""
    out: list[str] = []
    i = 0
    while i < len(items):
        best_len, best_k = 1, 1
        for length in range(1, min(longest, (len(items) - i) // 2) + 1):
            block = items[i:i + length]
            k = 1
            while items[i + k * length:i + (k + 1) * length] == block:
                k += 1
            if k >= 2 and k * length > best_k * best_len:
                best_len, best_k = length, k
        if best_k >= 2:
            block = items[i:i + best_len]
            out.append(f"{best_k}× [{' · '.join(block)}]" if best_len > 1 else f"{best_k}× {block[0]}")
            i += best_len * best_k
        else:
            out.append(items[i])
            i += 1
    return out


def describe_call(e: dict) -> str:
    f, s, v = e.get("call"), e.get("session", ""), e.get("value")
    if e.get("message"):  # a drawn message shape (sessioncheck.controlled.messages)
        v = f"{v}: {e['message']}"
    if f == "add":
        return f"add_message({s}, {v})"
    if f == "persist":
        return f"persist_state({s}, {format_fields(v)})"
    if f == "read":
        return f"read({s})"
    if f == "delete":
        return f"delete_session({s})"
    from sessioncheck import operations

    known = operations.find(f) if isinstance(f, str) else None
    if known is not None:
        return known.text(s, v)
    return f"{f} the store"


def describe_result(e: dict) -> str:
    status = e.get("status")
    if status == "ok":
        if e.get("call") == "read":
            v = e.get("value") or {}
            msgs = ", ".join(v.get("messages", []))
            return f"returned messages [{msgs}], metadata {format_fields(v.get('metadata'))}"
        if e.get("call") == "pop":
            return f"returned {e.get('value')}" if e.get("value") is not None else "returned None (no message)"
        return "acknowledged"
    return f"raised {e.get('error')} (not acknowledged)"


def group(trace: list[dict]) -> list[Line]:
    """Group a trace into numbered story lines with their text."""
    names = Names(trace)
    lines = []
    for n, seg in enumerate(segments(trace), 1):
        lines.append(Line(n, seg[0]["actor"], " · ".join(compress([_entry_text(e, names) for e in seg])),
                          seg[0]["t"], seg[-1]["t"]))
    return lines


def _entry_text(e: dict, names: Names) -> str:
    ev = e["ev"]
    if ev == "start":
        return f"{describe_call(e)} begins"
    if ev == "point":
        return point_text(e, names)
    if ev == "done":
        if e["actor"] == "final":
            return names.text(f"{describe_call(e)} {describe_result(e)}")
        if e.get("call") in ("open", "close"):
            if e.get("status") == "ok":
                return "→ closed" if e.get("call") == "close" else "→ opened"
            return names.text(f"{e.get('call')} of the store failed: {e.get('error')}")
        return names.text(f"→ {describe_result(e)}")
    if ev == "crash":
        return f"KILLED (kill -9) before {point_text(e, names)}" if e.get("kind") else "KILLED (kill -9)"
    if ev == "fault":
        return f"{point_text(e, names)} FAILS with injected {e.get('errno')}"
    if ev == "restart":
        return "restarts: a new process opens its own instance"
    return e.get("text", ev)


@dataclass(frozen=True)
class StaleCopy:
    """Why an acknowledged message was lost: ``actor`` read ``target`` (at
    trace time ``read_t``) before the append of ``message`` by
    ``appender`` (begun at ``append_t``) was acknowledged (``ack_t``), and
    wrote its stale copy back (``write_t``).  All times are trace times, so
    the story and the HTML timeline name the same accesses."""

    message: str
    appender: str
    append_t: int
    ack_t: int
    actor: str
    target: str
    read_t: int
    write_t: int


_SQL_WRITE_VERBS = ("INSERT", "UPDATE", "REPLACE")


def stale_copy(message: str, trace: list[dict]) -> StaleCopy | None:
    """For a lost message: which actor wrote back a copy of the session it
    had read before the message was acknowledged.  ``None`` if the trace
    shows no such pattern.  Reads the trace alone."""
    begin = next((e for e in trace if e["ev"] == "start" and e.get("call") == "add"
                  and e.get("value") == message), None)
    if begin is None:
        return None
    appender = begin["actor"]
    ack = next((e for e in trace if e["t"] > begin["t"] and e["actor"] == appender and e["ev"] in ("done", "crash")),
               None)
    if ack is None or ack["ev"] != "done" or ack.get("status") != "ok":
        return None
    ack_t = ack["t"]
    # the file the append wrote: the target of its last replace / write
    target = None
    for e in trace:
        if e["actor"] == appender and e["ev"] == "point" and e["t"] <= ack_t and e["kind"] in WRITES:
            target = e["path"]
    if target is None:
        for e in trace:
            if (e["actor"] == appender and e["ev"] == "point" and e["t"] <= ack_t
                    and e["kind"] == "sql" and e.get("detail", "").split(" ")[0] in _SQL_WRITE_VERBS):
                target = e["path"]
    if target is None:
        for e in trace:
            if (e["actor"] == appender and e["ev"] == "point" and e["t"] <= ack_t
                    and e["kind"] == "redis" and _redis_write(e)):
                target = e["path"]
    if target is None:
        return None
    for e in trace:
        if e["t"] <= ack_t or e["ev"] != "point" or e["actor"] in (appender, "final"):
            continue
        writes = (e["kind"] in WRITES and e["path"] == target) or (
            e["kind"] == "sql" and e["path"] == target
            and e.get("detail", "").split(" ")[0] in (*_SQL_WRITE_VERBS, "DELETE")) or (
            e["kind"] == "redis" and e["path"] == target and _redis_write(e))
        if not writes:
            continue
        reads = [r for r in trace if r["actor"] == e["actor"] and r["ev"] == "point" and r["t"] < ack_t
                 and r["path"] == target and (r["kind"] in ("read", "sql", "redis")
                                              or (r["kind"] == "open" and r.get("detail", "").startswith("r")))]
        if reads:
            return StaleCopy(message, appender, begin["t"], ack_t, e["actor"], target, reads[-1]["t"], e["t"])
    return None


def attribute_loss(message: str, ops: list[Operation], trace: list[dict], lines: list[Line]) -> str:
    """For a lost message: the sentence that tells its :func:`stale_copy`.
    Empty if no such pattern."""
    cause = stale_copy(message, trace)
    if cause is None:
        return ""
    where = line_of(lines)
    write = next(e for e in trace if e["t"] == cause.write_t)
    return (f"{cause.actor} read {cause.target} at step {where.get(cause.read_t, 0)}, before {message} was "
            f"acknowledged at step {where.get(cause.ack_t, 0)}, and wrote its stale copy back at step "
            f"{where.get(cause.write_t, 0)} ({point_text(write, Names(trace))}).")


def _redis_write(e: dict) -> bool:
    from sessioncheck.servers.redis_commands import is_write

    return is_write(e.get("detail") or "")


def render(*, header: str, trace: list[dict], ops: list[Operation], violations: list,
           replay_command: str, width: int = 100) -> str:
    lines = group(trace)
    out = [header, ""]
    num_w = len(str(len(lines)))
    act_w = max([len(ln.actor) for ln in lines] + [1])
    for ln in lines:
        prefix = f"{ln.number:>{num_w}}. {ln.actor:<{act_w}}  "
        wrapped = textwrap.wrap(ln.text, width=max(40, width - len(prefix)), break_on_hyphens=False) or [""]
        out.append(prefix + wrapped[0])
        out.extend(" " * len(prefix) + w for w in wrapped[1:])
    out.append("")
    from sessioncheck.checking.invariants import INVARIANTS

    names = Names(trace)
    told: set[str] = set()
    for v in violations:
        name = INVARIANTS.get(v.invariant, "")
        sentence = names.text(f"{v.invariant} ({name}) violated: {v.summary}")
        if sentence in told:  # the same finding from several operations: once is enough
            continue
        told.add(sentence)
        out.extend(textwrap.wrap(sentence, width=width))
        if v.invariant == "I1" and v.subject:
            why = attribute_loss(v.subject, ops, trace, lines)
            if why:
                out.extend(textwrap.wrap(why, width=width))
    out.append("")
    out.append(f"Replay: {replay_command}")
    return "\n".join(out) + "\n"
