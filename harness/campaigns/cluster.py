"""A fuzz campaign's client side: rounds as Dask tasks, merged as they end.

:func:`campaign` connects to a Dask scheduler (``--cluster ADDRESS``) or
starts a local cluster of ``workers`` processes with one thread each,
keeps one round (``sessioncheck.campaigns.fuzz.fuzz_round``) in flight
per worker thread, merges each finished round into the result, and
submits the next one, handing it every failing program known so far,
until the deadline.  Rounds report progress on a Dask event topic
(``Worker.log_event``), which feeds the live display between two round
ends.

Stopping: the campaign's stop flag is set on every worker
(``Client.run`` of ``sessioncheck.campaigns.fuzz.stop_rounds``), a
process-local flag each round looks at after every example; rounds also
end by themselves past the deadline and its grace.  On Ctrl-C (or
SIGTERM) the client sets it, waits a bounded time for the running rounds
to hand back what they explored, cancels what is left, and closes the
client and, for a local cluster, the cluster itself (its worker
processes are ended and joined, its scratch directory removed).  The
local cluster's processes ignore SIGINT: a terminal's Ctrl-C reaches the
whole process group, and it is the client's to handle.
"""
from __future__ import annotations

import logging
import queue
import shutil
import signal
import tempfile
import time
import uuid
from typing import Any, Callable

from sessioncheck.errors import ConfigError
from sessioncheck.words import plural

TICK = 0.25  # seconds between two looks at the futures and the progress events
CONNECT_TIMEOUT = 15.0  # seconds to reach a scheduler and see its first worker
INSTALL = "pip install distributed (a dependency of sessioncheck: reinstall it)"


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ConfigError(f"fuzz runs its rounds on Dask, which is not installed: {INSTALL}") from None
    return distributed


def connect(config: Any, scratch: str, opened: dict) -> tuple[str, int]:
    """Open the client (and a local cluster) into ``opened`` (``"client"``,
    ``"cluster"``: the caller closes them, even if this raises); return
    ``(where, worker threads)``.  A scheduler that cannot be reached, or
    has no worker, is a configuration error."""
    distributed = _distributed()
    import dask

    if config.cluster:
        try:
            opened["client"] = client = distributed.Client(config.cluster, timeout=CONNECT_TIMEOUT,
                                                           set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(f"cannot reach the Dask scheduler at {config.cluster} ({exc}); start one with "
                              "`dask scheduler` and its workers with `dask worker ADDRESS`") from None
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except TimeoutError:
            raise ConfigError(f"the Dask scheduler at {config.cluster} has no worker; start some with "
                              f"`dask worker {config.cluster}`") from None
        threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
        return f"cluster {config.cluster}", max(1, threads)
    # While the cluster starts, SIGINT is ignored, so that its worker
    # processes inherit it ignored (a terminal's Ctrl-C reaches the whole
    # process group; it is this process's to handle), and blocked here, so
    # that a Ctrl-C meanwhile is kept pending (Linux never discards a
    # blocked signal as ignored) and raises KeyboardInterrupt once the
    # cluster is up and the handler is back.  Block first: setting SIG_IGN
    # discards a pending SIGINT.  Threads started meanwhile (the cluster's
    # event loop) inherit the mask and keep it: a process-directed SIGINT
    # waits for the main thread.  multiprocessing's resource tracker
    # unblocks SIGINT in the thread that first starts it, so it is started
    # here, before the window.
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        # not daemonic: a worker with process actors has children of its own
        with dask.config.set({"distributed.worker.daemon": False}):
            opened["cluster"] = distributed.LocalCluster(
                n_workers=config.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                # CRITICAL: a worker's heartbeat that meets the scheduler
                # already closing (Ctrl-C, the end of a campaign) logs a
                # traceback at ERROR; work that fails comes back as the
                # task's own exception, never through these logs.
                silence_logs=logging.CRITICAL, local_directory=scratch, memory_limit=0)
            opened["client"] = distributed.Client(opened["cluster"], set_as_default=False)
    finally:
        signal.signal(signal.SIGINT, old)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    return f"local cluster, {plural(config.workers, 'process', 'processes')}", config.workers


def campaign(config: Any, result: Any, stream: Any, on_event: Callable[[Any, list], None] | None, *,
             Round: Callable[..., Any], fuzz_round: Callable[[Any], dict], absorb: Callable[..., list],
             progress: Callable[[Any, dict], None], stop_rounds: Callable[[str], None]) -> Any:
    """Run the rounds; fill and return ``result``.  ``on_event(result,
    new_failures)`` is called at least four times a second and whenever a
    round ends.  The round's parts come from
    :mod:`sessioncheck.campaigns.fuzz` (passed in, so this module stays
    the Dask side alone): ``Round`` builds a task, ``fuzz_round`` runs it
    on a worker, ``absorb`` merges a finished one, ``progress`` a running
    one's event, ``stop_rounds`` sets the stop flag on a worker."""
    _distributed()  # not installed: a configuration error before anything starts
    t0 = time.monotonic()
    deadline = time.time() + config.hours * 3600
    events: queue.SimpleQueue = queue.SimpleQueue()  # progress of running rounds
    ended: queue.SimpleQueue = queue.SimpleQueue()  # futures that finished, failed or were cancelled
    scratch = tempfile.mkdtemp(prefix="sessioncheck-fuzz-dask-")
    opened: dict = {}
    client = None
    futures: dict = {}
    run_id = uuid.uuid4().hex[:12]
    topic = f"sessioncheck-fuzz-{run_id}"
    counter = [0]

    def known() -> list:
        return [(k, f.program) for k, f in result.failures.items() if f.program and not f.fixed]

    def submit(first: bool = False) -> None:
        n = counter[0]
        counter[0] += 1
        task = Round(n, config, stream.getrandbits(32), deadline, known(), first, run_id, topic)
        fut = client.submit(fuzz_round, task, pure=False, key=f"sessioncheck-round-{run_id}-{n}")
        futures[fut.key] = fut
        fut.add_done_callback(ended.put)  # called on the client's own thread

    def finish(fut: Any, resubmit: bool) -> None:
        futures.pop(fut.key, None)
        fresh: list = []
        if fut.status == "finished":
            done = fut.result()
            fresh = absorb(result, done, t0)
            again = resubmit and not done["error"]
        else:
            exc = fut.exception() if fut.status == "error" else None
            if exc is not None:
                result.worker_errors.append(f"round {fut.key.rsplit('-', 1)[-1]}: {type(exc).__name__}: {exc}")
            again = False  # an error of the harness itself: do not repeat it on every slot
        if again and time.time() < deadline - 0.5:
            submit()
        if on_event is not None:
            on_event(result, fresh)

    def drain() -> None:
        while True:
            try:
                progress(result, events.get_nowait())
            except queue.Empty:
                return

    def tick(resubmit: bool) -> None:
        done = []
        try:
            done.append(ended.get(timeout=TICK))
            while True:
                done.append(ended.get_nowait())
        except queue.Empty:
            pass
        drain()
        for fut in done:
            if fut.key in futures:
                finish(fut, resubmit)
        if on_event is not None:
            on_event(result, [])

    def on_term(signum: int, frame: Any) -> None:  # a CI timeout or kill: stop like Ctrl-C
        raise KeyboardInterrupt()

    old_term = signal.signal(signal.SIGTERM, on_term)
    try:
        result.where = f"cluster {config.cluster}" if config.cluster else \
            f"local cluster, {plural(config.workers, 'process', 'processes')}"
        started = time.monotonic()
        result.where, slots = connect(config, scratch, opened)
        result.startup_seconds = time.monotonic() - started
        client = opened["client"]
        result.workers = slots
        client.subscribe_topic(topic, lambda event: events.put(event[1]))
        for i in range(slots):
            submit(first=i == 0)
        if on_event is not None:
            on_event(result, [])  # the display learns the cluster is up
        # past the grace, a round still finishing is at most one run from its end
        hard_stop = deadline + config.grace_seconds + config.watchdog
        while futures and time.time() < hard_stop:
            tick(resubmit=True)
    except KeyboardInterrupt:
        result.interrupted = True
        try:
            _tell_stop(client, stop_rounds, run_id)
            # rounds end between two examples (or after a shrink, bounded by shrink_budget)
            until = time.time() + config.shrink_budget + 5.0
            while futures and time.time() < until:
                tick(resubmit=False)
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: stop waiting, close at once
    finally:
        signal.signal(signal.SIGTERM, old_term)
        _close(opened.get("client"), opened.get("cluster"), futures, lambda c: _tell_stop(c, stop_rounds, run_id))
        shutil.rmtree(scratch, ignore_errors=True)
    result.seconds = time.monotonic() - t0
    return result


def _tell_stop(client: Any, stop_rounds: Callable[[str], None], run_id: str) -> None:
    """Set the campaign's stop flag on every worker (bounded)."""
    if client is None:
        return
    try:
        client.run(stop_rounds, run_id, wait=True, on_error="ignore")
    except Exception:  # noqa: BLE001 - a lost scheduler: its rounds end at the deadline by themselves
        pass


def _close(client: Any, cluster: Any, futures: dict, stop: Callable[[Any], None]) -> None:
    """Cancel what is left and close the client and a local cluster; each
    step bounded, each tried even if the one before failed."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)  # closing is short and must finish
    try:
        if client is not None:
            try:
                stop(client)
                if futures:
                    client.cancel(list(futures.values()))
            except Exception:  # noqa: BLE001 - a lost scheduler: nothing left to cancel
                pass
            try:
                client.close(timeout=10)
            except Exception:  # noqa: BLE001
                pass
        if cluster is not None:
            try:
                cluster.close(timeout=20)
            except Exception:  # noqa: BLE001
                pass
            _reap_children()
    finally:
        signal.signal(signal.SIGINT, old)


def _reap_children(timeout: float = 10.0) -> None:
    """Wait for the local cluster's worker processes (children of this
    process, and theirs) to be gone; kill any left after ``timeout``.
    multiprocessing's resource tracker and the scratch folder's reaper
    (:mod:`sessioncheck.scratch`) are left alone: each ends when this
    process does, and waiting for them held every run's end by
    ``timeout``."""
    import psutil

    from sessioncheck.scratch import REAPER_NAME

    me = psutil.Process()
    procs, kept = [], set()
    for p in me.children(recursive=True):
        try:
            line = " ".join(p.cmdline())
            if "resource_tracker" in line or REAPER_NAME in line:
                kept.update([p.pid, *(c.pid for c in p.children(recursive=True))])
            else:
                procs.append(p)
        except psutil.Error:
            continue
    procs = [p for p in procs if p.pid not in kept]  # the reaper's own ``cat``
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5.0)
