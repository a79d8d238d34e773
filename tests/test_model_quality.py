"""The shipped model follows its conditioning: long chords on boundaries, density with arousal,
mode with valence — measured on decoded MIDI with the metrics module, on a small budget.

The thresholds are below the model card's full-budget figures (20 seeds) to leave room for
sampling noise on 3-4 seeds, but far above what a model that ignores its conditioning scores
(boundary hits near the random-time rate, equal densities, equal major shares). Valence is checked
through the product's decoding, whose valence -> mode aid does the work (the model alone moves
the mode ~10 pp, model card); the test fails if valence stops reaching the decoder."""

import pytest

from emsync_bridge import models
from emsync_bridge.music.evaluate import eval_arousal, eval_boundaries, eval_instruments, eval_valence
from emsync_bridge.music.generate import SamplingConfig
from emsync_bridge.runtime import load_engine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine():
    if not models.resolve("default").trained:
        pytest.skip("the shipped default model is missing (emsync_bridge/models/emsync-small.safetensors)")
    engine, _ = load_engine("default")
    return engine


def test_long_chords_land_on_boundaries(engine):
    r = eval_boundaries(engine, seeds=[0, 1, 2], duration=40.0)
    hit, rand, without = r["hit_rate"]["1.0"], r["random_time_rate"]["1.0"], r["hit_rate_without_boundaries"]["1.0"]
    # Shipped model, 20 seeds x 60 s (model card): 0.99 hit vs 0.46 at random times and 0.44 with
    # no boundaries given. A model that ignores boundaries scores its random-time rate.
    assert hit >= 0.85, r
    # The contrast is judged within 0.25 s: on the 16th grid (the default since issue 18) onsets
    # coincide, so some long chord lies within 1 s of most instants (6 seeds x 40 s: 0.80 at random
    # times; POP909 validation songs 0.58; the grid guard off 0.48) while within 0.25 s the cut
    # still stands out (hit 1.00, random 0.30, POP909 0.18, no boundaries given 0.30).
    hit_q, rand_q = r["hit_rate"]["0.25"], r["random_time_rate"]["0.25"]
    without_q = r["hit_rate_without_boundaries"]["0.25"]
    assert hit_q >= 0.85, r
    assert hit_q - rand_q >= 0.3, r
    assert without_q <= 0.7 * hit_q, r


def test_the_model_itself_aims_at_boundaries(engine):
    """The decode-side aids off (EMSYNC exactly, so the grid guard too): what is left is the model following b."""
    exact = SamplingConfig(land_on_boundaries=False, hold_missed_boundaries=False, chord_on_boundaries=False,
                           grid_guard=False)
    r = eval_boundaries(engine, seeds=[0, 1, 2], duration=40.0, sampling=exact)
    # model card, 20 seeds x 60 s: 0.56 hit vs 0.34 at random times; here 0.58 vs 0.39
    assert r["hit_rate"]["1.0"] - r["random_time_rate"]["1.0"] >= 0.1, r


def test_arousal_drives_note_density(engine):
    r = eval_arousal(engine, seeds=[0, 1], duration=20.0)
    nps = r["notes_per_second"]
    assert nps["0.8"] >= 1.2 * nps["-0.8"], r  # model card: 2.04x over 20 seeds x 30 s, monotone


def test_valence_drives_mode(engine):
    # The model card's budget (10 seeds x 30 s): smaller budgets swing by +-30 pp on noise alone.
    # With the valence -> mode aid (the default); the model alone moves the mode only ~10 pp.
    r = eval_valence(engine, seeds=list(range(10)), duration=30.0)
    assert r["difference_pp"] >= 30, r


def test_plays_several_instruments_in_their_registers(engine):
    r = eval_instruments(engine, seeds=[0], duration=30.0)
    piece = r["pieces"][0]
    assert piece["active"] >= 4 and r["stuck_notes"] == 0, r
    med = piece["median_pitch"]
    if med["bass"] is not None and med["strings"] is not None:
        assert med["bass"] < med["strings"], r
    if med["drums"] is not None:
        assert 35 <= med["drums"] <= 59, r  # GM drum keys


def test_texture_has_parts_not_drones(engine):
    """Issue 17's texture bars on the product's decoding (voices, releases, human drum feel), 4 of
    the evaluation's pieces (30 s, V/A +-0.8, cuts 5-9 s): the model card's 16 pieces give polyphony
    4.0, no note held 8 s, drum consistency 0.96, top triad 0.48. Before issue 17: 6.9 / 11 / 0.55."""
    from emsync_bridge.music.evaluate import eval_music

    r = eval_music(engine, seeds=[0, 1, 2, 3])
    assert r["polyphony"] <= 5.5, r
    assert r["held_8s"] <= 1, r
    assert r["drum_pattern_consistency"] >= 0.85, r
    assert r["most_common_triad_share"] <= 0.65, r
