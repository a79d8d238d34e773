"""The learned scene estimator (issue 19): shipped weights, fusion, calibrated confidence shrinkage."""

from __future__ import annotations

import hashlib
import sys

import numpy as np
import pytest

from emsync_bridge.errors import EmsyncError
from emsync_bridge.video import scene_model
from emsync_bridge.video.analysis import analyze_video
from emsync_bridge.video.estimators import HeuristicEstimator, LearnedEstimator, get_estimator
from emsync_bridge.video.features import SceneFeatures
from emsync_bridge.video.synth import Segment, make_video

pytest.importorskip("onnxruntime")

# Also listed in emsync_bridge/models/MODEL_CARD.md and docs/video-analysis.md.
SHA256 = {
    scene_model.EMBEDDER_FILE: "e1f281f5d300a09ea2635fa7f71b27ad3573bbe85ab0edc56f045f8f4f072a0f",
    scene_model.HEAD_FILE: "fa20a1a1f7b2fe9856eee6e3269150b124b72dea0c7d42154ae5dc23154d2eb3",
}


def test_weights_ship_in_the_package_and_are_small():
    for path, digest in SHA256.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, path.name
    total = sum(p.stat().st_size for p in (scene_model.EMBEDDER_FILE, scene_model.HEAD_FILE))
    assert total < 30e6
    head = scene_model.RidgeHead()
    assert head.W.shape == (1024, 2) and head.input_size == scene_model.INPUT_SIZE
    assert (head.residual_sd > 0).all()


def test_embedder_runs_at_any_size_and_sees_content_not_brightness():
    rng = np.random.default_rng(0)
    # A textured image, the same image darker (a lighting change), and a different texture.
    base = np.kron(rng.integers(0, 255, (12, 20, 3)), np.ones((15, 16, 1))).astype(np.uint8)  # 180x320
    darker = (base * 0.6).astype(np.uint8)
    other = np.kron(rng.integers(0, 255, (6, 40, 3)), np.ones((30, 8, 1))).astype(np.uint8)
    e = scene_model.embed([base, darker, other])
    assert e.shape == (3, 1024) and np.isfinite(e).all() and (e >= 0).all()  # ReLU6 then mean pool
    cos = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    assert cos(e[0], e[1]) > cos(e[0], e[2])
    assert scene_model.embed([base], size=128).shape == (1, 1024)


def _scene(valence_frames, arousal_frames=None, motion=1.0, shot_length=6.0, loud=-40.0, onsets=0.2):
    n = len(valence_frames)
    arousal_frames = arousal_frames if arousal_frames is not None else [0.0] * n
    return SceneFeatures(
        start=0.0, end=6.0, brightness=0.45, saturation=0.35, colourfulness=33.0, warmth=0.0,
        motion=motion, cut_count=0, cut_rate=0.0, shot_length=shot_length, loudness_db=loud, onset_rate=onsets,
        samples={"t": np.arange(n) * 0.5, "valence": np.asarray(valence_frames, np.float32),
                 "arousal": np.asarray(arousal_frames, np.float32)},
    )


def test_confidence_is_calibrated_and_monotone():
    head = scene_model.default_head()
    cs = [head.confidence(x, 0) for x in (0.0, 0.1, 0.3, 0.6, 1.0)]
    assert cs == sorted(cs) and cs[0] < 0.1 and cs[-1] > 0.9
    assert head.confidence(-0.6, 0) == head.confidence(0.6, 0)


def test_low_confidence_scenes_shrink_toward_zero():
    est = LearnedEstimator()
    weak, strong = est.estimate([_scene([0.08] * 12), _scene([0.8] * 12)])
    assert 0 < weak.valence < 0.5 * 0.08  # a near-coin-toss scene stays near neutral
    assert weak.confidence < strong.confidence
    assert strong.valence > 0.7  # a clear scene keeps most of its value
    assert weak.features["valence_unshrunk"] == pytest.approx(0.08, abs=1e-4)
    # One sampled frame counts half: the same evidence, less confidence, more shrinkage.
    one = est.estimate([_scene([0.8])])[0]
    assert one.confidence < strong.confidence and one.valence < strong.valence
    # The sign is kept; negative scenes mirror positive ones.
    neg = est.estimate([_scene([-0.8] * 12)])[0]
    assert neg.valence == pytest.approx(-strong.valence, abs=1e-6)


def test_arousal_fuses_image_with_motion_rhythm_and_sound():
    est = LearnedEstimator()
    calm, busy = est.estimate([
        _scene([0.3] * 8, [0.0] * 8, motion=0.5, shot_length=6.0, loud=-45.0, onsets=0.1),
        _scene([0.3] * 8, [0.0] * 8, motion=15.0, shot_length=0.8, loud=-12.0, onsets=3.0),
    ])
    assert busy.arousal > calm.arousal + 0.3
    assert busy.valence == pytest.approx(calm.valence)  # valence is the picture's
    excited = est.estimate([_scene([0.3] * 8, [0.9] * 8, motion=0.5, shot_length=6.0, loud=-45.0, onsets=0.1)])[0]
    # The picture moves arousal too (by half its own value before shrinkage).
    assert excited.features["arousal_unshrunk"] == pytest.approx(calm.features["arousal_unshrunk"] + 0.45, abs=1e-3)
    assert excited.arousal > calm.arousal


def test_scene_without_samples_falls_back_to_heuristic():
    s = _scene([])
    s.samples = {}
    got = LearnedEstimator().estimate([s])[0]
    ref = HeuristicEstimator().estimate([s])[0]
    assert (got.valence, got.arousal) == (ref.valence, ref.arousal)


def test_learned_is_the_default_and_samples_two_frames_per_second(tmp_path, monkeypatch):
    monkeypatch.delenv("EMSYNC_VIDEO_ESTIMATOR", raising=False)
    assert get_estimator().name == "learned"
    segs = [Segment("testsrc2", 3.0), Segment("smptehdbars", 3.0)]
    path = make_video(tmp_path / "two.mp4", segs, size=(320, 180), fps=25, audio=None)
    a = analyze_video(path, min_scene_s=1.0, cache_dir=tmp_path / "cache")
    assert [round(c, 2) for c in a.cuts] == [3.0]
    assert [s.features["frames_sampled"] for s in a.scenes] == [6, 6]
    for s in a.scenes:
        assert 0 <= s.confidence <= 1 and abs(s.valence) <= abs(s.features["valence_unshrunk"]) + 1e-9
    # Cached under the learned estimator's id; the heuristic is a different entry.
    again = analyze_video(path, min_scene_s=1.0, cache_dir=tmp_path / "cache")
    assert again.to_dict() == a.to_dict()
    h = analyze_video(path, min_scene_s=1.0, estimator="heuristic", cache_dir=tmp_path / "cache")
    assert "frames_sampled" not in (h.scenes[0].features or {})


def test_missing_onnxruntime_is_a_one_line_error(monkeypatch):
    scene_model._session.cache_clear()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    try:
        with pytest.raises(EmsyncError, match="onnxruntime") as exc:
            get_estimator("learned")
        assert "\n" not in str(exc.value)
    finally:
        scene_model._session.cache_clear()


def test_frame_sampler_batches_in_background_and_keeps_order():
    rng = np.random.default_rng(3)
    frames = [np.kron(rng.integers(0, 255, (9, 16, 3)), np.ones((20, 20, 1))).astype(np.uint8) for _ in range(37)]
    sampler = scene_model.FrameSampler()
    for i, f in enumerate(frames):  # 2 full batches go to the worker thread, 5 frames stay for arrays()
        sampler.push(0.5 * i, f)
    got = sampler.arrays()
    want = scene_model.default_head().predict(scene_model.embed(frames))
    assert np.allclose(got["t"], 0.5 * np.arange(37))
    assert np.allclose(got["valence"], want[:, 0], atol=1e-4) and np.allclose(got["arousal"], want[:, 1], atol=1e-4)
