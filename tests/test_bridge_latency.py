"""Live regeneration's latency bookkeeping (`latency.RegenTrace`, `latency.Lead`) and the splice:
old and new notes never overlap, nothing old is played past the splice, a first note that is
already due goes out at once. The scheduler is driven with explicit wall times (no sleeping, no
timing asserts)."""

from __future__ import annotations

import random
import time

import pytest

from emsync_bridge.bench.live import splice_check
from emsync_bridge.bridge.daemon import Bridge, BridgeConfig, Job, Plan, _supersede
from emsync_bridge.bridge.events import NoteEvent, note_off, note_on
from emsync_bridge.bridge.latency import STAGES, Lead, RegenTrace
from emsync_bridge.bridge.scheduler import LiveScore, PlayClock, Scheduler
from emsync_bridge.bridge.sinks import RecordingSink, Sent


# ------------------------------------------------------------------------- bookkeeping


def test_trace_stages_add_up_to_the_latency_in_order():
    tr = RegenTrace("markers", trigger=10.000, replan=10.011, submit=10.0115, job_start=10.013,
                    first_token=10.019, first_note=10.020, sent=10.041, splice=5.0, note_time=5.0)
    st = tr.stages()
    assert list(st) == list(STAGES)
    assert st == pytest.approx({"debounce": 0.011, "plan": 0.0005, "queue": 0.0015, "first_token": 0.006,
                                "first_note": 0.001, "play_head": 0.021})
    assert sum(st.values()) == pytest.approx(tr.latency) and tr.latency == pytest.approx(0.041)
    d = tr.as_dict()
    assert d["latency_s"] == pytest.approx(0.041) and d["stages_s"] == st


def test_incomplete_trace_has_no_stages_and_lateness_needs_the_send():
    tr = RegenTrace("osc", trigger=1.0, replan=1.0, submit=1.001, job_start=1.002, first_token=1.01)
    assert not tr.complete and tr.latency is None and tr.late_by is None
    with pytest.raises(ValueError):
        tr.stages()
    assert "stages_s" not in tr.as_dict()
    tr.first_note, tr.sent, tr.note_time, tr.head_at_send = 1.011, 1.012, 3.0, 3.004
    assert tr.complete and tr.late_by == pytest.approx(0.004)


def test_lead_is_sized_from_measured_first_note_times():
    lead = Lead(initial=0.06)
    assert lead() == 0.06  # nothing measured yet
    for s in [0.012, 0.016, 0.014, 0.02, 0.013]:
        lead.record(s)
    assert lead() == pytest.approx(1.5 * 0.02 + 0.01)  # p90 of 5 samples = the largest
    for _ in range(20):
        lead.record(0.005)
    assert lead() == pytest.approx(0.03)  # floor (5 ms x 1.5 + 10 ms is below it)
    for _ in range(20):
        lead.record(1.0)
    assert lead() == pytest.approx(0.25)  # ceiling: a slow machine never waits longer than this
    assert Lead(0.08)() == 0.08  # --lead S fixes it


# ------------------------------------------------------------------------- the splice


def drive(sched: Scheduler, t0: float, t1: float, step: float = 0.001) -> float:
    w = t0
    while w <= t1:
        sched.pump(w)
        w += step
    return w


def old_score() -> LiveScore:
    """Held chords that cross 2.0 s and notes after it, on several channels."""
    s = LiveScore()
    evs = []
    for i in range(30):
        t = 0.1 * i
        inst = ("piano", "strings", "bass", "guitar", "drums")[i % 5]
        evs.append(NoteEvent(t, True, inst, 60 + i % 7, 90))
        evs.append(NoteEvent(t + 0.45, False, inst, 60 + i % 7))
    evs.sort(key=lambda e: (e.time, e.on))
    s.append(evs, until=3.5)
    return s


NEW = [NoteEvent(0.0, True, "piano", 72, 100), NoteEvent(0.0, True, "bass", 60, 100),  # 60: also an old pitch
       NoteEvent(0.3, False, "piano", 72), NoteEvent(0.3, False, "bass", 60)]


def splice(sched, score, sink, at: float, wall: float, append_wall: float):
    """Replace the score from `at` (at `wall`), append the new notes at `append_wall`; play on."""
    drive(sched, 0.0, wall)
    score.replace_from(at)
    sched.notify()
    drive(sched, wall, append_wall)
    score.append([NoteEvent(at + e.time, e.on, e.instrument, e.pitch, e.velocity) for e in NEW], until=at + 1.0)
    sched.notify()
    drive(sched, append_wall, at + 0.6)
    stream = list(sink.sent)
    first = next(i for i, s in enumerate(stream) if s.msg.type == "note_on" and s.project_time == at
                 and s.msg.note == 72)
    return stream, first


@pytest.mark.parametrize("case", ["ahead", "due_on_arrival"])
def test_splice_old_and_new_notes_never_overlap(case):
    clock, sink = PlayClock(), RecordingSink(clock=lambda: 0.0)
    score = old_score()
    sched = Scheduler(sink, clock, score)
    sched.record_errors = True
    sched.play(0.0, 0.0)
    if case == "ahead":  # the new notes are in the score before the play head reaches the splice
        stream, first = splice(sched, score, sink, at=2.0, wall=1.95, append_wall=1.97)
    else:  # the model was slower than the lead: the splice is due when its first note arrives
        stream, first = splice(sched, score, sink, at=2.0, wall=1.98, append_wall=2.012)
    # Held old notes crossing the splice are released before the first new note, and no old note
    # whose time is at or after the splice was ever sent.
    assert splice_check(stream, first, 2.0) == {"overlap": 0, "doubled": 0}
    assert sched.silences["regenerate"] >= 1
    new_ons = [s for s in stream[first:] if s.msg.type == "note_on"]
    assert {(s.msg.channel, s.msg.note) for s in new_ons} == {(e.channel, e.pitch) for e in NEW if e.on}
    # Sent the moment it is due (pump steps are 1 ms): at its time, or on arrival if that is later.
    due = 2.0 if case == "ahead" else 2.012
    sent_at = next(pos for t, pos in sched.errors if t == 2.0)
    assert due - 1e-9 <= sent_at <= due + 0.0011
    assert sched.late_skipped == 0
    sched.stop()
    assert sink.sounding() == set()


def test_splice_check_counts_an_old_note_left_sounding_and_old_notes_past_the_splice():
    """The check itself can fail: a stream where the old note is never released, and one where an
    old note at the splice time was played as well as the new one."""
    held = [Sent(0.0, note_on(0, 60, 90), 1.5), Sent(0.0, note_on(0, 72, 100), 2.0)]
    assert splice_check(held, 1, 2.0) == {"overlap": 1, "doubled": 0}
    doubled = [Sent(0.0, note_on(1, 64, 90), 2.0), Sent(0.0, note_off(1, 64), 2.0),
               Sent(0.0, note_on(0, 72, 100), 2.0)]
    assert splice_check(doubled, 2, 2.0) == {"overlap": 0, "doubled": 1}


@pytest.mark.parametrize("seed", range(6))
def test_random_splices_ahead_and_due_leave_no_overlap_no_doubles_and_nothing_stuck(seed):
    rng = random.Random(seed)
    clock, sink = PlayClock(), RecordingSink(clock=lambda: 0.0)
    score = old_score()
    score.append([NoteEvent(3.5 + 0.1 * i, on, "strings", 50 + i % 4, 80 if on else 0)
                  for i in range(60) for on in (True, False)], until=10.0)
    sched = Scheduler(sink, clock, score)
    sched.play(0.0, 0.0)
    wall = 0.0
    for _ in range(8):
        wall = drive(sched, wall, wall + rng.uniform(0.05, 0.4))
        head = clock.position(wall)
        at = head + rng.uniform(0.0, 0.05)  # spliced just ahead of the play head
        score.replace_from(at)
        sched.notify()
        arrive = wall + rng.uniform(0.0, 0.06)  # the first note may arrive after it is due
        wall = drive(sched, wall, arrive)
        score.append([NoteEvent(at + e.time, e.on, e.instrument, e.pitch, e.velocity) for e in NEW], until=at + 1.0)
        sched.notify()
        n0 = len(sink.sent)
        wall = drive(sched, wall, max(wall, at) + 0.05)
        stream = list(sink.sent)
        first = next(i for i in range(n0, len(stream)) if stream[i].msg.type == "note_on"
                     and stream[i].project_time == pytest.approx(at) and stream[i].msg.note == 72)
        assert splice_check(stream, first, at) == {"overlap": 0, "doubled": 0}
    assert sched.late_skipped == 0
    sched.stop()
    assert sink.sounding() == set()


# ------------------------------------------------------------------------- superseded jobs


def _plan(*boundaries):
    return Plan(origin=0.0, end=30.0, boundaries=tuple(boundaries), emotions=((0.0, 0.0, 0.0),), markers=(),
                tempo=())


def _queued(bridge) -> list:
    out = []
    while not bridge._jobs.empty():
        out.append(bridge._jobs.get_nowait())
    return out


def test_a_change_before_the_previous_job_spliced_starts_no_later_than_that_job(tmp_path):
    """Half a marker bank plans a job from 5 s; the rest of the bank differs only at 9 s. Until
    the first job has put its splice into the score, the score after 5 s still follows the older
    plan, so the second job must start at 5 s too (it used to start at the boundary before 9 s
    and leave old music, or silence, between 5 s and there)."""
    bridge = Bridge(BridgeConfig(spool=tmp_path, mode="commit", analyze_video=False), engine=object())
    bridge.plan = _plan(2.0, 5.0)
    bridge._submit(_plan(2.0, 5.0, 7.0), 5.0, "markers", 1.0, full=False)
    bridge._submit(_plan(2.0, 5.0, 7.0, 9.0), 7.0, "markers", 1.01, full=False)
    assert [j.from_time for j in _queued(bridge)] == [5.0, 5.0]
    # Once the newest job has spliced and its generation is past 7 s, a change from 7 s on starts there.
    bridge._spliced_seq = bridge._job_seq
    bridge.generation = {"complete": False}
    bridge.score.generated_until = 12.0
    bridge._submit(_plan(2.0, 5.0, 7.0, 9.5), 7.0, "markers", 1.02, full=False)
    assert [j.from_time for j in _queued(bridge)] == [7.0]


def test_a_job_superseded_before_it_started_is_covered_by_the_next():
    old = Job(1, 5.0, _plan(2.0), "markers", trigger_wall=1.0, submit_wall=1.01)
    new = Job(2, 7.0, _plan(2.0, 7.0), "markers", trigger_wall=1.02, submit_wall=1.03)
    merged = _supersede(old, new)
    assert (merged.seq, merged.from_time, merged.trigger_wall, merged.plan) == (2, 5.0, 1.0, new.plan)
    assert _supersede(new, old).from_time == 5.0


# ------------------------------------------------------------------------- bench-live --rounds


def test_bench_live_regen_rounds_report_every_round_its_load_and_a_consistent_breakdown(tmp_path):
    """Two short rounds through the real daemon (shipped model, the REAPER simulator over UDP):
    every round is reported with the load around it, each trial's stages plus the OSC hop add up
    to its latency, and nothing is stuck, doubled or overlapping at a splice. No speed asserted."""
    from emsync_bridge.bench.live import bench_regen_rounds, format_regen
    from emsync_bridge.runtime import load_engine

    engine, files = load_engine()
    res = bench_regen_rounds(engine, files, tmp_path, trials=3, rounds=2)
    assert len(res["rounds"]) == 2
    for r in res["rounds"]:
        assert len(r["loadavg_before"]) == 3 and len(r["loadavg_after"]) == 3
        assert len(r["per_trial_ms"]) == 3 - r["no_note_within_3s"] >= 1
        for t in r["per_trial_ms"]:
            assert t["osc_in"] + sum(t[k] for k in STAGES) == pytest.approx(t["latency"], abs=0.01)  # ms, rounded
            assert all(t[k] >= 0 for k in STAGES)
        assert (r["stuck"], r["doubled"], r["overlap"]) == (0, 0, 0)
    assert res["worst"]["max"] == max(r["latency_ms"]["max"] for r in res["rounds"])
    text = format_regen(res)
    assert [line.split()[0] for line in text.splitlines()[1:3]] == ["1", "2"] and "load" in text


def test_bench_live_bad_rounds_is_a_one_line_error():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "emsync_bridge", "bench-live", "--rounds", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["error: --rounds and --trials must be at least 1"]


# ------------------------------------------------------------------------- a marker dragged


def test_a_dragged_marker_splices_once_when_released_not_at_every_resend(tmp_path):
    """REAPER resends the marker bank about every 33 ms while a marker is dragged. Each resend
    used to start a regeneration and cut the music (28 cuts for a 1 s drag); now the first change
    is answered at once and the rest are held until the drag ends, then regenerated once with
    the marker where it was let go. Real daemon, shipped model, simulator over UDP."""
    from emsync_bridge.bench.live import _rig, _wait
    from emsync_bridge.runtime import load_engine

    engine, files = load_engine()
    sink = RecordingSink()
    bridge, sim = _rig(tmp_path, engine, files, sink, markers=[(1, "", 1.0), (2, "", 2.0), (3, "", 30.0)],
                       duration=60.0)
    try:
        assert _wait(lambda: bridge.score.generated_until > 5.0, 120)
        sim.play(3.0)
        assert _wait(lambda: sim.position() > 3.3, 10)
        cuts0, heard0 = bridge.scheduler.silences["regenerate"], len(bridge.regen_latencies)
        for k in range(20):  # 20 resends, 33 ms apart: a drag from 30 s to 18.6 s
            sim.move_marker(3, 30.0 - 0.6 * k)
            time.sleep(0.033)
        let_go = 30.0 - 0.6 * 19
        assert _wait(lambda: any(abs(b - let_go) < 1e-4 for b in bridge.plan.boundaries), 10), \
            "the plan follows the marker where it was let go"
        assert _wait(lambda: len(bridge.regen_latencies) >= heard0 + 1, 10)
        time.sleep(0.5)
        assert 1 <= bridge.scheduler.silences["regenerate"] - cuts0 <= 3  # 1 resend answered + the release
        assert 1 <= len(bridge.regen_latencies) - heard0 <= 2
    finally:
        sim.stop()
        _wait(lambda: not bridge.live.playing, 5)
        time.sleep(0.1)
        bridge.close()
        sim.close()
    assert sink.sounding() == set()
