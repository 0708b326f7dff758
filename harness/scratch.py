"""Where the harness puts what it makes and removes: run locations, probe
and warm-up directories, private servers' data.

A command that makes files holds them in one folder of its own
(:func:`private_folder`), removed when the command ends however it ends:
by its own ``finally`` on a return, an exception or a signal it handles,
and by a *reaper* when the harness is killed outright (``kill -9``, the
out-of-memory killer).

The reaper is the design of loky's and multiprocessing's resource
trackers, for a folder: a small process, started before any actor, that
holds the read end of a pipe whose write end only the harness (and the
children it forks) hold.  It reads until end of file, which the kernel
delivers when the last holder of the write end is gone, for any cause,
and then removes the folder.  Forked actors keep their copy of the write
end, so the folder is removed only once they are gone too (they die with
the harness: a parent-death signal).  It runs in a session of its own and
ignores SIGINT, SIGTERM and SIGHUP, so a signal to the harness's process
group does not take it along.
"""
from __future__ import annotations

import contextlib
import os
from typing import Iterator

#: The reaper: waits for end of file on its stdin, then removes the folder
#: ``$1``, retrying for a while (a private server that got its own death
#: signal may still be writing its last files there).
REAPER = r'''
trap '' INT TERM HUP
cat >/dev/null
n=0
while [ -e "$1" ] && [ "$n" -lt 50 ]; do
  rm -rf -- "$1" 2>/dev/null || sleep 0.2
  n=$((n + 1))
done
'''


#: the reaper's name in its command line (``sh -c REAPER NAME folder``)
REAPER_NAME = "sessioncheck-reaper"

#: reapers still waiting for a forked child to let go of their pipe: held
#: here so that they are polled (reaped) later, not dropped while running
_later: list = []


def scratch_dir() -> str | None:
    """``$SESSIONCHECK_TMPDIR``, else ``/dev/shm`` (real files and real
    locks, but an fsync costs nothing there; what is durable is the
    harness's own model, not the disk's), else the system temporary
    directory (``None``, as ``tempfile`` takes it)."""
    env = os.environ.get("SESSIONCHECK_TMPDIR")
    if env:
        return env
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        return "/dev/shm"
    return None


def start_reaper(folder: str):
    """Start the reaper of ``folder``; return ``(process, write_fd)``.

    Closing ``write_fd`` (and every forked copy of it) makes the reaper
    remove ``folder`` and exit.  ``(None, None)`` where no ``sh`` can be
    started: the folder is then removed by the caller's ``finally`` only."""
    import subprocess

    read_fd, write_fd = os.pipe()  # both close-on-exec: no other program gets the write end
    try:
        proc = subprocess.Popen(["sh", "-c", REAPER, REAPER_NAME, folder], stdin=read_fd,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=True,
                                start_new_session=True, cwd="/")
    except OSError:
        os.close(write_fd)
        return None, None
    finally:
        os.close(read_fd)
    return proc, write_fd


@contextlib.contextmanager
def tempfiles_in(folder: str) -> Iterator[None]:
    """While the block runs, ``tempfile``'s default directory is
    ``folder`` (``tempfile.tempdir``, the documented default for ``dir=``),
    so that code making its files with ``tempfile`` alone makes them in a
    private folder."""
    import tempfile

    saved = tempfile.tempdir
    tempfile.tempdir = folder
    try:
        yield
    finally:
        tempfile.tempdir = saved


@contextlib.contextmanager
def private_folder(prefix: str = "sessioncheck-run-", base: str | None = None) -> Iterator[str]:
    """A folder of the command's own, made in ``base`` (default
    :func:`scratch_dir`), with ``$SESSIONCHECK_TMPDIR`` pointing at it
    while the block runs, so every location, probe and private server of
    the command is made inside it.

    It is removed at the end whatever happens: a signal that lands between
    a location's creation and its removal (Ctrl-C, SIGTERM, SIGHUP) leaves
    nothing behind, and the removal itself runs with those signals
    ignored.  A ``kill -9`` of the process is covered by the reaper
    (:func:`start_reaper`)."""
    import shutil
    import signal
    import tempfile

    old = os.environ.get("SESSIONCHECK_TMPDIR")
    mine = tempfile.mkdtemp(prefix=prefix, dir=base if base is not None else scratch_dir())
    reaper, write_fd = start_reaper(mine)
    os.environ["SESSIONCHECK_TMPDIR"] = mine
    try:
        yield mine
    finally:
        if old is None:
            os.environ.pop("SESSIONCHECK_TMPDIR", None)
        else:
            os.environ["SESSIONCHECK_TMPDIR"] = old
        sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        try:
            saved = {s: signal.signal(s, signal.SIG_IGN) for s in sigs}
        except ValueError:  # not the main thread
            saved = {}
        try:
            shutil.rmtree(mine, ignore_errors=True)
            if write_fd is not None:
                os.close(write_fd)
                try:
                    # at once, unless a forked child still holds the pipe:
                    # then the reaper waits for it and is reaped later
                    reaper.wait(timeout=1.0)
                except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired
                    _later.append(reaper)
                _later[:] = [p for p in _later if p.poll() is None]
        finally:
            for s, h in saved.items():
                signal.signal(s, h)
