"""Every peer tool and sessioncheck on the same targets, in one run; writes RESULTS.md.

Usage::

    python benchmarks/peers/run.py [--seeds 5] [--out benchmarks/peers/RESULTS.md]
                                   [--py311 /work/venv-peers/bin/python]
                                   [--py313 /work/venv-peers-313/bin/python]

Each measurement is one child process (``peer_<tool>.py`` or
``sessioncheck_side.py``) in the virtual environment the tool installs in:
frontrun and sessioncheck in a Python 3.11 venv, interleave-test (>= 3.12)
and ploom (>= 3.13) in a Python 3.13 venv; both hold this project
(editable), the same filelock and the same praisonaiagents, so every tool
runs the same store code.  frontrun runs under its ``frontrun`` CLI, as its
README requires.  Runs are interleaved (seed by seed, target by target,
tool by tool) so that load on the shared machine falls on all tools alike.
Every child is bounded by a timeout and killed with its process group.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from targets import TARGETS  # noqa: E402

CHILD_TIMEOUT = 240.0


@dataclass(frozen=True)
class Config:
    """One tool configuration: which script, which interpreter, which modes."""

    tool: str  # name in the tables
    script: str
    venv: str  # "py311" or "py313"
    mode: str  # the mode argument of the script
    actors: str  # threads | processes
    seeded: bool  # randomised: run once per seed; else once in all
    wrapper: tuple[str, ...] = ()  # command the script runs under (frontrun CLI)
    extra: tuple[str, ...] = ()  # more --opt arguments
    #: a peer's workload: "handed" (written for the target's bug) or
    #: "generic" (the store's contract only); "" for sessioncheck, which
    #: generates its own operations from the store alone
    workload: str = ""

    @property
    def label(self) -> str:
        return self.tool + (" (generic)" if self.workload == "generic" else "")

    def options(self, target: str, control: bool) -> list[str]:
        """Budgets: peers run their default bounds on a bug (they stop at the
        first failure); on a control, a fixed number of schedules (peers) or
        seconds (sessioncheck) to measure schedules/s and false alarms."""
        if self.tool.startswith("sessioncheck"):
            # Shrinking runs after the first failure and is capped at 3 s here
            # (the product's default is 10 s) to keep the whole run short.
            return ["--opt", f"budget={10 if control else 45}", "--opt", "shrink_budget=3", *self.extra]
        if self.tool.startswith("frontrun"):
            return ["--opt", f"max_attempts={100 if control else 200}", "--opt", "timeout=60"]
        if self.tool.startswith("interleave-test"):
            return ["--opt", f"iterations={200 if control else 500}", "--opt", "timeout=10"]
        return ["--opt", "max_executions=200", "--opt", "timeout=30"]


def configs(py311: str) -> list[Config]:
    frontrun = (str(Path(py311).with_name("frontrun")),)
    return [
        Config("sessioncheck", "sessioncheck_side.py", "py311", "threads", "threads", True),
        Config("sessioncheck", "sessioncheck_side.py", "py311", "processes", "processes", True),
        # the same, told the peer tests' scope: --actor-count 2 --sessions 1 --max-steps 10
        # --without delete (the peers' workloads never delete)
        Config("sessioncheck 2x1x10", "sessioncheck_side.py", "py311", "threads", "threads", True,
               extra=("--opt", "scope=peer", "--opt", "max_steps=10")),
        Config("frontrun dpor", "peer_frontrun.py", "py311", "threads-dpor", "threads", False, frontrun),
        Config("frontrun random", "peer_frontrun.py", "py311", "threads-random", "threads", True, frontrun),
        Config("frontrun process", "peer_frontrun.py", "py311", "processes-dpor", "processes", False, frontrun),
        Config("interleave-test random", "peer_interleave.py", "py313", "threads-random", "threads", True),
        Config("interleave-test pct", "peer_interleave.py", "py313", "threads-pct", "threads", True),
        Config("interleave-test dfs", "peer_interleave.py", "py313", "threads-dfs", "threads", False),
        Config("ploom dfs", "peer_ploom.py", "py313", "threads-dfs", "threads", False),
    ]


def all_configs(py311: str, workloads: tuple[str, ...]) -> list[Config]:
    """sessioncheck's configurations once, every peer's once per workload."""
    out = []
    for c in configs(py311):
        if c.tool.startswith("sessioncheck"):
            out.append(c)
        else:
            out += [dataclasses.replace(c, workload=w) for w in workloads]
    return out


def run_child(cmd: list[str], timeout: float, scratch: str, workload: str = "") -> dict:
    """Run one measurement; its RESULT line as a dict, or an error record."""
    env = dict(os.environ, PEERS_TMP=scratch, PEERS_WORKLOAD=workload or "handed")
    proc = subprocess.Popen(cmd, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"error": f"no result within {timeout:.0f} s (killed)"}
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (err.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {proc.returncode}: {tail[:200]}"}


def version(py: str, dist: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    try:
        return subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=60).stdout.strip() or "absent"
    except (OSError, subprocess.TimeoutExpired):
        return "absent"


def python_version(py: str) -> str:
    try:
        return subprocess.run([py, "-c", "import platform; print(platform.python_version())"],
                              capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "absent"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


# -- aggregation --------------------------------------------------------------

def status(r: dict, control: bool) -> str:
    """found | pass | false alarm | inconclusive | error."""
    if r.get("error"):
        return "error"
    if r.get("found"):
        return "found"
    v = r.get("verdict", "")
    if v.startswith("pass") or v.startswith("no violation"):
        return "pass"
    if v.startswith("inconclusive") or v.startswith("incomplete"):
        return "inconclusive"
    return "false alarm"


def med(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None


def fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


@dataclass
class Row:
    config: Config
    target: str
    runs: list[dict]

    @property
    def control_here(self) -> bool:
        return self.config.actors not in TARGETS[self.target].buggy_under(self.config.workload or "handed")

    def statuses(self) -> list[str]:
        return [status(r, self.control_here) for r in self.runs]

    def ffs(self) -> list[float]:
        return [r["first_failure_seconds"] for r in self.runs if r.get("found") and r.get("first_failure_seconds") is not None]

    def median_ffs(self) -> float | None:
        return med(self.ffs())

    def summary(self) -> dict:
        st = self.statuses()
        n = len(st)
        found = st.count("found")
        sched = [r.get("schedules_to_first_failure") for r in self.runs if r.get("found") and r.get("schedules_to_first_failure")]
        rates = [r["schedules"] / r["seconds"] for r in self.runs if r.get("seconds") and not r.get("found")
                 and not r.get("error") and status(r, True) == "pass"]
        first = next((r for r in self.runs if r.get("verdict") or r.get("error")), {})
        return {
            "tool": self.config.tool, "actors": self.config.actors, "runs": n, "found": found,
            "statuses": {s: st.count(s) for s in dict.fromkeys(st)},
            "median_first_failure_seconds": self.median_ffs(),
            "min_ffs": min(self.ffs()) if self.ffs() else None, "max_ffs": max(self.ffs()) if self.ffs() else None,
            "median_schedules_to_first_failure": med([float(s) for s in sched]),
            "schedules_per_second": med(rates),
            "median_seconds": med([r["seconds"] for r in self.runs if r.get("seconds")]),
            "verdict": first.get("error") or first.get("verdict", ""),
        }


def breakdown(rows: list[Row]) -> list[str]:
    """Where sessioncheck's time to the first failure goes (medians over seeds)."""
    lines = ["| target | actors | to first failure, s | setup (probe + actors start), s | running examples, s | "
             "rest of the search (Hypothesis, bookkeeping), s | examples to first failure | s per example | "
             "shrinking after it, s |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if not row.config.tool.startswith("sessioncheck"):
            continue
        label = row.config.tool.replace("sessioncheck", "").strip()
        found = [r for r in row.runs if r.get("found")]
        if not found:
            continue
        ffs = med([r["first_failure_seconds"] for r in found])
        setup = med([r["extra"]["setup_seconds"] or 0.0 for r in found])
        runs = med([r["extra"]["run_seconds_to_first_failure"] or 0.0 for r in found])
        rest = med([r["first_failure_seconds"] - (r["extra"]["setup_seconds"] or 0.0)
                    - (r["extra"]["run_seconds_to_first_failure"] or 0.0) for r in found])
        n = med([float(r["schedules_to_first_failure"]) for r in found])
        per = med([(r["extra"]["run_seconds_to_first_failure"] or 0.0) / r["schedules_to_first_failure"] for r in found])
        shrink = med([r["extra"]["shrink_seconds"] or 0.0 for r in found])
        lines.append(f"| {row.target} | {row.config.actors}{' ' + label if label else ''} | {fmt(ffs)} | {fmt(setup)} | {fmt(runs)} | {fmt(rest)} | "
                     f"{fmt(n, 0)} | {fmt(per, 4)} | {fmt(shrink, 2)} |")
    return lines


def target_table(target: str, rows: list[Row]) -> list[str]:
    t = TARGETS[target]
    mine = [r for r in rows if r.target == target]
    sc = {r.config.actors: r.median_ffs() for r in mine if r.config.tool == "sessioncheck"}
    out = [f"### {target} (`{t.spec}`, workload {t.workload}; bug shows with: "
           f"{', '.join(t.buggy) if t.buggy else 'none (control)'}; generic workload: "
           f"{', '.join(t.buggy_under('generic')) or 'none (control)'})", "",
           "| tool | actors | runs | found | outcomes | median s to first failure (min-max) | "
           "median schedules to it | schedules/s when passing | median s per call | sessioncheck / tool | what the tool said (first run) |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in mine:
        s = row.summary()
        s["tool"] = row.config.label
        ratio = "-"
        if not row.config.tool.startswith("sessioncheck") and s["median_first_failure_seconds"]:
            mine_ffs = sc.get(row.config.actors)
            ratio = "not found by sessioncheck" if mine_ffs is None else f"{mine_ffs / s['median_first_failure_seconds']:.2f}"
        spread = "" if s["min_ffs"] is None else f" ({fmt(s['min_ffs'])}-{fmt(s['max_ffs'])})"
        outcomes = ", ".join(f"{k} {v}" for k, v in s["statuses"].items())
        verdict = s["verdict"].replace("|", "/")[:160]
        out.append(f"| {s['tool']} | {s['actors']} | {s['runs']} | {s['found']}/{s['runs']} | {outcomes} | "
                   f"{fmt(s['median_first_failure_seconds'])}{spread} | {fmt(s['median_schedules_to_first_failure'], 0)} | "
                   f"{fmt(s['schedules_per_second'], 1)} | {fmt(s['median_seconds'], 2)} | {ratio} | {verdict} |")
    # process mode rows the peers lack entirely
    out.append("")
    return out


def summary_table(rows: list[Row], targets: list[str], workload: str = "handed") -> list[str]:
    """Per target and actor mode: sessioncheck against the fastest peer that
    found the bug, the peers running ``workload``."""
    out = ["| target | actors | bug here? | sessioncheck found | sessioncheck median s | peers that found it (found/runs) | "
           "fastest peer, median s | sessioncheck / fastest peer | peers' false alarms |",
           "|---|---|---|---|---|---|---|---|---|"]
    for t in targets:
        for actors in ("threads", "processes"):
            here = [r for r in rows if r.target == t and r.config.actors == actors]
            sc = next((r for r in here if r.config.tool == "sessioncheck"), None)
            if sc is None:
                continue
            peers = [r for r in here if not r.config.tool.startswith("sessioncheck") and r.config.workload == workload]
            s = sc.summary()
            found_by = [(p.config.tool, p.summary()) for p in peers if p.summary()["found"]]
            fastest = min(found_by, key=lambda x: x[1]["median_first_failure_seconds"] or 1e9, default=None)
            alarms = sum(p.statuses().count("false alarm") for p in peers)
            runs = sum(len(p.runs) for p in peers)
            bug = "yes" if actors in TARGETS[t].buggy_under(workload) else "no (control)"
            ratio = "-"
            if fastest and s["median_first_failure_seconds"] is not None:
                ratio = f"{s['median_first_failure_seconds'] / fastest[1]['median_first_failure_seconds']:.1f}"
            elif fastest:
                ratio = "sessioncheck did not find it"
            peers_txt = ", ".join(f"{n} ({x['found']}/{x['runs']})" for n, x in found_by) or ("none" if peers else "no peer has this mode")
            out.append(f"| {t} | {actors} | {bug} | {s['found']}/{s['runs']} | {fmt(s['median_first_failure_seconds'])} | "
                       f"{peers_txt} | {fastest[0] + ' ' + fmt(fastest[1]['median_first_failure_seconds']) if fastest else '-'} | "
                       f"{ratio} | {alarms}/{runs} |")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5, help="runs per randomised tool configuration (default 5)")
    p.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    p.add_argument("--py311", default="/work/venv-peers/bin/python")
    p.add_argument("--py313", default="/work/venv-peers-313/bin/python")
    p.add_argument("--only", default="", help="comma-separated targets (default: all)")
    p.add_argument("--workloads", default="handed,generic",
                   help="the peers' workloads, comma-separated: handed (written for each bug), generic "
                        "(the store's contract only, as sessioncheck is told) (default: both)")
    p.add_argument("--from-json", type=Path, default=None,
                   help="re-render the Markdown from a saved RESULTS.json instead of running")
    a = p.parse_args(argv)
    if a.from_json is not None:
        return rerender(a)
    pys = {"py311": a.py311, "py313": a.py313}
    targets = [t for t in TARGETS if not a.only or t in a.only.split(",")]
    if version(a.py311, "praisonaiagents") == "absent":
        targets = [t for t in targets if not TARGETS[t].needs]
    workloads = tuple(w for w in a.workloads.split(",") if w)
    if not workloads or any(w not in ("handed", "generic") for w in workloads):
        p.error("--workloads: handed, generic or both")
    cfgs = all_configs(a.py311, workloads)
    started = time.time()
    load_start = load()
    runs: dict[tuple[int, str], list[dict]] = {}
    jobs = []
    for seed in range(1, a.seeds + 1):
        for target in targets:
            for i, c in enumerate(cfgs):
                if not c.seeded and seed > 1:
                    continue
                jobs.append((seed, target, i, c))
    scratch = tempfile.mkdtemp(prefix="peers-run-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
    try:
        measure_all(jobs, pys, runs, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    load_end = load()
    wall = time.time() - started
    rows = [Row(c, t, runs[(i, t)]) for t in targets for i, c in enumerate(cfgs) if (i, t) in runs]
    write(a, rows, targets, pys, load_start, load_end, wall, started, workloads)
    return 0


def measure_all(jobs: list, pys: dict, runs: dict, scratch: str) -> None:
    for n, (seed, target, i, c) in enumerate(jobs, 1):
        control = c.actors not in TARGETS[target].buggy_under(c.workload or "handed")
        cmd = [*c.wrapper, pys[c.venv], c.script, target, c.mode, *(["--seed", str(seed)] if c.seeded else []),
               *c.options(target, control)]
        r = run_child(cmd, CHILD_TIMEOUT, scratch, c.workload)
        r.setdefault("seed", seed if c.seeded else None)
        runs.setdefault((i, target), []).append(r)
        print(f"[{n}/{len(jobs)}] {target:17} {c.label:32} {c.actors:9} seed {seed}: "
              f"{status(r, control):12} ffs={fmt(r.get('first_failure_seconds'))} "
              f"{(r.get('error') or r.get('verdict', ''))[:70]}", flush=True)


def write(a: argparse.Namespace, rows: list[Row], targets: list[str], pys: dict, load_start: str, load_end: str,
          wall: float, started: float, workloads: tuple[str, ...]) -> None:
    versions = {
        "frontrun": version(a.py311, "frontrun"), "interleave-test": version(a.py313, "interleave-test"),
        "ploom": version(a.py313, "ploom"), "hypothesis": version(a.py311, "hypothesis"),
        "filelock (3.11 venv)": version(a.py311, "filelock"), "filelock (3.13 venv)": version(a.py313, "filelock"),
        "praisonaiagents": version(a.py311, "praisonaiagents"),
    }
    meta = {"seeds": a.seeds, "targets": targets, "workloads": list(workloads), "versions": versions, "load_start": load_start,
            "load_end": load_end, "wall": wall, "started": started, "cpu": cpu_model(), "cores": os.cpu_count(),
            "python": {k: python_version(v) for k, v in pys.items()}}
    a.out.write_text(render(meta, rows))
    a.out.with_suffix(".json").write_text(json.dumps(
        {"meta": meta, "rows": [{"tool": r.config.tool, "mode": r.config.mode, "actors": r.config.actors,
                                 "workload": r.config.workload,
                                 "target": r.target, "runs": r.runs} for r in rows]}, indent=1))
    print(f"wrote {a.out} ({wall:.0f} s)")


def rerender(a: argparse.Namespace) -> int:
    doc = json.loads(a.from_json.read_text())
    meta = doc["meta"]
    by_key = {(c.tool, c.mode, c.workload): c for c in all_configs(a.py311, ("handed", "generic"))}
    rows = [Row(by_key[(r["tool"], r["mode"], r.get("workload", "" if r["tool"].startswith("sessioncheck") else "handed"))],
                r["target"], r["runs"]) for r in doc["rows"]]
    a.out.write_text(render(meta, rows))
    print(f"wrote {a.out}")
    return 0


def render(meta: dict, rows: list[Row]) -> str:
    targets, versions, started, seeds = meta["targets"], meta["versions"], meta["started"], meta["seeds"]
    cmd = "python benchmarks/peers/run.py" + (f" --seeds {seeds}" if seeds != 5 else "")
    L = ["# sessioncheck beside frontrun, interleave-test and ploom", "",
         "Generated by `benchmarks/peers/run.py`; do not edit by hand.", "",
         f"Reproduce: `{cmd}` (from the repository root; environments below).", "",
         "## Machine and versions", "",
         f"- date: {datetime.datetime.fromtimestamp(started, datetime.timezone.utc):%Y-%m-%d %H:%M UTC}; "
         f"whole run {meta['wall']:.0f} s",
         f"- {meta['cores']} cores (`nproc`), {meta['cpu']}",
         f"- load average (1, 5, 15 min) at start: {meta['load_start']}; at end: {meta['load_end']} (shared machine)",
         f"- Python {meta['python']['py311']} (sessioncheck, frontrun) and "
         f"{meta['python']['py313']} (interleave-test, ploom)",
         "- " + ", ".join(f"{k} {v}" for k, v in versions.items()), "",
         "Environments (two, because interleave-test needs Python >= 3.12 and ploom >= 3.13):", "",
         "```sh",
         "benchmarks/peers/setup.sh   # requirements-py311.txt into /work/venv-peers, requirements-py313.txt into "
         "/work/venv-peers-313",
         "```", "",
         "## What was run", "",
         "Every target is tested by every tool with the same two writers on one session, each writer with its own "
         "store instance on one shared directory, and the same invariant read by a fresh instance afterwards "
         "(`targets.py`): *add-persist* = `add_message(m1)` against `persist_state({k: v})`, both must survive; "
         "*clear-add* = `persist_state({k: None})` after `{k: v}` against `add_message(m1)`, the field must be gone "
         "and m1 kept; *add-add* = two `add_message`, both kept. Each peer file (`peer_*.py`) is that tool's "
         "recommended test, as its README writes it. sessioncheck is given only the store spec: it generates the "
         "operations (3 actors, 2 sessions, up to 24 steps) and the interleaving itself, and checks all of I1-I6; "
         "the row *sessioncheck 2x1x10* is the same told the peer tests' scope (`--actor-count 2 --sessions 1 "
         "--max-steps 10 --without delete`: two writers, one session, the peers' operations). Its shrinking is capped at 3 s in this run (product default 10 s).", "",
         "Time to the first failure is wall time from the start of the tool's call (sessioncheck: `verify()`, "
         "which includes probing the store and starting its actors; every tool has the store's code imported "
         "before its clock starts, sessioncheck through its own loader) to the end of the first schedule whose "
         "invariant failed, read with a real clock bound before any tool patches `time` (`timing.py`). "
         f"Randomised configurations run once per seed (1..{seeds}); deterministic ones (DPOR, DFS) once. "
         "'sessioncheck / tool' is the ratio of the two medians, same actors, same run (<= 1: sessioncheck at least "
         "as fast). On a control, peers run a fixed number of schedules (frontrun 100, interleave-test 200, ploom "
         "until exhausted) and sessioncheck 10 s (on a bug it searches for up to 45 s); 'schedules/s' is schedules (sessioncheck: examples, each a whole "
         "generated program) per second of the call. Outcomes: *found* = the tool reported the invariant broken; "
         "*pass*; *false alarm* = the tool reported a failure that is not the invariant (a hang, a crash inside the "
         "tool); *inconclusive* = the tool said it could not decide; *error* = it could not run the case.", ""]
    workloads = meta.get("workloads", ["handed"])
    L += ["## Summary: the bar (sessioncheck finds what the peers find, in at most their time)", "",
          "Median seconds to the first failure; the fastest peer is the peer configuration with the smallest median "
          "among those that found the bug at least once. sessioncheck's rows are the same in both tables: it is "
          "told only the store.", ""]
    if "generic" in workloads:
        L += ["### On equal terms: the peers run the generic workload", "",
              "Each peer is given what sessioncheck is given, the store and its generic contract, not the bug: "
              "the same workload on every target (`targets.py`, *generic*): after `persist_state({k: v0, j: w0})`, "
              "writer A runs `add_message(m1)` then `persist_state({k: None})`, writer B `persist_state({j: w1})` "
              "then `add_message(m2)`; the assertion is the generic one: m1 and m2 present, `k` cleared, `j` = w1. "
              "On `praisonai` this workload fails in every order (its `update_session_metadata` skips `None`), so "
              "there it is a bug, not a control.", ""]
        L += summary_table(rows, targets, "generic")
        L += [""]
    if "handed" in workloads:
        L += ["### The handed workloads: each peer test written for its target's bug", ""]
        L += summary_table(rows, targets, "handed")
    L += ["", "## Results per target", ""]
    for t in targets:
        L += target_table(t, rows)
    L += ["## Where sessioncheck's time goes", "",
          "Medians over the seeds that found the bug. 'Running examples' is time inside `Executor.run` (the store "
          "under the controlled scheduler plus the history check), summed over the examples up to the first "
          "failure; 'rest of the search' is the remainder of the search loop (Hypothesis generating and "
          "deciding each program, per-example bookkeeping).", ""]
    L += breakdown(rows)
    L.append("")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    sys.exit(main())
