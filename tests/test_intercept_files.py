"""File interception that store code cannot sidestep.

Every way a store reaches a file's data or name is a preemption point:
``dir_fd`` forms, fd-level ``read``/``write``/``pread``/``pwrite``/
``preadv``/``pwritev``, bytes paths, ``os.sync`` and ``mmap`` flushes, under
every name the original function is reachable by.  The file wrapper lets a
store do with its file object what a real one allows.  Each buggy store
here is caught every time within its stated budget; each correct one
passes.
"""
from __future__ import annotations

import mmap
import os
import posix

import pytest

from sessioncheck.controlled import intercept
from sessioncheck.controlled.intercept import files
from sessioncheck.controlled.intercept.context import _real
from sessioncheck.verify import verify

FD = "sessioncheck.stores.reference.fd_store"
OS = "sessioncheck.stores.reference.osync_store"


@pytest.fixture
def points(tmp_path):
    """Run code as an actor on ``tmp_path``; collect its points."""
    intercept.install()
    seen: list[tuple[str, str, str]] = []
    ctx = intercept.ActorContext("A", str(tmp_path), lambda k, p, d: seen.append((k, p, d)))
    intercept.enter(ctx)
    try:
        yield seen
    finally:
        intercept.enter(None)


def test_every_alias_of_a_file_function_is_patched():
    intercept.install()
    assert files.unpatched_aliases() == []
    for name in ("open", "replace", "rename", "unlink", "remove", "read", "write", "pread", "pwrite",
                 "preadv", "pwritev", "fsync", "fdatasync", "sync", "ftruncate", "truncate"):
        original = _real[f"os.{name}"]
        assert getattr(os, name) is not original and getattr(posix, name) is not original, name
    assert mmap.mmap is not _real["mmap.mmap"] and issubclass(mmap.mmap, _real["mmap.mmap"])


def test_dir_fd_forms_are_points(tmp_path, points):
    d = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    fd = os.open("a.tmp", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=d)
    os.write(fd, b"x")
    os.close(fd)
    os.replace("a.tmp", "a", src_dir_fd=d, dst_dir_fd=d)
    os.rename("a", "b", src_dir_fd=d, dst_dir_fd=d)
    os.unlink("b", dir_fd=d)
    os.close(d)
    assert [(k, p) for k, p, _ in points] == [
        ("open", "a.tmp"), ("write", "a.tmp"), ("close", "a.tmp"), ("replace", "a"), ("rename", "b"),
        ("unlink", "b")]


def test_fd_level_reads_and_writes_are_points(tmp_path, points):
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, b"abc", 0)
    os.pwritev(fd, [b"d", b"e"], 3)
    os.pread(fd, 5, 0)
    os.preadv(fd, [bytearray(2)], 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.read(fd, 5)
    os.ftruncate(fd, 1)
    os.fsync(fd)
    os.close(fd)
    assert [k for k, _, _ in points] == ["open", "write", "write", "read", "read", "read", "truncate",
                                         "fsync", "close"]


def test_an_fd_opened_outside_the_actor_is_resolved_through_the_kernel(tmp_path):
    intercept.install()
    fd = os.open(tmp_path / "f", os.O_RDWR | os.O_CREAT, 0o644)  # before the actor exists
    seen = []
    intercept.enter(intercept.ActorContext("A", str(tmp_path), lambda k, p, d: seen.append((k, p))))
    try:
        os.pwrite(fd, b"x", 0)
        os.pread(fd, 1, 0)
        os.fsync(fd)
    finally:
        intercept.enter(None)
        os.close(fd)
    assert seen == [("write", "f"), ("read", "f"), ("fsync", "f")]


def test_bytes_paths_are_watched(tmp_path, points):
    root = os.fsencode(tmp_path)
    with open(root + b"/f", "w") as fh:
        fh.write("x")
    fd = os.open(root + b"/f", os.O_RDONLY)
    os.read(fd, 1)
    os.close(fd)
    os.replace(root + b"/f", root + b"/g")
    os.unlink(root + b"/g")
    assert [(k, p) for k, p, _ in points] == [("open", "f"), ("close", "f"), ("open", "f"),
                                              ("read", "f"), ("replace", "g"), ("unlink", "g")]


def test_sync_writes_os_sync_and_mmap_flush_are_points(tmp_path, points):
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT | os.O_SYNC, 0o644)
    os.write(fd, b"0123456789")
    os.close(fd)
    os.sync()
    fd = os.open(tmp_path / "f", os.O_RDWR)
    m = mmap.mmap(fd, 10)
    m[0:1] = b"x"
    m.flush()
    m.close()
    os.close(fd)
    assert [(k, d) for k, _, d in points] == [
        ("open", "w+create+sync"), ("write", "sync"), ("close", ""), ("sync", ""), ("open", "rw"),
        ("flush", "msync"), ("close", "")]


def test_the_file_wrapper_accepts_what_a_real_file_accepts(tmp_path, points):
    (tmp_path / "f").write_text("data")
    real = _real["open"](tmp_path / "f")
    with open(tmp_path / "f") as fh:
        assert type(fh).__name__ == "WatchedFile"
        fh.size = 4  # fsspec does this
        fh.path = "f"
        assert (fh.size, fh.path) == (4, "f")
        assert fh.read(fh.size) == "data"
        for f in (real, fh):  # and refuses what a real one refuses
            with pytest.raises(AttributeError):
                f.closed = True
    real.close()
    assert [k for k, _, _ in points][-2:] == ["open", "read"]


# -- stores that reach their files below Python's file objects ----------------
# Budget: every mutant is caught within MUTANT_BUDGET examples, for each
# seed below (measured: 18 examples, found by the systematic pass, for seeds 1-10).
MUTANT_BUDGET = 300


@pytest.mark.quality
@pytest.mark.parametrize("mode", ["threads", "processes"])
@pytest.mark.parametrize("mutant", ["pread-rmw", "dir-fd-rmw"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fd_level_read_modify_writes_are_caught(mutant, mode, seed):
    r = verify(f"mutant:{mutant}", mode=mode, budget=300, max_examples=MUTANT_BUDGET, seed=seed,
               save_report=False)
    assert r.found and r.outcome.violations[0].invariant in ("I1", "I3", "I4"), r.summary()


@pytest.mark.quality
@pytest.mark.parametrize("mode", ["threads", "processes"])
@pytest.mark.parametrize("store", [f"{FD}:PreadStore", f"{FD}:DirFdStore", f"{OS}:BytesPathStore",
                                   f"{OS}:SyncAllStore",
                                   "sessioncheck.stores.reference.fsspec_like_store:FsspecLikeStore"])
def test_correct_fd_level_stores_pass(store, mode):
    r = verify(store, mode=mode, budget=600, max_examples=200, seed=1, save_report=False)
    assert not r.found, r.story
    assert r.exploration.examples == 200


def test_a_scenario_mark_no_intercepted_call_reaches_is_a_config_error():
    """The store reads with mmap: "after B read the session file" has no
    point to stop at; the scenario says so (exit 2) instead of dropping
    the step and passing a store with the lost-update bug."""
    from sessioncheck import scenario
    from sessioncheck.errors import ConfigError

    with pytest.raises(ConfigError, match="never reads the session file through an intercepted call"):
        scenario.run(scenario.get("pr1727-stale-write-back"), "fixture_fd_stores:MmapReadStore")


@pytest.mark.parametrize("mutant", ["dir-fd-rmw", "pread-rmw"])
def test_pr1727_catches_the_lost_update_read_through_fd_calls(mutant):
    from sessioncheck import scenario

    r = scenario.run(scenario.get("pr1727-stale-write-back"), f"mutant:{mutant}")
    assert r.observed.startswith("I1"), r.story


def test_shutil_copyfile_reads_and_writes_at_points(tmp_path, points):
    import shutil

    src = tmp_path / "a"
    src.write_bytes(b"x" * 100)
    points.clear()
    shutil.copyfile(src, tmp_path / "b")
    kinds = [(k, p) for k, p, _ in points]
    assert ("read", "a") in kinds and ("write", "b") in kinds, kinds


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_a_shelve_store_on_dbm_dumb_passes(mode):
    """dbm.dumb renames and removes its files by bytes paths."""
    r = verify("fixture_fd_stores:ShelveStore", mode=mode, budget=600, max_examples=200, seed=1,
               save_report=False)
    assert not r.found, r.story


def test_an_unbuffered_write_is_a_point(tmp_path, points):
    with open(tmp_path / "raw", "wb", buffering=0) as fh:
        fh.write(b"x")
    with open(tmp_path / "buffered", "wb") as fh:
        fh.write(b"x")  # stays in Python until the close
    assert [k for k, _, _ in points] == ["open", "write", "close", "open", "close"]
