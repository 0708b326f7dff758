"""``--faults server-crash``: kill -9 the store's server at a program step.

The model (README, "Server crash").  At a ``server-crash`` step every
actor is parked at a preemption point or idle, so the server is quiet: the
harness kills the private server with SIGKILL and starts it again on its
own files (Redis: its append-only file), then the program goes on.  An
operation in flight at the kill that then raises (its connection dropped)
was not acknowledged, and whether it took effect is the final read's to
say; every operation acknowledged before the kill must still be there
(I6), which the checker verifies on the reads after the restart and on the
final read.

``kill -9`` of a process loses only what the process held in memory: what
it had written to its files is in the kernel's page cache, which survives.
So the kill alone cannot show that a write was acknowledged before it was
*synced*.  That part is read from the configuration: just before the kill
the harness asks the server what it promises (Redis ``appendonly`` and
``appendfsync``, as :meth:`settings` reports them, including a change the
store made with ``CONFIG SET``), and if it does not make a write durable
before its reply while writes were acknowledged, that is an I6 violation
("acknowledged writes the configuration does not make durable").  The
harness's own Redis runs with ``appendonly yes`` and ``appendfsync
always``, which does.

PostgreSQL: the kill takes the postmaster and every process it started
(backends, WAL writer, checkpointer: its shared memory is gone, as in a
machine failure, minus the page cache), and the restart runs crash
recovery from the WAL.  The server's promise is ``fsync``,
``synchronous_commit`` and ``full_page_writes`` (all on for the harness's
own server).  ``synchronous_commit`` is also a *session* setting, which no
other connection can read: the statement points see a store's own
``SET synchronous_commit`` (:mod:`~sessioncheck.controlled.intercept.postgres`)
and mark each commit made under ``off`` on its operation
(``meta["not_durable"]``); such an operation acknowledged before a kill is
an I6 violation too.
"""
from __future__ import annotations

from typing import Any



#: Per server kind: does this configuration make a write durable before
#: the reply, and how to say what it is.
_DURABLE = {
    "redis": lambda s: s.get("appendonly") == "yes" and s.get("appendfsync") == "always",
    "postgres": lambda s: (s.get("fsync") == "on" and s.get("synchronous_commit") != "off"
                           and s.get("full_page_writes") == "on"),
}


def promise(kind: str, settings: dict[str, str]) -> str:
    """The configuration, as a story says it."""
    if kind == "redis":
        return f"appendonly {settings.get('appendonly', '?')}, appendfsync {settings.get('appendfsync', '?')}"
    if kind == "postgres":
        return ", ".join(f"{k} {settings.get(k, '?')}" for k in ("fsync", "synchronous_commit", "full_page_writes"))
    return ", ".join(f"{k} {v}" for k, v in sorted(settings.items()))


def crash_servers(sched: Any, resources: Any, violations: list, violation: Any) -> None:
    """Kill -9 and restart every server of ``resources`` (a
    :class:`~sessioncheck.servers.Holding`), log it in the story, and flag
    acknowledged writes the configuration did not make durable (appending
    ``violation(...)``, the engine's Violation type, to ``violations``)."""
    before = resources.crash()
    text = "; ".join(f"{kind} server KILLED (kill -9) and restarted from its files ({promise(kind, s)})"
                     for kind, s in before.items())
    entry = sched._log("server", "server-crash", text=text)
    acked = [o for o in sched.ops if o.f not in ("read",) and o.status == "ok" and o.end is not None
             and o.end < entry["t"]]
    if not acked or any(v.invariant == "I6" for v in violations):
        return
    for kind, settings in before.items():
        durable = _DURABLE.get(kind)
        if durable is not None and not durable(settings):
            violations.append(violation(
                "I6", f"the {kind} server's configuration ({promise(kind, settings)}) does not make a write "
                      f"durable before its reply, and the store acknowledged {len(acked)} "
                      f"write{'s' if len(acked) != 1 else ''} under it before the crash at t={entry['t']}: "
                      "an acknowledged write may be lost when the machine fails",
                subject=kind, raw_times=True))
            return
    lax = [o for o in acked if o.meta.get("not_durable")]
    if lax:
        violations.append(violation(
            "I6", f"{lax[0].describe()} was acknowledged after a commit made under the store's own session "
                  f"setting {lax[0].meta['not_durable']} (the server's configuration: "
                  f"{'; '.join(promise(k, s) for k, s in before.items())}), which acknowledges a commit before "
                  f"its WAL is flushed; {len(lax)} such write{'s' if len(lax) != 1 else ''} before the crash at "
                  f"t={entry['t']}: an acknowledged write may be lost when the server fails",
            subject="postgres", ops=[lax[0].index], raw_times=True))
