"""POP909 -> token cache: instruments, registers, drum keys, CHORD rate, mode flip, cache round trip."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from emsync_bridge.music import vocab
from emsync_bridge.music.metrics import estimate_mode
from emsync_bridge.music.data import (
    GM_DRUM_KEYS,
    Rendition,
    build_cache,
    chord_token_times,
    chord_tones,
    load_cache,
    load_song,
    render,
)

POP909 = Path(__file__).resolve().parents[1].parent / "shared/data/pop909/POP909"
needs_pop909 = pytest.mark.skipif(
    not (POP909 / "001" / "001.mid").is_file(),
    reason=f"POP909 not found at {POP909} (staged copy of the dataset; see shared/data/pop909/SOURCE.md)",
)

def kk_mode(score) -> str:
    return estimate_mode(score.notes)  # the evaluation's own estimate, so data and metrics agree


def test_chord_labels_parse():
    assert chord_tones("C:maj") == (0, [0, 4, 7])
    assert chord_tones("C#:min7") == (1, [1, 4, 8, 11])
    assert chord_tones("Bb:7/3")[1] == [10, 2, 5, 8]
    assert chord_tones("N") is None


@pytest.fixture(scope="module")
def song():
    if not (POP909 / "001" / "001.mid").is_file():
        pytest.skip(f"POP909 not found at {POP909}")
    return load_song(POP909 / "001")


@needs_pop909
@pytest.mark.parametrize("energy", [0, 1, 2])
def test_rendition_has_five_instruments_in_role(song, energy):
    tokens, meta, score = render(song, Rendition(energy, 1.0, False, 3, seed=7))
    counts = score.instruments()
    assert all(counts[k] > 0 for k in vocab.INSTRUMENTS), counts
    bass = [n.pitch for n in score.notes if n.instrument == "bass"]
    assert 28 <= min(bass) and max(bass) <= 55
    drums = {n.pitch for n in score.notes if n.instrument == "drums"}
    assert drums <= set(GM_DRUM_KEYS)
    # CHORD tokens: one every 3-15 s, and almost all of them at the phrase hits
    minutes = score.duration / 60
    rate = meta["n_chords"] / minutes
    assert 4 <= rate <= 20, rate
    chord_times = chord_token_times(tokens)
    phrases = np.array(meta["phrase_times"])
    at_phrase = [np.min(np.abs(phrases - c)) < 0.1 for c in chord_times]
    assert np.mean(at_phrase) >= 0.9
    assert all(0 <= t < vocab.VOCAB_SIZE for t in tokens)


@needs_pop909
@pytest.mark.parametrize("tempo", [0.85, 1.0, 1.2])
def test_held_chords_only_at_phrase_hits(song, tempo):
    """What the metrics call a long chord (>= 3 onsets, >= 2 held >= 0.5 s) happens at phrase hits
    and nowhere else, at every tempo factor: that contrast is what the model learns to put on cuts."""
    from emsync_bridge.music.metrics import long_chords

    _, meta, score = render(song, Rendition(1, tempo, False, 2, seed=11))
    held = np.array(long_chords(score.notes))
    phrases = np.array(meta["phrase_times"])
    off_phrase = [t for t in held if np.min(np.abs(phrases - t)) > 0.1]
    assert len(off_phrase) <= 0.02 * len(held), off_phrase
    assert all(np.min(np.abs(held - p)) <= 0.1 for p in phrases)


@needs_pop909
def test_energy_changes_density(song):
    dens = [render(song, Rendition(e, 1.0, False, 0, seed=3))[1]["notes_per_s"] for e in (0, 2)]
    assert dens[1] > 1.5 * dens[0], dens


@needs_pop909
def test_mode_flip_turns_major_song_minor(song):
    assert song.keys[0].minor is False  # 001 is in Gb major
    _, meta_a, plain = render(song, Rendition(1, 1.0, False, 0, seed=5))
    _, meta_b, flipped = render(song, Rendition(1, 1.0, True, 0, seed=5))
    assert kk_mode(plain) == "major" and meta_a["mode"] == "major" and meta_a["valence"] > 0.3
    assert kk_mode(flipped) == "minor" and meta_b["mode"] == "minor" and meta_b["valence"] < -0.3


@needs_pop909
def test_tempo_factor_scales_time(song):
    _, m1, s1 = render(song, Rendition(1, 1.0, False, 0, seed=5))
    _, m2, s2 = render(song, Rendition(1, 1.2, False, 0, seed=5))
    assert s2.duration == pytest.approx(s1.duration / 1.2, rel=1e-3)
    assert m2["bpm"] == pytest.approx(m1["bpm"] * 1.2, rel=1e-3)


@needs_pop909
def test_cache_round_trip(tmp_path):
    index = build_cache(POP909.parent, tmp_path, workers=1, limit=2, renditions=2, seed=1, progress=False)
    tokens, loaded = load_cache(tmp_path)
    assert tokens.dtype == np.uint16 and loaded == index and not index["errors"]
    ents = index["renditions"]
    assert len(ents) == 4 and {e["song"] for e in ents} == {"001", "002"}
    assert ents[-1]["offset"] + ents[-1]["length"] == len(tokens)
    # the stored slice is exactly what render produces
    song = load_song(POP909 / "001")
    from emsync_bridge.music.data import plan_renditions

    r = plan_renditions("001", 2, 1)[0]
    expected, _, _ = render(song, r)
    assert np.array_equal(tokens[ents[0]["offset"]: ents[0]["offset"] + ents[0]["length"]], expected)
    assert (tmp_path / "data_card.md").read_text().startswith("# Data card")
    assert dataclasses.is_dataclass(r)


# ------------------------------------------------------------------ human drums (Groove MIDI)

GROOVE = Path(__file__).resolve().parents[1].parent / "shared/data/groove-midi"
needs_groove = pytest.mark.skipif(
    not (GROOVE / "info.csv").is_file(),
    reason=f"Groove MIDI Dataset not found at {GROOVE} (staged copy; see shared/data/groove-midi/SOURCE.md)",
)


def _groove_file(path: Path, hits: list[tuple[float, int]], bpm: float = 120.0) -> Path:
    """A GMD-like file: one track, channel 10, TD-11 keys, hits at beat positions."""
    import mido

    mid = mido.MidiFile(type=0, ticks_per_beat=480)
    tr = mido.MidiTrack()
    mid.tracks.append(tr)
    tr.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    tr.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    events = []
    for pos, key in hits:
        on = round(pos * 480)
        events += [(on, 1, mido.Message("note_on", channel=9, note=key, velocity=90)),
                   (on + 40, 0, mido.Message("note_off", channel=9, note=key, velocity=0))]
    now = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        tr.append(msg.copy(time=tick - now))
        now = tick
    mid.save(path)
    return path


def test_groove_keys_map_to_gm_and_human_timing_is_kept_at_the_asked_strength(tmp_path):
    from emsync_bridge.music.data import GROOVE_HUMAN_TIMING, read_groove

    # 4 bars of 8th-note hats (TD-11 edge hat 22), kick on 1 and 3, rim-shot snare (40) on 2 and 4,
    # every hit 0.05 beats late (a 16th is 0.25 beats); the recording stops inside bar 5, which
    # is left out (whole bars only)
    hits = []
    for bar in range(4):
        for e in range(8):
            hits.append((4 * bar + e / 2 + 0.05, 22))
        hits += [(4 * bar + 0.05, 36), (4 * bar + 2.05, 36), (4 * bar + 1.05, 40), (4 * bar + 3.05, 40)]
    hits.append((16.05, 36))
    path = _groove_file(tmp_path / "g.mid", hits)
    g = read_groove(path, timing=0.5)
    assert g is not None and g.n_bars == 4
    assert {k for _, k in g.hits} == {36, 38, 42}  # kick, snare, closed hat
    offsets = {round(p - round(p * 4) / 4, 4) for p, _ in g.hits}
    assert offsets == {0.025}  # the drummer's lateness kept, at half strength
    # the training data's default: on the grid (the feel comes back at decode time, music/groove.py)
    assert GROOVE_HUMAN_TIMING == 0.0
    assert {round(p - round(p * 4) / 4, 4) for p, _ in read_groove(path).hits} == {0.0}
    bar1 = g.bar(1)
    assert len(bar1) == 12 and all(-0.125 <= u < 3.875 for u, _ in bar1)


def test_swung_grooves_are_left_out(tmp_path):
    from emsync_bridge.music.data import read_groove

    # triplet swing: hats on beat and on the third triplet, 8 bars
    hits = [(b + f, 42) for b in range(32) for f in (0.0, 2 / 3)]
    assert read_groove(_groove_file(tmp_path / "swing.mid", hits)) is None


def test_onsets_snap_to_sixteenths_of_the_annotated_beats():
    from emsync_bridge.music.data import snap_onsets
    from emsync_bridge.music.midi import Note

    beats = [0.0, 0.6, 1.2, 1.8, 2.4]  # 100 BPM: a 16th is 0.15 s
    notes = [Note("piano", 60, 0.62, 1.0), Note("piano", 62, 0.93, 1.1), Note("piano", 64, 1.0, 1.5)]
    out = snap_onsets(notes, beats)
    assert out[0].start == pytest.approx(0.6) and out[0].end == pytest.approx(0.98)  # length kept
    assert out[1].start == pytest.approx(0.9)
    assert out[2].start == pytest.approx(1.0)  # a triplet (2/3 of a beat after 0.6) stays


@needs_groove
def test_groove_bank_from_the_dataset_has_three_energy_levels():
    from emsync_bridge.music.data import load_grooves

    bank = load_grooves(GROOVE)
    sizes = [len(lv) for lv in bank.levels]
    assert min(sizes) >= 50, sizes
    dens = [np.mean([g.density for g in lv]) for lv in bank.levels]
    assert dens[0] < dens[1] < dens[2]


@needs_pop909
@needs_groove
def test_rendition_with_human_drums_keeps_its_roles_and_beats(song):
    from emsync_bridge.music.data import arrange, load_grooves

    bank = load_grooves(GROOVE)
    score, meta = arrange(song, Rendition(1, 1.0, False, 0, seed=3), bank)
    drums = [n for n in score.notes if n.instrument == "drums"]
    assert meta["grooves"], "no groove used"
    keys = {n.pitch for n in drums}
    assert {36, 38, 42} <= keys and keys <= {36, 38, 42, 43, 46, 47, 49, 50, 51}
    # on the song's annotated 16ths (GROOVE_HUMAN_TIMING = 0: the model learns the grid)
    beats = np.asarray(score.beats)
    dev = []
    for n in drums:
        i = int(np.clip(np.searchsorted(beats, n.start) - 1, 0, len(beats) - 2))
        pos = (n.start - beats[i]) / (beats[i + 1] - beats[i]) * 4
        dev.append(abs(pos - round(pos)) * (beats[i + 1] - beats[i]) / 4)
    dev = np.asarray(dev)
    assert np.mean(dev <= 0.002) > 0.99
    # the held chords stay the phrase hits' own (drums never make a long chord)
    assert meta["phrase_times"]
