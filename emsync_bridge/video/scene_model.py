"""Frame embeddings from MobileNet V1 (ONNX, shipped) and the valence/arousal ridge head on them.

The network is Coral's MobileNet V1 1.0 embedding extractor (Apache-2.0), converted to ONNX by
`scripts/build_scene_model.py` (uint8 weights, float activations); the head is a ridge regression
trained on OASIS ratings by `benchmarks/oasis_head.py` (only its coefficients ship). Sources,
licences and sha256 of both files: `emsync_bridge/models/MODEL_CARD.md` and docs/video-analysis.md.

A frame (RGB uint8, any size) is centre-cropped to a square, area-resized to INPUT_SIZE² and run
through the network; global average pooling gives 1024 numbers. The network is fully
convolutional, so a smaller input than its native 224 costs proportionally less; the head was
trained on embeddings made the same way from OASIS images, at the same size.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from emsync_bridge.video.weights import ALL as WEIGHT_FILES, EMBEDDER_FILE, HEAD_FILE, open_session

INPUT_SIZE = 160  # see docs/video-analysis.md: OASIS CV r at 128/160/224 and the cost of each
BATCH = 16  # frames per network run (bounded memory: 16 × 160² × 3 floats = 5 MB)


def square_crop(rgb: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """Centre square of an RGB image, area-resized to size × size (uint8)."""
    h, w = rgb.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    crop = rgb[y : y + s, x : x + s]
    interp = cv2.INTER_AREA if s > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)


@lru_cache(maxsize=1)
def _session(threads: int = 1):
    return open_session(EMBEDDER_FILE, "the learned video estimator", fold_int8=True, threads=threads)


def embed(frames: list[np.ndarray], size: int = INPUT_SIZE) -> np.ndarray:
    """[n, 1024] float32 embeddings of RGB uint8 frames (cropped and resized here)."""
    if not frames:
        return np.zeros((0, 1024), np.float32)
    sess = _session()
    out = []
    for a in range(0, len(frames), BATCH):
        x = np.stack([square_crop(f, size) for f in frames[a : a + BATCH]]).astype(np.float32)
        out.append(sess.run(None, {"image": x})[0])
    return np.concatenate(out).astype(np.float32)


class RidgeHead:
    """Linear valence/arousal from an embedding: y = ((x − mean) / scale) @ W + b, per output."""

    def __init__(self, path: str | Path = HEAD_FILE):
        with np.load(path) as z:
            self.mean = z["mean"].astype(np.float32)
            self.scale = z["scale"].astype(np.float32)
            self.W = z["W"].astype(np.float32)  # [1024, 2]: valence, arousal
            self.b = z["b"].astype(np.float32)
            self.input_size = int(z["input_size"])
            self.residual_sd = z["residual_sd"].astype(np.float32)  # CV residual sd per output
            self.sign_calib = z["sign_calib"].astype(np.float64)  # (c0, c1) for valence, then arousal

    def predict(self, emb: np.ndarray) -> np.ndarray:
        """[n, 2] (valence, arousal) on the pipeline's [-1, 1] scale (not clipped)."""
        return ((emb - self.mean) / self.scale) @ self.W + self.b


    def confidence(self, value: float, axis: int) -> float:
        """Calibrated confidence in the sign of a prediction: 2·P(sign right) − 1, in [0, 1].

        P = σ(c0 + c1·|value|), fitted on the OASIS cross-validated predictions (logistic
        regression of "sign right" on |prediction|; binned reliability in docs/video-analysis.md):
        0 means a coin toss, 1 a certain sign.
        """
        c0, c1 = self.sign_calib[2 * axis : 2 * axis + 2]
        p = 1.0 / (1.0 + np.exp(-(c0 + c1 * abs(value))))
        return float(min(1.0, max(0.0, 2.0 * p - 1.0)))


@lru_cache(maxsize=1)
def weights_digest() -> str:
    """sha256 prefix over the video weight files: part of the analysis cache key."""
    import hashlib

    h = hashlib.sha256()
    for p in WEIGHT_FILES:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


@lru_cache(maxsize=1)
def default_head() -> RidgeHead:
    return RidgeHead()


class FrameSampler:
    """Receives the decoder's larger frames (`decode_frames(on_grab=...)`), every EVERY_S seconds,
    runs the network in batches of BATCH and keeps only the head's (valence, arousal) per frame:
    memory is 12 floats per sampled frame plus two batches of pixels, whatever the film's length.

    Each full batch runs on one worker thread while the decoder goes on (onnxruntime releases the
    GIL), so on two cores the network's time mostly hides behind decoding; at most one batch is in
    flight — the next waits for it — so work and memory stay bounded on a slow machine.
    """

    EVERY_S = 0.5  # ~2 frames/s
    SHORT_SIDE = INPUT_SIZE  # frames arrive already this small (swscale), then are centre-cropped

    def __init__(self, head: RidgeHead | None = None):
        self.head = head or default_head()
        self._pending: list[np.ndarray] = []
        self._pending_t: list[float] = []
        self.t: list[float] = []
        self.va: list[np.ndarray] = []
        self._pool = None
        self._future = None

    def push(self, t: float, rgb: np.ndarray) -> None:
        self._pending.append(rgb)
        self._pending_t.append(t)
        if len(self._pending) >= BATCH:
            self._flush(wait=False)

    def _run(self, frames: list[np.ndarray]) -> np.ndarray:
        """Per frame: image valence, arousal; then the face channel (faces.frame_summary)."""
        from emsync_bridge.video import faces

        x = np.stack([square_crop(f, self.head.input_size) for f in frames]).astype(np.float32)
        va = self.head.predict(_session().run(None, {"image": x})[0])
        face = np.stack([faces.frame_summary(f) for f in frames])
        return np.concatenate([va, face], axis=1).astype(np.float32)

    def _collect(self) -> None:
        if self._future is not None:
            future, self._future = self._future, None
            try:
                self.va.append(future.result())
            except Exception as exc:  # a runtime failure: one line, not a traceback from a thread
                from emsync_bridge.errors import EmsyncError

                raise EmsyncError(f"scene network failed: {type(exc).__name__}: {exc}".splitlines()[0]) from exc

    def _flush(self, wait: bool) -> None:
        self._collect()  # results stay in order: one batch in flight at a time
        if self._pending:
            x = list(self._pending)
            self.t.extend(self._pending_t)
            self._pending.clear()
            self._pending_t.clear()
            if wait:
                self.va.append(self._run(x))
            else:
                if self._pool is None:
                    from concurrent.futures import ThreadPoolExecutor

                    self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emsync-scene-net")
                self._future = self._pool.submit(self._run, x)

    def arrays(self) -> dict[str, np.ndarray]:
        """{"t", "valence", "arousal", and the face channel's `faces.SUMMARY` columns}, one row
        per frame seen so far."""
        try:
            self._flush(wait=True)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
        from emsync_bridge.video import faces

        cols = ["valence", "arousal", *faces.SUMMARY]
        va = np.concatenate(self.va) if self.va else np.zeros((0, len(cols)), np.float32)
        out = {"t": np.asarray(self.t, np.float64)}
        out.update({c: va[:, i] for i, c in enumerate(cols)})
        return out
