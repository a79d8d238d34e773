"""The face channel (issue 19): BlazeFace + FER mini-Xception (shipped ONNX), and its pull on valence."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from emsync_bridge.video import faces  # noqa: E402
from emsync_bridge.video.emotion import EMOTIONS  # noqa: E402
from emsync_bridge.video.estimators import LearnedEstimator  # noqa: E402
from emsync_bridge.video.features import SceneFeatures  # noqa: E402

SHA256 = {
    faces.DETECTOR_FILE: "8b97bcf3af68175aaa06e41a50691f08b239dae3c169d44f86c7edd865447abb",
    faces.EXPRESSION_FILE: "ee3fca98460b871e730616625427de3c075c772ca3c2d0b8d52f9324aa72d149",
}


def _grace_hopper() -> np.ndarray:
    import cv2
    import matplotlib

    # A public-domain US Navy portrait that matplotlib ships as sample data.
    p = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not p.exists():
        pytest.skip("matplotlib sample data not installed")
    return cv2.imread(str(p))[:, :, ::-1].copy()


def test_face_weights_ship_with_known_hashes():
    for path, digest in SHA256.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, path.name


def test_detects_the_one_face_in_a_portrait_at_film_frame_size():
    import cv2

    img = _grace_hopper()  # 512×600
    for scale in (1.0, 160 / 600):  # full size and the sampler's 160 px frames
        im = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        found = faces.faces(im)
        assert len(found) == 1, scale
        f = found[0]
        x0, y0, x1, y1 = (v / scale for v in f.box)
        assert 120 < (x0 + x1) / 2 < 400 and 100 < (y0 + y1) / 2 < 400  # the face, not the uniform
        assert f.score > 0.8 and f.weight > 0.8
        assert sum(f.expressions.values()) == pytest.approx(1.0, abs=1e-4)
        assert sum(f.ekman().values()) == pytest.approx(1.0, abs=1e-4)


def test_no_faces_in_blank_or_texture_frames():
    rng = np.random.default_rng(0)
    assert faces.faces(np.zeros((160, 284, 3), np.uint8)) == []
    assert faces.faces(rng.integers(0, 255, (160, 284, 3)).astype(np.uint8)) == []
    assert not faces.frame_summary(np.zeros((160, 284, 3), np.uint8)).any()


def test_frame_summary_of_a_face():
    s = faces.frame_summary(_grace_hopper())
    assert len(s) == len(faces.SUMMARY) and s[0] > 0.8
    assert s[3:].sum() == pytest.approx(1.0, abs=1e-4)


def _scene(face_weight, face_valence, face_probs):
    n = 8
    samples = {"t": np.arange(n) * 0.5, "valence": np.full(n, 0.6, np.float32), "arousal": np.zeros(n, np.float32),
               "face_weight": np.full(n, face_weight, np.float32), "face_valence": np.full(n, face_valence, np.float32),
               "face_arousal": np.zeros(n, np.float32)}
    for e in EMOTIONS:
        samples[f"face_{e}"] = np.full(n, face_probs.get(e, 0.0), np.float32)
    return SceneFeatures(start=0.0, end=4.0, brightness=0.45, saturation=0.35, colourfulness=33.0, warmth=0.0,
                         motion=1.0, cut_count=0, cut_rate=0.0, shot_length=4.0, loudness_db=-30.0, onset_rate=0.5,
                         samples=samples)


def test_faces_pull_valence_and_drive_ekman_by_their_share():
    est = LearnedEstimator()
    none, half, full = est.estimate([
        _scene(0.0, 0.0, {}),
        _scene(0.5, -0.8, {"sadness": 1.0}),
        _scene(1.0, -0.8, {"sadness": 1.0}),
    ])
    assert none.features["valence_unshrunk"] == pytest.approx(0.6, abs=1e-4)
    k = LearnedEstimator.FACE_PULL
    assert half.features["valence_unshrunk"] == pytest.approx((1 - k / 2) * 0.6 + k / 2 * -0.8, abs=1e-4)
    assert full.features["valence_unshrunk"] == pytest.approx((1 - k) * 0.6 + k * -0.8, abs=1e-4)
    assert none.emotions["sadness"] < half.emotions["sadness"] < full.emotions["sadness"]
    assert sum(full.emotions.values()) == pytest.approx(1.0, abs=1e-6)
