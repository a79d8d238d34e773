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
# ContentCheck (brightness ramps, flashes): see its docstring.
BLANK_SPREAD = 6.0  # grey p90 − p10 (0–255) under this: no picture (a watermark on black is blank)
BLANK_CHROMA = 12.0  # ... and channel means this close: black/grey/white, not a coloured field
BLANK_MAX_S = 10.0  # how far to look across a blank stretch for the picture on the other side
RAMP_MAX_S = 2.5  # ... and along a fade of the same picture
SAME_CORR = 0.85  # mean per-channel pixel correlation at which two samples show the same picture
FLASH_S = 0.3  # a hard cut whose picture returns within this long is a flash, not a cut
CHUNK = 1024  # thumbnails converted to float at a time: ~15 MB of temporaries whatever the length


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
    f = thumbs.reshape(n, -1)  # uint8; rows are converted to float in chunks (a 2 h film has 72k)
    d = np.empty(n - 2 * k, np.float32)
    e = np.empty(n - 2 * k, np.float32)
    step = np.empty(n - k, np.float32)  # step[i] = |f(i+k) − f(i)|
    for c in range(0, n - k, CHUNK):
        lo, hi = c, min(n - k, c + CHUNK)
        a = f[lo:hi].astype(np.float32)
        m = f[lo + k : hi + k].astype(np.float32)
        step[lo:hi] = _diff(m, a)
        if lo < n - 2 * k:
            h2 = min(hi, n - 2 * k)
            b = f[lo + 2 * k : h2 + 2 * k].astype(np.float32)
            a, m = a[: h2 - lo], m[: h2 - lo]
            d[lo:h2] = _diff(b, a)
            e[lo:h2] = np.abs(m - 0.5 * (a + b)).mean(axis=1)
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
        return [t for t, _ in self.detect_windows(times, thumbs, duration)]

    def detect_windows(self, times: np.ndarray, thumbs: np.ndarray, duration: float) -> list[tuple[float, float]]:
        """(time, half window k) of each gradual transition: it spans about [time − k, time + k]."""
        best = np.full(len(times), -np.inf, dtype=np.float32)
        best_k = np.zeros(len(times), dtype=np.float32)
        for hw in self.half_windows_s:
            score, d = fade_scores(times, thumbs, hw)
            ok = (d >= self.min_diff) & (score >= self.min_ratio * d)
            better = ok & (score > best)
            best = np.where(better, score, best)
            best_k = np.where(better, hw, best_k)
        cand = [
            (float(best[i]), float(times[i]), float(best_k[i]))
            for i in range(len(times))
            if np.isfinite(best[i]) and EDGE_S <= times[i] <= duration - EDGE_S
        ]
        # Greedy non-maximum suppression; then merge what is left within FADE_MERGE_S.
        cand.sort(reverse=True)
        kept: list[tuple[float, float]] = []
        for _, t, k in cand:
            if all(abs(t - u) >= FADE_MERGE_S for u, _ in kept):
                kept.append((t, k))
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


class ContentCheck:
    """Is there new picture content on the far side of a candidate transition?

    A brightness ramp (fade to/from black or white, a camera flash, lights switched on or
    dimmed) changes every pixel, so frame-difference detectors see a transition, yet the picture
    *content* is the same or absent. On the ~10 Hz RGB thumbnails:

    * **blank** sample: black, grey or white — grey p90 − p10 < BLANK_SPREAD and the channel
      means within BLANK_CHROMA of each other (a black frame with a small watermark is blank);
    * **same content**: both blank; or both flat with the same chromaticity; or per-channel
      Pearson correlation of the pixels ≥ SAME_CORR (gain and offset of each channel — a lighting
      change, a fade — leave it at 1; a different shot gives ~0);
    * **anchors**: from each side of a candidate, walk across blank samples (at most BLANK_MAX_S)
      to the nearest sample with a picture. If both anchors show the same picture, the candidate
      is a ramp of that picture (a lighting change, or one half of fade-out/black/fade-in): follow
      it toward its faded end (the side with less contrast), across blank samples and along the same picture (at most RAMP_MAX_S),
      looking for a different picture.

    A candidate is dropped when its two sides show the same picture and no other picture follows
    the ramp (lighting change; a dip to black inside one shot), when a hard cut's picture returns
    within FLASH_S (a flash: any sample within FLASH_S before the cut matches one within FLASH_S
    after; also a brightness step), when a gradual candidate has no picture on one side (fade
    from/to black at the start or end, or a pure black↔white ramp), or a hard cut has none on
    either side (a black↔white step). Kept candidates whose anchor spans overlap are one transition (fade-out,
    black, fade-in: the cut and fade detectors may each fire once): it is placed in the middle of
    its blank stretch if it has one, else at a strong hard cut, else at its first candidate — so
    no boundary lands inside the ramp itself.
    """

    def __init__(self, ts: np.ndarray, thumbs: np.ndarray):
        n = len(ts)
        self.ts = np.asarray(ts, dtype=np.float64)
        self.thumbs = thumbs.reshape(n, -1, 3)  # uint8, converted per sample or per chunk
        self.mean = np.zeros((n, 3), np.float32)
        self.std = np.zeros((n, 3), np.float32)
        spread = np.zeros(n, np.float32)
        for c in range(0, n, CHUNK):
            f = self.thumbs[c : c + CHUNK].astype(np.float32)
            grey = f @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
            p10, p90 = np.percentile(grey, [10, 90], axis=1)
            spread[c : c + CHUNK] = p90 - p10
            self.mean[c : c + CHUNK] = f.mean(axis=1)
            self.std[c : c + CHUNK] = f.std(axis=1)
        self.flat = spread < BLANK_SPREAD
        self.blank = self.flat & (np.ptp(self.mean, axis=1) < BLANK_CHROMA)

    def same(self, i: int, j: int) -> bool:
        if self.blank[i] and self.blank[j]:
            return True
        if self.flat[i] or self.flat[j]:
            if not (self.flat[i] and self.flat[j]):
                return False
            ci = self.mean[i] / max(float(self.mean[i].sum()), 1e-3)
            cj = self.mean[j] / max(float(self.mean[j].sum()), 1e-3)
            return float(np.abs(ci - cj).sum()) < 0.08
        ok = (self.std[i] >= 2.0) & (self.std[j] >= 2.0)
        if not ok.any():
            return False
        a = self.thumbs[i][:, ok].astype(np.float32) - self.mean[i][ok]
        b = self.thumbs[j][:, ok].astype(np.float32) - self.mean[j][ok]
        corr = (a * b).mean(axis=0) / (self.std[i][ok] * self.std[j][ok])
        return float(corr.mean()) >= SAME_CORR

    def _walk(self, i: int, step: int, ref: int | None = None) -> int | None:
        """From sample i going `step`, the first sample with a picture other than `ref`'s.

        Blank samples are skipped (for up to BLANK_MAX_S), and so are samples showing `ref`'s
        picture (for up to RAMP_MAX_S: the rest of a fade of that picture); None if none found.
        """
        j, blank_s, same_s = i, 0.0, 0.0
        n = len(self.ts)
        while 0 <= j < n:
            dt = abs(self.ts[j] - self.ts[j - step]) if 0 <= j - step < n and j != i else 0.0
            if self.blank[j]:
                blank_s += dt
                if blank_s > BLANK_MAX_S:
                    return None
            elif ref is not None and self.same(ref, j):
                same_s += dt
                if same_s > RAMP_MAX_S:
                    return None
                ref = j  # follow the picture as it moves
            else:
                return j
            j += step
        return None

    def _nearest(self, t: float) -> int:
        return int(np.argmin(np.abs(self.ts - t)))

    def judge(self, t: float, half_window: float | None) -> tuple[float, float] | None:
        """None to drop candidate t; else the span between the pictures on either side.

        half_window: None for a hard cut at t, k for a gradual one over about [t − k, t + k].
        """
        ts = self.ts
        if len(ts) < 2:
            return (t, t)
        if half_window is None:
            pre = np.flatnonzero((ts >= t - FLASH_S) & (ts < t - 1e-6))
            post = np.flatnonzero((ts >= t - 1e-6) & (ts <= t + FLASH_S))
            if len(pre) == 0 or len(post) == 0:
                return (t, t)
            if any(self.same(i, j) for i in pre for j in post):
                return None  # flash, lighting step, black→white: same content after as before
            i, j = int(pre[-1]), int(post[0])
            b, a = self._walk(i, -1), self._walk(j, +1)
            if b is None or a is None:
                return (t, t) if (b is not None or a is not None) else None  # cut from/to blank: an edit
        else:
            i, j = self._nearest(t - half_window), self._nearest(t + half_window)
            if i == j:
                return None
            b, a = self._walk(i, -1), self._walk(j, +1)
            if b is None or a is None:
                return None  # fade from/to blank with no picture on the other side
        if self.same(b, a):
            # One picture on both sides: a lighting ramp, or one half of a fade-out/fade-in.
            # Follow the ramp toward its faded end (less contrast: toward black or white) and past
            # it: is there another picture there?
            if self.std[a].sum() < self.std[b].sum():
                a = self._walk(a, +1, ref=a)
            else:
                b = self._walk(b, -1, ref=b)
            if a is None or b is None or self.same(b, a):
                return None  # a ramp (or a dip to black) inside one shot
        return (float(min(ts[b], t)), float(max(ts[a], t)))

    def blank_middle(self, lo: float, hi: float) -> float | None:
        """Middle of the longest run of blank samples strictly inside (lo, hi), if any."""
        idx = np.flatnonzero((self.ts > lo) & (self.ts < hi) & self.blank)
        if len(idx) == 0:
            return None
        runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
        run = max(runs, key=len)
        return float(0.5 * (self.ts[run[0]] + self.ts[run[-1]]))


def resolve_transitions(
    hard: Sequence[float],
    gradual: Sequence[tuple[float, float]],
    ts: np.ndarray,
    thumbs: np.ndarray,
    weak: Sequence[float] = (),
) -> list[float]:
    """`merge_cuts` of hard cuts and (time, k) gradual candidates, then `ContentCheck`: drop
    brightness ramps and flashes, one time per transition, never inside a fade ramp."""
    k_of = dict(gradual)
    merged = merge_cuts(hard, [t for t, _ in gradual], weak=weak)
    check = ContentCheck(ts, thumbs)
    hard_set, weak_set = set(hard), set(weak)
    kept: list[tuple[float, float, float]] = []  # (t, lo, hi)
    for t in merged:
        span = check.judge(t, None if t in hard_set else k_of.get(t, FADE_HALF_WINDOWS_S[0]))
        if span is not None:
            kept.append((t, *span))
    out: list[float] = []
    group: list[tuple[float, float, float]] = []

    def flush() -> None:
        if not group:
            return
        lo, hi = min(g[1] for g in group), max(g[2] for g in group)
        mid = check.blank_middle(lo, hi) if len(group) > 1 or group[0][0] not in hard_set else None
        strong = [g[0] for g in group if g[0] in hard_set and g[0] not in weak_set]
        out.append(mid if mid is not None else strong[0] if strong else group[0][0])
        group.clear()

    for ev in kept:
        if group and ev[1] > max(g[2] for g in group):
            flush()
        group.append(ev)
    flush()
    return out


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
