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
