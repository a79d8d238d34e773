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

Patches do not overlap (one network run per 0.975 s: ~3.5 ms of CPU per second of audio); memory
is 3 floats per patch plus one batch of samples.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from emsync_bridge.video.weights import AUDIO_FILE

RATE = 16000  # Hz, YAMNet's input
WINDOW = 15600  # samples per patch (0.975 s: 96 frames of 25 ms at a 10 ms hop)
BATCH = 32  # patches per network run (2 MB of samples)

# AudioSet class (YAMNet's class map, index: display name) → valence read from the name alone.
VALENCE_CLASSES: dict[int, tuple[str, float]] = {
    11: ("Screaming", -1.0),
    13: ("Laughter", 1.0),
    14: ("Baby laughter", 1.0),
    15: ("Giggle", 1.0),
    17: ("Belly laugh", 1.0),
    18: ("Chuckle, chortle", 1.0),
    19: ("Crying, sobbing", -1.0),
    20: ("Baby cry, infant cry", -1.0),
    21: ("Whimper", -1.0),
    22: ("Wail, moan", -1.0),
    33: ("Groan", -0.5),
    61: ("Cheering", 1.0),
    66: ("Children playing", 0.5),
    271: ("Happy music", 1.0),
    272: ("Sad music", -1.0),
    273: ("Tender music", 0.5),
    275: ("Angry music", -1.0),
    276: ("Scary music", -1.0),
}
_IDX = np.asarray(sorted(VALENCE_CLASSES))
_VAL = np.asarray([VALENCE_CLASSES[i][1] for i in _IDX], np.float32)

W_AUDIO = 0.5  # the most the sound may move a scene's valence
E_FULL = 0.2  # evidence at which the sound gets all of W_AUDIO


@lru_cache(maxsize=1)
def _session(threads: int = 1):
    from emsync_bridge.onnxrt import import_onnxruntime

    ort = import_onnxruntime("the learned video estimator needs onnxruntime (pip install 'emsync-bridge[cpu]'); "
                             "or use --estimator heuristic")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.disable_quant_qdq", "1")  # int8 weights folded once (scene_model)
    return ort.InferenceSession(str(AUDIO_FILE), opts, providers=["CPUExecutionProvider"])


def class_scores(patches: np.ndarray) -> np.ndarray:
    """[n, 521] YAMNet scores of float32 patches [n, WINDOW] (16 kHz mono, −1..1)."""
    if not len(patches):
        return np.zeros((0, 521), np.float32)
    sess = _session()
    return np.concatenate([sess.run(["scores"], {"waveform": patches[a : a + BATCH]})[0]
                           for a in range(0, len(patches), BATCH)])


def affect(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per patch (evidence e_p, polarity P_p) from class scores [n, 521]."""
    s = scores[:, _IDX].astype(np.float32)
    return s @ np.abs(_VAL), s @ _VAL


def scene_valence(evidence: np.ndarray, polarity: np.ndarray) -> tuple[float, float]:
    """(audio valence A in −1..1, mean evidence E) of one scene's patches; (0, 0) without any."""
    total = float(np.sum(evidence))
    if not len(evidence) or total <= 1e-9:
        return 0.0, 0.0
    return float(np.clip(np.sum(polarity) / total, -1.0, 1.0)), total / len(evidence)


def weight(evidence: float) -> float:
    """How much of a scene's valence the sound decides: W_AUDIO · min(1, E / E_FULL)."""
    return W_AUDIO * min(1.0, max(0.0, evidence) / E_FULL)


class SoundSampler:
    """Receives 16 kHz mono chunks (`decode.stream_audio(path, sampler.push, rate=RATE)`), cuts
    them into back-to-back 0.975 s patches and keeps (centre time, evidence, polarity) per patch.
    Times are on the audio stream's clock from its first sample; `arrays(offset)` shifts them."""

    RATE = RATE

    def __init__(self):
        self._carry = np.zeros(0, np.float32)
        self._done = 0  # patches already run
        self.t: list[float] = []
        self.evidence: list[np.ndarray] = []
        self.polarity: list[np.ndarray] = []

    def push(self, samples: np.ndarray) -> None:
        x = np.concatenate([self._carry, np.asarray(samples, np.float32).reshape(-1)])
        n = len(x) // WINDOW
        if n >= BATCH:
            self._run(x[: n * WINDOW].reshape(n, WINDOW))
            x = x[n * WINDOW :]
        self._carry = x.copy()

    def _run(self, patches: np.ndarray) -> None:
        e, p = affect(class_scores(patches))
        self.t.extend((self._done + np.arange(len(patches)) + 0.5) * WINDOW / RATE)
        self._done += len(patches)
        self.evidence.append(e)
        self.polarity.append(p)

    def finish(self) -> None:
        """Run what is left; a last partial patch of ≥ ¼ window is zero-padded, shorter is dropped."""
        x = self._carry
        n, rest = divmod(len(x), WINDOW)
        parts = [x[: n * WINDOW].reshape(n, WINDOW)] if n else []
        if rest >= WINDOW // 4:
            parts.append(np.pad(x[n * WINDOW :], (0, WINDOW - rest))[None])
        if parts:
            self._run(np.concatenate(parts))
        self._carry = np.zeros(0, np.float32)

    def arrays(self, offset: float = 0.0) -> dict[str, np.ndarray]:
        """{"t" (s, + offset), "evidence", "polarity"}, one row per patch."""
        self.finish()
        cat = (lambda xs: np.concatenate(xs).astype(np.float32)) if self.evidence else (lambda xs: np.zeros(0, np.float32))
        return {"t": np.asarray(self.t, np.float64) + offset, "evidence": cat(self.evidence),
                "polarity": cat(self.polarity)}
