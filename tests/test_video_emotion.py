"""Emotion table, V/A mapping, the weight-free estimator on synthetic clips, pluggable estimators."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from emsync_bridge.errors import EmsyncError
from emsync_bridge.video.analysis import analyze_video
from emsync_bridge.video.emotion import (
    EMOTIONS, VA_TABLE, dominant_emotion, emotion_to_va, reachable_va, va_for_emotion, va_to_probs,
)
from emsync_bridge.video.estimators import FEATURE_NAMES, get_estimator, register_estimator
from emsync_bridge.video.schema import SceneEmotion, VideoAnalysis
from emsync_bridge.video.synth import Segment, make_video


def test_emsync_table_rescaled_to_pm08():
    # Adjusted means as EMSYNC computes them (shared/docs/emsync-model-and-peers.md §2.6).
    expected = {"anger": (-0.651, 0.664), "disgust": (-0.754, 0.255), "fear": (-0.800, 0.681),
                "joy": (0.800, 0.477), "sadness": (-0.789, -0.800), "surprise": (0.389, 0.800)}
    for e, (v, a) in expected.items():
        assert va_for_emotion(e) == pytest.approx((v, a), abs=1e-3)
    vs = [VA_TABLE[e][0] for e in EMOTIONS]
    as_ = [VA_TABLE[e][2] for e in EMOTIONS]
    assert (min(vs), max(vs)) == pytest.approx((-0.8, 0.8))
    assert (min(as_), max(as_)) == pytest.approx((-0.8, 0.8))
    assert VA_TABLE["joy"][1] == pytest.approx(0.22 * 1.142857, abs=1e-5)  # stds scale too


def test_emotion_to_va_is_weighted_mixture():
    assert emotion_to_va({"joy": 1.0}) == pytest.approx(va_for_emotion("joy"))
    # w = p / Σp: unnormalised input gives the same answer as normalised.
    half = emotion_to_va({"joy": 2.0, "sadness": 2.0})
    assert half == pytest.approx(tuple((x + y) / 2 for x, y in zip(va_for_emotion("joy"), va_for_emotion("sadness"))))
    assert emotion_to_va([0, 0, 0, 0, 1, 0]) == pytest.approx(va_for_emotion("sadness"))
    assert emotion_to_va({}) == (0.0, 0.0)
    with pytest.raises(EmsyncError):
        emotion_to_va({"happiness": 1.0})
    with pytest.raises(EmsyncError):
        va_for_emotion("boredom")


def test_inverse_mapping_keeps_the_class_and_round_trips():
    for e in EMOTIONS:
        p = va_to_probs(*va_for_emotion(e))
        assert sum(p.values()) == pytest.approx(1.0)
        assert dominant_emotion(p) == e
        assert emotion_to_va(p) == pytest.approx(va_for_emotion(e), abs=1e-5)
    rng = np.random.default_rng(0)
    for v, a in rng.uniform(-1, 1, size=(300, 2)):
        p = va_to_probs(v, a)
        assert min(p.values()) >= 0 and sum(p.values()) == pytest.approx(1.0)
        # EMSYNC's forward mapping of the probabilities lands on (V, A), or on the nearest point a
        # mixture of the class means can reach.
        assert emotion_to_va(p) == pytest.approx(reachable_va(v, a), abs=1e-4)
    assert reachable_va(0.0, 0.0) == (0.0, 0.0)  # inside the hull of the class means
    assert dominant_emotion(va_to_probs(-0.3, -0.6)) == "sadness"
    assert dominant_emotion(va_to_probs(0.6, 0.3)) == "joy"


@pytest.fixture(scope="module")
def contrast_clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("affect")
    # Bright, saturated, fast cuts (every 0.5 s), moving, loud with 4 clicks/s.
    bright = ["testsrc2", "color=c=yellow", "rgbtestsrc", "color=c=0xff3000", "smptehdbars", "color=c=magenta"] * 2
    hot = make_video(
        d / "hot.mp4", [Segment(s, 0.5) for s in bright], size=(160, 90), fps=25,
        audio="aevalsrc=0.8*sin(2*PI*440*t)*lt(mod(t\\,0.25)\\,0.06):s=8000",
    )
    # Dark, grey, one static shot, quiet hum.
    cold = make_video(
        d / "cold.mp4", [Segment("color=c=0x1c1e22", 6.0)], size=(160, 90), fps=25,
        audio="sine=frequency=110:sample_rate=8000,volume=0.01",
    )
    return hot, cold


def test_bright_fast_loud_beats_dark_static_quiet(contrast_clips):
    hot_path, cold_path = contrast_clips
    # The published colour/motion/sound rules (the learned default is tested in test_video_learned.py).
    hot = analyze_video(hot_path, min_scene_s=4.0, estimator="heuristic", cache=False)
    cold = analyze_video(cold_path, min_scene_s=4.0, estimator="heuristic", cache=False)
    assert hot.arousal > cold.arousal + 0.5
    assert hot.valence > cold.valence + 0.5
    for s in cold.scenes:
        assert dominant_emotion(s.emotions) == "sadness"
    for a in (hot, cold):
        for s in a.scenes:
            assert -1 <= s.valence <= 1 and -1 <= s.arousal <= 1
            assert 0 <= s.confidence <= 1
            assert set(s.emotions) == set(EMOTIONS) and sum(s.emotions.values()) == pytest.approx(1, abs=1e-3)


class ConstantEstimator:
    """A plug-in estimator: always fear, full confidence."""

    name = "constant"
    cache_id = "constant-1"

    def estimate(self, scenes):
        probs = {e: float(e == "fear") for e in EMOTIONS}
        v, a = emotion_to_va(probs)
        return [SceneEmotion(s.start, s.end, v, a, probs, 1.0) for s in scenes]


def test_pluggable_estimator_by_instance_name_and_module(contrast_clips, monkeypatch, tmp_path):
    hot_path, _ = contrast_clips
    a = analyze_video(hot_path, estimator=ConstantEstimator(), cache=False)
    assert all(s.dominant == "fear" for s in a.scenes)
    register_estimator("constant-test", ConstantEstimator)
    assert get_estimator("constant-test").name == "constant"
    mod = types.ModuleType("emsync_test_estimators")
    mod.ConstantEstimator = ConstantEstimator
    monkeypatch.setitem(sys.modules, "emsync_test_estimators", mod)
    # The config entry (environment) selects it when no estimator is passed.
    monkeypatch.setenv("EMSYNC_VIDEO_ESTIMATOR", "emsync_test_estimators:ConstantEstimator")
    b = analyze_video(hot_path, cache_dir=tmp_path)
    assert all(s.dominant == "fear" for s in b.scenes)
    with pytest.raises(EmsyncError):
        get_estimator("no-such-estimator")


def test_onnx_estimator_on_features(contrast_clips, tmp_path):
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    # Linear model: logits = x @ W, with W picking "joy" from brightness and "sadness" otherwise.
    w = np.zeros((len(FEATURE_NAMES), 6), np.float32)
    w[FEATURE_NAMES.index("brightness"), EMOTIONS.index("joy")] = 20.0
    w[FEATURE_NAMES.index("duration"), EMOTIONS.index("sadness")] = 1.0
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])], "emo",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", len(FEATURE_NAMES)])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 6])],
        initializer=[numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "emo.onnx"
    onnx.save(model, path)
    hot_path, cold_path = contrast_clips
    hot = analyze_video(hot_path, estimator=f"onnx:{path}", cache=False)
    cold = analyze_video(cold_path, estimator=f"onnx:{path}", cache=False)
    assert all(s.dominant == "joy" for s in hot.scenes)
    assert all(s.dominant == "sadness" for s in cold.scenes)
    with pytest.raises(EmsyncError):
        get_estimator(f"onnx:{tmp_path / 'missing.onnx'}")


def test_json_round_trip(contrast_clips):
    a = analyze_video(contrast_clips[0], cache=False)
    b = VideoAnalysis.from_json(a.to_json())
    assert b.to_dict() == a.to_dict()
    d = a.to_dict()
    assert list(d) == ["video", "duration", "fps", "width", "height", "has_audio", "cuts", "boundaries",
                       "scenes", "valence", "arousal"]
    assert list(d["scenes"][0]) == ["start", "end", "valence", "arousal", "emotions", "confidence"]
    with pytest.raises(EmsyncError):
        VideoAnalysis.from_json('{"video": 1}')


def _scene(**kw):
    from emsync_bridge.video.features import SceneFeatures

    base = dict(start=0.0, end=6.0, brightness=0.45, saturation=0.35, colourfulness=33.0, warmth=0.0,
                motion=2.0, cut_count=1, cut_rate=10.0, shot_length=3.0, loudness_db=-30.0, onset_rate=1.0)
    base.update(kw)
    return SceneFeatures(**base)


@pytest.mark.parametrize(
    "feature, low, high, axis",
    [
        ("motion", 0.0, 12.0, "arousal"),  # Hanjalic & Xu: motion activity
        ("shot_length", 8.0, 0.7, "arousal"),  # shorter shots (faster rhythm) → more arousal
        ("loudness_db", -55.0, -12.0, "arousal"),  # sound energy
        ("onset_rate", 0.0, 6.0, "arousal"),
        ("saturation", 0.1, 0.8, "arousal"),  # Valdez & Mehrabian: A = −.31 B + .60 S
        ("brightness", 0.1, 0.9, "valence"),  # Valdez & Mehrabian: P = .69 B + .22 S
        ("saturation", 0.1, 0.8, "valence"),
        ("colourfulness", 5.0, 90.0, "valence"),  # Hasler & Süsstrunk colourfulness
    ],
)
def test_heuristic_rules_are_monotone(feature, low, high, axis):
    from emsync_bridge.video.estimators import HeuristicEstimator

    est = HeuristicEstimator()
    lo, hi = est.estimate([_scene(**{feature: low}), _scene(**{feature: high})])
    assert getattr(hi, axis) > getattr(lo, axis) + 0.05


def test_heuristic_without_audio_is_less_confident():
    from emsync_bridge.video.estimators import HeuristicEstimator

    with_audio, without = HeuristicEstimator().estimate([_scene(), _scene(loudness_db=None, onset_rate=None)])
    assert without.confidence < with_audio.confidence
    assert -1 <= without.arousal <= 1


def test_onnx_estimator_on_frames(tmp_path):
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    # Frames model: mean colour per channel (NCHW) → logits; red → joy, blue → sadness.
    w = np.zeros((3, 6), np.float32)
    w[0, EMOTIONS.index("joy")] = 10.0
    w[2, EMOTIONS.index("sadness")] = 10.0
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=0), helper.make_node("MatMul", ["m", "W"], ["y"])],
        "frames",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 6])],
        initializer=[numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.array([2, 3], np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "frames.onnx")
    video = make_video(tmp_path / "rb.mp4", [Segment("color=c=red", 2.0), Segment("color=c=blue", 2.0)],
                       size=(160, 90), fps=25, audio=None)
    a = analyze_video(video, min_scene_s=1.0, estimator=f"onnx:{tmp_path / 'frames.onnx'}", cache=False)
    assert [s.dominant for s in a.scenes] == ["joy", "sadness"]
