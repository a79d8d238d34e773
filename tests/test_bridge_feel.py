"""The daemon's drums carry the human feel `Generation.score()` gives them (music/groove.py):
TokenStream with a Feel on hand-made tokens, the same notes as `score()` for a real generation,
the live score and scheduler with hits moved off the tick order, and the real daemon's commit."""

from __future__ import annotations

import mido
import pytest
import torch

from emsync_bridge.bridge.commit import notes_from_events
from emsync_bridge.bridge.events import NoteEvent, TokenStream, events_from_tokens
from emsync_bridge.bridge.scheduler import LiveScore, PlayClock, Scheduler
from emsync_bridge.bridge.sinks import RecordingSink, sounding_after
from emsync_bridge.music import groove, vocab
from emsync_bridge.music.generate import Conditioning, SamplingConfig, drum_feel, generate
from emsync_bridge.music.midi import DEFAULT_VELOCITY, Note
from emsync_bridge.music.splice import primer_until, tick_of, trim_primer
from emsync_bridge.music.model import build_model
from emsync_bridge.runtime.torch_engine import TorchEngine
from emsync_bridge.tempo import TempoMap, TempoPoint
from emsync_bridge.timeline.spool import load_manifest

from test_bridge_daemon import engine, manifest_id, rig, wait_for  # noqa: F401 (fixtures)
from test_music_groove import _template

# 125 BPM: a 16th is 0.12 s, 15 ticks of 8 ms. The generation starts at project 12.0 s, the
# 100th 16th of the map (slot 4 of its bar): tick 15k is slot 4 + k.
SIXTEENTH = 0.12
ORIGIN = 12.0
KICK, SNARE, HAT, CRASH = 36, 38, 42, 49


def hand_feel() -> groove.Feel:
    # kick 0.2 of a 16th late, snare 0.1 early, hats (and cymbals) 0.4 late on odd 16ths; at half strength
    return groove.Feel(_template(kick=0.2, snare=-0.1, hats=0.4), TempoMap([TempoPoint(0.0, 125.0)]),
                       origin=ORIGIN, strength=0.5)


def drum(kind, pitch):
    return (vocab.note_on if kind == "on" else vocab.note_off)("drums", pitch)


def hand_tokens() -> list[int]:
    sh = vocab.timeshift(15)
    return [drum("on", KICK), vocab.note_on("piano", 60), sh,  # tick 0, slot 4
            drum("off", KICK), drum("on", HAT), drum("on", CRASH), drum("off", CRASH), sh,  # 15, slot 5 (odd)
            drum("on", SNARE), drum("on", HAT), sh, sh,  # 30, slot 6: the hat struck again
            drum("off", SNARE), drum("off", HAT), vocab.note_off("piano", 60)]  # 60


def at(tick: int, shift: float = 0.0) -> float:
    return ORIGIN + tick * vocab.TICK_S + shift


KICK_S, SNARE_S, HAT_S = 0.5 * 0.2 * SIXTEENTH, -0.5 * 0.1 * SIXTEENTH, 0.5 * 0.4 * SIXTEENTH


@pytest.mark.parametrize("early", [False, True])
def test_token_stream_moves_and_accents_drum_hits_and_leaves_pitched_notes(early):
    events = events_from_tokens(hand_tokens(), origin=ORIGIN, early=early, feel=hand_feel())
    notes = sorted((n[0], n[1], round(n[2], 9), round(n[3], 9), n[4]) for n in notes_from_events(events))
    r = lambda t: round(t, 9)  # noqa: E731
    assert notes == sorted([
        ("drums", KICK, r(at(0, KICK_S)), r(at(15, KICK_S)), 100),  # moved late, its length kept
        ("drums", HAT, r(at(15, HAT_S)), r(at(30, HAT_S)), 70),  # odd 16th: late
        # struck again on an even 16th (not moved) while the first hat sounds until 30 + HAT_S: it
        # waits for that note-off (a key sounds once at a time), as groove.apply_feel has it
        ("drums", HAT, r(at(30, HAT_S)), r(at(60, HAT_S)), 70),
        ("drums", SNARE, r(at(30, SNARE_S)), r(at(60, SNARE_S)), 90),  # moved early
        ("piano", 60, r(at(0)), r(at(60)), DEFAULT_VELOCITY),  # pitched: as it was
    ])  # the crash, struck and released within its tick, is no note at all
    assert [e.time for e in events] == sorted(e.time for e in events)
    # the same as the music side's rule for a score
    score = [Note("drums", KICK, 0.0, 0.12), Note("drums", HAT, 0.12, 0.24), Note("drums", HAT, 0.24, 0.48),
             Note("drums", SNARE, 0.24, 0.48), Note("piano", 60, 0.0, 0.48)]
    groove.apply_feel(score, hand_feel())
    assert sorted((n.instrument, n.pitch, r(ORIGIN + n.start), r(ORIGIN + n.end), n.velocity) for n in score) == notes


def test_early_stream_retracts_the_moved_hit_it_emitted():
    ts = TokenStream(origin=ORIGIN, early=True, feel=hand_feel())
    score = LiveScore()
    out = []
    for tok in hand_tokens()[:7]:  # up to the crash's note-off at tick 15
        evs = ts.feed(tok)
        gone = ts.take_retracted()
        for g in gone:
            score.retract(g)
        score.append(evs)
        out.append((evs, gone))
    crash_on = out[5][0][0]
    assert (crash_on.pitch, crash_on.time, crash_on.velocity) == (CRASH, pytest.approx(at(15, HAT_S)), 70)
    assert out[6] == ([], [crash_on]) and out[6][1][0] is crash_on  # the very event, withdrawn
    assert [e.pitch for e in score.events if e.on] == [60, KICK, HAT]  # gone from the score, the rest in time order
    assert score.times == sorted(score.times)


@pytest.mark.parametrize("early", [False, True])
def test_a_hit_is_never_moved_before_the_splice(early):
    # A splice at tick 30: the snare the feel pulls early stays on the splice; its note-off is not
    # moved either (the note keeps its length); the hat on an even 16th is not moved at all.
    ts = TokenStream(origin=ORIGIN, tick=30, early=early, feel=hand_feel())
    evs = []
    for tok in [drum("on", SNARE), drum("on", HAT), vocab.timeshift(30), drum("off", SNARE), drum("off", HAT)]:
        evs += ts.feed(tok)
    evs += ts.finish()
    assert sorted((e.pitch, e.on, round(e.time, 9)) for e in evs) == sorted(
        [(SNARE, True, round(at(30), 9)), (SNARE, False, round(at(60), 9)),
         (HAT, True, round(at(30), 9)), (HAT, False, round(at(60), 9))])
    assert {e.velocity for e in evs if e.on} == {90, 70}


@pytest.fixture(scope="module")
def small_engine():
    torch.manual_seed(0)
    return TorchEngine(build_model("emsync-small"))


@pytest.mark.parametrize("early", [False, True])
def test_streamed_drums_are_the_scores_drums(small_engine, early):
    """A real generation: the events the daemon would stream or commit have the drum notes of
    `Generation.score()`, feel included (within a tick: the score also snaps onsets onto the exact
    grid), and the same pitched notes as without the feel."""
    cond = Conditioning.constant(0, 0.8, [2.0], tempo=TempoMap([TempoPoint(0.0, 110.0)]))
    gen = generate(small_engine, 6.0, cond, SamplingConfig(seed=3))
    assert gen.feel is not None and gen.feel == drum_feel(cond, SamplingConfig(seed=3))
    events = events_from_tokens(gen.tokens, end_time=gen.duration, early=early, feel=gen.feel)
    streamed = sorted((n[1], n[2], n[4]) for n in notes_from_events(events) if n[0] == "drums" and n[2] < gen.duration)
    scored = sorted((n.pitch, n.start, n.velocity) for n in gen.score().notes if n.instrument == "drums")
    assert len(scored) >= 5 and len(streamed) == len(scored)
    for (p, t, v), (sp, st, sv) in zip(streamed, scored):
        assert (p, v) == (sp, sv) and abs(t - st) <= vocab.TICK_S
    assert sum(abs(t / vocab.TICK_S - round(t / vocab.TICK_S)) > 0.01 for _, t, _ in streamed) > len(streamed) / 2, \
        "most hits are off the 8 ms tick grid: moved by the feel"
    plain = events_from_tokens(gen.tokens, end_time=gen.duration, early=early)
    assert [e for e in events if e.instrument != "drums"] == [e for e in plain if e.instrument != "drums"]
    assert [e.time for e in events] == sorted(e.time for e in events)


def test_hits_the_scheduler_has_passed_are_sent_at_once_and_none_sticks():
    """A hit moved ahead of events already in the score goes into its place; one whose time the
    play head has passed (generation running late) is sent at the next step, not skipped; every
    note-on gets its note-off."""
    clock, sink = PlayClock(), RecordingSink(clock=lambda: 0.0)
    score = LiveScore()
    sched = Scheduler(sink, clock, score)
    sched.play(0.0, wall=0.0)
    piano = NoteEvent(1.0, True, "piano", 60, 80)
    score.append([piano, NoteEvent(1.5, False, "piano", 60)])
    early_hit = NoteEvent(0.99, True, "drums", KICK, 100)
    score.append([early_hit])  # before the piano, which the scheduler has not taken yet
    assert score.events[:2] == [early_hit, piano] and score.times == sorted(score.times)
    sched.pump(1.002)  # both sent
    late_hit = NoteEvent(0.995, True, "drums", SNARE, 90)  # arrives after the play head passed it
    score.append([late_hit, NoteEvent(1.1, False, "drums", SNARE), NoteEvent(1.1, False, "drums", KICK)])
    assert score.times == sorted(score.times)
    sched.pump(1.003)
    ons = [s for s in sink.sent if s.msg.type == "note_on"]
    assert [(s.msg.note, s.project_time) for s in ons] == [(KICK, 0.99), (60, 1.0), (SNARE, 0.995)]
    assert sched.late_skipped == 0
    t = 1.003
    while t < 2.0:
        sched.pump(t)
        t += 0.01
    assert sounding_after(sink.messages()) == set() and sink.sounding() == set()


def drum_notes(events, start: float, end: float) -> list[tuple[int, float, int]]:
    """(pitch, start, velocity) of the drum notes starting in [start, end)."""
    return sorted((n[1], round(n[2], 6), n[4]) for n in notes_from_events(events)
                  if n[0] == "drums" and start - 1e-9 <= n[2] < end)


def test_daemon_commits_drums_with_the_feel(rig):
    """Commit mode through the real daemon: the score's and the MIDI file's drum hits are where and
    as hard as the job's feel plays them (rebuilt here from the plan and the job's seed), every
    note-on in the file has its note-off, and a regeneration from a boundary lays its own feel on
    the generation's clock (primer and splice tick as the daemon cuts them)."""
    bridge, sim = rig(seed=5)
    spool = bridge.spool
    wait_for(lambda: manifest_id(spool) and bridge.generation.get("complete"), "the first commit")
    first = manifest_id(spool)
    plan = bridge.plan
    assert bridge.generation["from"] == plan.origin  # one job made the whole score
    feel = drum_feel(plan.conditioning(), SamplingConfig(seed=bridge.cfg.seed + bridge._job_seq))
    assert feel is not None
    want = drum_notes(events_from_tokens(bridge.tokens, origin=plan.origin, end_time=plan.end, feel=feel),
                      plan.origin, plan.end)
    assert len(want) >= 4 and drum_notes(bridge.score.events, plan.origin, plan.end) == want
    grid = drum_notes(events_from_tokens(bridge.tokens, origin=plan.origin, end_time=plan.end), plan.origin, plan.end)
    assert grid != want  # the feel changed something
    item = next(i for i in load_manifest(spool).items if i.instrument == "drums")
    mid = mido.MidiFile(spool / item.file)
    msgs, hits, tick = [], [], 0
    for m in mid.tracks[1]:
        tick += m.time
        if m.type in ("note_on", "note_off"):
            msgs.append(m)
            if m.type == "note_on" and m.velocity > 0:
                hits.append((m.note, item.position + tick * 0.5 / mid.ticks_per_beat, m.velocity))  # 120 BPM
    assert sounding_after(msgs) == set(), "no stuck notes"
    assert len(hits) == len(want)
    for (p, t, v), (wp, wt, wv) in zip(sorted(hits), want):
        assert (p, v) == (wp, wv) and abs(t - wt) < 1e-3

    old = list(bridge.tokens)
    sim.move_marker(2, 6.5)  # regenerated from the boundary at 2.0 (test_bridge_daemon)
    wait_for(lambda: (g := manifest_id(spool)) != first and g and bridge.generation.get("complete"),
             "the regenerated commit")
    plan = bridge.plan
    assert bridge.generation["from"] == pytest.approx(2.0)
    tick = tick_of(2.0 - plan.origin)
    primer_full = primer_until(old, tick)
    _, dropped = trim_primer(primer_full, bridge.cfg.primer_tokens)
    feel = drum_feel(plan.conditioning(), SamplingConfig(seed=bridge.cfg.seed + bridge._job_seq), dropped * vocab.TICK_S)
    ts = TokenStream(origin=plan.origin, tick=tick, feel=feel)
    events = [e for tok in bridge.tokens[len(primer_full):] for e in ts.feed(tok)] + ts.finish(tick_of(plan.duration))
    want = drum_notes(events, 2.0, plan.end)
    assert want and drum_notes(bridge.score.events, 2.0, plan.end) == want


def test_live_daemon_streams_drums_with_the_feel(rig):
    """Live mode through the real daemon: the live score is exactly what a TokenStream(early=True)
    with the job's feel makes of its tokens, every key's note-ons and note-offs alternate (no off
    before its on, nothing left sounding), and the drums sent are those moved, accented hits."""
    sink = RecordingSink()
    bridge, sim = rig(mode="live", sink=sink, seed=5)
    wait_for(lambda: bridge.generation.get("complete"), "the score")
    plan = bridge.plan
    assert bridge.generation["from"] == plan.origin
    feel = drum_feel(plan.conditioning(), SamplingConfig(seed=bridge.cfg.seed + bridge._job_seq))
    expect = events_from_tokens(bridge.tokens, origin=plan.origin, end_time=plan.end, early=True, feel=feel)
    live = [e for e in bridge.score.events if isinstance(e, NoteEvent)]
    assert live == expect
    drums = [e for e in live if e.on and e.instrument == "drums"]
    assert len(drums) >= 4 and any(abs(e.time / vocab.TICK_S - round(e.time / vocab.TICK_S)) > 0.01 for e in drums)
    sounding: set[tuple[str, int]] = set()
    for e in live:
        key = (e.instrument, e.pitch)
        assert (key in sounding) != e.on, f"{'on' if e.on else 'off'} of {key} at {e.time}"
        (sounding.add if e.on else sounding.discard)(key)
    assert not sounding

    sim.play(0.0)
    wait_for(lambda: sim.position() > 2.5, "playing to 2.5 s")
    sim.stop()
    wait_for(lambda: bridge.scheduler.silences["stop"] >= 1, "stop handled")
    assert sink.sounding() == set()
    heard = {(round(s.project_time, 6), s.msg.note, s.msg.velocity) for s in sink.sent
             if s.msg.type == "note_on" and s.msg.channel == 9 and s.project_time < 2.4}
    want = {(round(e.time, 6), e.pitch, e.velocity) for e in drums if e.time < 2.4}
    assert want and heard <= want and len(heard) >= len(want) - bridge.scheduler.late_skipped
