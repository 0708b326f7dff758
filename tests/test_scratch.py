"""The command's private folder: removed on every way out, kill -9 included."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sessioncheck.scratch import private_folder


def _gone(path: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not os.path.exists(path)


def test_the_folder_is_removed_and_the_environment_restored(tmp_path, monkeypatch):
    monkeypatch.setenv("SESSIONCHECK_TMPDIR", str(tmp_path))
    with private_folder("sessioncheck-run-") as mine:
        assert os.path.dirname(mine) == str(tmp_path) and os.environ["SESSIONCHECK_TMPDIR"] == mine
        (open(os.path.join(mine, "f"), "w")).close()
    assert not os.path.exists(mine) and os.environ["SESSIONCHECK_TMPDIR"] == str(tmp_path)
    assert not os.listdir(tmp_path)


HOLDER = """
import os, sys, time
from sessioncheck.scratch import private_folder
with private_folder("sessioncheck-run-", base=sys.argv[1]) as mine:
    os.makedirs(os.path.join(mine, "a", "b"))
    if sys.argv[2] == "fork" and os.fork() == 0:  # a child that outlives the parent by 1 s
        time.sleep(float(sys.argv[3]))
        os._exit(0)
    print(mine, flush=True)
    time.sleep(60)
"""


def test_kill_9_leaves_no_folder(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), "-", "0"], stdout=subprocess.PIPE, text=True)
    mine = p.stdout.readline().strip()
    assert os.path.isdir(os.path.join(mine, "a", "b"))
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    assert _gone(mine), os.listdir(tmp_path)
    assert not os.listdir(tmp_path)


def test_the_folder_outlives_a_forked_child_still_running(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path), "fork", "1.5"], stdout=subprocess.PIPE,
                         text=True)
    mine = p.stdout.readline().strip()
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    time.sleep(0.5)
    assert os.path.isdir(mine)  # the child may still be writing there
    assert _gone(mine, timeout=10)  # and once it is gone, so is the folder
