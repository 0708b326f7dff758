"""The history checker: fixtures side by side, and properties.

Fixtures live in ``tests/histories`` as ``<name>-ok.jsonl`` /
``<name>-bad.jsonl`` pairs; ``BAD`` says which invariant and subject each
bad one must be reported under.  The properties generate histories from a
sequential simulation of the specification (valid by construction), so the
checker must pass them; one injected corruption must always be caught.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sessioncheck.checking.checker import check
from sessioncheck.errors import HistoryError
from sessioncheck.checking.history import Event, Operation, read_jsonl

HERE = Path(__file__).parent / "histories"

BAD = {
    "lost-append": ("I1", "m2"),
    "duplicated-append": ("I1", "m2"),
    "reordered-appends": ("I2", "m1"),
    "concurrent-appends": ("I2", "m1"),
    "info-append": ("I1", "m1"),
    "phantom-append": ("I1", "m9"),
    "deleted-session": ("I1", "m1"),
    "stale-register-read": ("I3", "model"),
    "none-not-cleared": ("I3", "compute_instance_id"),
    "cleared-field-comes-back": ("I3", "model"),
    "register-tricky": ("I3", "model"),
    # A wrong metadata value some write did produce, in the wrong form or
    # place, is a register fault (I3), not a state no write produced (I4).
    "none-stored-as-text": ("I3", "model"),
    "metadata-copied-across-sessions": ("I3", "model"),
    "metadata-leaked-to-another-session": ("I3", "user"),
    # pop and clear (sessioncheck.operations): a pop excuses only the
    # message it returned; an acknowledged clear removes every earlier one
    "pop-races-append": ("I1", "m2"),
    "cleared-messages": ("I1", "m1"),
    # rename: a register beside the metadata; a stale whole-metadata write-back reverts a persist
    "rename-overwrites-metadata": ("I3", "model"),
    # an operation of the user's own, named with its effect in the history
    "user-operation": ("I3", "title"),
}


def test_every_fixture_has_a_pair_and_an_expectation():
    names = {p.name.rsplit("-", 1)[0] for p in HERE.glob("*.jsonl")}
    assert names == set(BAD)
    for name in names:
        assert (HERE / f"{name}-ok.jsonl").exists() and (HERE / f"{name}-bad.jsonl").exists()


@pytest.mark.parametrize("name", sorted(BAD))
def test_ok_fixture_passes(name):
    result = check(read_jsonl(HERE / f"{name}-ok.jsonl"))
    assert result.verdict == "ok", [f.summary for f in result.findings]
    assert result.findings == []


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_fixture_is_caught_and_named(name):
    invariant, subject = BAD[name]
    result = check(read_jsonl(HERE / f"{name}-bad.jsonl"))
    assert result.verdict == "violation"
    first = result.findings[0]
    assert (first.invariant, first.subject) == (invariant, subject), first.summary
    assert first.ops, "a finding shows the operations behind it"
    assert first.summary.count("\n") == 0 and subject in first.summary


def test_summary_names_actor_time_and_value():
    result = check(read_jsonl(HERE / "none-not-cleared-bad.jsonl"))
    s = result.findings[0].summary
    assert "cleared to None by A at t=3..4" in s and "'gpu-1'" in s and "read by B at t=5..6" in s
    assert [o.process for o in result.findings[0].ops] == ["A", "A", "B"]


def test_misplaced_metadata_names_where_the_value_came_from():
    text = check(read_jsonl(HERE / "none-stored-as-text-bad.jsonl")).findings[0]
    assert "the text 'None'" in text.summary and "cleared the field to None" in text.summary
    copied = check(read_jsonl(HERE / "metadata-copied-across-sessions-bad.jsonl")).findings[0]
    assert copied.session == "s2" and "session s1 by A" in copied.summary
    assert [o.session for o in copied.ops] == ["s1", "s2"]  # the read and the write it came from
    leaked = check(read_jsonl(HERE / "metadata-leaked-to-another-session-bad.jsonl")).findings[0]
    assert leaked.session == "s2" and "session s1 by A" in leaked.summary


def test_a_value_no_write_anywhere_produced_is_still_i4():
    from sessioncheck.checking.history import Event as E

    evs = [E("A", "invoke", "persist", "s1", {"model": "x"}, 1), E("A", "ok", "persist", "s1", None, 2),
           E("B", "invoke", "read", "s1", None, 3),
           E("B", "ok", "read", "s1", {"messages": [], "metadata": {"model": "zzz"}}, 4)]
    assert check(evs).findings[0].invariant == "I4"


def test_lost_append_witness_is_the_add_and_the_read():
    result = check(read_jsonl(HERE / "lost-append-bad.jsonl"))
    f = result.findings[0]
    assert f.summary == "m2, acknowledged to B at t=4, is missing from the read by C at t=5..6"
    assert [(o.process, o.f) for o in f.ops] == [("B", "add"), ("C", "read")]


# -- small hand-made cases ---------------------------------------------------------


def op(p, f, v, start, end, status="ok", out=None, session="s"):
    return Operation(p, f, session, v, start, math.inf if status in ("info", "pending") else end,
                     status, out)


def rd(p, start, end, msgs, meta=None, session="s"):
    return op(p, "read", None, start, end, out={"messages": msgs, "metadata": meta or {}},
              session=session)


def test_seen_message_must_not_vanish():
    # m1's add never answered, but once C saw it, D (later) must see it too.
    h = [op("A", "add", "m1", 1, 2, "info"), rd("C", 3, 4, ["m1"]), rd("D", 5, 6, [])]
    result = check(h)
    assert result.verdict == "violation"
    assert result.findings[0].invariant == "I1"
    assert "seen by C in a read that ended at t=4" in result.findings[0].summary


def test_failed_add_must_not_appear():
    h = [op("A", "add", "m1", 1, 2, "fail"), rd("C", 3, 4, ["m1"])]
    assert check(h).findings[0].summary.endswith("failed (it certainly did not take effect)")


def test_add_invoked_after_the_read_cannot_be_in_it():
    h = [rd("C", 1, 2, ["m1"]), op("A", "add", "m1", 3, 4)]
    assert "after the read ended" in check(h).findings[0].summary


def test_info_write_may_take_effect_late_or_never():
    w = op("A", "persist", {"k": "x"}, 1, 2, "info")
    assert check([w, rd("B", 10, 11, [], {"k": "x"})]).ok
    assert check([w, rd("B", 10, 11, [], {})]).ok
    assert check([w, rd("B", 10, 11, [], {"k": "x"}), rd("B", 12, 13, [], {})]).verdict == "violation"


def test_fail_write_never_takes_effect():
    h = [op("A", "persist", {"k": "x"}, 1, 2, "fail"), rd("B", 3, 4, [], {"k": "x"})]
    assert check(h).findings[0].invariant == "I4"


def test_value_from_nowhere_is_I4():
    h = [op("A", "persist", {"k": "x"}, 1, 2), rd("B", 3, 4, [], {"k": "y"})]
    f = check(h).findings[0]
    assert (f.invariant, f.subject) == ("I4", "k")


def test_read_that_is_not_a_state_is_I4():
    h = [op("A", "read", None, 1, 2, out={"messages": "oops"})]
    assert check(h).findings[0].invariant == "I4"


def test_writes_to_other_fields_do_not_disturb():
    h = [op("A", "persist", {"a": "1"}, 1, 2), op("A", "persist", {"b": "2"}, 3, 4),
         rd("B", 5, 6, [], {"a": "1", "b": "2"})]
    assert check(h).ok
    h[-1] = rd("B", 5, 6, [], {"b": "2"})
    assert check(h).findings[0].subject == "a"


def test_sessions_are_independent():
    h = [op("A", "add", "m1", 1, 2, session="x"), rd("B", 3, 4, [], session="y")]
    assert check(h).ok


def test_duplicate_message_id_is_a_history_error():
    with pytest.raises(HistoryError, match="added twice"):
        check([op("A", "add", "m1", 1, 2), op("B", "add", "m1", 3, 4)])


def test_events_and_operations_give_the_same_verdict():
    events = read_jsonl(HERE / "lost-append-bad.jsonl")
    from sessioncheck.checking.history import pair

    assert check(events).findings[0].summary == check(pair(events)).findings[0].summary


def test_unknown_when_the_search_runs_out():
    # Eight writes that all overlap, and overlapping reads of their values:
    # many configurations stay possible at once.
    h = [op(f"W{i}", "persist", {"k": f"v{i}"}, 0, 100) for i in range(8)]
    h += [rd(f"R{i}", 1 + i, 50 + i, [], {"k": f"v{i % 8}"}) for i in range(8)]
    assert check(h).verdict == "ok"
    tight = check(h, max_states=2)
    assert tight.verdict == "unknown" and "field 'k'" in tight.reason
    assert check(h, budget=0.0).verdict == "unknown"


def test_many_unanswered_clears_do_not_blow_up_the_search():
    # 40 clears whose outcome is unknown, then reads of None between other
    # writes: each read may be explained by any of them, and they are
    # interchangeable, so the search must stay small.
    h = [op(f"W{i}", "persist", {"k": None}, i, None, "info") for i in range(40)]
    t = 40
    for i in range(40):
        h += [op(f"X{i}", "persist", {"k": f"v{i}"}, t, t + 1), rd(f"R{i}", t + 2, t + 3, [])]
        t += 4
    started = time.perf_counter()
    result = check(h, budget=10)
    assert result.verdict == "ok" and time.perf_counter() - started < 2
    # One more write and a read of None: that needs a 41st clear.
    h += [op("Y", "persist", {"k": "w"}, t, t + 1), rd("R40", t + 2, t + 3, [])]
    result = check(h, budget=10)
    assert result.verdict == "violation" and result.findings[0].subject == "k"


def test_tiny_history_is_fast():
    h = [op("A", "add", f"m{i}", 3 * i, 3 * i + 2) for i in range(10)]
    h += [op("B", "persist", {"model": f"v{i}"}, 3 * i + 1, 3 * i + 2) for i in range(10)]
    h += [rd("final", 100, 101, [f"m{i}" for i in range(10)], {"model": "v9"})]
    assert check(h).ok
    n = 300
    t = time.perf_counter()
    for _ in range(n):
        check(h)
    per_call = (time.perf_counter() - t) / n
    assert per_call < 0.003, per_call  # about 0.1 ms here; generous for slow CI


# -- properties ---------------------------------------------------------------------

KEYS = ("model", "tokens")


@st.composite
def valid_histories(draw, deletes: bool = False):
    """Operations of 1-4 processes on 1-2 sessions with random overlapping
    intervals; each takes effect at a random instant inside its interval
    (info ones maybe never), in the order of those instants.  With
    ``deletes``, some operations delete the session (clear it all)."""
    n_proc = draw(st.integers(1, 4))
    n = draw(st.integers(1, 24))
    clock = [0.0] * n_proc
    ops = []
    for k in range(n):
        p = draw(st.integers(0, n_proc - 1))
        start = clock[p] + draw(st.integers(0, 3))
        end = start + draw(st.integers(0, 6))
        clock[p] = end + 1
        lin = start + (end - start) * draw(st.floats(0, 1))
        session = draw(st.sampled_from(["s1", "s2"]))
        f = draw(st.sampled_from(["add", "add", "persist", "read", "read", *(["delete"] if deletes else [])]))
        if f == "add":
            value = f"m{k}"
        elif f == "persist":
            value = draw(st.dictionaries(st.sampled_from(KEYS),
                                         st.sampled_from([None, "", f"v{k}", "x"]), min_size=1))
        else:
            value = None
        status = "ok"
        if f != "read" and draw(st.integers(0, 9)) == 0:
            status = "info"
            if draw(st.booleans()):
                lin = None
        ops.append([Operation(f"P{p}", f, session, value, start, end if status == "ok" else math.inf,
                              status, None, index=k), lin])
    state: dict = {}
    for o, lin in sorted((x for x in ops if x[1] is not None), key=lambda x: x[1]):
        msgs, meta = state.setdefault(o.session, ([], {}))
        if o.f == "delete":
            msgs.clear()
            meta.clear()
        elif o.f == "add":
            msgs.append(o.value)
        elif o.f == "persist":
            for key, v in o.value.items():
                if v is None:
                    meta.pop(key, None)
                else:
                    meta[key] = v
        else:
            o.output = {"messages": list(msgs), "metadata": dict(meta)}
    last = max(max(o.start, o.end if o.end != math.inf else o.start) for o, _ in ops) + 1
    finals = []
    for i, s in enumerate(sorted(state)):
        msgs, meta = state[s]
        finals.append(Operation("final", "read", s, None, last + i, last + i,
                                "ok", {"messages": list(msgs), "metadata": dict(meta)}))
    return [o for o, _ in ops] + finals


# More examples for a deep local run: SESSIONCHECK_CHECKER_EXAMPLES=5000
FAST = settings(max_examples=int(os.environ.get("SESSIONCHECK_CHECKER_EXAMPLES", "150")),
                deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(valid_histories())
def test_valid_histories_pass(history):
    result = check(history)
    assert result.verdict == "ok", [f.summary for f in result.findings]


@FAST
@given(valid_histories(deletes=True))
def test_valid_histories_with_deletes_pass(history):
    result = check(history)
    assert result.verdict == "ok", [f.summary for f in result.findings]


@FAST
@given(valid_histories(deletes=True), st.data())
def test_a_deleted_message_that_comes_back_is_caught(history, data):
    # Put into the final read a message acknowledged before an acknowledged
    # delete began (the final read starts after every delete ended).
    fins = {o.session: o for o in history if o.process == "final"}
    candidates = [(fins[d.session], a.value) for d in history if d.f == "delete" and d.status == "ok"
                  for a in history if a.f == "add" and a.session == d.session and a.status == "ok"
                  and a.end < d.start and d.session in fins]
    assume(candidates)
    fin, m = data.draw(st.sampled_from(candidates))
    assume(m not in fin.output["messages"])
    fin.output["messages"].append(m)
    result = check(history)
    assert result.verdict == "violation"
    assert any(f.invariant in ("I1", "I2") and f.subject == m for f in result.findings)


def _acked_in_final(history):
    finals = [o for o in history if o.process == "final"]
    for fin in finals:
        for m in fin.output["messages"]:
            add = next(o for o in history if o.f == "add" and o.value == m)
            if add.status == "ok":
                return fin, m
    return None, None


@FAST
@given(valid_histories())
def test_dropping_an_acknowledged_message_is_caught(history):
    fin, m = _acked_in_final(history)
    assume(fin is not None)
    fin.output["messages"].remove(m)
    result = check(history)
    assert result.verdict == "violation"
    assert any(f.invariant == "I1" and f.subject == m for f in result.findings)


@FAST
@given(valid_histories(), st.data())
def test_duplicating_a_message_is_caught(history, data):
    reads = [o for o in history if o.f == "read" and o.output and o.output["messages"]]
    assume(reads)
    r = data.draw(st.sampled_from(reads))
    m = data.draw(st.sampled_from(r.output["messages"]))
    r.output["messages"].insert(data.draw(st.integers(0, len(r.output["messages"]))), m)
    result = check(history)
    assert result.verdict == "violation"
    assert any(f.invariant == "I1" and f.subject == m for f in result.findings)


@FAST
@given(valid_histories(), st.data())
def test_a_stale_value_in_the_final_read_is_caught(history, data):
    # A value is certainly stale if every write of it ended before some
    # acknowledged write of another value began.
    fins = {o.session: o for o in history if o.process == "final"}
    candidates = []
    for s, fin in fins.items():
        for key in KEYS:
            writes = [o for o in history if o.f == "persist" and o.session == s and key in o.value]
            for w in writes:
                v = w.value[key]
                same = [x for x in writes if x.value[key] == v]
                if any(o.status == "ok" and o.value[key] != v and all(x.end < o.start for x in same)
                       for o in writes):
                    candidates.append((fin, key, v))
    assume(candidates)
    fin, key, v = data.draw(st.sampled_from(candidates))
    meta = fin.output["metadata"]
    if v is None:
        meta.pop(key, None)
    else:
        meta[key] = v
    result = check(history)
    assert result.verdict == "violation"
    assert any(f.invariant in ("I3", "I4") and f.subject == key for f in result.findings)


def test_events_from_a_file_round_trip(tmp_path):
    from sessioncheck.checking.history import write_jsonl

    events = read_jsonl(HERE / "register-tricky-bad.jsonl")
    write_jsonl(events, tmp_path / "h.jsonl")
    assert check(read_jsonl(tmp_path / "h.jsonl")).findings[0].subject == "model"
    assert all(isinstance(e, Event) for e in events)


def test_half_steps_print_as_logical_times():
    # An engine may place an observation between two steps (t + 0.5).
    h = [op("A", "add", "m1", 1, 2), rd("power:strict", 2.5, 2.5, [])]
    assert check(h).findings[0].summary == \
        "m1, acknowledged to A at t=2, is missing from the read by power:strict at t=2.5..2.5"


def test_clock_readings_print_as_seconds_since_the_start():
    h = [op("A", "add", "m1", 1000.25, 1000.5), rd("B", 1001.125, 1001.3, [])]
    assert "acknowledged to A at t=0.2500s" in check(h).findings[0].summary


def test_a_delete_starting_at_the_instant_a_read_ends_may_come_before_it():
    # Found by test_valid_histories_with_deletes_pass: the read and the
    # delete both at t=8..8 are concurrent, so the read may follow the
    # delete and see an empty session.
    history = [
        Operation("P2", "add", "s1", "m1", 0, 0, "ok"),
        Operation("P0", "add", "s1", "m0", 0, 4, "ok"),
        Operation("P0", "delete", "s1", None, 8, 8, "ok"),
        Operation("P1", "read", "s1", None, 8, 8, "ok", {"messages": [], "metadata": {}}),
        Operation("final", "read", "s1", None, 9, 9, "ok", {"messages": [], "metadata": {}}),
    ]
    assert check(history).verdict == "ok", [f.summary for f in check(history).findings]
    # a read that ends before the delete starts must still see the messages
    history[3] = Operation("P1", "read", "s1", None, 7, 7, "ok", {"messages": [], "metadata": {}})
    assert check(history).verdict == "violation"


def test_one_json_number_is_one_value_whatever_its_python_type():
    # PostgreSQL's jsonb gives a float holding an integer back as the integer
    w = op("A", "persist", {"k": 1e16, "n": {"x": [2.0]}}, 1, 2)
    assert check([w, rd("B", 3, 4, [], {"k": 10**16, "n": {"x": [2]}})]).ok
    # a number that changed is still caught, and a boolean is not a number
    for changed in ({"k": 1e16 + 2, "n": {"x": [2]}}, {"k": 10**16, "n": {"x": [2.5]}},
                    {"k": 10**16, "n": {"x": [True]}}):
        assert check([w, rd("B", 3, 4, [], changed)]).findings[0].invariant == "I4", changed


def test_a_large_float_is_the_decimal_number_its_json_text_says():
    # jsonb keeps 4.394500063374095e+16 as the decimal 43945000633740950
    w = op("A", "persist", {"k": 4.394500063374095e+16}, 1, 2)
    assert check([w, rd("B", 3, 4, [], {"k": 43945000633740950})]).ok
    assert check([w, rd("B", 3, 4, [], {"k": 43945000633740951})]).findings[0].invariant == "I4"
