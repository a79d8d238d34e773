"""Harmony and texture metrics (metrics.py, issue 17) on hand-made notes with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from emsync_bridge.music import metrics
from emsync_bridge.music.midi import Note, Score


def chords(progression, seconds_each: float, repeats: int = 1) -> list[Note]:
    """Block chords (piano) plus the root in the bass, one after another."""
    notes, t = [], 0.0
    for _ in range(repeats):
        for root, third in progression:
            for p in (60 + root, 60 + root + third, 67 + root):
                notes.append(Note("piano", p, t, t + seconds_each))
            notes.append(Note("bass", 36 + root, t, t + seconds_each))
            t += seconds_each
    return notes


def test_a_one_chord_vamp_and_a_progression():
    vamp = chords([(0, 4)], 30.0)
    s = metrics.triad_stats(vamp, 30.0)
    assert s["most_common_triad_share"] == 1.0 and s["distinct_long_triads_per_30s"] == 1.0
    prog = chords([(0, 4), (5, 4), (7, 4), (9, 3)], 2.0, repeats=4)  # C F G Am, 4 beats each, 32 s
    s = metrics.triad_stats(prog, 32.0)
    assert s["most_common_triad_share"] == pytest.approx(0.25)
    assert s["distinct_long_triads_per_30s"] == pytest.approx(4 * 30 / 32)
    assert s["distinct_triads_per_30s"] == pytest.approx(4 * 30 / 32)
    # C and F alternating every 2 beats for 32 s: each is on 32 beats in all, never 4 in a row
    pair = metrics.triad_stats(chords([(0, 4), (5, 4)], 1.0, repeats=16), 32.0)
    assert pair["distinct_triads_per_30s"] == pytest.approx(2 * 30 / 32)
    assert pair["distinct_long_triads_per_30s"] == 0.0
    # a triad on only 3 beats in all does not count
    d_minor = [Note(n.instrument, n.pitch, n.start + 14.5, n.end + 14.5) for n in chords([(2, 3)], 1.5)]
    short = metrics.triad_stats(chords([(0, 4)], 14.5) + d_minor, 16.0)
    assert metrics.beat_triads(chords([(0, 4)], 14.5) + d_minor, 16.0)[-1] == (2, "min")
    assert short["distinct_triads_per_30s"] == pytest.approx(30 / 16)
    beats = metrics.beat_triads(prog, 32.0)
    assert beats[0] == (0, "maj") and beats[4] == (5, "maj") and beats[12] == (9, "min")
    assert metrics.chord_tone_share(prog, 32.0) == 1.0
    assert metrics.top3_pitch_class_share(vamp) == 1.0 and metrics.top3_pitch_class_share(prog) < 0.8


def test_held_notes_and_polyphony():
    notes = [Note("strings", 60, 0.0, 8.0), Note("strings", 64, 0.0, 4.5), Note("piano", 67, 1.0, 2.0),
             Note("drums", 36, 0.0, 0.1)]
    assert metrics.held_notes(notes, 4.0) == 2 and metrics.held_notes(notes, 7.9) == 1
    # 0-1 s: 2 sounding, 1-2 s: 3, 2-4.5 s: 2, 4.5-8 s: 1 -> (2 + 3 + 5 + 3.5) / 8
    assert metrics.polyphony(notes) == pytest.approx((2 + 3 + 5 + 3.5) / 8, rel=0.01)


def test_polyphony_matches_muspy(tmp_path):
    muspy = pytest.importorskip("muspy", reason="muspy not installed (optional: pip install muspy)")
    from emsync_bridge.music.midi import write_midi

    rng = np.random.default_rng(0)
    notes = []
    for _ in range(200):
        s = float(rng.uniform(0, 20))
        notes.append(Note(str(rng.choice(["piano", "strings", "bass"])), int(rng.integers(36, 84)), s,
                          s + float(rng.uniform(0.1, 2.0))))
    score = Score(notes=notes, duration=23.0)
    write_midi(score, tmp_path / "p.mid")
    music = muspy.read_midi(tmp_path / "p.mid")
    music.adjust_resolution(metrics.DRUM_RESOLUTION)  # 24 steps a beat, 120 BPM: our step
    assert metrics.polyphony(notes) == pytest.approx(muspy.polyphony(music), rel=0.03)


def test_drum_pattern_consistency():
    beat = 60 / 97
    grid = [Note("drums", 42, t, t + 0.05) for t in np.arange(0, 30, beat / 4)]
    assert metrics.drum_pattern_consistency(grid) == 1.0
    assert metrics.drum_pattern_consistency(grid, beat_s=beat) == 1.0
    triplets = [Note("drums", 42, t, t + 0.05) for t in np.arange(0, 30, beat / 3)]
    assert metrics.drum_pattern_consistency(triplets) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    rand = [Note("drums", 42, t, t + 0.05) for t in np.sort(rng.uniform(0, 30, 300))]
    assert metrics.drum_pattern_consistency(rand) < 0.45
    assert np.isnan(metrics.drum_pattern_consistency(chords([(0, 4)], 4.0)))


def test_two_bar_repetition():
    loop = chords([(0, 4), (5, 4), (7, 4), (9, 3)], 1.0, repeats=6)  # the same 4 s six times
    assert metrics.two_bar_repetition(loop) == pytest.approx(1.0)
    rng = np.random.default_rng(1)
    wander = chords([(int(r), int(q)) for r, q in zip(rng.integers(0, 12, 24), rng.choice([3, 4], 24))], 1.0)
    assert metrics.two_bar_repetition(wander) < 0.6


def test_excerpt_takes_the_notes_of_a_window():
    from emsync_bridge.music.evaluate import excerpt

    score = Score(notes=[Note("piano", 60, 29.0, 31.0), Note("piano", 62, 30.5, 61.0), Note("bass", 40, 59.9, 60.5)],
                  duration=70.0)
    ex = excerpt(score)
    assert ex.duration == 30.0 and [(n.pitch, n.start, n.end) for n in ex.notes] == [
        (62, pytest.approx(0.5), pytest.approx(30.0)), (40, pytest.approx(29.9), pytest.approx(30.0))]
    assert excerpt(Score(notes=[], duration=50.0)) is None  # too short for 30 s from 30 s


def test_evaluate_music_part_on_a_small_model():
    import torch

    from emsync_bridge.music.evaluate import eval_music
    from emsync_bridge.music.model import build_model
    from emsync_bridge.runtime.torch_engine import TorchEngine

    torch.manual_seed(0)
    r = eval_music(TorchEngine(build_model("emsync-small")), seeds=[0, 1], duration=8.0)
    assert r["pieces"] == 2 and r["held_8s"] == 0  # an untrained model: but no note outlives the release
    assert 0.0 <= r["most_common_triad_share"] <= 1.0 and r["pitch_class_entropy"] > 0
