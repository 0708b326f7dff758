"""Every way a store can end, every signal, and the budget: a one-line
report or a configuration error (exit 2) within the watchdog, never a
traceback, a hang or exit 0; no process or run directory left behind."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TESTS = Path(__file__).parent


def env_for(tmp_path: Path, **extra: str) -> dict:
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(TESTS), SESSIONCHECK_TMPDIR=str(scratch))
    env.update(extra)
    return env


def sc(tmp_path, *args, timeout=300, **extra):
    return subprocess.run([sys.executable, "-m", "sessioncheck", *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=timeout, env=env_for(tmp_path, **extra))


@pytest.mark.parametrize("mode", ["threads", "processes"])
@pytest.mark.parametrize("store,what", [("OsExitStore", "os._exit(0)"), ("SysExitStore", "sys.exit(1)"),
                                        ("KeyboardInterruptStore", "KeyboardInterrupt"),
                                        ("GeneratorExitStore", "GeneratorExit")])
def test_a_store_ending_its_actor_is_a_configuration_error(tmp_path, mode, store, what):
    t0 = time.monotonic()
    r = sc(tmp_path, "run", "--store", f"misbehaving_stores:{store}", "--actors", mode, "--examples", "50",
           "--seed", "1", "--watchdog", "10")
    assert r.returncode == 2, r.stderr
    assert "actor_vanished" in r.stderr and what in r.stderr and "Traceback" not in r.stderr
    assert time.monotonic() - t0 < 60  # no watchdog period per attempt
    assert not list((tmp_path / "scratch").iterdir())


def test_module_exiting_on_import_is_a_configuration_error(tmp_path):
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(3)\n")
    r = sc(tmp_path, "run", "--store", "exits_on_import:Store", "--budget", "5",
           PYTHONPATH=f"{TESTS}{os.pathsep}{tmp_path}")
    assert r.returncode == 2 and "sys.exit(3)" in r.stderr, r.stderr


def test_factory_that_blocks_is_a_configuration_error_within_the_watchdog(tmp_path):
    t0 = time.monotonic()
    r = sc(tmp_path, "run", "--store", "misbehaving_stores:blocking_factory", "--budget", "5",
           "--watchdog", "3", timeout=60)
    assert r.returncode == 2 and "did not finish within 3 s" in r.stderr, r.stderr
    assert time.monotonic() - t0 < 30
    assert not list((tmp_path / "scratch").iterdir())  # the probe's directory is removed


def _children(pid: int) -> list[str]:
    """Every child of ``pid``: its actors and the reaper of its run folder."""
    out = subprocess.run(["ps", "--ppid", str(pid), "-o", "pid="], capture_output=True, text=True).stdout
    return out.split()


def _is_reaper(pid: str) -> bool:
    try:
        return b"sessioncheck-reaper" in open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        return False


def _alive(pids: list[str]) -> list[str]:
    alive = []
    for k in pids:
        try:
            state = open(f"/proc/{k}/stat").read().split()[2]
        except OSError:
            continue
        if state != "Z":
            alive.append(k)
    return alive


def _start_with_actors(tmp_path):
    from signals import sigint_as_in_a_terminal

    p = subprocess.Popen([sys.executable, "-m", "sessioncheck", "run", "--store", "json", "--actors",
                          "processes", "--budget", "120"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, cwd=tmp_path, env=env_for(tmp_path), preexec_fn=sigint_as_in_a_terminal)
    return p, _wait_for_actors(p)


def _wait_for_actors(p, tries: int = 200) -> list[str]:
    """The children of ``p`` once three actor processes run (reaper aside)."""
    kids: list[str] = []
    for _ in range(tries):
        time.sleep(0.1)
        kids = _children(p.pid)
        if len([k for k in kids if not _is_reaper(k)]) >= 3:
            break
    assert len([k for k in kids if not _is_reaper(k)]) >= 3, "no actor processes started"
    time.sleep(0.5)
    return _children(p.pid)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signals_reap_actors_and_remove_run_directories(tmp_path, sig):
    p, kids = _start_with_actors(tmp_path)
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 128 + sig, err
    assert "Traceback" not in err and err.endswith(f"sessioncheck: interrupted by {sig.name}\n"), err
    assert out.startswith("interrupted in json (processes): ") and "; seed " in out, out
    assert not _alive(kids)
    assert not list((tmp_path / "scratch").iterdir())


def test_kill_9_of_the_harness_leaves_no_process_and_no_run_folder(tmp_path):
    p, kids = _start_with_actors(tmp_path)
    scratch = tmp_path / "scratch"
    assert [k for k in kids if _is_reaper(k)], "the run folder has no reaper"
    folders = list(scratch.iterdir())
    assert [f.name for f in folders if f.name.startswith("sessioncheck-run-")], folders
    assert any(f.iterdir() for f in folders)  # the run is under way in it
    p.kill()
    p.wait(timeout=30)
    for _ in range(50):
        if not _alive(kids) and not list(scratch.iterdir()):
            break
        time.sleep(0.1)
    assert not _alive(kids)  # the actors (parent-death signal) and the reaper
    assert not list(scratch.iterdir())  # removed by the reaper within 5 s


def test_kill_9_of_a_pytest_gate_leaves_no_process_and_no_check_folder(tmp_path):
    """The gate's checks run in a private folder with a reaper too."""
    (tmp_path / "test_gate.py").write_text(
        "def test_gate(sessioncheck):\n"
        "    sessioncheck('json', actors='processes', budget=120, examples=100000)\n")
    p = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_gate.py"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                         env=env_for(tmp_path))
    scratch = tmp_path / "scratch"
    kids = _wait_for_actors(p, tries=300)
    assert [k for k in kids if _is_reaper(k)], "the check's folder has no reaper"
    assert [f.name for f in scratch.iterdir() if f.name.startswith("sessioncheck-check-")]
    p.kill()
    p.communicate(timeout=30)
    for _ in range(50):
        if not _alive(kids) and not list(scratch.iterdir()):
            break
        time.sleep(0.1)
    assert not _alive(kids)
    assert not list(scratch.iterdir())


def test_budget_holds_with_a_slow_store(tmp_path):
    """A store whose every call costs real CPU time: the run, shrinking
    included, ends within its budget plus the grace and one watchdog."""
    t0 = time.monotonic()
    # the health checks are off: on a loaded machine only a few slow
    # examples may fit in the budget, and the bound is what is tested here
    r = sc(tmp_path, "run", "--store", "fixture_stores:SlowSqliteRmw", "--budget", "20", "--seed", "1",
           "--suppress-health-check", "all", timeout=120, SLOW_STORE_WORK="200000")
    took = time.monotonic() - t0
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr
    assert took < 32 + 15  # a hang guard with room for a loaded machine; the bound is measured in the report


def test_search_grace_is_ten_percent_bounded():
    from sessioncheck.controlled.search import grace

    assert grace(5) == 2.0 and grace(60) == pytest.approx(6.0) and grace(600) == 10.0


def test_a_seeded_run_says_when_the_clock_ended_it(tmp_path):
    r = sc(tmp_path, "run", "--store", "json", "--budget", "2", "--seed", "1", "--examples", "100000")
    assert r.returncode == 0 and "note: the time budget ended the search" in r.stdout, r.stdout + r.stderr
    r = sc(tmp_path, "run", "--store", "json", "--budget", "100", "--seed", "1", "--examples", "30")
    assert r.returncode in (0, 2) and "the time budget ended the search" not in r.stdout + r.stderr
    # a seed drawn by the harness (no --seed) promises a time bound, not a
    # count: the clock ending it is what was asked for, and no note says otherwise
    r = sc(tmp_path, "run", "--store", "json", "--budget", "2", "--examples", "100000")
    assert r.returncode == 0 and "; seed " in r.stdout, r.stdout + r.stderr
    assert "the time budget ended the search" not in r.stdout + r.stderr


def test_a_drawn_seed_is_not_a_reproducibility_promise_to_the_search():
    """verify tells the search whether the seed was the user's: a drawn
    one leaves the clock bounds of an unseeded search in force."""
    from sessioncheck.verify import verify

    chosen = verify("json", budget=1.0, max_examples=10**6, seed=1, save_report=False,
                    suppress_health_check="all")
    drawn = verify("json", budget=1.0, max_examples=10**6, seed=1, save_report=False,
                   suppress_health_check="all", seed_chosen=False)
    assert chosen.exploration.clock_cut and not drawn.exploration.clock_cut
    assert drawn.seed == 1 and drawn.summary().splitlines()[0].endswith("; seed 1")


def test_a_run_stuck_while_shrinking_costs_one_watchdog_period():
    from sessioncheck.controlled.engine import Executor
    from sessioncheck.controlled.search import explore
    from sessioncheck.specs import resolve
    from sessioncheck.verify import model_config

    from dataclasses import replace

    spec = resolve("misbehaving_stores:HangsLaterStore")
    # one actor: the hang is then the store's own (I5), never a wait
    # another parked actor might end (an unseen wait, exit 2)
    cfg = replace(model_config(spec, "threads", ()), actors=1)
    with Executor(spec, "threads", cfg, watchdog=2) as ex:
        x = explore(ex, budget=60, seed=1, systematic=False)
    assert x.outcome is not None and x.outcome.violations[0].invariant == "I5"
    # once a shrink run waited out the watchdog, no other candidate is run
    assert "watchdog period" in x.shrink_cut and x.shrink_runs <= 2


def test_a_shrink_cut_short_is_said_in_the_summary(tmp_path):
    # at most 3 shrink runs: the limit, not the clock, so the test does not depend on speed
    from sessioncheck.controlled.engine import Executor
    from sessioncheck.controlled.search import explore
    from sessioncheck.specs import resolve
    from sessioncheck.verify import model_config

    spec = resolve("mutant:sqlite-rmw")
    with Executor(spec, "threads", model_config(spec, "threads", ())) as ex:
        x = explore(ex, budget=120, seed=1, systematic=False, shrink_runs=3)
    assert x.outcome is not None and x.shrink_cut == "shrinking stopped at its limit of 3 runs"


def test_a_shrink_cut_short_ends_hypothesis_at_once(monkeypatch):
    """Once the shrink budget is spent, Hypothesis is not left to try its
    remaining candidates: each costs a full draw of a program, and with
    drawn values a search whose budget was 5 runs spent 18 s on 1,060 of
    them.  Every candidate passes through ``decode`` once."""
    from sessioncheck.controlled import program
    from sessioncheck.controlled.engine import Executor
    from sessioncheck.controlled.search import explore
    from sessioncheck.specs import resolve
    from sessioncheck.verify import model_config

    decoded = []
    real = program.decode
    monkeypatch.setattr(program, "decode", lambda raw, cfg: decoded.append(1) or real(raw, cfg))
    spec = resolve("mutant:sqlite-rmw")
    with Executor(spec, "threads", model_config(spec, "threads", ())) as ex:
        x = explore(ex, budget=120, seed=1, systematic=False, shrink_runs=5)
    assert x.outcome is not None and x.shrink_cut == "shrinking stopped at its limit of 5 runs"
    # the examples, the repeats generation rejected, the 5 shrink runs and
    # the candidate that met the limit (1,546 before)
    assert len(decoded) <= x.examples + x.repeats + 5 + 1, (len(decoded), x.examples, x.repeats)


def test_an_actor_process_killed_by_a_signal_is_not_a_pass(tmp_path):
    r = sc(tmp_path, "run", "--store", "misbehaving_stores:KillsItselfStore", "--actors", "processes",
           "--examples", "50", "--seed", "1")
    assert r.returncode == 2 and "killed by signal 9" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_signal_swallowed_by_a_finaliser_is_raised_again_without_a_traceback(tmp_path):
    """Ctrl-C landing in a ``__del__`` (or a gc callback, as Hypothesis
    has): Python swallows the handler's exception and prints it; the
    harness raises it again at the next check and prints nothing of it."""
    script = tmp_path / "finaliser.py"
    script.write_text(
        "import os, signal, sys, time\n"
        "from sessioncheck.controlled.exits import terminate_cleanly, check_signals\n"
        "class D:\n"
        "    def __del__(self):\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        time.sleep(0.2)\n"
        "try:\n"
        "    with terminate_cleanly():\n"
        "        D()\n"
        "        print('swallowed')\n"
        "        check_signals()\n"
        "except KeyboardInterrupt:\n"
        "    print('raised again')\n")
    from signals import sigint_as_in_a_terminal

    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                       preexec_fn=sigint_as_in_a_terminal)
    assert r.stdout == "swallowed\nraised again\n" and r.stderr == "", (r.stdout, r.stderr)


def test_a_signal_in_the_middle_of_a_hand_over_leaves_shutdown_safe():
    """SIGTERM between the scheduler's release of the baton and the actor
    taking it (seen in a run's warm-up): the actor's shutdown must not
    release the baton a second time, which raised RuntimeError and turned
    the signal's exit 143 into a traceback's exit 1 ("violation")."""
    import threading

    from sessioncheck.controlled.thread_actor import ThreadActor
    from sessioncheck.specs import resolve

    class Late(ThreadActor):
        # the actor's thread, not yet scheduled: it never takes the baton
        hold = threading.Event()

        def _main(self) -> None:
            self.hold.wait(10)

    a = Late("A", resolve("json"), watchdog=1.0)
    try:
        a._go.release()  # the first half of a hand-over (_transfer)
        a.shutdown()  # the signal unwinds to the executor's close
        a.shutdown()
        assert a._abandoned
    finally:
        Late.hold.set()


def test_a_fault_of_the_harness_exits_3_and_a_failed_cleanup_after_a_signal_keeps_the_signals_code(
        monkeypatch, capsys):
    """Exit 1 says "a violation was found": an exception of the harness's
    own must never end a run with it (Python's exit code for a traceback)."""
    from sessioncheck.cli import run as run_verb
    from sessioncheck.cli.main import main
    from sessioncheck.controlled.exits import Terminated

    def broken(*a, **k):
        raise RuntimeError("release unlocked lock")

    monkeypatch.setattr(run_verb, "verify", broken)
    assert main(["run", "--budget", "1"]) == 3
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: release unlocked lock" in err and "not a finding about the store" in err

    def cleanup_fails_after_sigterm(*a, **k):
        try:
            raise Terminated(signal.SIGTERM)
        finally:
            raise RuntimeError("release unlocked lock")

    monkeypatch.setattr(run_verb, "verify", cleanup_fails_after_sigterm)
    assert main(["run", "--budget", "1"]) == 128 + signal.SIGTERM
    assert capsys.readouterr().err.endswith("sessioncheck: interrupted by SIGTERM\n")
