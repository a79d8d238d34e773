"""What the soundtrack says about valence: YAMNet's AudioSet classes, zero-shot.

A film's picture and its sound disagree often (a golden sunset over a death scene); its music and
its human sounds — sobbing, screaming, laughter, sad or happy music — carry the valence the
grading hides. YAMNet (Plakal & Ellis, tensorflow/models, Apache-2.0; shipped converted to ONNX,
`models/audio-yamnet.onnx`, see VIDEO_MODELS.md) scores 521 AudioSet classes on each 0.975 s of
16 kHz mono audio.

The rule, fixed before it was run on any labelled film scene and not fitted to any:

* Each class in `VALENCE_CLASSES` — the AudioSet classes whose *name* states an affect — carries a
  valence v_c in {−1, −½, +½, +1} read from the name alone (sobbing −1, tender music +½, ...).
  Classes that state arousal but not valence (exciting music, shouting) and sound sources (birds,
  engines, rain) are left out.
* Per patch p with class scores s_pc (YAMNet's sigmoids): evidence e_p = Σ s_pc·|v_c| and
  polarity P_p = Σ s_pc·v_c.
* Per scene: audio valence A = Σ P_p / Σ e_p (−1..1: which side the affect sounds are on) and
  evidence E = mean e_p (how much of them there is).
* The learned estimator mixes A into the picture's valence with weight w = ½·min(1, E / E_FULL):
  at most half, as the arousal fusion gives the cues half; E_FULL = 0.2 (a class YAMNet scores at
  0.2 throughout a scene is a clear detection) — set, not fitted.

Tried and left out (measured at commit da1acdc, `benchmarks/audio_mode_pop909.py` there): the
*mode* of the music (chroma against the Krumhansl-Kessler profiles, weighted by YAMNet's "Music"
score). It tells major from minor on 65 of 80 rendered POP909 songs (majority 52.5 %), but on the
labelled film scenes Sintel's tragic climax reads as major (M +0.9..+1.0): valence sign agreement
stayed 11/20 and the rank correlation fell from 0.52 to 0.10, so a film score's mode is no valence cue
here (docs/video-analysis.md, "Real film scenes").

Patches do not overlap (one network run per 0.975 s: ~1.8 ms of CPU per second of audio); memory
is 3 floats per patch plus one batch of samples (8 patches, 0.5 MB).
"""

from __future__ import annotations

import csv
import math
from functools import lru_cache

import numpy as np

from emsync_bridge.video.weights import AUDIO_CLASSES_FILE, AUDIO_FILE, open_session

RATE = 16000  # Hz, YAMNet's input
WINDOW = 15600  # samples per patch (0.975 s: 96 frames of 25 ms at a 10 ms hop)
BATCH = 8  # patches per network run (a larger batch grows onnxruntime's buffers: +20 MB at 32)

# AudioSet classes (names as in YAMNet's class map) → valence read from the name alone.
VALENCE_CLASSES: dict[str, float] = {
    "Screaming": -1.0, "Crying, sobbing": -1.0, "Baby cry, infant cry": -1.0, "Whimper": -1.0,
    "Wail, moan": -1.0, "Groan": -0.5, "Sad music": -1.0, "Angry music": -1.0, "Scary music": -1.0,
    "Laughter": 1.0, "Baby laughter": 1.0, "Giggle": 1.0, "Belly laugh": 1.0, "Chuckle, chortle": 1.0,
    "Cheering": 1.0, "Children playing": 0.5, "Happy music": 1.0, "Tender music": 0.5,
}


@lru_cache(maxsize=1)
def class_names() -> tuple[str, ...]:
    """YAMNet's 521 class names in output order (the shipped class map)."""
    with open(AUDIO_CLASSES_FILE, newline="", encoding="utf-8") as f:
        return tuple(row["display_name"] for row in csv.DictReader(f))


@lru_cache(maxsize=1)
def _valence_columns() -> tuple[np.ndarray, np.ndarray]:
    names = class_names()
    idx = np.asarray([names.index(n) for n in VALENCE_CLASSES])
    return idx, np.asarray(list(VALENCE_CLASSES.values()), np.float32)


W_AUDIO = 0.5  # the most the sound may move a scene's valence
E_FULL = 0.2  # evidence at which the sound gets all of W_AUDIO


@lru_cache(maxsize=1)
def _session(threads: int = 1):
    # int8 weights folded once; no arena: buffers freed after each run, not held for the whole film.
    return open_session(AUDIO_FILE, "the learned video estimator", fold_int8=True, arena=False, threads=threads)


def class_scores(patches: np.ndarray) -> np.ndarray:
    """[n, 521] YAMNet scores of float32 patches [n, WINDOW] (16 kHz mono, −1..1)."""
    if not len(patches):
        return np.zeros((0, 521), np.float32)
    sess = _session()
    return np.concatenate([sess.run(["scores"], {"waveform": patches[a : a + BATCH]})[0]
                           for a in range(0, len(patches), BATCH)])


def affect(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per patch (evidence e_p, polarity P_p) from class scores [n, 521]."""
    idx, val = _valence_columns()
    s = scores[:, idx].astype(np.float32)
    return s @ np.abs(val), s @ val


def scene_valence(evidence: np.ndarray, polarity: np.ndarray) -> tuple[float, float]:
    """(audio valence A in −1..1, mean evidence E) of one scene's patches; (0, 0) without any."""
    total = float(np.sum(evidence))
    if not len(evidence) or not math.isfinite(total) or total <= 1e-9:
        return 0.0, 0.0
    a = float(np.sum(polarity)) / total
    return (float(np.clip(a, -1.0, 1.0)), total / len(evidence)) if math.isfinite(a) else (0.0, 0.0)


def weight(evidence: float) -> float:
    """How much of a scene's valence the sound decides: W_AUDIO · min(1, E / E_FULL)."""
    return W_AUDIO * min(1.0, max(0.0, evidence) / E_FULL)


def scene_sound(patches: dict[str, np.ndarray]) -> dict[str, float]:
    """A scene's sound valence A, evidence E and weight w from its patches (`SoundSampler.arrays`
    rows); all 0 without patches."""
    a, e = scene_valence(patches.get("evidence", ()), patches.get("polarity", ()))
    return {"valence": a, "evidence": e, "weight": weight(e)}


class SoundSampler:
    """Receives 16 kHz mono chunks (`decode.stream_audio(path, sampler.push, rate=RATE)`), cuts
    them into back-to-back 0.975 s patches and keeps (centre time, evidence, polarity) per patch.
    Times are on the audio stream's clock from its first sample; `arrays(offset)` shifts them."""

    RATE = RATE

    def __init__(self):
        _session()  # a missing or broken network fails here, before any audio is decoded
        self._chunks: list[np.ndarray] = []  # samples not yet run, kept as they came (no re-copying)
        self._held = 0
        self._done = 0  # patches already run
        self.t: list[float] = []
        self.evidence: list[np.ndarray] = []
        self.polarity: list[np.ndarray] = []

    def push(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, np.float32).reshape(-1)
        self._chunks.append(np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0) if not np.isfinite(x).all() else x)
        self._held += len(self._chunks[-1])
        if self._held >= BATCH * WINDOW:
            x = np.concatenate(self._chunks)
            n = len(x) // WINDOW
            self._run(x[: n * WINDOW].reshape(n, WINDOW))
            self._chunks = [x[n * WINDOW :].copy()]
            self._held = len(self._chunks[0])

    def _run(self, patches: np.ndarray, last_fill: int = WINDOW) -> None:
        """Score whole patches; the last one may hold only `last_fill` real samples (the rest zero
        padding): its time is the centre of those, its evidence and polarity count by their share."""
        try:
            e, p = affect(class_scores(patches))
        except Exception as exc:  # a runtime failure: one line naming this channel, not a traceback
            from emsync_bridge.errors import EmsyncError

            raise EmsyncError(f"sound network failed: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
        centres = (self._done + np.arange(len(patches)) + 0.5) * WINDOW
        if last_fill < WINDOW:
            centres[-1] = (self._done + len(patches) - 1) * WINDOW + last_fill / 2
            e[-1] *= last_fill / WINDOW
            p[-1] *= last_fill / WINDOW
        self.t.extend(centres / RATE)
        self._done += len(patches)
        self.evidence.append(e)
        self.polarity.append(p)

    def finish(self) -> None:
        """Run what is left; a last partial patch of ≥ ¼ window is zero-padded (and counts by its
        share of real samples), shorter is dropped."""
        x = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)
        n, rest = divmod(len(x), WINDOW)
        parts = [x[: n * WINDOW].reshape(n, WINDOW)] if n else []
        if rest >= WINDOW // 4:
            parts.append(np.pad(x[n * WINDOW :], (0, WINDOW - rest))[None])
        if parts:
            self._run(np.concatenate(parts), last_fill=rest if rest >= WINDOW // 4 else WINDOW)
        self._chunks, self._held = [], 0

    def arrays(self, offset: float = 0.0) -> dict[str, np.ndarray]:
        """{"t" (s, + offset), "evidence", "polarity"}, one row per patch."""
        self.finish()
        cat = (lambda xs: np.concatenate(xs).astype(np.float32)) if self.evidence else (lambda xs: np.zeros(0, np.float32))
        return {"t": np.asarray(self.t, np.float64) + offset, "evidence": cat(self.evidence),
                "polarity": cat(self.polarity)}
