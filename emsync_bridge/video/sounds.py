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

**Mode of the music** (added after the rule above scored 11/20 on the labelled film scenes: on film
scores YAMNet's mood classes stay near 0 while "Music" is 0.8-0.9, so the evidence E never came above
0.04; the film scenes were not otherwise looked at). Major keys sound happier than minor ones
(Hevner 1935; Gagnon & Peretz 2003). Per patch: a chroma vector (energy of 65 Hz-2.1 kHz per pitch
class, 256 ms frames, each normalised) and YAMNet's "Music" score m_p. Per scene: the music-weighted
mean chroma against the 24 Krumhansl-Kessler key profiles (`metrics.key_correlations`, the one the
music core uses), d = best major r − best minor r, mode valence M = tanh(d / 0.1) and music share
μ = mean m_p. On 80 POP909 songs rendered with FluidSynth (first 60 s; `benchmarks/audio_mode_pop909.py`)
the sign of d matched POP909's key label on 82.5 % (majority 52.5 %), |d| averaging 0.12 — hence
the 0.1. The estimator gives the music w_M = ½·μ (set, not fitted), the affect sounds w_A as above,
together at most ½.

Patches do not overlap (one network run per 0.975 s: ~3.5 ms of CPU per second of audio); memory
is 17 floats per patch plus one batch of samples.
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
MUSIC_CLASS = 132  # "Music"
_IDX = np.asarray(sorted(VALENCE_CLASSES))
_VAL = np.asarray([VALENCE_CLASSES[i][1] for i in _IDX], np.float32)

W_AUDIO = 0.5  # the most the sound may move a scene's valence
E_FULL = 0.2  # evidence at which the affect sounds get all of W_AUDIO
MODE_SCALE = 0.1  # major-minor correlation gap that reads as a clear mode (POP909 renders: |d| ~ 0.12)

# Chroma: 256 ms frames at 16 kHz, bins 65 Hz (C2) .. 2.1 kHz (C7) folded onto pitch classes (C = 0).
_NFFT, _HOP = 4096, 2048
_FREQ = np.fft.rfftfreq(_NFFT, 1.0 / RATE)
_BAND = (_FREQ >= 65.0) & (_FREQ <= 2100.0)
_PC = np.round(12 * np.log2(_FREQ[_BAND] / 261.6256)).astype(int) % 12
_FOLD = np.zeros((int(_BAND.sum()), 12), np.float32)
_FOLD[np.arange(len(_PC)), _PC] = 1.0
_HANN = np.hanning(_NFFT).astype(np.float32)


def chroma(patches: np.ndarray) -> np.ndarray:
    """[n, 12] mean chroma of each patch: per 256 ms frame the energy per pitch class, normalised
    to sum 1 (silent frames count 0), averaged over the patch's frames."""
    if not len(patches):
        return np.zeros((0, 12), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(patches, _NFFT, axis=1)[:, ::_HOP]  # [n, f, NFFT]
    power = np.abs(np.fft.rfft(frames * _HANN, axis=2))[..., _BAND] ** 2
    c = power @ _FOLD
    total = c.sum(axis=2, keepdims=True)
    c = np.where(total > 1e-10, c / np.maximum(total, 1e-10), 0.0)
    return c.mean(axis=1).astype(np.float32)


def mode_valence(chromas: np.ndarray, music: np.ndarray) -> tuple[float, float]:
    """(mode valence M in −1..1, music share μ) of one scene's patches; (0, 0) without music."""
    from emsync_bridge.music.metrics import key_correlations

    music = np.asarray(music, np.float64)
    if not len(music) or music.sum() <= 1e-6:
        return 0.0, 0.0
    r = key_correlations(np.asarray(chromas, np.float64).T @ music / music.sum())
    if not r.any():
        return 0.0, float(music.mean())
    return float(np.tanh((r[:12].max() - r[12:].max()) / MODE_SCALE)), float(music.mean())


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
    """How much of a scene's valence the affect sounds decide: W_AUDIO · min(1, E / E_FULL)."""
    return W_AUDIO * min(1.0, max(0.0, evidence) / E_FULL)


def scene_sound(sounds: dict[str, np.ndarray]) -> dict[str, float]:
    """A scene's sound valence from its patches (`SoundSampler.arrays` rows): the affect sounds
    (A, E, w_A) and the music's mode (M, μ, w_M = ½·μ), mixed into one valence with one weight
    w = min(½, w_A + w_M). All zero without patches."""
    a, e = scene_valence(sounds.get("evidence", ()), sounds.get("polarity", ()))
    m, mu = mode_valence(sounds.get("chroma", np.zeros((0, 12))), sounds.get("music", ()))
    wa, wm = weight(e), W_AUDIO * mu
    w = min(W_AUDIO, wa + wm)
    v = (wa * a + wm * m) / (wa + wm) if wa + wm > 1e-9 else 0.0
    return {"valence": v, "weight": w, "affect_valence": a, "affect_evidence": e, "mode_valence": m, "music": mu}


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
        self.music: list[np.ndarray] = []
        self.chroma: list[np.ndarray] = []

    def push(self, samples: np.ndarray) -> None:
        x = np.concatenate([self._carry, np.asarray(samples, np.float32).reshape(-1)])
        n = len(x) // WINDOW
        if n >= BATCH:
            self._run(x[: n * WINDOW].reshape(n, WINDOW))
            x = x[n * WINDOW :]
        self._carry = x.copy()

    def _run(self, patches: np.ndarray) -> None:
        scores = class_scores(patches)
        e, p = affect(scores)
        self.t.extend((self._done + np.arange(len(patches)) + 0.5) * WINDOW / RATE)
        self._done += len(patches)
        self.evidence.append(e)
        self.polarity.append(p)
        self.music.append(scores[:, MUSIC_CLASS].astype(np.float32))
        self.chroma.append(chroma(patches))

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
        """{"t" (s, + offset), "evidence", "polarity", "music", "chroma" [n, 12]}, one row per patch."""
        self.finish()
        if not self.evidence:
            z = np.zeros(0, np.float32)
            return {"t": np.zeros(0), "evidence": z, "polarity": z, "music": z, "chroma": np.zeros((0, 12), np.float32)}
        return {"t": np.asarray(self.t, np.float64) + offset, "evidence": np.concatenate(self.evidence),
                "polarity": np.concatenate(self.polarity), "music": np.concatenate(self.music),
                "chroma": np.concatenate(self.chroma)}
