"""Bridge pieces on their own: token streaming, the play clock and scheduler (driven with explicit
wall times, so no sleeping and no timing asserts), commit-mode MIDI, the OSC server under
malformed input, and the marker overlay."""

from __future__ import annotations

import random
import socket
import struct
import time

import mido
import pytest

from emsync_bridge.bridge.commit import commit, midi_file, notes_from_events, quantize_events
from emsync_bridge.bridge.daemon import Plan, Slot, _overlay
from emsync_bridge.bridge.events import (
    MidiMsg,
    NoteEvent,
    TokenStream,
    events_from_tokens,
)
from emsync_bridge.bridge.osc import BridgeClient, OscServer, build_message
from emsync_bridge.bridge.scheduler import LiveScore, PlayClock, Scheduler
from emsync_bridge.bridge.sinks import RecordingSink, sounding_after
from emsync_bridge.errors import EmsyncError
from emsync_bridge.music import vocab
from emsync_bridge.music.midi import tokens_to_score
from emsync_bridge.music.splice import primer_until, tick_of, trim_primer
from emsync_bridge.timeline.spool import load_manifest
from emsync_bridge.timeline.state import Marker, TempoPoint
from emsync_bridge.tempo import TempoMap


def random_tokens(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.3:
            out.append(vocab.timeshift(rng.randint(1, 40)))
        elif r < 0.35:
            out.append(vocab.CHORD)
        elif r < 0.37:
            out.append(vocab.BAR)
        else:
            inst = rng.choice(vocab.INSTRUMENTS)
            pitch = rng.randint(60, 66)  # few pitches: many re-strikes and same-tick on/off pairs
            out.append(vocab.note_on(inst, pitch) if rng.random() < 0.55 else vocab.note_off(inst, pitch))
    return out


@pytest.mark.parametrize("early", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_token_stream_matches_tokens_to_score(seed, early):
    tokens = random_tokens(600, seed)
    score = tokens_to_score(tokens)
    events = events_from_tokens(tokens, early=early)
    notes = sorted((n[0], n[1], round(n[2], 6), round(n[3], 6), n[4]) for n in notes_from_events(events))
    expect = sorted((n.instrument, n.pitch, round(n.start, 6), round(n.end, 6), n.velocity) for n in score.notes)
    assert notes == expect
    times = [e.time for e in events]
    assert times == sorted(times), "events come out in time order (append-only live score)"


def test_primer_until_cuts_exactly_and_closes_held_notes():
    p = vocab.note_on("piano", 60)
    tokens = [vocab.BAR, p, vocab.timeshift(100), vocab.note_on("bass", 40), vocab.timeshift(100),
              vocab.note_off("piano", 60)]
    primer = primer_until(tokens, 150)
    assert sum(vocab.shift_ticks(t) for t in primer) == 150
    assert primer[-2:] == [vocab.note_off("piano", 60), vocab.note_off("bass", 40)] or set(primer[-2:]) == {
        vocab.note_off("piano", 60), vocab.note_off("bass", 40)}
    # Past the end: silence is added up to the boundary.
    assert sum(vocab.shift_ticks(t) for t in primer_until(tokens, 400)) == 400
    assert primer_until(tokens, 0) == []
    kept, dropped = trim_primer(primer_until(tokens, 150), 3)
    assert dropped + sum(vocab.shift_ticks(t) for t in kept) == 150


def test_live_score_retract_before_and_after_the_scheduler_took_it():
    score = LiveScore()
    a = NoteEvent(1.0, True, "piano", 60, 80)
    b = NoteEvent(1.0, True, "piano", 62, 80)
    score.append([a, b])
    score.retract(b)  # not taken yet: gone
    assert score.events == [a]
    score.consumed = 1  # the scheduler took `a`
    score.retract(a)  # too late to remove: ended by a note-off at once
    assert score.events[-1] == NoteEvent(1.0, False, "piano", 60)


def test_midimsg_bytes_round_trip():
    for m in (MidiMsg("note_on", 9, note=36, velocity=100), MidiMsg("note_off", 2, note=60),
              MidiMsg("control_change", 3, control=123, value=0)):
        assert MidiMsg.from_bytes(m.bytes()) == m
        assert mido.Message.from_bytes(m.bytes()).bytes() == m.bytes()


# ---------------------------------------------------------------------------- clock + scheduler


def make_score(n_notes=50, spacing=0.1, length=0.05, start=0.0) -> LiveScore:
    s = LiveScore()
    evs = []
    for i in range(n_notes):
        t = start + i * spacing
        inst = vocab.INSTRUMENTS[i % 5]
        evs.append(NoteEvent(t, True, inst, 60 + i % 12, 90))
        evs.append(NoteEvent(t + length, False, inst, 60 + i % 12))
    evs.sort(key=lambda e: (e.time, e.on))
    s.append(evs, until=start + n_notes * spacing)
    return s


def drive(sched: Scheduler, t0: float, t1: float, step: float = 0.001):
    w = t0
    while w <= t1:
        sched.pump(w)
        w += step
    return w


def test_scheduler_sends_each_note_at_its_project_time():
    clock, sink = PlayClock(), RecordingSink(clock=lambda: 0.0)
    score = make_score()
    sched = Scheduler(sink, clock, score)
    sched.record_errors = True
    sched.play(1.0, wall=100.0)  # project 1.0 s at wall 100 s
    drive(sched, 100.0, 104.0)
    ons = [s for s in sink.sent if s.msg.type == "note_on"]
    assert [round(s.project_time, 6) for s in ons] == [round(1.0 + i * 0.1, 6) for i in range(40)]
    # Sent no earlier than intended and within one pump step after (virtual time: exact).
    assert all(-1e-9 <= pos - t <= 0.0011 for t, pos in sched.errors)
    assert sink.sounding() == set()


def test_clock_interpolates_and_relocks_on_jumps():
    c = PlayClock()
    c.start(0.0, 10.0)
    assert c.position(10.5) == pytest.approx(0.5)
    for k in range(1, 5):  # reports on time: no jump
        assert not c.report(k / 30, 10.0 + k / 30)
    assert c.position(11.0) == pytest.approx(1.0, abs=1e-6)
    assert not c.report(0.2 + 0.005, 10.2)  # 5 ms jitter: slewed, not a jump
    assert c.position(10.2) == pytest.approx(0.2, abs=0.001)
    assert c.report(5.0, 10.3)  # a seek
    assert c.position(10.4) == pytest.approx(5.1)


def test_stop_seek_loop_tempo_and_regeneration_leave_nothing_sounding():
    rng = random.Random(3)
    clock, sink = PlayClock(), RecordingSink(clock=lambda: 0.0)
    score = make_score(200, spacing=0.05, length=0.4)
    sched = Scheduler(sink, clock, score)
    wall = 0.0
    for _ in range(300):
        op = rng.choice(["play", "stop", "seek", "loop", "tempo", "regen", "run"])
        if op == "play":
            sched.play(rng.uniform(0, 9), wall)
        elif op == "stop":
            sched.stop()
        elif op in ("seek", "loop"):
            sched.report(rng.uniform(0, 9), wall, op)
        elif op == "tempo":
            sched.silence("tempo")
        elif op == "regen":
            t = rng.uniform(0, 10)
            score.replace_from(t)
            score.append([NoteEvent(t + 0.01 * k, True, "piano", 70 + k % 5, 80) for k in range(5)]
                         + [NoteEvent(t + 0.3 + 0.01 * k, False, "piano", 70 + k % 5) for k in range(5)])
        wall = drive(sched, wall, wall + rng.uniform(0, 0.3), 0.005)
        if op == "stop":
            assert sink.sounding() == set()
    sched.stop()
    assert sink.sounding() == set()
    assert sched.sent > 0


def test_regeneration_ahead_cuts_at_the_boundary_and_keeps_earlier_music():
    clock, sink = PlayClock(), RecordingSink(clock=lambda: 0.0)
    score = LiveScore()
    score.append([NoteEvent(0.5, True, "strings", 60, 80), NoteEvent(3.0, False, "strings", 60)])
    sched = Scheduler(sink, clock, score)
    sched.play(0.0, 0.0)
    drive(sched, 0.0, 1.0)
    score.replace_from(2.0)  # ahead of the play head (1.0)
    score.append([NoteEvent(2.0, True, "piano", 72, 90), NoteEvent(2.5, False, "piano", 72)])
    sched.notify()
    drive(sched, 1.0, 2.2)
    msgs = sink.messages()
    i_off = next(i for i, m in enumerate(msgs) if m.type == "note_off" and m.note == 60)
    i_on = next(i for i, m in enumerate(msgs) if m.type == "note_on" and m.note == 72)
    assert i_off < i_on, "the held string note is released before the new material starts"
    assert sched.silences["regenerate"] == 1
    assert sounding_after(msgs) == {(2, 72)}
    sched.stop()
    assert sink.sounding() == set()


def test_panic_silences():
    clock, sink = PlayClock(), RecordingSink(clock=lambda: 0.0)
    sched = Scheduler(sink, clock, make_score(10, spacing=0.1, length=5.0))
    sched.play(0.0, 0.0)
    drive(sched, 0.0, 0.6)
    assert sink.sounding()
    sched.silence("panic")
    assert sink.sounding() == set()
    assert {m.control for m in sink.messages() if m.type == "control_change"} == {123}


# ---------------------------------------------------------------------------- commit mode


def test_commit_writes_midi_on_the_project_beat_grid_and_manifest(tmp_path):
    from emsync_bridge.timeline.spool import ensure_spool

    spool = ensure_spool(tmp_path / "spool")
    events = [NoteEvent(1.0, True, "piano", 60, 90), NoteEvent(1.5, False, "piano", 60),
              NoteEvent(2.0, True, "drums", 36, 80), NoteEvent(2.1, False, "drums", 36)]
    for bpm in (120.0, 90.0):
        tempo = TempoMap([TempoPoint(0.0, bpm)])
        m = commit(spool, f"g{int(bpm)}", events, tempo, 0.0, 4.0, replace_from=None, project_id="p1")
        assert load_manifest(spool).generation_id == f"g{int(bpm)}"
        assert {i.instrument for i in m.items} == {"piano", "drums"}
        mid = mido.MidiFile(spool / f"out/g{int(bpm)}/piano.mid")
        tick, on_tick = 0, None
        for msg in mid.tracks[1]:
            tick += msg.time
            if msg.type == "note_on":
                on_tick = tick
        assert on_tick == round(1.0 * bpm / 60 * 960), "note tick = beats of the project tempo"
        assert any(msg.type == "set_tempo" and round(mido.tempo2bpm(msg.tempo)) == bpm for msg in mid.tracks[0])
        drums = mido.MidiFile(spool / f"out/g{int(bpm)}/drums.mid")
        assert {msg.channel for msg in drums.tracks[1] if msg.type == "note_on"} == {9}
    assert not list((spool / "out").glob("**/.*.tmp"))


def test_quantize_follows_the_tempo():
    ev = [NoteEvent(1.04, True, "piano", 60, 80), NoteEvent(1.5, False, "piano", 60)]
    q120 = quantize_events(ev, TempoMap([TempoPoint(0.0, 120.0)]), 0.25)
    q90 = quantize_events(ev, TempoMap([TempoPoint(0.0, 90.0)]), 0.25)
    assert q120[0].time == pytest.approx(1.0)  # 16ths are 0.125 s at 120
    assert q90[0].time == pytest.approx(1.0)  # 16ths are 1/6 s at 90: 1.0 is on the grid too
    ev2 = [NoteEvent(1.1, True, "piano", 60, 80), NoteEvent(1.5, False, "piano", 60)]
    assert quantize_events(ev2, TempoMap([TempoPoint(0.0, 120.0)]), 0.25)[0].time == pytest.approx(1.125)
    assert quantize_events(ev2, TempoMap([TempoPoint(0.0, 90.0)]), 0.25)[0].time == pytest.approx(1.0 + 1 / 6)


def test_midi_file_with_tempo_ramp_has_stepped_tempi():
    tm = TempoMap([TempoPoint(0.0, 100.0, linear=True), TempoPoint(4.0, 140.0)])
    mid = midi_file([("piano", 60, 0.5, 1.0, 80)], tm, 0.0, 6.0, ["piano"])
    tempi = [round(mido.tempo2bpm(m.tempo)) for m in mid.tracks[0] if m.type == "set_tempo"]
    assert tempi[0] >= 100 and tempi[-1] == 140 and len(tempi) > 5


# ---------------------------------------------------------------------------- plans, markers


def test_plan_first_difference():
    base = Plan(0.0, 30.0, (4.0, 10.0), ((0.0, 0.0, 0.0),), ((4.0, ""), (10.0, "")), ((0.0, 120.0, 4, 4, False),))
    moved = Plan(0.0, 30.0, (4.0, 12.0), ((0.0, 0.0, 0.0),), ((4.0, ""), (12.0, "")), ((0.0, 120.0, 4, 4, False),))
    assert base.first_difference(moved) == pytest.approx(10.0)
    emo = Plan(0.0, 30.0, (4.0, 10.0), ((0.0, 0.0, 0.0), (20.0, 0.8, 0.5)), base.markers, base.tempo)
    assert base.first_difference(emo) == pytest.approx(20.0)
    tempo = Plan(0.0, 30.0, base.boundaries, base.emotions, base.markers, ((0.0, 90.0, 4, 4, False),))
    assert base.first_difference(tempo) == 0.0
    assert base.first_difference(base) is None


def test_marker_overlay_follows_osc_bank():
    base = {1: Marker(1, "a", 4.0), 2: Marker(2, "joy", 10.0)}
    # A move of marker 1 past marker 2: the bank is re-sent in the new timeline order.
    slots = {1: Slot("joy", "2", 10.0), 2: Slot("a", "1", 12.0), 3: Slot("", "", 0.0)}
    out = _overlay(base, slots, lambda n, s: Marker(n, s.name or "", s.time))
    assert sorted((m.index, m.name, m.position) for m in out.values()) == [(1, "a", 12.0), (2, "joy", 10.0)]
    # Partial feedback (only a time for slot 1, no number yet): overlay by bank position.
    out = _overlay(base, {1: Slot(None, None, 5.0)}, lambda n, s: Marker(n, s.name or "", s.time))
    assert out[1].position == 5.0 and out[1].name == "a" and out[2].position == 10.0


# ---------------------------------------------------------------------------- OSC


def test_osc_server_survives_malformed_packets_and_counts():
    srv = OscServer("127.0.0.1", 0).start()
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        target = ("127.0.0.1", srv.port)
        bad = [
            b"",
            bytes(range(64)),
            b"/time",
            b"/beat/str\x00\x00\x00,s\x00\x00ab",
            build_message("/time", [2.0])[:-2],
            b"/time\x00\x00\x00",
            b"/time\x00\x00\x00,z\x00\x00",
            b"#bundle\x00" + b"\x00" * 8 + struct.pack(">i", 0x7FFFFFFF) + build_message("/time", [1.0]),
            build_message("/time", ["nope"]),
            build_message("/marker/x/time", [1.0]),
            build_message("/emsync/emotion", [0.5]),
            build_message("/emsync/regenerate/marker", ["one"]),
            build_message("/not/ours", [1]),
        ]
        for i, pkt in enumerate(bad):
            s.sendto(pkt, target)
            s.sendto(build_message("/time", [float(i)]), target)
        got = []
        deadline = time.monotonic() + 5
        while len(got) < len(bad) and time.monotonic() < deadline:
            try:
                ev = srv.events.get(timeout=0.1)
            except Exception:
                continue
            if ev.address == "/time" and ev.args[0] == float(len(got)):
                got.append(ev)
        assert len(got) == len(bad), "every valid message after a bad one is still handled"
        assert srv.counters["rejected"] >= 5
        assert srv.counters["unknown"] >= 1
        s.close()
    finally:
        srv.close()


def test_osc_refuses_non_loopback_without_flag():
    with pytest.raises(EmsyncError):
        OscServer("0.0.0.0", 0)


def test_bridge_client_times_out_cleanly():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    try:
        with BridgeClient(port=port, timeout=0.2) as c, pytest.raises(EmsyncError):
            c.status()
    finally:
        s.close()


def test_tick_of():
    assert tick_of(1.0) == 125
    ts = TokenStream(origin=2.0)
    assert ts.time_of(125) == pytest.approx(3.0)


@pytest.mark.parametrize("seed", range(4))
def test_early_stream_with_retractions_never_leaves_notes_sounding(seed):
    """Generation racing the play head: notes go out as sampled, same-tick cancellations are
    withdrawn (or ended at once when already sent); after stop nothing sounds."""
    rng = random.Random(seed)
    tokens = random_tokens(800, seed)
    clock, sink = PlayClock(), RecordingSink(clock=lambda: 0.0)
    score = LiveScore()
    sched = Scheduler(sink, clock, score, late_s=10.0)
    ts = TokenStream(origin=0.0, early=True)
    sched.play(0.0, 0.0)
    wall = 0.0
    for tok in tokens:
        evs = ts.feed(tok)
        for gone in ts.take_retracted():
            score.retract(gone)
        score.append(evs)
        # The play head sometimes runs right up to (or past) the generation cursor.
        wall = max(wall, ts.time_of(ts.tick) + rng.uniform(-0.05, 0.01))
        sched.pump(wall)
    score.append(ts.finish())
    drive(sched, wall, ts.time_of(ts.tick) + 2.0, 0.01)
    sched.stop()
    assert sink.sounding() == set()
    played = {(m.channel, m.note) for m in sink.messages() if m.type == "note_on"}
    assert played
