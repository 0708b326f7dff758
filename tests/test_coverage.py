"""Schedule coverage: what a search reached, counted from real runs."""
from __future__ import annotations

import json
import subprocess
import sys

from sessioncheck.reporting.coverage import KNOWN_KINDS, Coverage
from sessioncheck.verify import verify


def test_counts_match_the_exploration_and_name_unreached_kinds():
    r = verify("json", budget=60, max_examples=60, seed=0, save_report=False)
    c, x = r.coverage, r.exploration
    assert c.examples == x.examples == 60
    assert c.interleavings == x.interleavings
    data = c.to_json()
    # the JSON store takes a file lock and replaces the file atomically...
    for kind in ("open", "flock", "replace", "fsync", "unlock"):
        assert kind in data["kinds_reached"]
    # ...and never speaks SQL
    assert "sql" in data["kinds_never_reached"]
    assert sorted(data["kinds_reached"] + data["kinds_never_reached"]) == sorted(KNOWN_KINDS)
    assert data["points_per_operation"]["add"] == len(data["points"]["add"]) > 3
    # temporary files and sessions are named, not their random names
    assert any(p.startswith("replace <tmp> -> s*.json") for p in data["points"]["add"]), data["points"]["add"]
    assert all("tmp" not in p or "<tmp>" in p for ps in data["points"].values() for p in ps)
    assert data["operations"]["add"] > 0


def test_sqlite_reaches_sql_points_only():
    r = verify("sqlite", budget=60, max_examples=20, seed=0, save_report=False)
    data = r.coverage.to_json()
    assert "sql" in data["kinds_reached"]
    assert "replace" in data["kinds_never_reached"] and "flock" in data["kinds_never_reached"]


def test_report_holds_coverage_and_merge_adds_up(tmp_path):
    r = verify("mutant:stale-overwrite", budget=60, seed=1, report_dir=tmp_path)
    saved = json.loads(r.report_path.read_text())
    cov = saved["stats"]["coverage"]
    assert cov["examples"] == saved["stats"]["examples"] == r.exploration.examples
    assert cov["interleavings"] == saved["stats"]["interleavings"]
    again = Coverage.from_json(cov)
    assert again.to_json()["points"] == cov["points"]
    both = Coverage()
    both.merge(r.coverage)
    both.merge(again)
    assert both.examples == 2 * cov["examples"]
    assert both.to_json()["points"] == cov["points"]  # the same points, counted once


def test_run_stats_prints_coverage(tmp_path):
    p = subprocess.run([sys.executable, "-m", "sessioncheck", "run", "--store", "json", "--examples", "30",
                        "--seed", "0", "--stats"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr
    # statistics are results: on stdout, after the summary
    assert p.stdout.startswith("no violation found in json (threads): 30 examples, ")
    assert "examples: 30" in p.stdout
    assert "distinct interleavings:" in p.stdout
    assert "distinct preemption points reached per operation:" in p.stdout and "  add: " in p.stdout
    assert "point kinds never reached:" in p.stdout and "sql" in p.stdout.split("never reached:")[1]
    assert p.stderr == ""
