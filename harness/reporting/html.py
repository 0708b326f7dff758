"""A saved report as one self-contained HTML page: the timeline.

The page needs nothing but itself: CSS, the SVG timeline and a few lines
of JavaScript are inline, and nothing is fetched when it opens (a strict
Content-Security-Policy says so to the browser as well).

What a person sees, top to bottom:

- the verdict: which invariant broke, in one sentence;
- the timeline: one lane per actor plus ``final`` (the fresh instance that
  reads every session at the end).  The x axis is the order of events;
  each preemption point is a tick labelled with its kind, each operation a
  bar from its beginning to its result, each read's returned value written
  beside it, a crash an ✕, an injected fault a ⚡, a power loss a ↯
  (on a lane of its own).  The lane labels stay in view when a long
  timeline scrolls sideways.  Story steps are
  numbered along the top; the step where the invariant is seen to break
  is a red band, and steps the explanation points at (the acknowledged
  write, the stale write-back) are amber bands;
- the story, as in the terminal, with the same rows highlighted;
- the reads and their values; coverage, if the report holds it; versions;
  and the replay command.

The highlighted step is derived from the report, not stored in it: the
violation's ``ops`` are indices into the run's operations, which are
rebuilt from the trace in the engine's order (operations in the order they
began, then the final reads); the step is the story line where the last
of them completed.  Without ``ops``, the line of the power loss, if there
was one; else the highest step the summary names; else the last step.
"""
from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field

from sessioncheck.checking.history import format_fields
from sessioncheck.controlled.trace import Names, line_of, visible
from sessioncheck.reporting.story import Line, describe_call, group, point_text, stale_copy

LANE_H = 84
LEFT = 12  # the lane labels live in their own column, which does not scroll
LABELS_W = 70
TOP = 58
COL = 34

_STEP = re.compile(r"\bsteps? (\d+)(?:-(\d+))?")

#: short glyph labels for points on the timeline (the tooltip has the rest)
SHORT = {"flock": "lock", "flock-wait": "wait", "lock-wait": "wait", "replace": "replace", "rename": "rename",
         "truncate": "trunc"}


@dataclass
class Op:
    """One operation rebuilt from the trace."""

    index: int
    actor: str
    call: str
    session: str
    value: object
    start_t: int
    end_t: int | None = None
    status: str | None = None
    output: object = None
    error: str | None = None


@dataclass
class Highlight:
    """Where the page draws attention: ``step`` breaks, ``related`` explain."""

    step: int
    invariant: str
    summary: str
    related: dict[int, str] = field(default_factory=dict)  # step -> why
    #: the accesses the explanation names, by trace time -> role
    #: (``append``, ``ack``, ``stale-read``, ``write-back``), and the read
    #: that sees the violation
    cause: dict[int, str] = field(default_factory=dict)
    violating_t: int | None = None


def operations(trace: list[dict]) -> list[Op]:
    """The run's operations in the engine's order: every operation other
    than opening and closing a store instance, in the order they began,
    then the final reads."""
    out: list[Op] = []
    running: dict[str, Op] = {}
    finals: list[Op] = []
    for e in trace:
        actor, ev = e["actor"], e["ev"]
        if ev == "start":
            call = e.get("call") or ""
            if call in ("open", "close"):
                running.pop(actor, None)
                continue
            op = Op(len(out), actor, call, e.get("session") or "", e.get("value"), e["t"])
            out.append(op)
            running[actor] = op
        elif ev == "done" and actor == "final":
            finals.append(Op(0, actor, e.get("call") or "read", e.get("session") or "", None, e["t"], e["t"],
                             e.get("status"), e.get("value"), e.get("error")))
        elif ev in ("done", "crash") and actor in running:
            op = running.pop(actor)
            op.end_t = e["t"]
            op.status = e.get("status") if ev == "done" else "killed"
            op.output, op.error = e.get("value"), e.get("error")
    for op in finals:
        op.index = len(out)
        out.append(op)
    return out


def highlight(report: dict, lines: list[Line] | None = None) -> Highlight | None:
    """The step where the first violation is seen, and the steps its
    explanation points at."""
    if not report.get("violations"):
        return None
    trace = report["trace"]
    lines = lines if lines is not None else group(trace)
    if not lines:
        return None
    where = line_of(lines)
    v = report["violations"][0]
    if not isinstance(v, dict):
        return None
    inv, summary = str(v.get("invariant", "?")), str(v.get("summary", ""))
    ops = operations(trace)
    steps: list[tuple[int, Op]] = []
    for i in v.get("ops") or []:
        if isinstance(i, int) and 0 <= i < len(ops):
            op = ops[i]
            t = op.end_t if op.end_t is not None else op.start_t
            n = where.get(t) or where.get(op.start_t)
            if n:
                steps.append((n, op))
    named = [int(m[2] or m[1]) for m in _STEP.finditer(summary)]
    # a power loss is its own story line: what the crash state showed
    power = [where[e["t"]] for e in trace if e["ev"] == "power-loss" and e["t"] in where]
    if steps:
        step = max(n for n, _ in steps)
    elif power:
        step = power[-1]
    elif named:
        step = max(named)
    else:
        step = lines[-1].number
    step = min(max(step, 1), len(lines))
    related: dict[int, str] = {}
    for n, op in steps:
        if n != step:
            related[n] = f"{describe_call({'call': op.call, 'session': op.session, 'value': op.value})} completes"
    # the explanation under the summary in the story ("B read ... at step 3,
    # ... wrote its stale copy back at step 5") names the culprit's steps
    why = " ".join(explanation(report.get("story", "")).split())
    prev_end = 0
    for m in _STEP.finditer(why):
        n = int(m[1])
        begin, prev_end = prev_end, m.end()
        if 1 <= n <= len(lines) and n != step:
            # the clause that names the step ("B read s1.json at step 3"):
            # from the last punctuation or the last step named before it
            start = max([why.rfind(sep, 0, m.start()) + 2 for sep in (", ", ". ", ": ", "; ")
                         if why.rfind(sep, 0, m.start()) >= 0] + [begin])
            clause = why[start:m.end()].strip()
            clause = clause[4:] if clause.startswith("and ") else clause
            related.setdefault(n, clause or "named in the explanation of the violation")
    cause: dict[int, str] = {}
    subject = v.get("subject")
    if inv == "I1" and isinstance(subject, str):
        sc = stale_copy(subject, trace)
        if sc is not None:
            cause = {sc.append_t: "append", sc.ack_t: "ack", sc.read_t: "stale-read", sc.write_t: "write-back"}
    violating = [op for n, op in steps if op.call == "read" and op.end_t is not None]
    violating_t = max(op.end_t for op in violating) if violating else None
    return Highlight(step, inv, summary, dict(sorted(related.items())), cause, violating_t)


def explanation(story: str) -> str:
    """The paragraphs of a story after its numbered steps and before the
    replay command: the violations and why they happened."""
    paragraphs = story.split("\n\n")
    return "\n\n".join(p for p in paragraphs[2:] if not p.startswith("Replay:")).strip()


def lanes(trace: list[dict]) -> list[str]:
    """Every actor of the run, in name order, with ``final`` last."""
    names = sorted({e["actor"] for e in trace if e["actor"] != "final"})
    if any(e["actor"] == "final" for e in trace):
        names.append("final")
    return names


def _messages(value: object) -> str:
    msgs = value.get("messages") if isinstance(value, dict) else None
    return ", ".join(map(str, msgs)) if isinstance(msgs, list) else ""


def _metadata(value: object) -> str:
    meta = value.get("metadata") if isinstance(value, dict) else None
    return format_fields(meta) if isinstance(meta, dict) else "{}"


def _value_text(value: object) -> str:
    """What a read returned, as the story writes it."""
    if not isinstance(value, dict):
        return json.dumps(value)
    text = f"[{_messages(value)}]"
    if value.get("metadata"):
        text += f" {_metadata(value)}"
    archived = value.get("archived")
    if isinstance(archived, list) and archived:
        text += f" archived [{', '.join(map(str, archived))}]"
    return text


def _esc(s: object) -> str:
    return html.escape(str(s), quote=True)


def _timeline(trace: list[dict], lines: list[Line], hl: Highlight | None) -> tuple[str, str]:
    """The lane labels (an SVG that stays put) and the SVG timeline (which
    scrolls sideways when the run is long)."""
    names = Names(trace)
    entries = visible(trace)
    where = line_of(lines)
    lane_names = lanes(trace)
    y_of = {a: TOP + i * LANE_H + LANE_H // 2 for i, a in enumerate(lane_names)}
    xs: dict[int, float] = {}
    x = LEFT + 20
    widths: dict[int, float] = {}
    for e in entries:
        w = COL
        if e["ev"] == "done" and e.get("call") == "read" and e.get("status") == "ok":
            w = max(COL, 7.6 * len(_value_text(e.get("value"))) + 28)
        widths[e["t"]] = w
        xs[e["t"]] = x + 10
        x += w
    width = int(x + 40)
    height = TOP + LANE_H * len(lane_names) + 20
    out = [f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="timeline of the run">']
    # step bands and numbers
    for ln in lines:
        ts = [e["t"] for e in entries if ln.first_t <= e["t"] <= ln.last_t]
        if not ts:
            continue
        x0 = xs[ts[0]] - 12
        x1 = xs[ts[-1]] - 10 + widths[ts[-1]] - 4
        cls = "band"
        label = ""
        if hl and ln.number == hl.step:
            cls, label = "band breaks", f"{hl.invariant} violated here"
        elif hl and ln.number in hl.related:
            cls, label = "band related", hl.related[ln.number]
        elif ln.number % 2 == 0:
            cls = "band even"
        out.append(f'<g class="step" data-step="{ln.number}"><rect class="{cls}" id="band-{ln.number}" '
                   f'x="{x0:.0f}" y="{TOP - 30}" width="{x1 - x0:.0f}" height="{height - TOP + 18}" rx="4">'
                   f'<title>step {ln.number}: {_esc(ln.actor)} {_esc(ln.text)}</title></rect>'
                   f'<text class="stepno" x="{(x0 + x1) / 2:.0f}" y="{TOP - 16}">{ln.number}</text>')
        if cls == "band breaks":  # amber bands are named in the legend and the story's note column
            out.append(f'<text class="bandlabel breaks" id="breaks-label" x="{x0 + 4:.0f}" y="{height - 6}">'
                       f'{_esc(label)}</text>')
        out.append("</g>")
    # lanes
    for a in lane_names:
        y = y_of[a]
        out.append(f'<line class="lane" x1="{LEFT}" y1="{y}" x2="{width - 10}" y2="{y}"/>')
    # operation bars
    current: dict[str, dict] = {}
    for e in entries:
        a = e["actor"]
        if e["ev"] == "start":
            current[a] = e
        elif e["ev"] in ("done", "crash") and a in current:
            s = current.pop(a)
            x0, x1 = xs[s["t"]], xs[e["t"]]
            state = "killed" if e["ev"] == "crash" else ("ok" if e.get("status") == "ok" else "failed")
            out.append(f'<rect class="op {state}" x="{x0:.0f}" y="{y_of[a] - 9}" width="{max(x1 - x0, 2):.0f}" '
                       f'height="18" rx="9"><title>{_esc(names.text(describe_call(s)))}: {state}</title></rect>')
    for a, s in current.items():  # still running at the end
        out.append(f'<rect class="op running" x="{xs[s["t"]]:.0f}" y="{y_of[a] - 9}" '
                   f'width="{width - 20 - xs[s["t"]]:.0f}" height="18" rx="9"/>')
    # marks; point labels alternate between two rows so neighbours do not collide
    row: dict[str, int] = {}
    for e in entries:
        a, ev, t = e["actor"], e["ev"], e["t"]
        x, y = xs[t], y_of[a]
        step = where.get(t, 0)
        role = hl.cause.get(t, "") if hl else ""
        if hl and t == hl.violating_t:
            role = "violating"
        attrs = (f'class="mark {ev}{" cause " + role if role else ""}" data-step="{step}" data-t="{t}"'
                 + (f' data-role="{role}"' if role else ""))
        if role:
            out.append(f'<circle class="ring {role}" cx="{x:.0f}" cy="{y}" r="12"/>')
        if ev == "start":
            label = names.text(describe_call(e))
            out.append(f'<g {attrs}><circle cx="{x:.0f}" cy="{y}" r="6"/>'
                       f'<text class="oplabel" x="{x - 6:.0f}" y="{y - 16}">{_esc(label)}</text>'
                       f'<title>step {step}: {_esc(label)} begins</title></g>')
        elif ev == "point":
            full = point_text(e, names)
            short = SHORT.get(e.get("kind", ""), e.get("kind", ""))
            row[a] = 1 - row.get(a, 1)
            out.append(f'<g {attrs} data-kind="{_esc(e.get("kind", ""))}"><line x1="{x:.0f}" y1="{y - 7}" '
                       f'x2="{x:.0f}" y2="{y + 7}"/><text class="kind" x="{x:.0f}" y="{y + 20 + 10 * row[a]}">'
                       f'{_esc(short)}</text>'
                       f'<title>step {step}: {_esc(full)}</title></g>')
        elif ev == "done":
            ok = e.get("status") == "ok"
            if e.get("call") == "read" and ok:
                text = _value_text(e.get("value"))
                out.append(f'<g {attrs} data-read="{_esc(e.get("session", ""))}"><path d="M{x - 7:.0f} {y} '
                           f'L{x:.0f} {y - 7} L{x + 7:.0f} {y} L{x:.0f} {y + 7} Z"/>'
                           f'<text class="value" x="{x + 11:.0f}" y="{y + 4}">{_esc(text)}</text>'
                           f'<title>step {step}: {_esc(a)} read {_esc(e.get("session", ""))} returned '
                           f'{_esc(text)}</title></g>')
            else:
                what = "acknowledged" if ok else f"raised {e.get('error')}"
                out.append(f'<g {attrs}><path class="{"ok" if ok else "failed"}" d="M{x - 7:.0f} {y} '
                           f'L{x:.0f} {y - 7} L{x + 7:.0f} {y} L{x:.0f} {y + 7} Z"/>'
                           f'<title>step {step}: {_esc(names.text(what))}</title></g>')
        elif ev == "crash":
            out.append(f'<g {attrs}><text class="glyph" x="{x:.0f}" y="{y + 6}">✕</text>'
                       f'<title>step {step}: killed (kill -9)</title></g>')
        elif ev == "fault":
            out.append(f'<g {attrs}><text class="glyph" x="{x:.0f}" y="{y + 6}">⚡</text>'
                       f'<title>step {step}: {_esc(point_text(e, names))} fails with {_esc(e.get("errno"))}'
                       f'</title></g>')
        elif ev == "power-loss":
            out.append(f'<g {attrs}><text class="glyph" x="{x:.0f}" y="{y + 6}">↯</text>'
                       f'<title>step {step}: {_esc(e.get("text") or "power loss")}</title></g>')
    out.extend(_cause_arrow(hl, xs, y_of, trace))
    out.append("</svg>")
    labels = [f'<svg id="lanes" xmlns="http://www.w3.org/2000/svg" width="{LABELS_W}" height="{height}" '
              f'viewBox="0 0 {LABELS_W} {height}">']
    labels += [f'<text class="lane-label" data-actor="{_esc(a)}" x="{LABELS_W - 10}" y="{y_of[a] + 5}">{_esc(a)}'
               '</text>' for a in lane_names]
    labels.append("</svg>")
    return "\n".join(labels), "\n".join(out)


ROLE_TEXT = {"append": "{m} appended", "ack": "{m} acknowledged", "stale-read": "reads a stale copy",
             "write-back": "writes it back", "violating": "sees the loss"}


def _cause_arrow(hl: Highlight | None, xs: dict[int, float], y_of: dict[str, int], trace: list[dict]) -> list[str]:
    """An arc from the stale read to the write-back, above the culprit's
    lane, and a dashed one from the acknowledgement it overwrites."""
    if not hl or not hl.cause:
        return []
    by_role = {role: t for t, role in hl.cause.items()}
    actor_of = {e["t"]: e["actor"] for e in trace}
    out = ['<defs><marker id="arrowhead" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" fill="#d92d20"/></marker>'
           '</defs>']
    r, w, a = by_role.get("stale-read"), by_role.get("write-back"), by_role.get("ack")
    if r in xs and w in xs:
        # below the culprit's lane, clear of the point labels right under it
        x0, x1, y = xs[r], xs[w], y_of[actor_of[r]]
        low = y + 62
        out.append(f'<path id="cause-arrow" class="cause-arrow" d="M{x0 + 12:.0f} {y + 4} C{x0 + 40:.0f} {low} '
                   f'{x1 - 40:.0f} {low} {x1 - 12:.0f} {y + 4}" marker-end="url(#arrowhead)">'
                   f'<title>the stale copy read here is written back here</title></path>')
        out.append(f'<text class="cause-label" x="{(x0 + x1) / 2:.0f}" y="{y + 40}">stale copy of the session, '
                   f'written back</text>')
    if a in xs and w in xs:
        xa, ya = xs[a], y_of[actor_of[a]]
        xw, yw = xs[w], y_of[actor_of[w]]
        out.append(f'<path id="overwrite-arrow" class="overwrite-arrow" d="M{xa:.0f} {ya} L{xw:.0f} {yw}" '
                   f'marker-end="url(#arrowhead)"><title>the write-back undoes this acknowledged append'
                   f'</title></path>')
    for t, role in hl.cause.items():
        if t in xs:
            m = next((e.get("value") for e in trace if e["t"] == by_role.get("append")), "")
            out.append(f'<text class="role-label {role}" x="{xs[t]:.0f}" y="{y_of[actor_of[t]] - 30}">'
                       f'{_esc(ROLE_TEXT[role].format(m=m))}</text>')
    return out


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"DejaVu Sans",sans-serif;margin:0;color:#1d2330;background:#fafbfc}
header{padding:16px 24px;background:#fff;border-bottom:1px solid #dde1e6}
h1{font-size:19px;margin:0 0 6px}
h2{font-size:16px;margin:22px 24px 8px}
.verdict{font-size:16px;color:#b42318;font-weight:600}
.meta{color:#5b6472;font-size:13px}
.timeline{display:flex;margin:0 24px;background:#fff;border:1px solid #dde1e6;border-radius:6px}
#lanes{flex:none;border-right:1px solid #eef1f5}
.scroll{overflow-x:auto;flex:1 1 auto}
svg text{font-family:"DejaVu Sans Mono",monospace}
.lane{stroke:#c5ccd6;stroke-width:1.5}
.lane-label{font-size:15px;font-weight:700;text-anchor:end;fill:#1d2330}
.band{fill:#eef1f5;opacity:.0}
.band.even{fill:#eef1f5;opacity:.8}
.band.breaks{fill:#fde2e1;stroke:#d92d20;stroke-width:2.5;opacity:1}
.band.related{fill:#fef0c7;stroke:#dc6803;stroke-width:1.5;opacity:1}
.stepno{font-size:12px;text-anchor:middle;fill:#5b6472;font-weight:600}
.bandlabel{font-size:12px;font-weight:700}
.bandlabel.breaks{fill:#b42318}.bandlabel.related{fill:#93370d}
.op{fill:#dbe8fe;stroke:#5b8def;stroke-width:1}
.op.failed,.op.killed{fill:#fee4e2;stroke:#d92d20}
.op.running{fill:#f2f4f7;stroke:#98a2b3;stroke-dasharray:4 3}
.mark circle{fill:#2e5bda}
.mark.point line{stroke:#344054;stroke-width:2}
.mark .kind{font-size:9px;text-anchor:middle;fill:#475467}
.mark .oplabel{font-size:11px;fill:#1d2330}
.mark.done path{fill:#12b76a}.mark.done path.failed{fill:#d92d20}
.mark.done[data-read] path{fill:#7a5af8}
.mark .value{font-size:12px;font-weight:700;fill:#5925dc}
.mark .glyph{font-size:16px;text-anchor:middle;fill:#d92d20}
.mark.selected *{stroke:#f79009;stroke-width:2}
.ring{fill:none;stroke-width:3}
.ring.append,.ring.ack{stroke:#2e5bda}
.ring.stale-read,.ring.write-back{stroke:#d92d20}
.ring.violating{stroke:#d92d20;fill:#fde2e1;fill-opacity:.6}
.cause-arrow{fill:none;stroke:#d92d20;stroke-width:2.5}
.overwrite-arrow{fill:none;stroke:#d92d20;stroke-width:1.5;stroke-dasharray:5 4}
.cause-label{font-size:11px;font-weight:700;fill:#b42318;text-anchor:middle}
.role-label,.cause-label{paint-order:stroke;stroke:#fff;stroke-width:4px;stroke-linejoin:round}
.role-label{font-size:10px;font-weight:700;text-anchor:middle}
.role-label.append,.role-label.ack{fill:#2e5bda}
.role-label.stale-read,.role-label.write-back,.role-label.violating{fill:#b42318}
table{border-collapse:collapse;margin:0 24px;background:#fff}
td,th{border:1px solid #dde1e6;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f2f4f7}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.breaks td{background:#fde2e1;font-weight:600}
tr.related td{background:#fef0c7}
tr.selected td{outline:2px solid #f79009}
pre{margin:0 24px;padding:10px;background:#fff;border:1px solid #dde1e6;border-radius:6px;white-space:pre-wrap}
.legend{margin:8px 24px;color:#5b6472;font-size:13px}
.legend span{margin-right:16px}
footer{margin:24px;color:#5b6472;font-size:12px}
"""

# Clicking a story row or a mark selects that step everywhere; on load the
# timeline scrolls so that the step where the invariant breaks is in view,
# and the page records whether it is (``data-break-visible``) and which lane
# labels are inside the window (``data-lanes-visible``), so a test can ask
# the browser what a person would see.
JS = """
(function(){
  function select(step){
    document.querySelectorAll('.selected').forEach(function(e){e.classList.remove('selected')});
    document.querySelectorAll('[data-step="'+step+'"]').forEach(function(e){
      if(!e.classList.contains('step')) e.classList.add('selected')});
  }
  document.querySelectorAll('[data-step]').forEach(function(e){
    e.addEventListener('click',function(){select(e.getAttribute('data-step'))})});
  var seen=[];
  document.querySelectorAll('.lane-label').forEach(function(e){
    var r=e.getBoundingClientRect();
    if(r.width>0&&r.left>=0&&r.right<=window.innerWidth&&r.top>=0&&r.bottom<=window.innerHeight)
      seen.push(e.getAttribute('data-actor'));});
  document.body.setAttribute('data-lanes-visible',seen.join(','));
  var scroller=document.getElementById('scroll'), svg=document.getElementById('timeline');
  var full=parseFloat(svg.getAttribute('width')), room=scroller.clientWidth;
  if(full>room){var k=Math.max(0.5,room/full);
    svg.setAttribute('width',Math.floor(full*k)); svg.setAttribute('height',Math.floor(parseFloat(svg.getAttribute('height'))*k));
    var lanesSvg=document.getElementById('lanes'); lanesSvg.setAttribute('height',svg.getAttribute('height'));
    document.body.setAttribute('data-scale',k.toFixed(2));}
  function visibleIn(el){var r=el.getBoundingClientRect(), s=scroller.getBoundingClientRect();
    return r.width>0&&r.left>=s.left-1&&r.right<=s.right+1;}
  var first=document.getElementById('band-1');
  document.body.setAttribute('data-first-visible',first&&visibleIn(first)?'yes':'no');
  var causes=document.querySelectorAll('.mark.cause');
  document.body.setAttribute('data-cause-marks',causes.length);
  var arrow=document.getElementById('cause-arrow');
  document.body.setAttribute('data-arrow-visible',arrow?(visibleIn(arrow)?'yes':'no'):'none');
  var band=document.querySelector('.band.breaks');
  if(!band){document.body.setAttribute('data-break-visible','none');return;}
  var r=band.getBoundingClientRect(), s=scroller.getBoundingClientRect();
  if(r.right>s.right||r.left<s.left){scroller.scrollLeft+=r.left-s.left-Math.max(0,(s.width-r.width)/2);}
  r=band.getBoundingClientRect(); s=scroller.getBoundingClientRect();
  var inView=r.width>0&&r.left>=s.left-1&&r.right<=s.right+1&&r.top<window.innerHeight&&r.bottom>0;
  document.body.setAttribute('data-break-visible',inView?'yes':'no');
})();
"""


def render_html(report: dict) -> str:
    """The page for a loaded report (:func:`sessioncheck.reporting.report.load`)."""
    trace = report["trace"]
    lines = group(trace)
    hl = highlight(report, lines)
    lane_svg, svg = _timeline(trace, lines, hl)
    v0 = report["violations"][0] if report["violations"] and isinstance(report["violations"][0], dict) else None
    from sessioncheck.checking.invariants import INVARIANTS

    if v0:
        verdict = (f"{v0.get('invariant')} ({INVARIANTS.get(v0.get('invariant'), '')}) violated: "
                   f"{v0.get('summary', '')}")
    else:
        verdict = "no violation recorded in this report"
    meta = [f"store <b>{_esc(report['store'])}</b>", f"{_esc(report['mode'])}",
            f"{report['config'].get('actors', '?')} actors", f"seed {report['seed']}" if report.get("seed") is not None else "unseeded"]
    stats = report.get("stats") or {}
    if stats.get("examples") is not None:
        meta.append(f"found after {stats.get('first_failure_example')} examples "
                    f"({stats.get('first_failure_seconds')} s)")
    story_lines = report["story"].split("\n")
    first = story_lines[0] if story_lines else ""
    rows = []
    for ln in lines:
        cls, note = "", ""
        if hl and ln.number == hl.step:
            cls, note = "breaks", f"{hl.invariant} violated here"
        elif hl and ln.number in hl.related:
            cls, note = "related", hl.related[ln.number]
        rows.append(f'<tr class="{cls}" data-step="{ln.number}" id="row-{ln.number}"><td class="num">{ln.number}'
                    f'</td><td>{_esc(ln.actor)}</td><td>{_esc(ln.text)}</td><td>{_esc(note)}</td></tr>')
    reads = []
    where = line_of(lines)
    for op in operations(trace):
        if op.call == "read" and op.status == "ok":
            reads.append(f'<tr data-step="{where.get(op.end_t or 0, "")}"><td class="num">'
                         f'{where.get(op.end_t or 0, "")}</td><td>{_esc(op.actor)}</td><td>{_esc(op.session)}</td>'
                         f'<td>{_esc(_messages(op.output))}</td><td>{_esc(_metadata(op.output))}</td></tr>')
    why = explanation(report["story"])
    replay = next((s for s in story_lines if s.startswith("Replay: ")), "")
    cov = stats.get("coverage")
    cov_html = ""
    if isinstance(cov, dict):
        per = cov.get("points_per_operation", {})
        cov_rows = "".join(f"<tr><td>{_esc(k)}</td><td class='num'>{_esc(n)}</td></tr>" for k, n in per.items())
        cov_html = (f"<h2>Schedule coverage</h2><p class='legend'>{_esc(cov.get('examples'))} examples, "
                    f"{_esc(cov.get('interleavings'))} distinct interleavings; point kinds never reached: "
                    f"{_esc(', '.join(cov.get('kinds_never_reached', [])) or 'none')}</p>"
                    f"<table><tr><th>operation</th><th>distinct points reached</th></tr>{cov_rows}</table>")
    versions = ", ".join(f"{_esc(k)} {_esc(v)}" for k, v in (report.get("versions") or {}).items())
    hl_text = ""
    if hl:
        hl_text = (f'<p class="legend"><b style="color:#b42318">Red band</b>: step {hl.step}, where '
                   f'{_esc(hl.invariant)} is seen to break. ' +
                   (f'<b style="color:#93370d">Amber</b>: steps {", ".join(map(str, hl.related))}, which the '
                    f'explanation points at.' if hl.related else "") +
                   (' <b style="color:#b42318">Rings</b>: the accesses it names (blue: the lost message\'s '
                    'append and acknowledgement; red: the stale read, the write-back, the read that sees the '
                    'loss); the red arrow joins the stale read to its write-back.' if hl.cause else "") + "</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sessioncheck: {_esc(v0.get('invariant') if v0 else 'report')} in {_esc(report['store'])}</title>
<style>{CSS}</style></head>
<body data-break-step="{hl.step if hl else ''}">
<header><h1>{_esc(first)}</h1><div class="verdict" id="verdict">{_esc(verdict)}</div>
<div class="meta">{" · ".join(meta)}</div></header>
<h2>Timeline</h2>
<div class="legend"><span>● operation begins</span><span>| preemption point (kind below)</span>
<span>◆ result (green acknowledged, red failed, violet a read with its value)</span><span>✕ killed</span>
<span>⚡ injected I/O error</span><span>↯ power loss</span></div>
{hl_text}
<div class="timeline">{lane_svg}<div class="scroll" id="scroll">{svg}</div></div>
<h2>Story</h2>
<table id="story"><tr><th>step</th><th>actor</th><th>what happened</th><th>note</th></tr>{"".join(rows)}</table>
<h2>Why this is a violation</h2><pre id="why">{_esc(why or verdict)}</pre>
<h2>Reads and their values</h2>
<table id="reads"><tr><th>step</th><th>actor</th><th>session</th><th>messages</th><th>metadata</th></tr>
{"".join(reads)}</table>
{cov_html}
<h2>Replay</h2><pre>{_esc(replay[len("Replay: "):] if replay else "")}</pre>
<footer>report schema {_esc(report.get('schema'))} v{_esc(report.get('version'))}; {versions}</footer>
<script>{JS}</script>
</body></html>
"""
