"""Low-level affect features, per frame while decoding and per scene afterwards.

Visual (from the small BGR analysis frames):
  * motion — mean absolute grey-level difference between consecutive frames, scaled to a 25 fps
    frame step (a cheap stand-in for the motion-vector activity of Hanjalic & Xu 2005);
  * brightness, saturation — mean HSV V, and chroma/max(V, 0.25) (HSV S with near-black pixels
    damped), in [0, 1] (the B and S of Valdez & Mehrabian 1994);
  * colourfulness — Hasler & Süsstrunk 2003, "Measuring colourfulness in natural images",
    Proc. SPIE 5007, metric M3: rg = R−G, yb = ½(R+G)−B, C = σ_rgyb + 0.3·μ_rgyb on 0–255 RGB
    (their scale: 15 slightly, 33 moderately, 45 averagely, 59 quite, 82 highly colourful);
  * warmth — chroma-weighted mean of cos(hue − 30°), +1 orange/red … −1 cyan/blue, shrunk toward
    0 for greyish frames (the warm–cool "colour heat" axis of Ou, Luo et al. 2004).
Audio (mono, 8 kHz): RMS loudness in dBFS and onset rate from half-wave-rectified log-spectral
flux peaks (Bello et al. 2005, "A tutorial on onset detection in music signals", IEEE TSAP 13(5)).
Structure: cut count, cut rate and mean shot length inside each scene (Hanjalic & Xu's rhythm).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from emsync_bridge.video import sounds

SAMPLE_HZ = 10.0  # colour stats and fade thumbnails; motion uses every frame
THUMB_SIZE = (32, 18)  # fade-detector thumbnails (w, h)
REPORT_THUMBS = 64  # frames kept for the report strip and for pixel-based estimators
REPORT_PIXELS = 160 * 90


def colourfulness(rgb: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) M3 on an RGB (or BGR, channel order given) uint8 image."""
    f = rgb.reshape(-1, 3).astype(np.float32)
    r, g, b = f[:, 0], f[:, 1], f[:, 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


class FrameFeatures:
    """Accumulates per-frame features while frames stream past (constant memory per sample)."""

    def __init__(
        self,
        sample_hz: float = SAMPLE_HZ,
        expected_duration: float = 0.0,
        on_thumb: Callable[[float, np.ndarray], None] | None = None,
    ):
        self.sample_dt = 1.0 / sample_hz
        # Flat typed buffers, not lists of Python floats / small arrays: per second of 25 fps video
        # 300 B for t + motion and 200 B for the 10 Hz stats. The 10 Hz THUMB_SIZE RGB thumbnails
        # (17 KB/s) are not kept: each goes to `on_thumb(t, thumb)` (cuts.TransitionScanner.push).
        self.t = array("d")
        self.motion = array("f")
        self.ts = array("d")
        self.stats = array("f")  # brightness, saturation, colourfulness, warmth per sample
        self.on_thumb = on_thumb
        self.report: list[tuple[float, np.ndarray]] = []
        # Report thumbnails: evenly over the declared duration (grab_frames fixes up if unknown).
        self.report_dt = max(expected_duration, 1.0) / REPORT_THUMBS if expected_duration > 0 else 1.0
        self._next_sample = 0.0
        self._next_report = 0.0
        self._prev_grey: np.ndarray | None = None
        self._prev_t = 0.0

    def push(self, t: float, bgr: np.ndarray) -> None:
        grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        if self._prev_grey is None:
            m = 0.0
        else:
            # Per-frame difference grows with the frame interval; normalise to a 1/25 s step.
            dt = max(t - self._prev_t, 1e-3)
            m = float(cv2.absdiff(grey, self._prev_grey).mean()) * min(4.0, (1 / 25) / dt)
        self.t.append(t)
        self.motion.append(m)
        self._prev_grey, self._prev_t = grey, t
        if t + 1e-6 >= self._next_sample:
            self._next_sample += self.sample_dt * max(1, int((t - self._next_sample) / self.sample_dt) + 1)
            # Colour statistics are global averages: a quarter of the pixels measures the same.
            small = cv2.resize(bgr, (max(4, bgr.shape[1] // 2), max(4, bgr.shape[0] // 2)), interpolation=cv2.INTER_AREA)
            hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
            h = hsv[:, :, 0].astype(np.float32) * (np.pi / 90.0)  # OpenCV hue is 0..180 for 0..360°
            v = hsv[:, :, 2].astype(np.float32) / 255.0
            chroma = hsv[:, :, 1].astype(np.float32) / 255.0 * v  # max − min, 0..1
            # HSV S = chroma/V explodes for near-black pixels (a dark grey with a faint tint reads as
            # "saturated"); dividing by max(V, 0.25) keeps it for normal pixels and damps the dark.
            sat = chroma / np.maximum(v, 0.25)
            # Hue direction weighted by chroma, normalised by at least 0.2 so greys stay near 0.
            warmth = float((chroma * np.cos(h - np.pi / 6)).mean() / max(float(chroma.mean()), 0.2))
            rgb = small[:, :, ::-1]
            self.ts.append(t)
            self.stats.extend((float(v.mean()), float(sat.mean()), colourfulness(rgb), warmth))
            if self.on_thumb is not None:
                self.on_thumb(t, np.ascontiguousarray(cv2.resize(bgr, THUMB_SIZE, interpolation=cv2.INTER_AREA)[:, :, ::-1]))
        if t + 1e-6 >= self._next_report:
            self._next_report += self.report_dt * max(1, int((t - self._next_report) / self.report_dt) + 1)
            self.report.append((t, np.ascontiguousarray(bgr[:, :, ::-1])))
            if len(self.report) >= 2 * REPORT_THUMBS:
                # Longer than declared (or no duration in the header): halve the rate, keep memory flat.
                self.report = self.report[::2]
                self.report_dt *= 2

    def arrays(self) -> dict[str, np.ndarray]:
        st = np.array(self.stats, dtype=np.float32).reshape(-1, 4)
        return {
            "t": np.array(self.t, dtype=np.float64),
            "motion": np.array(self.motion, dtype=np.float32),
            "ts": np.array(self.ts, dtype=np.float64),
            "brightness": st[:, 0],
            "saturation": st[:, 1],
            "colourfulness": st[:, 2],
            "warmth": st[:, 3],
        }


@dataclass
class AudioFeatures:
    frame_t: np.ndarray  # centre time of each analysis frame (s)
    power: np.ndarray  # mean square per frame
    onsets: np.ndarray  # onset times (s)
    frame_dt: float = 128 / 8000  # hop between analysis frames (s)


class AudioFeatureStream:
    """Frame power and spectral flux of a mono signal fed in chunks; onsets at `finish()`.

    Keeps 2 floats per hop (128 samples: 62.5 per second at 8 kHz, ~3.6 MB for a 2 h film) and
    one frame of carry-over, so memory does not grow with the audio's length the way holding
    the samples (32 KB/s) and their overlapping frames did.
    """

    def __init__(self, rate: int, frame: int = 256, hop: int = 128):
        self.rate, self.frame, self.hop = rate, frame, hop
        self.window = np.hanning(frame).astype(np.float32)
        self.power = array("f")
        self.flux = array("f")
        self._carry = np.zeros(0, np.float32)
        self._prev_logspec: np.ndarray | None = None
        self._seen = 0

    def push(self, samples: np.ndarray) -> None:
        x = np.concatenate([self._carry, np.asarray(samples, dtype=np.float32).reshape(-1)])
        self._seen += len(samples)
        for a in range(0, max(0, len(x) - self.frame + 1), 8192 * self.hop):
            seg = x[a : a + 8192 * self.hop + self.frame - self.hop]
            n = 1 + (len(seg) - self.frame) // self.hop if len(seg) >= self.frame else 0
            if n <= 0:
                break
            frames = np.lib.stride_tricks.sliding_window_view(seg, self.frame)[:: self.hop][:n]
            self.power.extend((np.einsum("ij,ij->i", frames, frames) / self.frame).astype(np.float32))
            logspec = np.log1p(100.0 * np.abs(np.fft.rfft(frames * self.window, axis=1)))
            prev = self._prev_logspec if self._prev_logspec is not None else logspec[:1]
            d = np.diff(np.concatenate([prev, logspec]), axis=0)
            self.flux.extend(np.maximum(d, 0.0).sum(axis=1).astype(np.float32))
            self._prev_logspec = logspec[-1:]
        used = len(self.power) * self.hop - (self._seen - len(x))  # samples of x consumed by whole hops
        self._carry = x[max(0, used) :].copy() if used < len(x) else np.zeros(0, np.float32)

    def finish(self) -> AudioFeatures:
        if not len(self.power):  # shorter than one frame: one zero-padded frame, as before
            pad = np.pad(self._carry, (0, max(0, self.frame - len(self._carry))))
            self._carry = np.zeros(0, np.float32)
            self._seen = 0
            self.push(pad[: self.frame])
        power = np.frombuffer(self.power, dtype=np.float32).copy()
        flux = np.frombuffer(self.flux, dtype=np.float32).copy()
        flux[0] = 0.0
        n, rate, hop = len(power), self.rate, self.hop
        onsets = np.zeros(0)
        if n > 7:
            # Peak picking: local max over ±3 frames, above a local mean + δ, in non-silent frames,
            # at least 100 ms apart (Bello et al. 2005; constants follow common practice — 100 ms also
            # stops the spectral splatter at the *end* of a short burst counting as a second onset).
            w = 10
            local_mean = np.convolve(np.pad(flux, (w, w), mode="edge"), np.ones(2 * w + 1) / (2 * w + 1), mode="valid")
            local_max = np.lib.stride_tricks.sliding_window_view(np.pad(flux, (3, 3), mode="edge"), 7).max(axis=1)
            delta = 0.1 * float(np.percentile(flux, 99)) + 1e-6
            audible = power > 10 ** (-55 / 10)
            cand = np.flatnonzero(audible & (flux >= local_max) & (flux > local_mean + delta))
            min_gap = int(round(0.1 * rate / hop))
            kept, last = [], -min_gap
            for i in cand:  # few candidates: a plain loop is fine
                if i - last >= min_gap:
                    kept.append(i)
                    last = i
            onsets = np.asarray(kept) * hop / rate
        t = (np.arange(n) * hop + self.frame / 2) / rate
        return AudioFeatures(t, power, onsets, hop / rate)


def audio_features(samples: np.ndarray, rate: int, frame: int = 256, hop: int = 128) -> AudioFeatures:
    """Frame power and spectral-flux onsets (Bello et al. 2005) of a whole mono signal."""
    stream = AudioFeatureStream(rate, frame, hop)
    stream.push(samples)
    return stream.finish()


SOUND_REACH_S = sounds.WINDOW / sounds.RATE / 2  # half a sound patch

# Order of the per-scene feature vector handed to pluggable (e.g. ONNX) estimators.
FEATURE_NAMES: tuple[str, ...] = (
    "brightness", "saturation", "colourfulness", "warmth", "motion",
    "cut_rate", "shot_length", "loudness_db", "onset_rate", "has_audio", "duration",
)


@dataclass
class SceneFeatures:
    start: float
    end: float
    brightness: float  # mean HSV V, 0..1
    saturation: float  # mean HSV S, 0..1
    colourfulness: float  # Hasler & Süsstrunk M3, 0..~150
    warmth: float  # -1 (cool) .. +1 (warm)
    motion: float  # mean grey difference per 1/25 s, 0..255
    cut_count: int  # cuts strictly inside the scene (shots = cut_count + 1)
    cut_rate: float  # cuts per minute inside the scene
    shot_length: float  # mean shot length (s)
    loudness_db: float | None  # RMS level in dBFS; None without audio
    onset_rate: float | None  # onsets per second; None without audio
    frames: list[np.ndarray] = field(default_factory=list, repr=False)  # RGB report frames in the scene
    # Per-frame outputs of an estimator's frame sampler inside the scene (e.g. {"t", "valence",
    # "arousal"} from scene_model.FrameSampler); empty when the estimator samples no frames.
    samples: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    # Per-patch outputs of an estimator's sound sampler inside the scene (e.g. {"t", "evidence",
    # "polarity"} from sounds.SoundSampler); empty without audio or such a sampler.
    sounds: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def has_audio(self) -> bool:
        return self.loudness_db is not None

    def vector(self) -> np.ndarray:
        """Features in `FEATURE_NAMES` order (missing audio → −90 dB and 0 onsets/s)."""
        vals = {
            "brightness": self.brightness, "saturation": self.saturation,
            "colourfulness": self.colourfulness, "warmth": self.warmth, "motion": self.motion,
            "cut_rate": self.cut_rate, "shot_length": self.shot_length,
            "loudness_db": self.loudness_db if self.loudness_db is not None else -90.0,
            "onset_rate": self.onset_rate or 0.0, "has_audio": float(self.has_audio),
            "duration": self.duration,
        }
        return np.asarray([vals[k] for k in FEATURE_NAMES], dtype=np.float32)

    def as_dict(self) -> dict[str, float | None]:
        d = {k: float(v) for k, v in zip(FEATURE_NAMES, self.vector())}
        d["loudness_db"] = None if self.loudness_db is None else round(self.loudness_db, 2)
        d["onset_rate"] = self.onset_rate
        d["cut_count"] = self.cut_count
        return d


def scene_features(
    bounds: Sequence[float],
    duration: float,
    cuts: Sequence[float],
    frame: dict[str, np.ndarray],
    audio: AudioFeatures | None,
    report: Sequence[tuple[float, np.ndarray]] = (),
    samples: dict[str, np.ndarray] | None = None,
    sounds: dict[str, np.ndarray] | None = None,
) -> list[SceneFeatures]:
    """One `SceneFeatures` per interval between consecutive `bounds` (0 and duration added)."""
    edges = [0.0] + [b for b in bounds if 0.0 < b < duration] + [duration]
    cuts_arr = np.asarray(sorted(cuts), dtype=np.float64)
    t, motion, ts = frame["t"], frame["motion"], frame["ts"]
    # Frame differences across a cut measure the cut, not motion: leave them out.
    cut_frames = np.searchsorted(t, cuts_arr - 1e-6) if len(cuts_arr) else np.zeros(0, dtype=int)
    motion_ok = np.ones(len(t), dtype=bool)
    if len(t):
        motion_ok[0] = False
        motion_ok[np.clip(cut_frames, 0, len(t) - 1)] = False
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        fm = (t >= a) & (t < b) & motion_ok
        sm = (ts >= a) & (ts < b)
        if not sm.any():  # scene shorter than the sampling step: use the nearest sample
            sm = np.zeros(len(ts), dtype=bool)
            sm[min(len(ts) - 1, int(np.searchsorted(ts, a)))] = True
        inside = int(((cuts_arr > a + 1e-6) & (cuts_arr < b - 1e-6)).sum())
        dur = max(b - a, 1e-6)
        loud = onset_rate = None
        if audio is not None and len(audio.power):
            am = (audio.frame_t >= a) & (audio.frame_t < b)
            # Divide by the frames the scene *should* have: audio that starts late is silence.
            p = float(audio.power[am].sum()) / max(1.0, dur / audio.frame_dt)
            loud = float(10 * np.log10(max(p, 1e-9)))
            onset_rate = float(((audio.onsets >= a) & (audio.onsets < b)).sum() / dur)
        out.append(
            SceneFeatures(
                start=a,
                end=b,
                brightness=float(frame["brightness"][sm].mean()),
                saturation=float(frame["saturation"][sm].mean()),
                colourfulness=float(frame["colourfulness"][sm].mean()),
                warmth=float(frame["warmth"][sm].mean()),
                motion=float(motion[fm].mean()) if fm.any() else 0.0,
                cut_count=inside,
                cut_rate=inside * 60.0 / dur,
                shot_length=dur / (inside + 1),
                loudness_db=loud,
                onset_rate=onset_rate,
                frames=_frames_in(report, a, b),
                samples=_samples_in(samples, a, b),
                sounds=_samples_in(sounds, a, b, reach=SOUND_REACH_S),
            )
        )
    return out


def _samples_in(samples: dict[str, np.ndarray] | None, a: float, b: float,
                reach: float | None = None) -> dict[str, np.ndarray]:
    """The rows of `samples` (keyed arrays with a "t" column) whose time is in [a, b); if none
    is (a scene shorter than the sampling step), the one nearest the middle — only if it lies
    within `reach` s of the scene when a reach is given (a sound patch covers ±0.49 s around its
    time; one from far away, across a hole in the audio, says nothing about this scene)."""
    if not samples or not len(samples.get("t", ())):
        return {}
    t = samples["t"]
    m = (t >= a) & (t < b)
    if not m.any():
        near = int(np.argmin(np.abs(t - 0.5 * (a + b))))
        if reach is not None and not (a - reach <= t[near] < b + reach):
            return {}
        m = np.zeros(len(t), dtype=bool)
        m[near] = True
    return {k: v[m] for k, v in samples.items()}


def _frames_in(report: Sequence[tuple[float, np.ndarray]], a: float, b: float) -> list[np.ndarray]:
    """Report frames inside [a, b); the one nearest the middle if the scene falls between two."""
    inside = [img for (rt, img) in report if a <= rt < b]
    if inside or not report:
        return inside
    mid = 0.5 * (a + b)
    return [min(report, key=lambda r: abs(r[0] - mid))[1]]
