"""The HTML report as a person sees it: a real report from a real run,
rendered by the real command, opened in a real headless Chromium.

Chromium comes from the machine's packages
(``apt-get install -y --no-install-recommends chromium fonts-dejavu-core``);
without it the browser tests skip and say so.  The screenshot is kept as an
artifact under ``.sessioncheck/artifacts/`` (or ``$SESSIONCHECK_ARTIFACTS``);
its path is printed and recorded as the test's ``screenshot`` property.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pytest

from sessioncheck.reporting import report as reports
from sessioncheck.reporting.html import highlight, operations, render_html
from sessioncheck.reporting.story import group, line_of
from sessioncheck.verify import verify

WINDOW = (1400, 1000)


@pytest.fixture(scope="module")
def stale_report(tmp_path_factory) -> Path:
    """A report saved by a real exploration of mutant:stale-overwrite."""
    path = tmp_path_factory.mktemp("report") / "stale.json"
    r = verify("mutant:stale-overwrite", mode="threads", budget=60, seed=1, report_path=path)
    assert r.found and r.report_path == path, r.summary()
    return path


def sc(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sessioncheck", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def browse(page: Path, *extra: str, timeout: float = 60) -> str:
    """Run headless Chromium on a local page in a fresh profile; the whole
    process group is killed if it overruns, and the profile removed."""
    exe = chromium()
    assert exe
    profile = tempfile.mkdtemp(prefix="sessioncheck-chromium-")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", f"--window-size={WINDOW[0]},{WINDOW[1]}", *extra, page.as_uri()]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium did not finish within {timeout} s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
    return out


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA, non-interlaced PNG: (width, height, rows)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line) if bpp == 3 else bytes(v for j, v in enumerate(line) if j % 4 != 3))
        prev = line
    return width, height, rows


def count_colour(rows: list[bytes], rgb: tuple[int, int, int], tol: int = 6) -> int:
    n = 0
    r0, g0, b0 = rgb
    for row in rows:
        for i in range(0, len(row), 3):
            if abs(row[i] - r0) <= tol and abs(row[i + 1] - g0) <= tol and abs(row[i + 2] - b0) <= tol:
                n += 1
    return n


def artifact_dir(config) -> Path:
    d = Path(os.environ.get("SESSIONCHECK_ARTIFACTS") or Path(config.rootpath) / ".sessioncheck" / "artifacts")
    d.mkdir(parents=True, exist_ok=True)
    return d


# -- the page, without a browser ------------------------------------------------------


def test_highlight_is_the_read_that_misses_the_message(stale_report):
    data = reports.load(stale_report)
    v = data["violations"][0]
    assert v["invariant"] == "I1" and v["ops"]
    hl = highlight(data)
    ops = operations(data["trace"])
    # the last op of the violation is the read that shows the loss
    last = ops[max(v["ops"])]
    assert last.call == "read" and v["subject"] not in (last.output or {}).get("messages", [])
    step = int(re.search(r"at step (\d+)$", v["summary"])[1])
    assert hl.step == step
    # the acknowledged append is among the related steps
    ack = int(re.search(r"acknowledged to \w+ at step (\d+)", v["summary"])[1])
    assert ack in hl.related
    # the stale read and the write-back the story's explanation names are
    # related steps, each with the clause that names it
    why = re.search(r"(\w) read (\S+) at step (\d+), .* back at\s+step (\d+)", data["story"], re.S)
    assert why, data["story"]
    assert hl.related[int(why[3])] == f"{why[1]} read {why[2]} at step {why[3]}"
    assert hl.related[int(why[4])] == f"wrote its stale copy back at step {why[4]}"


def test_the_accesses_the_explanation_names_are_marked(stale_report, tmp_path):
    """The stale read, the write-back, the lost message's append and its
    acknowledgement carry their role on the timeline, at the trace times
    the story's explanation is computed from; an arrow joins the stale read
    to the write-back; the violating read carries the red mark."""
    data = reports.load(stale_report)
    v = data["violations"][0]
    hl = highlight(data)
    roles = {role: t for t, role in hl.cause.items()}
    assert set(roles) == {"append", "ack", "stale-read", "write-back"}
    trace = {e["t"]: e for e in data["trace"]}
    assert trace[roles["append"]]["ev"] == "start" and trace[roles["append"]]["value"] == v["subject"]
    assert trace[roles["ack"]]["ev"] == "done" and trace[roles["ack"]]["status"] == "ok"
    culprit = trace[roles["stale-read"]]["actor"]
    assert trace[roles["write-back"]]["actor"] == culprit != trace[roles["append"]]["actor"]
    assert roles["stale-read"] < roles["ack"] < roles["write-back"]
    # the story names the same steps
    where = line_of(group(data["trace"]))
    why = re.search(r"(\w) read (\S+) at step (\d+), .* back at\s+step (\d+)", data["story"], re.S)
    assert (why[1], int(why[3]), int(why[4])) == (culprit, where[roles["stale-read"]], where[roles["write-back"]])
    page = render_html(data)
    for role, t in roles.items():
        assert re.search(rf'class="mark \w+ cause {role}" data-step="\d+" data-t="{t}"', page), role
    assert re.search(rf'class="mark done cause violating" data-step="{hl.step}" data-t="{hl.violating_t}"', page)
    assert 'id="cause-arrow"' in page and 'marker-end="url(#arrowhead)"' in page


def test_report_command_writes_one_self_contained_page(stale_report, tmp_path):
    out = tmp_path / "page.html"
    p = sc("report", str(stale_report), "--html", str(out))
    assert p.returncode == 0, p.stderr
    page = out.read_text()
    assert page == render_html(reports.load(stale_report))
    # nothing to fetch: no external URL in any attribute that loads
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "<link" not in page and "@import" not in page
    assert "default-src 'none'" in page
    data = json.loads(stale_report.read_text())
    for actor in sorted({e["actor"] for e in data["trace"]}):
        assert f'class="lane-label" data-actor="{actor}"' in page


@pytest.mark.parametrize("content", ["not json", json.dumps({"schema": "other"}), json.dumps([1]),
                                     json.dumps({"schema": "sessioncheck-report", "version": 99})])
def test_report_command_refuses_corrupt_or_foreign_reports(tmp_path, content):
    bad = tmp_path / "r.json"
    bad.write_text(content)
    p = sc("report", str(bad), "--html", str(tmp_path / "x.html"))
    assert p.returncode == 2
    assert p.stderr.startswith("sessioncheck: error:") and p.stderr.count("\n") == 1
    assert not (tmp_path / "x.html").exists()


def test_report_with_a_malformed_trace_is_refused(stale_report, tmp_path):
    data = json.loads(stale_report.read_text())
    data["trace"][3] = {"t": "x"}
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps(data))
    p = sc("report", str(bad), "--html", str(tmp_path / "x.html"))
    assert p.returncode == 2 and "trace entry 3 is malformed" in p.stderr


# -- the page in a real browser ---------------------------------------------------------


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed "
                    "(apt-get install -y --no-install-recommends chromium fonts-dejavu-core)")
def test_browser_shows_lanes_and_the_highlighted_step(stale_report, tmp_path, pytestconfig, record_property):
    page = tmp_path / "stale-overwrite.html"
    assert sc("report", str(stale_report), "--html", str(page)).returncode == 0
    data = reports.load(stale_report)
    hl = highlight(data)
    lanes = sorted({e["actor"] for e in data["trace"]} - {"final"}) + ["final"]

    dom = browse(page, "--dump-dom")
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    # the page's script ran in the browser and measured the layout
    assert f'data-break-step="{hl.step}"' in body[1]
    assert 'data-break-visible="yes"' in body[1], body[1]
    seen = re.search(r'data-lanes-visible="([^"]*)"', body[1])[1].split(",")
    assert seen == lanes, (seen, lanes)
    row = re.search(rf'<tr class="(\w*)" data-step="{hl.step}" id="row-{hl.step}">', dom)
    assert row and row[1] == "breaks"
    # the view opens on the whole story: the first step, the arrow from the
    # stale read to the write-back and all four marked accesses are in view
    assert 'data-first-visible="yes"' in body[1], body[1]
    assert 'data-arrow-visible="yes"' in body[1], body[1]
    assert 'data-cause-marks="5"' in body[1], body[1]

    shot = artifact_dir(pytestconfig) / "report-stale-overwrite.png"
    shot.unlink(missing_ok=True)
    browse(page, f"--screenshot={shot}")
    assert shot.exists() and shot.stat().st_size > 10_000
    print(f"\nscreenshot of the HTML report: {shot}")
    record_property("screenshot", str(shot))
    width, height, rows = png_pixels(shot)
    assert (width, height) == WINDOW
    # the red band of the breaking step (fill #fde2e1) is on the screen,
    # large enough to be seen, and so is its red outline (#d92d20)
    assert count_colour(rows, (0xFD, 0xE2, 0xE1)) > 5000
    assert count_colour(rows, (0xD9, 0x2D, 0x20), tol=20) > 300


@pytest.fixture(scope="module")
def long_report(tmp_path_factory) -> Path:
    """A real run whose timeline is wider than the window: twenty appends,
    then the three steps that lose a message."""
    from sessioncheck.controlled.program import program_from_json
    from sessioncheck.specs import resolve
    from sessioncheck.verify import model_config, rerun

    program = program_from_json([["start", 0, ["add", 0]]] * 20 + [
        ["start", 0, ["persist", 1, [["compute_instance_id", "fresh"]]]], ["start", 1, ["add", 1]],
        ["advance", 0, 1]])
    spec = resolve("mutant:stale-overwrite")
    cfg = model_config(spec, "threads", ())
    path = tmp_path_factory.mktemp("long") / "long.json"
    outcome, story = rerun("mutant:stale-overwrite", "threads", cfg, program, path)
    assert outcome.failed
    data = reports.build(store="mutant:stale-overwrite", store_module=spec.module, mode="threads", cfg=cfg,
                         seed=None, program=program, violations=outcome.violations, story=story,
                         trace=outcome.trace, stats={})
    return reports.save(data, path)


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed "
                    "(apt-get install -y --no-install-recommends chromium fonts-dejavu-core)")
def test_long_timeline_scrolls_to_the_break_and_keeps_lane_labels(long_report, tmp_path, pytestconfig,
                                                                  record_property):
    page = tmp_path / "long.html"
    assert sc("report", str(long_report), "--html", str(page)).returncode == 0
    html_text = page.read_text()
    width = int(re.search(r'<svg id="timeline"[^>]* width="(\d+)"', html_text)[1])
    assert width > 3 * WINDOW[0]  # the break is far off the first screen
    hl = highlight(reports.load(long_report))
    assert hl.step > 20
    body = re.search(r"<body([^>]*)>", browse(page, "--dump-dom"))[1]
    assert 'data-break-visible="yes"' in body, body
    # a lane per actor that takes part (C starts nothing here) and the final read
    assert re.search(r'data-lanes-visible="([^"]*)"', body)[1] == "A,B,final"
    shot = artifact_dir(pytestconfig) / "report-long-timeline.png"
    shot.unlink(missing_ok=True)
    browse(page, f"--screenshot={shot}")
    print(f"\nscreenshot of a long timeline: {shot}")
    record_property("screenshot", str(shot))
    _, _, rows = png_pixels(shot)
    assert count_colour(rows, (0xFD, 0xE2, 0xE1)) > 5000


def _mutations(data: dict):
    """Reports of the right frame holding values of the wrong shape."""
    import copy

    for key, value in [("violations", [1]), ("violations", [{"ops": "x"}]), ("violations", [{"ops": [99, -1]}]),
                       ("stats", []), ("stats", {"coverage": [1]}), ("versions", [1]), ("story", ""),
                       ("seed", None), ("trace", [])]:
        d = copy.deepcopy(data)
        d[key] = value
        yield f"{key}={value!r}", d
    for field, value in [("value", [1, 2]), ("value", {"messages": 3, "metadata": [1]}), ("call", 7),
                         ("kind", None), ("path", 5), ("session", {"a": 1}), ("status", None)]:
        for ev in ("start", "point", "done"):
            d = copy.deepcopy(data)
            for e in d["trace"]:
                if e["ev"] == ev:
                    e[field] = value
            yield f"{ev}.{field}={value!r}", d


def test_report_command_never_shows_a_traceback(stale_report, tmp_path, capsys):
    """Every malformed report either renders or gets one line and exit 2."""
    from sessioncheck.cli.main import main

    data = json.loads(stale_report.read_text())
    outcomes = {}
    for name, d in _mutations(data):
        path = tmp_path / "m.json"
        path.write_text(json.dumps(d))
        rc = main(["report", str(path), "--html", str(tmp_path / "m.html")])
        err = capsys.readouterr().err
        assert rc in (0, 2), name
        if rc == 2:
            assert err.startswith("sessioncheck: error:") and err.count("\n") == 1, (name, err)
        outcomes[name] = rc
    assert 0 in outcomes.values()  # most odd values are drawn as they are
