"""The sound channel (`video/sounds.py`): YAMNet's AudioSet classes → a scene's sound valence."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from emsync_bridge.errors import EmsyncError
from emsync_bridge.video import sounds
from emsync_bridge.video.analysis import analyze_video
from emsync_bridge.video.estimators import LearnedEstimator
from emsync_bridge.video.features import SceneFeatures
from emsync_bridge.video.synth import Segment, make_video
from emsync_bridge.video.weights import AUDIO_CLASSES_FILE, AUDIO_FILE

pytest.importorskip("onnxruntime")

# Also in emsync_bridge/models/VIDEO_MODELS.md.
SHA256 = {
    AUDIO_FILE: "6db54b003b1bcb7d5f00f96140096dcee5caf15f4dc7998666de7fff8ecf21c3",
    AUDIO_CLASSES_FILE: "cdf24d193e196d9e95912a2667051ae203e92a2ba09449218ccb40ef787c6df2",
}
T = np.arange(sounds.WINDOW) / sounds.RATE


def test_weights_and_class_map_ship_pinned():
    for path, digest in SHA256.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, path.name
    names = sounds.class_names()
    assert len(names) == 521 and names[0] == "Speech" and names[132] == "Music"
    idx, val = sounds._valence_columns()
    assert [names[i] for i in idx] == list(sounds.VALENCE_CLASSES)  # every affect class exists by name
    assert set(np.sign(val)) == {-1.0, 1.0}


def test_network_hears_what_is_played():
    """Real audio through the shipped network: a pure tone, white noise, a C major chord, silence."""
    names = sounds.class_names()
    rng = np.random.default_rng(0)
    x = np.stack([
        0.5 * np.sin(2 * np.pi * 440 * T),
        0.3 * rng.standard_normal(len(T)),
        sum(0.1 * np.sin(2 * np.pi * f * T) for f in (261.6, 329.6, 392.0)),
        np.zeros(len(T)),
    ]).astype(np.float32)
    scores = sounds.class_scores(x)
    assert scores.shape == (4, 521) and ((scores >= 0) & (scores <= 1)).all()
    top = [[names[i] for i in np.argsort(-s)[:3]] for s in scores]
    assert {"Dial tone", "Sine wave", "Telephone", "Busy signal"} & set(top[0]), top[0]
    assert {"White noise", "Noise", "Static"} & set(top[1]), top[1]
    assert {"Music", "Sine wave", "Musical instrument", "Tuning fork"} & set(top[2]), top[2]
    evidence, _ = sounds.affect(scores)
    assert (evidence < 0.1).all()  # none of these is a sob, a laugh or sad music


def test_affect_and_weight_on_hand_made_scores():
    names = sounds.class_names()
    scores = np.zeros((3, 521), np.float32)
    scores[0, names.index("Crying, sobbing")] = 0.6
    scores[1, names.index("Laughter")] = 0.2
    scores[2, names.index("Tender music")] = 0.4
    e, p = sounds.affect(scores)
    np.testing.assert_allclose(e, [0.6, 0.2, 0.2], atol=1e-6)
    np.testing.assert_allclose(p, [-0.6, 0.2, 0.2], atol=1e-6)
    a, ev = sounds.scene_valence(e, p)
    assert a == pytest.approx(-0.2 / 1.0) and ev == pytest.approx(1.0 / 3)
    assert sounds.weight(0.0) == 0.0 and sounds.weight(0.1) == pytest.approx(0.25)
    assert sounds.weight(5.0) == sounds.W_AUDIO  # never more than half
    assert sounds.scene_sound({}) == {"valence": 0.0, "evidence": 0.0, "weight": 0.0}


def test_sampler_cuts_back_to_back_patches_whatever_the_chunks():
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal(int(40.3 * sounds.WINDOW))).astype(np.float32)
    whole = sounds.SoundSampler()
    whole.push(x)
    a = whole.arrays(offset=2.0)
    parts = sounds.SoundSampler()
    for chunk in np.array_split(x, 97):
        parts.push(chunk)
    b = parts.arrays(offset=2.0)
    assert len(a["t"]) == 41  # 40 whole patches and the last 0.3 of one (≥ ¼: zero-padded)
    np.testing.assert_allclose(a["t"][:3], 2.0 + (np.arange(3) + 0.5) * sounds.WINDOW / sounds.RATE)
    for k in ("t", "evidence", "polarity"):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6)
    short = sounds.SoundSampler()
    short.push(x[: sounds.WINDOW // 5])  # under a quarter of a patch: nothing to hear
    assert len(short.arrays()["t"]) == 0


def _scene_with(sound: dict | None) -> SceneFeatures:
    """A 6 s scene whose 8 sampled frames read valence 0.6, with the given sound patches."""
    return SceneFeatures(
        start=0.0, end=6.0, brightness=0.45, saturation=0.35, colourfulness=33.0, warmth=0.0, motion=1.0,
        cut_count=0, cut_rate=0.0, shot_length=6.0, loudness_db=-40.0, onset_rate=0.2,
        samples={"t": np.arange(8) * 0.5, "valence": np.full(8, 0.6, np.float32), "arousal": np.zeros(8, np.float32)},
        sounds=sound or {},
    )


def test_sound_moves_valence_by_its_weight():
    est = LearnedEstimator()
    plain = est.estimate([_scene_with(None)])[0]
    sobbing = {"t": np.arange(4.0), "evidence": np.full(4, 0.4, np.float32), "polarity": np.full(4, -0.4, np.float32)}
    faint = {"t": np.arange(4.0), "evidence": np.full(4, 0.02, np.float32), "polarity": np.full(4, -0.02, np.float32)}
    sad, weak = est.estimate([_scene_with(sobbing), _scene_with(faint)])
    v0 = plain.features["valence_unshrunk"]
    assert plain.features["sound_weight"] == 0.0
    # Full evidence: half picture, half sound (A = −1).
    assert sad.features["sound_weight"] == pytest.approx(0.5)
    assert sad.features["valence_unshrunk"] == pytest.approx(0.5 * v0 - 0.5, abs=1e-4)
    assert sad.valence < 0 < plain.valence
    # Faint evidence (E = 0.02): a tenth of that pull.
    assert weak.features["sound_weight"] == pytest.approx(0.05)
    assert weak.features["valence_unshrunk"] == pytest.approx(0.95 * v0 - 0.05, abs=1e-4)
    assert plain.arousal == sad.arousal  # the sound channel is about valence only


def test_analysis_listens_to_films_with_sound_only(tmp_path):
    segs = [Segment("testsrc2", 3.0), Segment("smptehdbars", 3.0)]
    loud = make_video(tmp_path / "tone.mp4", segs, size=(320, 180), fps=25)
    mute = make_video(tmp_path / "mute.mp4", segs, size=(320, 180), fps=25, audio=None)
    a = analyze_video(loud, min_scene_s=1.0, cache=False)
    assert a.has_audio and all("sound_weight" in s.features for s in a.scenes)
    assert all(s.features["sound_weight"] < 0.05 for s in a.scenes)  # a 220 Hz tone is no emotion
    m = analyze_video(mute, min_scene_s=1.0, cache=False)
    assert not m.has_audio and all(s.features["sound_weight"] == 0.0 for s in m.scenes)


def test_sound_network_failure_is_one_line(tmp_path, monkeypatch):
    path = make_video(tmp_path / "tone.mp4", [Segment("testsrc2", 2.0)], size=(160, 90), fps=25)

    def broken(_patches):
        raise RuntimeError("bad model\nsecond line")

    monkeypatch.setattr(sounds, "class_scores", broken)
    with pytest.raises(EmsyncError, match=r"^sound network failed: RuntimeError: bad model$"):
        analyze_video(path, min_scene_s=1.0, cache=False)
