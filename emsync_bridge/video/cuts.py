"""Scene cuts: PySceneDetect for hard cuts, a blend test for crossfades/fades, EMSYNC thinning.

Hard cuts: PySceneDetect's `AdaptiveDetector` + a strong `ContentDetector` rule (see
`HardCutDetector`; either alone is selectable) fed the small frames that `decode.py` already
produced, so the file is decoded once. Its mean-pixel-distance score is
nearly scale invariant, so at ~160×90 it finds the same cuts as `scenedetect.detect` (which works
at 320×180 for 640×360 input) with the threshold nudged from 27 to 26 (see CONTENT_THRESHOLD). Its default `min_scene_len` of 15 *frames* is 1.5 s at 10 fps and
was measured to swallow a real cut there, so we give it a length in seconds (0.25 s by default).

Gradual transitions: frame-to-frame differences inside a 1 s crossfade stay far below any
hard-cut threshold (PySceneDetect's defaults miss it). `FadeDetector` instead asks, on tiny
thumbnails sampled at ~10 Hz, whether the frame at t is the *average* of the frames at t−k and
t+k while those two differ a lot and the picture is stable just outside [t−k, t+k]:

    score(t) = D − 2·E − 2·S,  D = |f(t+k) − f(t−k)|,  E = |f(t) − (f(t−k) + f(t+k))/2|,
                               S = max(|f(t−k) − f(t−2k)|, |f(t+2k) − f(t+k)|)

(mean absolute differences in 0–255 RGB). A linear blend gives E ≈ 0 and S ≈ 0, so score ≈ D; a
hard cut anywhere in the window makes f(t) equal one end, E = D/2, score ≤ 0. A change that goes
on steadily (a slow colour animation, a lighting ramp) is also "linear", E ≈ 0, but then S (over k)
is D/2 (over 2k), hence the factor 2 on S: score ≈ 0. Pans and zooms have large E and S. Fades
to/from black are blends with black and are found the same way. This is the "dissolve = linear mix" model used in the shot-boundary literature (e.g.
Lienhart 1999, "Comparison of automatic shot boundary detection algorithms", SPIE 3656).

`thin_cuts` is EMSYNC's boundary rule (emsync-colab `utils.py`): keep the first cut, then each
later cut only if it is at least `min_gap` seconds after the last kept one.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

HARD_CUT_MIN_SCENE_S = 0.25  # PySceneDetect min_scene_len, in seconds (see module docstring)
# ContentDetector's default threshold is 27 on the ~320×180 frames `scenedetect.detect` uses for
# 640×360 input. On our ~160×90 area-scaled frames the same score measured 0.96× theirs (median
# over non-cut frames; 0.85–1.08 at cuts, synthetic + noisy clips), so 26 here ≈ 27 there.
CONTENT_THRESHOLD = 26.0
# kind="both": AdaptiveDetector's ratio test, plus any frame whose content score reaches this
# (≈ 1.5× ContentDetector's default) whatever its neighbours do — a cut into or out of very busy
# footage, where the neighbours' scores are too high for the ratio test. Below it, busy footage
# (keyframe "pops", fast pans over flat colour) made ContentDetector's fixed threshold misfire.
STRONG_CUT_THRESHOLD = 40.0
FADE_HALF_WINDOWS_S = (0.25, 0.5, 1.0)  # k in seconds: finds transitions of about 0.3–2.5 s
FADE_MIN_DIFF = 20.0  # D: the two sides must differ like two different shots (0–255 scale)
FADE_MIN_RATIO = 0.3  # score/D: steady change scores 0, a clean crossfade ~0.8, between moving shots ~0.35
FADE_MERGE_S = 1.6  # fade-out + fade-in through black, or two k's on one dissolve: one transition
FADE_NEAR_CUT_S = 1.0  # a gradual candidate this close to a hard cut is the same event
EDGE_S = 1.0  # fades from/to black at the very start or end of a video are not scene changes


def import_scenedetect():
    """Import PySceneDetect, skipping its import-time `ffmpeg -v quiet` probe when that is safe.

    `scenedetect.output.video` spawns ffmpeg at import just to learn whether it can split videos
    (measured here: 0.12–0.18 s, a tenth of a whole 60 s analysis). We never split videos, so when
    this is the only thread we hide ffmpeg from PATH for the import; PySceneDetect then records
    "no ffmpeg" for its splitting helpers, which we do not use. With other threads running (the
    daemon), changing PATH could break their subprocesses, so we import normally.
    """
    import sys
    import threading

    if "scenedetect" in sys.modules or threading.active_count() > 1:
        import scenedetect  # noqa: F401

        return
    import os

    old = os.environ.get("PATH")
    os.environ["PATH"] = os.devnull  # "/dev/null/ffmpeg" cannot exist
    try:
        import scenedetect  # noqa: F401
    finally:
        if old is None:
            del os.environ["PATH"]
        else:
            os.environ["PATH"] = old


class HardCutDetector:
    """Streams small BGR frames into PySceneDetect; `finish()` gives cut frame indices.

    kind="content": ContentDetector (score ≥ threshold, 26 ≈ scenedetect's 27, see above).
    kind="adaptive": AdaptiveDetector (score ≥ 3× the mean of its ±2 neighbours and ≥ 15).
    kind="both" (default): one AdaptiveDetector pass whose per-frame content score (it is a
    ContentDetector subclass and keeps `_frame_score`) also goes through ContentDetector's rule —
    PySceneDetect's `FlashFilter` — at STRONG_CUT_THRESHOLD, so both rules share the HSV work and
    their cuts are united. The ratio test catches low-contrast cuts between still shots (dark to
    dark: score 17, missed by a fixed 27) and ignores fast pans; the strong fixed threshold catches
    cuts into very busy footage, whose neighbours score too high for the ratio test.
    """

    def __init__(
        self,
        fps: float,
        kind: str = "both",
        threshold: float | None = None,
        min_scene_s: float = HARD_CUT_MIN_SCENE_S,
    ):
        import_scenedetect()
        try:  # 0.7 API: detectors take FrameTimecodes; FlashFilter lives in scenedetect.detector
            from scenedetect.detector import FlashFilter
            from scenedetect.detectors import AdaptiveDetector, ContentDetector
        except ImportError:
            import scenedetect

            from emsync_bridge.errors import EmsyncError

            raise EmsyncError(
                f"scenedetect {getattr(scenedetect, '__version__', '?')} is too old: video analysis needs >= 0.7"
            ) from None

        self.rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(25)
        min_len = max(1, int(round(min_scene_s * float(self.rate))))  # frames, compared exactly
        self.kind = kind
        self.content_filter = None
        if kind == "content":
            self.detector = ContentDetector(threshold=threshold or CONTENT_THRESHOLD, min_scene_len=min_len)
        elif kind == "adaptive":
            self.detector = AdaptiveDetector(adaptive_threshold=threshold or 3.0, min_scene_len=min_len)
        elif kind == "both":
            self.detector = AdaptiveDetector(min_scene_len=min_len)
            self.union_threshold = STRONG_CUT_THRESHOLD
            self.content_filter = FlashFilter(mode=FlashFilter.Mode.MERGE, length=min_len)
        else:
            raise ValueError(f"unknown cut detector {kind!r} (content, adaptive, both)")
        self.content_threshold = threshold or CONTENT_THRESHOLD
        self.cuts: list[int] = []
        self.scores = array("f")  # content score of every frame (4 bytes/frame)
        self._last = 0

    def push(self, index: int, frame_bgr: np.ndarray) -> None:
        from scenedetect import FrameTimecode

        self._last = index
        tc = FrameTimecode(index, self.rate)
        for cut in self.detector.process_frame(tc, frame_bgr):
            self.cuts.append(cut.frame_num)
        score = getattr(self.detector, "_frame_score", None) or 0.0  # 0 on the first frame
        self.scores.append(score)
        if self.content_filter is not None:
            for cut in self.content_filter.filter(timecode=tc, above_threshold=score >= self.union_threshold):
                self.cuts.append(cut.frame_num)

    def finish(self) -> list[int]:
        from scenedetect import FrameTimecode

        post = getattr(self.detector, "post_process", None)
        if post is not None:
            for tc in post(FrameTimecode(self._last, self.rate)) or []:
                self.cuts.append(tc.frame_num)
        # The two rules of kind="both" may report one cut a frame apart: keep the first.
        out: list[int] = []
        for i in sorted(set(self.cuts)):
            if not out or i - out[-1] > 2:
                out.append(i)
        return out

    def is_weak(self, index: int) -> bool:
        """A cut whose frame score is below the content threshold: only the ratio test fired."""
        return index < len(self.scores) and self.scores[index] < self.content_threshold


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise mean absolute difference of flattened thumbnails."""
    return np.abs(a - b).mean(axis=1)


def fade_scores(times: np.ndarray, thumbs: np.ndarray, half_window_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(score, D) per sample for one half window k; NaN where the window leaves the video."""
    n = len(times)
    score = np.full(n, np.nan, dtype=np.float32)
    big = np.full(n, np.nan, dtype=np.float32)
    if n < 3:
        return score, big
    rate = (n - 1) / max(times[-1] - times[0], 1e-6)
    k = max(1, int(round(half_window_s * rate)))
    if n <= 2 * k:
        return score, big
    f = thumbs.reshape(n, -1).astype(np.float32)
    a, m, b = f[: n - 2 * k], f[k : n - k], f[2 * k :]
    d = _diff(b, a)
    e = np.abs(m - 0.5 * (a + b)).mean(axis=1)
    step = _diff(f[k:], f[:-k])  # step[i] = |f(i+k) − f(i)|
    idx = np.arange(k, n - k)
    pre = np.where(idx - 2 * k >= 0, step[np.clip(idx - 2 * k, 0, len(step) - 1)], np.nan)
    post = np.where(idx + k < len(step), step[np.clip(idx + k, 0, len(step) - 1)], np.nan)
    s = np.fmax(pre, post)  # fmax ignores a NaN side (window touching the start/end)
    s = np.where(np.isnan(s), 0.0, s)
    score[k : n - k] = d - 2.0 * e - 2.0 * s
    big[k : n - k] = d
    return score, big


class FadeDetector:
    """Finds crossfades and fades on ~10 Hz thumbnails (see module docstring)."""

    def __init__(
        self,
        half_windows_s: Sequence[float] = FADE_HALF_WINDOWS_S,
        min_diff: float = FADE_MIN_DIFF,
        min_ratio: float = FADE_MIN_RATIO,
    ):
        self.half_windows_s = tuple(half_windows_s)
        self.min_diff = min_diff
        self.min_ratio = min_ratio

    def detect(self, times: np.ndarray, thumbs: np.ndarray, duration: float) -> list[float]:
        """Times (s) of gradual transitions, at the middle of each transition."""
        best = np.full(len(times), -np.inf, dtype=np.float32)
        for hw in self.half_windows_s:
            score, d = fade_scores(times, thumbs, hw)
            ok = (d >= self.min_diff) & (score >= self.min_ratio * d)
            best = np.where(ok & (score > best), score, best)
        cand = [
            (float(best[i]), float(times[i]))
            for i in range(len(times))
            if np.isfinite(best[i]) and EDGE_S <= times[i] <= duration - EDGE_S
        ]
        # Greedy non-maximum suppression; then merge what is left within FADE_MERGE_S.
        cand.sort(reverse=True)
        kept: list[float] = []
        for _, t in cand:
            if all(abs(t - u) >= FADE_MERGE_S for u in kept):
                kept.append(t)
        return sorted(kept)


def merge_cuts(
    hard: Sequence[float],
    gradual: Sequence[float],
    near_s: float = FADE_NEAR_CUT_S,
    weak: Sequence[float] = (),
) -> list[float]:
    """Hard cuts plus gradual transitions; within `near_s` of each other they are one event.

    Normally the hard cut wins (its time is frame-exact). A `weak` hard cut — one only the
    adaptive ratio test found — next to a gradual transition is usually the small jump at the
    transition's end, so there the middle of the transition wins.
    """
    weak_set = set(weak)
    out = set(hard)
    for t in gradual:
        near = [h for h in hard if abs(t - h) < near_s]
        if not near:
            out.add(t)
        elif all(h in weak_set for h in near):
            out.difference_update(near)
            out.add(t)
    return sorted(out)


def thin_cuts(cuts: Sequence[float], min_gap: float = 4.0) -> list[float]:
    """EMSYNC: keep the first cut, then each later cut ≥ `min_gap` s after the last kept one."""
    kept: list[float] = []
    for t in sorted(cuts):
        if not kept or t - kept[-1] >= min_gap - 1e-9:
            kept.append(t)
    return kept


def match_cuts(found: Sequence[float], truth: Sequence[float], tol: float) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives), one-to-one within `tol` seconds.

    Used by the tests and the bench to score detectors against known cut times.
    """
    used = [False] * len(found)
    tp = 0
    for t in truth:
        best, bi = None, -1
        for i, f in enumerate(found):
            if not used[i] and abs(f - t) <= tol and (best is None or abs(f - t) < best):
                best, bi = abs(f - t), i
        if bi >= 0:
            used[bi] = True
            tp += 1
    return tp, len(found) - tp, len(truth) - tp
