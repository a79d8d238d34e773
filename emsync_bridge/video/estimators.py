"""Per-scene emotion estimators: a protocol, the weight-free default, and an ONNX plug-in.

An estimator turns `SceneFeatures` (see features.py; they also carry a few RGB frames of the
scene) into `SceneEmotion`s. It sees all scenes of a video at once, so it may smooth over time.
Choose one with `get_estimator(spec)`; `spec` comes from `analyze_video(estimator=...)`, the CLI's
`--estimator`, or the config entry `EMSYNC_VIDEO_ESTIMATOR` (environment):
    "learned"               the default: shipped image network + OASIS head, fused with the
                            arousal cues, confidence-shrunk (needs onnxruntime)
    "heuristic"             colour/motion/sound rules (no weights)
    "onnx:/path/model.onnx" a user's ONNX model (needs onnxruntime: the [cpu] or [gpu] extra)
    "package.module:Name"   any importable class/factory implementing `EmotionEstimator`
    a name registered with `register_estimator`.
An estimator's `cache_id` (a string) goes into the analysis cache key; without one, results from
that estimator are not cached.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from emsync_bridge.errors import EmsyncError
from emsync_bridge.video import sounds
from emsync_bridge.video.emotion import EMOTIONS, emotion_to_va, va_to_probs
from emsync_bridge.video.features import FEATURE_NAMES, SceneFeatures
from emsync_bridge.video.schema import SceneEmotion

CONFIG_ENV = "EMSYNC_VIDEO_ESTIMATOR"


@runtime_checkable
class EmotionEstimator(Protocol):
    name: str

    def estimate(self, scenes: Sequence[SceneFeatures]) -> list[SceneEmotion]:
        """One SceneEmotion per input scene, same order and same start/end."""
        ...


def _clip(x: float, lo: float = -1.0, hi: float = 1.0) -> float:
    """x clipped to [lo, hi]; NaN (a broken input somewhere upstream) reads as 0, not as lo."""
    return 0.0 if math.isnan(x) else float(min(hi, max(lo, x)))


class HeuristicEstimator:
    """Valence/arousal from low-level features with published rules; Ekman-6 from V/A.

    Arousal — Hanjalic & Xu 2005 ("Affective video content representation and modeling",
    IEEE Trans. Multimedia 7(1):143–154): arousal rises with motion activity, shot-change rate
    (their "rhythm" term decays exponentially with shot length, r = exp((1 − len)/δ)) and sound
    energy; we add the audio onset rate (Zhang et al. 2008 use tempo/beat strength for arousal).
    Each component is squashed to [0, 1] and averaged with fixed weights (missing audio → the
    visual weights are renormalised), plus a colour term from Valdez & Mehrabian 1994.

    Valence — Valdez & Mehrabian 1994 ("Effects of color on emotions", J. Exp. Psychol.: General
    123(4):394–409): on standardised brightness B and saturation S, Pleasure = .69 B + .22 S and
    Arousal = −.31 B + .60 S. B and S are z-scored against fixed footage statistics (below), not
    per video, so a dark film stays dark. Colourfulness (Hasler & Süsstrunk 2003) adds to
    valence; warm hues (Ou et al. 2004's colour-heat axis) nudge valence and arousal up a little.
    Low-level valence is known to be unreliable, hence the capped confidence.

    The constants (reference statistics, squashing scales, weights) are ours, chosen so that
    synthetic clips with known properties land where the rules say (tests/test_video_emotion.py);
    they are documented in docs/video-analysis.md.
    Ekman-6 probabilities come from `va_to_probs` (EMSYNC's class Gaussians).
    """

    name = "heuristic"
    cache_id = "heuristic-1"

    # Reference "typical footage" statistics for z-scoring (mean, sd) of HSV V and S means.
    B_REF = (0.45, 0.20)
    S_REF = (0.35, 0.20)
    C_REF = (33.0, 25.0)  # colourfulness: H&S "moderately colourful" = 33
    MOTION_SCALE = 6.0  # grey-level diff per 1/25 s giving 63 % of the motion term
    RHYTHM_DELTA = 5.0  # s, δ in r = exp((1 − shot_len)/δ)
    LOUD_RANGE = (-50.0, -10.0)  # dBFS mapped linearly to 0..1
    ONSET_SCALE = 3.0  # onsets/s giving 63 % of the onset term
    W_AROUSAL = {"motion": 0.35, "rhythm": 0.25, "sound": 0.25, "onsets": 0.15}
    MAX_CONFIDENCE = 0.5

    def arousal_components(self, s: SceneFeatures) -> dict[str, float]:
        c = {
            "motion": 1.0 - math.exp(-max(s.motion, 0.0) / self.MOTION_SCALE),
            "rhythm": min(1.0, math.exp((1.0 - s.shot_length) / self.RHYTHM_DELTA)),
        }
        if s.loudness_db is not None:
            lo, hi = self.LOUD_RANGE
            c["sound"] = min(1.0, max(0.0, (s.loudness_db - lo) / (hi - lo)))
            c["onsets"] = 1.0 - math.exp(-(s.onset_rate or 0.0) / self.ONSET_SCALE)
        return c

    def valence_arousal(self, s: SceneFeatures) -> tuple[float, float, float]:
        """(valence, arousal, agreement in [0, 1] of the arousal components)."""
        zb = (s.brightness - self.B_REF[0]) / self.B_REF[1]
        zs = (s.saturation - self.S_REF[0]) / self.S_REF[1]
        pleasure_vm = 0.69 * zb + 0.22 * zs
        arousal_vm = -0.31 * zb + 0.60 * zs
        comps = self.arousal_components(s)
        wsum = sum(self.W_AROUSAL[k] for k in comps)
        a_hx = sum(self.W_AROUSAL[k] * v for k, v in comps.items()) / wsum
        arousal = 0.75 * (2.0 * a_hx - 1.0) + 0.25 * math.tanh(arousal_vm / 2.0) + 0.1 * s.warmth
        zc = (s.colourfulness - self.C_REF[0]) / self.C_REF[1]
        valence = 0.6 * math.tanh(pleasure_vm / 1.5) + 0.25 * math.tanh(zc) + 0.15 * s.warmth
        agreement = 1.0 - min(1.0, 2.0 * float(np.std(list(comps.values()))))
        return _clip(valence), _clip(arousal), agreement

    def estimate(self, scenes: Sequence[SceneFeatures]) -> list[SceneEmotion]:
        out = []
        for s in scenes:
            v, a, agreement = self.valence_arousal(s)
            coverage = 1.0 if s.has_audio else 0.75  # no sound: half the arousal evidence is gone
            length = min(1.0, s.duration / 2.0)  # very short scenes average few frames
            conf = self.MAX_CONFIDENCE * coverage * length * (0.5 + 0.5 * agreement)
            feats = s.as_dict()
            feats.update({f"arousal_{k}": round(x, 4) for k, x in self.arousal_components(s).items()})
            out.append(SceneEmotion(s.start, s.end, v, a, va_to_probs(v, a), conf, feats))
        return out


class LearnedEstimator:
    """The default: valence/arousal from a pretrained image network, fused with the arousal cues.

    Frames: ~2 per second, larger than the analysis frames (`scene_model.FrameSampler`; the
    decoder hands them over while it decodes), each → MobileNet V1 embedding → ridge head trained
    on OASIS (10-fold CV r 0.62 valence / 0.66 arousal at the 160 px input used here). A scene's
    image valence/arousal is the mean over its frames.

    Faces (`faces.py`, BlazeFace + FER mini-Xception, shipped): each sampled frame's faces give a
    weight (detection score × size, ≤ 1 per frame) and a face valence; the scene's face share
    f = mean frame weight pulls valence: v = (1 − ¼f)·v_image + ¼f·v_faces, and mixes the faces'
    Ekman-6 probabilities into the scene's by the same ¼f (FACE_PULL).

    Sound (`sounds.py`, YAMNet, shipped): the scene's affect sounds — sobbing, screaming,
    laughter, sad / happy / tender / scary music (AudioSet classes, zero-shot) — give a sound
    valence A and evidence E; valence = (1 − w)·picture + w·A with w = ½·min(1, E / 0.2)
    (`sounds.scene_sound`). Where a film has such sounds they speak for its mood; on the four
    animated films measured they are rare (w ≤ 0.09), see docs/video-analysis.md.

    Fusion: valence = image valence (with the face pull, then the sound). Arousal = ½ image arousal + ½ the heuristic's Hanjalic & Xu
    arousal (motion, cut rhythm, loudness, onsets): a still photograph cannot show motion or
    sound, the cues cannot show what is in the picture.

    Confidence, calibrated on OASIS: per axis c = 2·P(sign right) − 1 with P = σ(c0 + c1·|x|)
    fitted to the cross-validated predictions (`RidgeHead.confidence`), times min(1, frames/2)
    (a scene with one sampled frame counts half). Each axis is then *shrunk* by its confidence,
    x_out = c·x: a scene the model cannot call comes out near 0 (neutral music) instead of with a
    confident wrong sign. The reported confidence is the mean of the two axes' c.
    Without sampled frames (a scene shorter than one sampling step gets the nearest frame, so this
    only happens for a video with no frames seen) the heuristic's estimate is used.
    """

    name = "learned"
    W_IMAGE_AROUSAL = 0.5
    # A scene whose frames all show a full-weight face: valence ¾ picture, ¼ faces. Chosen on the
    # 310 OASIS photos with a face found (benchmarks/oasis_faces.py): pull 0 / 0.1 / 0.25 / 0.5 / 1
    # gave valence r 0.568 / 0.582 / 0.595 / 0.584 / 0.428, sign 76.6 / 76.9 / 78.9 / 74.0 / 59.7 %.
    FACE_PULL = 0.25

    def __init__(self):
        from emsync_bridge.video import scene_model

        self._scene_model = scene_model
        self.head = scene_model.default_head()
        scene_model._session()  # fail now (one line) if onnxruntime is missing, not mid-decode
        self.heuristic = HeuristicEstimator()
        self.cache_id = f"learned-3-{scene_model.weights_digest()}-{scene_model.INPUT_SIZE}-{scene_model.FrameSampler.EVERY_S}"

    def frame_sampler(self):
        return self._scene_model.FrameSampler(self.head)

    def sound_sampler(self):
        return sounds.SoundSampler()

    def estimate(self, scenes: Sequence[SceneFeatures]) -> list[SceneEmotion]:
        base = self.heuristic.estimate(scenes)
        out = []
        for s, h in zip(scenes, base):
            n = len(s.samples.get("t", ()))
            if n == 0:
                out.append(h)
                continue
            v_img = float(np.mean(s.samples["valence"]))
            a_img = float(np.mean(s.samples["arousal"]))
            comps = self.heuristic.arousal_components(s)
            wsum = sum(self.heuristic.W_AROUSAL[k] for k in comps)
            a_hx = 2.0 * sum(self.heuristic.W_AROUSAL[k] * x for k, x in comps.items()) / wsum - 1.0
            # Face channel: frames' face weights (score × size) average to the scene's face share.
            fw = np.asarray(s.samples.get("face_weight", np.zeros(n)), dtype=np.float64)
            pull = self.FACE_PULL * float(fw.mean()) if n else 0.0
            v_face = float((fw * s.samples["face_valence"]).sum() / fw.sum()) if fw.sum() > 0 else 0.0
            v_seen = (1.0 - pull) * v_img + pull * v_face
            # Sound channel: the affect sounds' valence, weighted by how much of them there is.
            snd = sounds.scene_sound(s.sounds)
            v_raw = _clip((1.0 - snd["weight"]) * v_seen + snd["weight"] * snd["valence"])
            a_raw = _clip(self.W_IMAGE_AROUSAL * a_img + (1.0 - self.W_IMAGE_AROUSAL) * a_hx)
            coverage = min(1.0, n / 2.0)
            cv = self.head.confidence(v_raw, 0) * coverage
            ca = self.head.confidence(a_raw, 1) * coverage
            v, a = cv * v_raw, ca * a_raw
            probs = va_to_probs(v, a)
            if pull > 0:  # faces drive the Ekman-6 mix by their share
                face_p = np.asarray([(fw * s.samples[f"face_{e}"]).sum() / fw.sum() for e in EMOTIONS])
                mix = (1.0 - pull) * np.asarray([probs[e] for e in EMOTIONS]) + pull * face_p / max(face_p.sum(), 1e-9)
                probs = {e: float(p) for e, p in zip(EMOTIONS, mix / mix.sum())}
            feats = dict(h.features or {})
            feats.update(
                image_valence=round(v_img, 4), image_arousal=round(a_img, 4), cue_arousal=round(a_hx, 4),
                frames_sampled=n, valence_unshrunk=round(v_raw, 4), arousal_unshrunk=round(a_raw, 4),
                confidence_valence=round(cv, 4), confidence_arousal=round(ca, 4),
                face_share=round(float(fw.mean()), 4), face_valence=round(v_face, 4),
                **{f"sound_{k}": round(x, 4) for k, x in snd.items()},
            )
            out.append(SceneEmotion(s.start, s.end, v, a, probs, 0.5 * (cv + ca), feats))
        return out


class OnnxEstimator:
    """A user's ONNX model; onnxruntime is imported only when this estimator is used.

    Input (the model's first input): rank 2 → the scene feature vector in `FEATURE_NAMES` order,
    shape [N, len(FEATURE_NAMES)]; rank 4 → RGB frames in [0, 1], NCHW when dim 1 is 3, else NHWC
    (size from the model, 224 if dynamic), one batch per scene, outputs averaged over its frames.
    Output (first output): [N, 6] probabilities or logits in `EMOTIONS` order (softmaxed unless
    rows already sum to 1), or [N, 2] (valence, arousal) in [−1, 1].
    """

    name = "onnx"

    def __init__(self, model_path: str | Path, providers: Sequence[str] | None = None):
        p = Path(model_path)
        if not p.is_file():
            raise EmsyncError(f"ONNX emotion model not found: {model_path}")
        from emsync_bridge.onnxrt import import_onnxruntime

        ort = import_onnxruntime("onnx estimator needs onnxruntime: install emsync-bridge[cpu] or [gpu]")
        try:
            self.session = ort.InferenceSession(str(p), providers=list(providers or ["CPUExecutionProvider"]))
        except Exception as exc:  # onnxruntime raises its own exception types
            raise EmsyncError(f"cannot load ONNX emotion model {p.name}: {exc}".splitlines()[0]) from None
        self.input = self.session.get_inputs()[0]
        self.rank = len(self.input.shape)
        if self.rank not in (2, 4):
            raise EmsyncError(f"ONNX emotion model input must be rank 2 (features) or 4 (frames), got {self.input.shape}")
        self.cache_id = "onnx-" + hashlib.sha256(p.read_bytes()).hexdigest()[:16]

    def _run(self, x: np.ndarray) -> np.ndarray:
        out = np.asarray(self.session.run(None, {self.input.name: x})[0], dtype=np.float64)
        if out.ndim != 2 or out.shape[1] not in (2, 6):
            raise EmsyncError(f"ONNX emotion model output must be [N, 6] or [N, 2], got {list(out.shape)}")
        return out

    def _frames(self, s: SceneFeatures) -> np.ndarray:
        import cv2

        shape = self.input.shape
        nchw = shape[1] == 3
        h, w = (shape[2], shape[3]) if nchw else (shape[1], shape[2])
        h = h if isinstance(h, int) else 224
        w = w if isinstance(w, int) else 224
        frames = s.frames or [np.zeros((h, w, 3), np.uint8)]
        x = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames]).astype(np.float32) / 255.0
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if nchw else x)

    def estimate(self, scenes: Sequence[SceneFeatures]) -> list[SceneEmotion]:
        if self.rank == 2:
            rows = self._run(np.stack([s.vector() for s in scenes]).astype(np.float32))
        else:
            rows = np.stack([self._run(self._frames(s)).mean(axis=0) for s in scenes])
        out = []
        for s, r in zip(scenes, rows):
            if len(r) == 2:
                v, a = _clip(r[0]), _clip(r[1])
                probs = va_to_probs(v, a)
                conf = 0.5
            else:
                if (r < 0).any() or abs(r.sum() - 1.0) > 1e-3:
                    e = np.exp(r - r.max())
                    r = e / e.sum()
                probs = {c: float(p) for c, p in zip(EMOTIONS, r)}
                v, a = emotion_to_va(probs)
                conf = float(max(r))
            out.append(SceneEmotion(s.start, s.end, v, a, probs, conf, s.as_dict()))
        return out


_REGISTRY: dict[str, Callable[[], EmotionEstimator]] = {
    "learned": LearnedEstimator,
    "heuristic": HeuristicEstimator,
}
DEFAULT_ESTIMATOR = "learned"


def register_estimator(name: str, factory: Callable[[], EmotionEstimator]) -> None:
    """Make `factory()` available as estimator spec `name`."""
    _REGISTRY[name] = factory


def get_estimator(spec: str | EmotionEstimator | None = None) -> EmotionEstimator:
    """Resolve an estimator spec (see module docstring); None → config entry → "learned"."""
    if spec is not None and not isinstance(spec, str):
        if not isinstance(spec, EmotionEstimator):
            raise EmsyncError(f"{type(spec).__name__} is not an EmotionEstimator (needs .name and .estimate)")
        return spec
    spec = spec or os.environ.get(CONFIG_ENV) or DEFAULT_ESTIMATOR
    if spec in _REGISTRY:
        return _REGISTRY[spec]()
    if spec.startswith("onnx:"):
        return OnnxEstimator(spec[5:])
    if ":" in spec:
        mod, _, attr = spec.partition(":")
        try:
            obj = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            raise EmsyncError(f"cannot load emotion estimator {spec!r}: {exc}") from None
        # A class (or factory) is instantiated; an object already satisfying the protocol is used.
        est = obj() if isinstance(obj, type) or (callable(obj) and not isinstance(obj, EmotionEstimator)) else obj
        if isinstance(est, type) or not isinstance(est, EmotionEstimator):
            raise EmsyncError(f"{spec!r} is not an EmotionEstimator (needs .name and .estimate)")
        return est
    raise EmsyncError(
        f"unknown emotion estimator {spec!r}; use one of {', '.join(sorted(_REGISTRY))}, onnx:PATH or module:Name"
    )


__all__ = [
    "EmotionEstimator", "HeuristicEstimator", "LearnedEstimator", "OnnxEstimator", "get_estimator", "register_estimator",
    "FEATURE_NAMES", "CONFIG_ENV",
]
