"""Music on the beat: the grid guard, tempo fitting to cuts, tempo events in score.mid, timing metrics."""

import mido
import numpy as np
import pytest
import torch

from emsync_bridge.errors import EmsyncError
from emsync_bridge.music import metrics, vocab
from emsync_bridge.music.generate import Conditioning, GridGuard, SamplingConfig, generate
from emsync_bridge.music.midi import Note, Score, read_midi, write_midi
from emsync_bridge.music.model import build_model
from emsync_bridge.music.tempo_fit import fit_tempo, fixed_tempo, tempo_range
from emsync_bridge.runtime.torch_engine import TorchEngine
from emsync_bridge.tempo import TempoPoint
from emsync_bridge.tempo import TempoMap

HALF_TICK = vocab.TICK_S / 2 + 1e-9


def _off_grid(t, guard):
    return min(abs(t - p) for p in guard.points_between(t - 1.0, t + 1.0))


# ---------------------------------------------------------------------------------- grid guard

def test_guard_allows_only_shifts_onto_16ths_on_hand_made_cursors():
    guard = GridGuard(TempoMap([TempoPoint(0.0, 120.0)]))  # a 16th = 125 ms = 15.625 ticks
    assert guard.allowed_ticks(0.0) == [16, 31, 47, 62, 78, 94, 109, 125]
    # the model's wish to move on is kept on average (stochastic rounding between the grid points
    # around each shift; below the first one, the other side is staying in this instant)
    logits = np.full(vocab.VOCAB_SIZE, -50.0)
    logits[[vocab.timeshift(8), vocab.timeshift(20), vocab.timeshift(124)]] = 0.0
    logits[vocab.note_on("piano", 60)] = 0.0
    folded = guard.fold(logits, 0.0)
    q = np.exp(folded - folded.max())
    q /= q.sum()
    # kept mass: 8 -> half to 16, half stays (dropped); 20 -> 16 x 11/15, 31 x 4/15; 124 -> 125 (past 109: 15/16)
    kept = {16: 0.5 + 11 / 15, 31: 4 / 15, 109: 1 / 16, 125: 15 / 16}
    total = sum(kept.values()) + 1.0  # + the note
    for t, mass in kept.items():
        assert q[vocab.timeshift(t)] == pytest.approx(mass / total)
    assert q[vocab.note_on("piano", 60)] == pytest.approx(1.0 / total)
    assert np.isinf(folded[[vocab.timeshift(t) for t in (8, 15, 20, 124)]]).all()
    mean_before = (8 + 20 + 124) / 3  # ticks the model meant to move, given that it moves
    moved = {t: m for t, m in kept.items()}
    assert sum(t * m for t, m in moved.items()) / 3 == pytest.approx(mean_before)  # (staying moves 0 ticks)
    # an off-grid cursor (a splice, a cut) is brought back by its first shift
    assert guard.allowed_ticks(0.2)[0] == 6  # 0.2 + 6 * 8 ms = 0.248 ~ 0.25
    # walk a hand-made stream: always take the longest allowed shift, then the shortest, ...
    cursor = 0.0
    for i in range(200):
        ticks = guard.allowed_ticks(cursor)
        cursor += (ticks[-1] if i % 2 else ticks[0]) * vocab.TICK_S
        assert _off_grid(cursor, guard) <= HALF_TICK  # no drift however many shifts


def test_guard_triplets_and_a_ramped_meter_changing_map():
    trip = GridGuard(TempoMap([TempoPoint(0.0, 120.0)]), grid=(3,))  # 8th triplets: 1/6 s
    assert trip.allowed_ticks(0.0)[:3] == [21, 42, 62]
    both = GridGuard(TempoMap([TempoPoint(0.0, 120.0)]), grid=(4, 3))
    assert both.allowed_ticks(0.0)[:3] == [16, 21, 31]
    ramp = TempoMap([TempoPoint(0.0, 90.0, 4, 4, True), TempoPoint(8.0, 150.0, 3, 4), TempoPoint(20.0, 150.0)])
    guard = GridGuard(ramp)
    cursor = 0.0
    while cursor < 20.0:
        cursor += guard.allowed_ticks(cursor)[0] * vocab.TICK_S
        q = ramp.time_to_qn(cursor) * 4
        assert abs(ramp.qn_to_time(round(q) / 4) - cursor) <= HALF_TICK


def test_conditioning_takes_a_bpm_or_a_map_and_rejects_bad_grids():
    assert Conditioning.constant(0, 0, tempo=100).tempo.bpm_at(5.0) == 100
    with pytest.raises(EmsyncError, match="tempo"):
        Conditioning.constant(0, 0, tempo=5)
    with pytest.raises(EmsyncError, match="grid"):
        Conditioning.constant(0, 0, tempo=100, grid=(5,)).validate(10)


@pytest.fixture(scope="module")
def small_engine():
    torch.manual_seed(0)
    return TorchEngine(build_model("emsync-small"))


@pytest.mark.parametrize("seed", range(2))
def test_generated_onsets_are_on_the_grid_and_chords_on_the_nearest_grid_point(small_engine, seed):
    """Even an untrained model's onsets all sit on the 16th grid; each cut's chord sits on the grid
    point nearest to it."""
    tempo = TempoMap([TempoPoint(0.0, 97.0)])
    targets = [0.71, 1.93, 3.1]
    # (drum_feel 0: the grid itself; the human feel on top of it is tests/test_music_groove.py's)
    gen = generate(small_engine, 4.0, Conditioning.constant(0, 0, targets, tempo=tempo),
                   SamplingConfig(seed=seed, drum_feel=0.0))
    guard = GridGuard(tempo)
    notes = gen.score().notes
    assert notes and all(_off_grid(n.start, guard) <= HALF_TICK for n in notes)
    assert [h.target for h in gen.hits] == targets  # the cuts themselves are reported
    assert all(abs(h.hit_time - h.target) < 1.0 for h in gen.hits)  # (a CHORD the model chose may come early)
    held = metrics.long_chords(notes)
    # a held chord on the grid point nearest each cut (up to the 60 ms onset window)
    assert all(min(abs(guard.nearest(t) - c) for c in held) <= 0.06 + 1e-9 for t in targets), held


def test_chord_on_the_cut_when_asked_and_no_guard_without_a_tempo(small_engine):
    tempo = TempoMap([TempoPoint(0.0, 97.0)])
    cond = Conditioning.constant(0, 0, [1.93], tempo=tempo)
    on_cut = generate(small_engine, 4.0, cond, SamplingConfig(seed=1, chord_on_grid=False, drum_feel=0.0))
    assert on_cut.hits[0].hit_time == pytest.approx(1.93, abs=HALF_TICK)
    guard = GridGuard(tempo)
    after = [n.start for n in on_cut.score().notes if n.start > 1.93 + 0.5]
    assert after and all(_off_grid(t, guard) <= HALF_TICK for t in after)  # back on the grid
    plain = generate(small_engine, 3.0, Conditioning.constant(0, 0, [1.93]), SamplingConfig(seed=1))
    off = generate(small_engine, 3.0, cond, SamplingConfig(seed=1, grid_guard=False))
    assert plain.tokens == off.tokens  # guard off: exactly the old decoder
    assert np.mean([_off_grid(n.start, guard) <= HALF_TICK for n in plain.score().notes]) < 0.9


# ------------------------------------------------------------------------------- tempo fitting

def test_cuts_on_half_seconds_get_a_tempo_that_puts_them_on_beats():
    cuts = [2.0, 5.5, 9.0, 12.5, 17.0]  # multiples of 0.5 s: 120 BPM (or 96: not all on beats)
    fit = fit_tempo(cuts, arousal=0.0)
    assert fit.range[0] <= fit.bpm <= fit.range[1]
    assert all(abs(c.offset) < 1e-9 for c in fit.cuts), fit.cuts
    assert fit.bpm == pytest.approx(120.0)
    assert [(c.bar, c.beat) for c in fit.cuts] == [(2, 1), (3, 4), (5, 3), (7, 2), (9, 3)]
    assert fit.cuts[0].downbeat and not fit.cuts[1].downbeat
    # cuts 2 bars apart at 96 BPM: downbeats are preferred over plain beats of another tempo
    down = fit_tempo([5.0, 10.0, 15.0], arousal=-0.4)  # centre 96 BPM
    assert all(c.downbeat and abs(c.offset) < 1e-9 for c in down.cuts) and down.bpm == pytest.approx(96.0)


def test_tempo_range_follows_arousal_and_the_fit_is_deterministic():
    calm, tense = tempo_range(-0.8), tempo_range(0.8)
    assert calm[1] < tense[0] + 20 and calm[0] < tense[0] and calm[1] < tense[1]
    assert fit_tempo([], -0.8).bpm == pytest.approx(sum(calm) / 2, abs=0.01)  # no cuts: the centre
    rng = np.random.default_rng(1)
    offsets = []
    for _ in range(40):
        cuts = np.cumsum(rng.uniform(5, 9, 5))
        a, b = fit_tempo(cuts, 0.3), fit_tempo(list(cuts), 0.3)
        assert a.bpm == b.bpm and a.cuts == b.cuts
        assert tempo_range(0.3)[0] <= a.bpm <= tempo_range(0.3)[1]
        offsets += [abs(c.offset) for c in a.cuts]
    assert np.median(offsets) <= 0.060  # the target on films with >= 3 cuts
    with pytest.raises(EmsyncError):
        fixed_tempo(900)


# ------------------------------------------------------------------------- tempo in score.mid

def test_tempo_events_round_trip_through_score_mid(tmp_path):
    ramp = TempoMap([TempoPoint(0.0, 90.0, 4, 4, True), TempoPoint(8.0, 150.0, 3, 4), TempoPoint(14.0, 150.0, 4, 4)])
    notes = [Note("piano", 60, ramp.qn_to_time(q / 4), ramp.qn_to_time(q / 4) + 0.1) for q in range(0, 100, 3)]
    path = write_midi(Score(notes=notes, duration=20.0), tmp_path / "score.mid", tempo=ramp)
    back = read_midi(path)
    assert [round(n.start, 5) for n in back.notes] == [round(n.start, 5) for n in notes]
    assert back.downbeats[:12] == pytest.approx([ramp.bar_beat_to_time(b) for b in range(1, 13)], abs=1e-5)
    mid = mido.MidiFile(path)
    metas = [m for m in mid.tracks[0] if m.type in ("set_tempo", "time_signature")]
    meters = [(m.numerator, m.denominator) for m in metas if m.type == "time_signature"]
    assert meters == [(4, 4), (3, 4), (4, 4)]
    bpms = [mido.tempo2bpm(m.tempo) for m in metas if m.type == "set_tempo"]
    assert bpms[0] == pytest.approx(90.0, abs=2.0) and bpms[-1] == pytest.approx(150.0, abs=1e-3)
    assert all(a <= b for a, b in zip(bpms, bpms[1:])) and len(set(bpms)) > 20  # the ramp rises in 16th steps
    const = write_midi(Score(notes=notes[:3], duration=5.0), tmp_path / "c.mid", tempo=TempoMap([TempoPoint(0.0, 97.0)]))
    assert [round(mido.tempo2bpm(m.tempo), 3) for m in mido.MidiFile(const).tracks[0] if m.type == "set_tempo"] == [97.0]


# ------------------------------------------------------------------------------ timing metrics

def _steady(bpm, seconds, jitter_s, rng, every=2):
    s = 15.0 / bpm
    out = []
    for k in range(0, int(seconds / s), every):
        t = k * s + rng.normal(0, jitter_s)
        out += [Note("piano", 60, t, t + 0.1), Note("drums", 42, t, t + 0.05)]
    return Score(notes=[n for n in out if n.start >= 0], duration=seconds)


def test_timing_report_with_known_answers():
    rng = np.random.default_rng(0)
    steady = metrics.timing_report(_steady(123.0, 30.0, 0.003, rng), TempoMap([TempoPoint(0.0, 123.0)]))
    assert steady["pitched_on_fitted_grid"] == 1.0 and steady["drums_on_fitted_grid"] == 1.0
    assert steady["pitched_on_requested_grid"] == 1.0
    assert steady["tempo_change"] < 0.005 and steady["median_deviation_ms"] < 4.0
    assert steady["hihat_interval_cv"] < 0.1
    # asked for 100 BPM but played at 123: off the requested grid, on its own
    other = metrics.timing_report(_steady(123.0, 30.0, 0.003, rng), TempoMap([TempoPoint(0.0, 100.0)]))
    assert other["pitched_on_requested_grid"] < 0.7 and other["pitched_on_fitted_grid"] == 1.0
    # a groove that rushes 120 -> 140 BPM over 30 s: windows refitted, the change shows
    notes, t = [], 0.0
    while t < 30.0:
        notes.append(Note("drums", 36, t, t + 0.05))
        t += 15.0 / (120.0 + 20.0 * t / 30.0) * 2
    rushing = metrics.timing_report(Score(notes=notes, duration=30.0))
    assert rushing["tempo_change"] > 0.03
    random = [Note("piano", 60, float(x), float(x) + 0.1) for x in np.sort(rng.uniform(0, 30, 200))]
    loose = metrics.timing_report(Score(notes=random, duration=30.0))
    assert loose["pitched_on_fitted_grid"] < 0.7 and loose["median_deviation_ms"] > 10


def test_timing_references_skip_with_a_message_without_pop909(tmp_path, capsys):
    from emsync_bridge.music.evaluate import timing_references

    out = timing_references(str(tmp_path / "absent"), 4)
    assert "references skipped" in out["references_skipped"] and "references skipped" in capsys.readouterr().err


def test_cli_generate_carries_the_tempo(tmp_path):
    import json
    import subprocess
    import sys

    out = tmp_path / "g.mid"
    r = subprocess.run([sys.executable, "-m", "emsync_bridge", "generate", "--duration", "4", "--boundaries", "1,2.5",
                        "--tempo", "100", "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.with_suffix(".json").read_text())
    assert rep["tempo"]["mode"] == "fixed" and [c["offset_ms"] for c in rep["tempo"]["cuts"]] == [-200.0, 100.0]  # beats every 0.6 s
    mid = mido.MidiFile(out)
    assert [round(mido.tempo2bpm(m.tempo), 3) for m in mid.tracks[0] if m.type == "set_tempo"] == [100.0]
    sixteenth = mid.ticks_per_beat // 4

    def onsets(midi, drums):
        for track in midi.tracks[1:]:
            tick = 0
            for m in track:
                tick += m.time
                if m.type == "note_on" and m.velocity > 0 and (m.channel == 9) == drums:
                    yield tick

    assert all(t % sixteenth == 0 for t in onsets(mid, drums=False))
    # the drums carry the human feel: near the grid (30 % of a drummer's offset), some off it
    off = [min(t % sixteenth, sixteenth - t % sixteenth) for t in onsets(mid, drums=True)]
    assert off and max(off) <= sixteenth // 4 and any(off)
    plain = subprocess.run([sys.executable, "-m", "emsync_bridge", "generate", "--duration", "4", "--boundaries", "1,2.5",
                            "--tempo", "100", "--drum-feel", "0", "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert plain.returncode == 0, plain.stderr
    assert all(t % sixteenth == 0 for t in onsets(mido.MidiFile(out), drums=True))
    bad = subprocess.run([sys.executable, "-m", "emsync_bridge", "generate", "--tempo", "fast", "-o", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--tempo takes" in bad.stderr and "Traceback" not in bad.stderr
