"""Scene cuts: PySceneDetect for hard cuts, a blend test for crossfades/fades, EMSYNC thinning.

Hard cuts: PySceneDetect's `AdaptiveDetector` + a strong `ContentDetector` rule (see
`HardCutDetector`; either alone is selectable) fed the small frames that `decode.py` already
produced, so the file is decoded once. Its mean-pixel-distance score is
nearly scale invariant, so at ~160×90 it finds the same cuts as `scenedetect.detect` (which works
at 320×180 for 640×360 input) with the threshold nudged from 27 to 26 (see CONTENT_THRESHOLD). Its default `min_scene_len` of 15 *frames* is 1.5 s at 10 fps and
was measured to swallow a real cut there, so we give it a length in seconds (0.25 s by default).

Gradual transitions: frame-to-frame differences inside a 1 s crossfade stay far below any
hard-cut threshold (PySceneDetect's defaults miss it). `TransitionScanner` instead asks, on tiny
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
FLAT_STD_TOL = 2.0  # flat samples: channel std (0–255) beyond brightness scaling that makes another picture
FLASH_S = 0.3  # a hard cut whose picture returns within this long is a flash, not a cut
# Title cards (text on black): a blank-looking sample is a picture when marks (grey ≥ CARD_MARK
# from the background) cover ≥ CARD_MIN_FRAC of it and hold still for CARD_HOLD_S — from each
# sample to the next the marks change by ≤ CARD_STEADY of their contrast (a held card: ~0.02;
# the fading tail of a shot: the marks vanish within a few samples). A readable card; a smaller
# watermark, or the tail of a fade, stays blank.
CARD_MARK = 16.0
CARD_MIN_FRAC = 0.01  # 6 of the 32×18 thumbnail's pixels (a 4-pixel watermark is 0.7 %)
CARD_STEADY = 0.1
CARD_HOLD_S = 0.5
# Local change (a title fading in over a running shot): the most-changed LOCAL_REGION of the
# pixels carries ≥ LOCAL_SHARE of the change between the two sides of a gradual candidate
# (a transition spreads it: 0.35–0.73 on the films, 0.36–0.63 at gradual ones; Big Buck Bunny's
# title 0.85) and the rest shows the same picture (correlation ≥ SAME_CORR, with contrast).
LOCAL_REGION = 0.3
LOCAL_SHARE = 0.75
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


class _Rows:
    """A growing array of rows (amortised doubling) that may forget its oldest rows.

    Rows keep their global index: `rows(lo, hi)` is rows lo..hi−1 of everything ever appended,
    and `forget_before(i)` frees the memory of rows before i (reading them afterwards raises)."""

    def __init__(self, shape: tuple[int, ...] = (), dtype=np.float32):
        self._buf = np.empty((256, *shape), dtype)
        self.start = 0  # global index of _buf[0]
        self.end = 0  # rows appended so far

    def append(self, rows: np.ndarray) -> None:
        held, m = self.end - self.start, len(rows)
        if held + m > len(self._buf):
            buf = np.empty((max(2 * len(self._buf), held + m), *self._buf.shape[1:]), self._buf.dtype)
            buf[:held] = self._buf[:held]
            self._buf = buf
        self._buf[held : held + m] = rows
        self.end += m

    def forget_before(self, i: int) -> None:
        i = min(i, self.end)
        if i - self.start > (self.end - self.start) // 2:  # move the rest down only when it pays
            held = self.end - i
            self._buf[:held] = self._buf[i - self.start : self.end - self.start]
            self.start = i
            if len(self._buf) > 1024 and 4 * held < len(self._buf):  # shrink after a long hold
                self._buf = self._buf[: max(256, 2 * held)].copy()

    def rows(self, lo: int, hi: int) -> np.ndarray:
        if lo < self.start or hi > self.end:
            raise IndexError(f"rows {lo}..{hi} outside the held {self.start}..{self.end}")
        return self._buf[lo - self.start : hi - self.start]

    def __getitem__(self, i: int) -> np.ndarray:
        return self.rows(i, i + 1)[0]

    @property
    def all(self) -> np.ndarray:
        """Every row (only for arrays that never forget)."""
        return self.rows(0, self.end)


class _NotYet(Exception):
    """A check needs samples that have not arrived yet."""


class ContentCheck:
    """Is there new picture content on the far side of a candidate transition?

    A brightness ramp (fade to/from black or white, a camera flash, lights switched on or
    dimmed) changes every pixel, so frame-difference detectors see a transition, yet the picture
    *content* is the same or absent. On the ~10 Hz RGB thumbnails:

    * **blank** sample: black, grey or white — grey p90 − p10 < BLANK_SPREAD and the channel
      means within BLANK_CHROMA of each other (a black frame with a small watermark is blank);
    * **same content**: both blank; or both flat with the same chromaticity and the same
      channel structure up to brightness (each channel's std scaled by the ratio of the means,
      within FLAT_STD_TOL or 25 %: a solid dark field and a dark colour gradient of the same hue
      differ); or per-channel
      Pearson correlation of the pixels ≥ SAME_CORR (gain and offset of each channel — a lighting
      change, a fade — leave it at 1; a different shot gives ~0);
    * **card**: a blank-looking sample with marks (grey ≥ CARD_MARK from the background) on at
      least CARD_MIN_FRAC of it, held still for CARD_HOLD_S (text on black: a title card) is a
      picture, not blank — two texts, or text and black, are different pictures; a smaller
      watermark, or the tail of a fade (its marks vanish within a few samples), stays blank. A
      card is compared with pictures and other cards by correlation. Until a run of steady marks
      has lasted CARD_HOLD_S its samples are provisionally blank, and a judgement that would read
      them waits (`provisional_from`);
    * **local change**: two samples that are the same picture apart from a region (most of the
      change in LOCAL_REGION of the pixels, the rest correlated; `local_change`) — a title
      fading in over a running shot. A gradual candidate between such sides is dropped;
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

    Samples can be added while the video decodes (`extend`); per sample it keeps 35 bytes of
    statistics, and the thumbnails themselves only from `forget_before(i)` on: a judgement
    reads thumbnails at most REACH_S (+ a few samples) from its candidate. Until `complete` is
    set, a judgement that would walk past the last sample raises `_NotYet`.
    """

    def __init__(self, ts: np.ndarray | None = None, thumbs: np.ndarray | None = None):
        self._ts = _Rows((), np.float64)
        self._mean = _Rows((3,), np.float32)
        self._std = _Rows((3,), np.float32)
        self._flat = _Rows((), np.bool_)
        self._blank = _Rows((), np.bool_)
        self._card = _Rows((), np.bool_)
        self._card_prev: tuple[np.ndarray, np.ndarray] | None = None  # last sample's (grey, marks)
        self._card_from = 0  # first sample of the current run of steady marks
        self._card_wait: list[list[int]] = []  # held runs of marks not yet known to be cards
        self._stretch_empty = False  # the current stretch of non-pictures has an empty sample
        self.provisional_from = 0  # samples from here may still turn out to be a card
        self._hw: tuple[int, int] | None = None  # thumbnail height, width
        self._thumbs: _Rows | None = None
        self.complete = False
        if ts is not None:
            for c in range(0, len(ts), CHUNK):
                self.extend(np.asarray(ts[c : c + CHUNK]), thumbs[c : c + CHUNK])
            self.complete = True

    def extend(self, ts: np.ndarray, thumbs: np.ndarray) -> None:
        """Append samples: times (s) and RGB uint8 thumbnails [m, h, w, 3]."""
        m = len(ts)
        rows = thumbs.reshape(m, -1, 3)
        if self._thumbs is None:
            self._thumbs = _Rows(rows.shape[1:], np.uint8)
            self._hw = tuple(thumbs.shape[1:3]) if thumbs.ndim == 4 else (1, rows.shape[1])
        self._thumbs.append(rows)
        f = rows.astype(np.float32)
        grey = f @ np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
        p10, p90 = np.percentile(grey, [10, 90], axis=1)
        flat = (p90 - p10).astype(np.float32) < BLANK_SPREAD
        mean = f.mean(axis=1)
        self._ts.append(np.asarray(ts, dtype=np.float64))
        self._mean.append(mean)
        self._std.append(f.std(axis=1))
        self._flat.append(flat)
        blank = flat & (np.ptp(mean, axis=1) < BLANK_CHROMA)
        n0 = self._blank.end
        self._blank.append(blank)
        self._card.append(np.zeros(m, np.bool_))
        # Cards: marks on a blank background, held still for CARD_HOLD_S, in a stretch of
        # non-picture samples that also has an empty one (no marks) — the text comes and goes on
        # black. Marks that never leave the black between two pictures are an overlay of the
        # whole film (a copyright line, a channel logo: PySceneDetect's testvideo), not a card.
        # A run of marks is provisionally blank until it is known to be a card
        # (`provisional_from`: judgements that would read it wait, see `_walk`).
        dev = np.abs(grey - np.median(grey, axis=1, keepdims=True))
        marks = dev >= CARD_MARK
        all_ts, is_card, is_blank = self._ts.all, self._card.all, self._blank.all
        for r in range(m):
            g = n0 + r
            if not blank[r] or marks[r].sum() < CARD_MIN_FRAC * grey.shape[1]:
                self._card_prev = None
                if blank[r]:  # empty black (or white): the held runs of this stretch are cards
                    self._stretch_empty = True
                    for lo, hi in self._card_wait:
                        is_card[lo : hi + 1] = True
                        is_blank[lo : hi + 1] = False
                self._card_wait = []
                if not blank[r]:  # a picture: the stretch ends; runs still waiting stay blank
                    self._stretch_empty = False
                self.provisional_from = g + 1
                continue
            prev = self._card_prev
            if prev is None or float(np.abs(grey[r] - prev[0])[marks[r] | prev[1]].sum()) > CARD_STEADY * float(
                dev[r][marks[r] | prev[1]].sum()
            ):
                self._card_from = g  # a new run of marks (or they moved: a fade, another text)
            self._card_prev = (grey[r].copy(), marks[r].copy())
            if all_ts[g] - all_ts[self._card_from] >= CARD_HOLD_S - 1e-6:
                if self._stretch_empty:
                    is_card[self._card_from : g + 1] = True
                    is_blank[self._card_from : g + 1] = False
                elif self._card_wait and self._card_wait[-1][0] == self._card_from:
                    self._card_wait[-1][1] = g
                else:
                    self._card_wait.append([self._card_from, g])
            self.provisional_from = min([lo for lo, _ in self._card_wait] + [self._card_from, g + 1])
            if self._stretch_empty and is_card[g]:
                self.provisional_from = g + 1

    def forget_before(self, i: int) -> None:
        """Free the thumbnails of samples before i (statistics stay)."""
        if self._thumbs is not None:
            self._thumbs.forget_before(i)

    def thumb_rows(self, lo: int, hi: int) -> np.ndarray:
        return self._thumbs.rows(lo, hi)

    @property
    def n(self) -> int:
        return self._ts.end

    @property
    def ts(self) -> np.ndarray:
        return self._ts.all

    @property
    def mean(self) -> np.ndarray:
        return self._mean.all

    @property
    def std(self) -> np.ndarray:
        return self._std.all

    @property
    def flat(self) -> np.ndarray:
        return self._flat.all

    @property
    def blank(self) -> np.ndarray:
        return self._blank.all

    @property
    def card(self) -> np.ndarray:
        return self._card.all

    def same(self, i: int, j: int) -> bool:
        blank, flat, mean, std, card = self.blank, self.flat, self.mean, self.std, self.card
        if blank[i] and blank[j]:
            return True
        if card[i] or card[j]:
            if blank[i] or blank[j]:
                return False  # a card is not black
            # two cards, or a card and a picture (text left on black as a shot fades under it):
            # the correlation below
        elif flat[i] or flat[j]:
            if not (flat[i] and flat[j]):
                return False
            ci = mean[i] / max(float(mean[i].sum()), 1e-3)
            cj = mean[j] / max(float(mean[j].sum()), 1e-3)
            if float(np.abs(ci - cj).sum()) >= 0.08:
                return False
            # Low grey contrast is not no picture: a dark colour gradient has structure in its
            # channels that a solid field of the same hue lacks. A fade or lighting change scales
            # that structure with the brightness; a cut to another picture does not.
            si = std[i] * (mean[j] + 1.0) / (mean[i] + 1.0)
            return bool(np.all(np.abs(std[j] - si) <= np.maximum(FLAT_STD_TOL, 0.25 * np.maximum(std[j], si))))
        ok = (std[i] >= 2.0) & (std[j] >= 2.0)
        if not ok.any():
            return False
        a = self._thumbs[i][:, ok].astype(np.float32) - mean[i][ok]
        b = self._thumbs[j][:, ok].astype(np.float32) - mean[j][ok]
        corr = (a * b).mean(axis=0) / (std[i][ok] * std[j][ok])
        return float(corr.mean()) >= SAME_CORR

    def local_change(self, i: int, j: int) -> bool:
        """Samples i and j show the same picture apart from a region: the most-changed
        LOCAL_REGION of the pixels (bars flat in both — letterbox — left out) carries at least
        LOCAL_SHARE of the change, and the rest correlates ≥ SAME_CORR with grey contrast
        (≥ BLANK_SPREAD p90 − p10) in both: a title fading in over a running shot. Text changing
        on black has no such rest (no contrast there)."""
        h, w = self._hw
        a = self._thumbs[i].astype(np.float32)
        b = self._thumbs[j].astype(np.float32)
        w3 = np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
        ga, gb = (a @ w3).reshape(h, w), (b @ w3).reshape(h, w)

        def bars(axis: int) -> np.ndarray:
            flat = (np.ptp(ga, axis=axis) < BLANK_SPREAD) & (np.ptp(gb, axis=axis) < BLANK_SPREAD)
            return flat & (np.abs(ga.mean(axis=axis) - gb.mean(axis=axis)) < BLANK_SPREAD)

        keep = (~bars(1)[:, None] & ~bars(0)[None, :]).reshape(-1)
        if keep.sum() < 10:
            return False
        change = np.abs(a - b).mean(axis=1)[keep]
        total = float(change.sum())
        if total <= 0.0:
            return False
        order = np.argsort(change)[::-1]
        top = max(1, int(round(LOCAL_REGION * len(change))))
        if float(change[order[:top]].sum()) < LOCAL_SHARE * total:
            return False
        rest = np.flatnonzero(keep)[order[top:]]
        for g in (ga.reshape(-1)[rest], gb.reshape(-1)[rest]):
            p10, p90 = np.percentile(g, [10, 90])
            if p90 - p10 < BLANK_SPREAD:
                return False
        x, y = a[rest], b[rest]
        sx, sy = x.std(axis=0), y.std(axis=0)
        ok = (sx >= 2.0) & (sy >= 2.0)
        if not ok.any():
            return False
        corr = ((x - x.mean(axis=0)) * (y - y.mean(axis=0))).mean(axis=0)[ok] / (sx[ok] * sy[ok])
        return float(corr.mean()) >= SAME_CORR

    def _walk(self, i: int, step: int, ref: int | None = None) -> int | None:
        """From sample i going `step`, the first sample with a picture other than `ref`'s.

        Blank samples are skipped (for up to BLANK_MAX_S), and so are samples showing `ref`'s
        picture (for up to RAMP_MAX_S: the rest of a fade of that picture); None if none found.
        """
        ts, blank = self.ts, self.blank
        j, blank_s, same_s = i, 0.0, 0.0
        n = len(ts)
        while 0 <= j < n:
            dt = abs(ts[j] - ts[j - step]) if 0 <= j - step < n and j != i else 0.0
            if blank[j] and j >= self.provisional_from and not self.complete:
                raise _NotYet  # it may be the start of a card
            if blank[j]:
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
        if j >= n and not self.complete:
            raise _NotYet
        return None

    def _nearest(self, t: float) -> int:
        i = int(np.argmin(np.abs(self.ts - t)))
        if i == self.n - 1 and not self.complete:
            raise _NotYet
        return i

    def judge(self, t: float, half_window: float | None) -> tuple[float, float] | None:
        """None to drop candidate t; else the span between the pictures on either side.

        half_window: None for a hard cut at t, k for a gradual one over about [t − k, t + k].
        """
        ts = self.ts
        if len(ts) < 2:
            if not self.complete:
                raise _NotYet
            return (t, t)
        if half_window is None:
            if ts[-1] <= t + FLASH_S and not self.complete:
                raise _NotYet
            pre = np.flatnonzero((ts >= t - FLASH_S) & (ts < t - 1e-6))
            post = np.flatnonzero((ts >= t - 1e-6) & (ts <= t + FLASH_S))
            if len(pre) == 0 or len(post) == 0:
                return (t, t)
            if post[-1] >= self.provisional_from and not self.complete:
                raise _NotYet
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
        elif half_window is not None and self.local_change(b, a):
            return None  # a title (or another small region) fading in or out over one shot
        return (float(min(ts[b], t)), float(max(ts[a], t)))

    def blank_middle(self, lo: float, hi: float) -> float | None:
        """Middle of the longest run of blank samples strictly inside (lo, hi), if any."""
        ts = self.ts
        idx = np.flatnonzero((ts > lo) & (ts < hi) & self.blank)
        if len(idx) == 0:
            return None
        runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
        run = max(runs, key=len)
        return float(0.5 * (ts[run[0]] + ts[run[-1]]))


# How far from its candidate a ContentCheck judgement reads thumbnails: the flash window or the
# widest fade half window, then up to BLANK_MAX_S of blank to an anchor, then the ramp walk (blank
# and same picture); + 1 s. (A black hold's candidate looks ≤ BLANK_MAX_S / 2 + DIP_RAMP_S back, then
# walks: less.) TransitionScanner holds thumbnails this far behind anything undecided.
REACH_S = FLASH_S + max(FADE_HALF_WINDOWS_S) + 2 * BLANK_MAX_S + RAMP_MAX_S + 1.0
REACH_SAMPLES = 8  # ... plus this many samples (each walk may step once past its limit)
DIP_MAX_S = 0.5  # a blank run this short between two fades is a dip (longer: a black hold)
DIP_RAMP_S = 0.5  # ... and each side's picture has at least DIP_RAMP_RATIO× the contrast
DIP_RAMP_RATIO = 2.0  # this far out (it fades into and out of the dip; flicker does not)
SCAN_BLOCK = 128  # samples handled at a time (12.8 s at 10 Hz)


class TransitionScanner:
    """Gradual transitions and the content check on ~10 Hz thumbnails, streamed while decoding.

    `push(t, thumb)` each thumbnail and `add_hard_cut(t)` each hard cut as soon as it is found
    (a detector's few frames of delay are fine); `finish` gives the transitions
    (`resolve_transitions`). Memory does not grow with the video's length
    beyond 35 bytes of statistics per sample: thumbnails are held only from REACH_S before the
    oldest candidate not yet judged (and the fade scores' 2k window), about a minute of them.

    Gradual candidates: per sample t and half window k (in samples; FADE_HALF_WINDOWS_S at the
    sampling rate `rate`), with f the thumbnail as a vector,

        score(t) = D − 2·E − 2·S,  D = |f(t+k) − f(t−k)|,  E = |f(t) − (f(t−k) + f(t+k))/2|,
                                   S = max(|f(t−k) − f(t−2k)|, |f(t+2k) − f(t+k)|)

    (see the module docstring); a sample is a candidate when D ≥ min_diff and score ≥ min_ratio·D
    for some k (the best-scoring k kept), EDGE_S or more from either end. Candidates closer than
    FADE_MERGE_S are suppressed greedily by score; that only ever involves a run of candidates
    each within FADE_MERGE_S of the next, so each run is settled once the scores have moved
    FADE_MERGE_S past it. Each survivor and each hard cut is judged by `ContentCheck` as soon as
    the samples it reads have arrived (its result memoised for `resolve_transitions`).

    `rate` is the thumbnails' nominal rate (analysis: min(SAMPLE_HZ, fps)): the half windows in
    samples must be fixed before the film is over. (Measured from all the samples, as before the
    scan was streamed, 0.25 s at 30 fps came out as 2 or 3 samples depending on the last digits
    of the mean interval; on 25 fps films the two give the same k.) `for_arrays` measures it.
    """

    def __init__(
        self,
        rate: float,
        fades: bool = True,
        half_windows_s: Sequence[float] = FADE_HALF_WINDOWS_S,
        min_diff: float = FADE_MIN_DIFF,
        min_ratio: float = FADE_MIN_RATIO,
        block: int = SCAN_BLOCK,
    ):
        self.ks = [(float(hw), max(1, int(round(hw * rate)))) for hw in half_windows_s]
        self.kmax = max(k for _, k in self.ks)
        self.fades, self.min_diff, self.min_ratio, self.block = fades, min_diff, min_ratio, block
        self.check = ContentCheck()
        self._new: list[tuple[float, np.ndarray]] = []  # samples not yet handed to the check
        self._scored = 0  # samples before this have their fade scores
        self._run: list[tuple[float, float, float]] = []  # (score, t, k) of an unsettled run
        self.gradual: list[tuple[float, float]] = []  # settled (t, k), in time order
        self.dips: list[tuple[float, float]] = []  # (t, k) of fade-out straight into fade-in
        self._dip_from = 0  # samples before this were searched for dips
        self._pending: list[tuple[float, float | None]] = []  # (t, k or None for a hard cut)
        self._spans: dict[tuple[float, float | None], tuple[float, float] | None] = {}
        self.max_held = 0  # most thumbnails held at once (for the memory test)

    @classmethod
    def for_arrays(cls, ts: np.ndarray, **kw) -> TransitionScanner:
        """A scanner for samples already in hand: the rate measured from their times."""
        n = len(ts)
        rate = (n - 1) / max(float(ts[-1] - ts[0]), 1e-6) if n > 1 else 1.0
        return cls(rate, **kw)

    def push(self, t: float, thumb: np.ndarray) -> None:
        self._new.append((t, thumb))
        if len(self._new) >= self.block:
            self._advance(None)

    def add_hard_cut(self, t: float) -> None:
        """A hard cut at t s, to be judged; add each as soon as it is found (the thumbnails
        around it are held for REACH_S after the newest sample scored)."""
        if (t, None) in self._spans or (t, None) in self._pending:
            return
        held = self.check._thumbs.start if self.check._thumbs is not None else 0
        if held and t < self.check.ts[held] + REACH_S:
            raise ValueError(f"hard cut at {t:.3f} s added after its thumbnails were forgotten")
        self._pending.append((t, None))

    def finish(self, duration: float, hard: Sequence[float] = (), weak: Sequence[float] = ()) -> list[float]:
        """The transitions: hard cuts `hard` (`weak` among them) and the gradual ones, resolved."""
        for t in hard:
            self.add_hard_cut(t)
        self._advance(duration)
        return resolve_transitions(hard, sorted(self.gradual + self.dips) if self.fades else [], self, weak=weak)

    def judge(self, t: float, half_window: float | None) -> tuple[float, float] | None:
        key = (t, half_window)
        if key not in self._spans:
            self._spans[key] = self.check.judge(t, half_window)
        return self._spans[key]

    def blank_middle(self, lo: float, hi: float) -> float | None:
        return self.check.blank_middle(lo, hi)

    def _advance(self, duration: float | None) -> None:
        """Take the new samples in; score, settle and judge what they allow (all of it at the
        end, when `duration` is given); forget thumbnails nothing can read any more."""
        final = duration is not None
        check = self.check
        if self._new:
            check.extend(np.asarray([t for t, _ in self._new]), np.stack([f for _, f in self._new]))
            self._new.clear()
        check.complete = final
        n = check.n
        upto = n if final else max(self._scored, n - 2 * self.kmax)
        if upto > self._scored:
            if self.fades:
                self._score(self._scored, upto)
            self._scored = upto
        if self.fades:
            self._find_dips(duration)
        if self._run and (final or check.ts[self._scored] - self._run[-1][1] >= FADE_MERGE_S):
            self._settle([c for c in self._run if not final or c[1] <= duration - EDGE_S])
        still = []
        for t, k in self._pending:
            try:
                self.judge(t, k)
            except _NotYet:
                still.append((t, k))
        self._pending = still
        if n:
            self.max_held = max(self.max_held, n - check._thumbs.start)
            ts = check.ts
            oldest = min([ts[min(self._scored, n - 1)]] + [t for t, _ in self._pending] + [c[1] for c in self._run[:1]])
            i = int(np.searchsorted(ts, oldest - REACH_S)) - REACH_SAMPLES
            check.forget_before(min(i, self._scored - 2 * self.kmax))

    def _score(self, c0: int, c1: int) -> None:
        """Fade scores of samples c0..c1−1 (the thumbnails 2k around them are held)."""
        check, n = self.check, self.check.n
        lo, hi = max(0, c0 - 2 * self.kmax), min(n, c1 + 2 * self.kmax)
        f = check.thumb_rows(lo, hi).reshape(hi - lo, -1).astype(np.float32)
        c = np.arange(c0, c1)
        best = np.full(len(c), -np.inf, dtype=np.float32)
        best_k = np.zeros(len(c), dtype=np.float32)
        for hw, k in self.ks:
            ok_c = (c >= k) & (c < n - k)  # the window inside the video
            cv = c[ok_c]
            a, m, b = f[cv - k - lo], f[cv - lo], f[cv + k - lo]
            d = _diff(b, a)
            e = np.abs(m - 0.5 * (a + b)).mean(axis=1)
            # Steady change just outside the window; NaN where that leaves the video.
            pre = np.full(len(cv), np.nan, np.float32)
            post = np.full(len(cv), np.nan, np.float32)
            has = cv - 2 * k >= 0
            pre[has] = _diff(f[cv[has] - k - lo], f[cv[has] - 2 * k - lo])
            has = cv + 2 * k < n
            post[has] = _diff(f[cv[has] + 2 * k - lo], f[cv[has] + k - lo])
            s = np.fmax(pre, post)  # fmax ignores a NaN side
            s = np.where(np.isnan(s), 0.0, s)
            score = d - 2.0 * e - 2.0 * s
            better = (d >= self.min_diff) & (score >= self.min_ratio * d) & (score > best[ok_c])
            idx = np.flatnonzero(ok_c)[better]
            best[idx] = score[better]
            best_k[idx] = hw
        ts = check.ts
        for i in np.flatnonzero(np.isfinite(best)):
            t = float(ts[c0 + i])
            if t < EDGE_S:
                continue
            if self._run and t - self._run[-1][1] >= FADE_MERGE_S:
                self._settle(self._run)
            self._run.append((float(best[i]), t, float(best_k[i])))

    def _find_dips(self, duration: float | None) -> None:
        """Fade-out straight into fade-in: a run of at most DIP_MAX_S of blank samples (often
        one, or none but a dark frame the blend test cannot use) whose neighbours on both sides
        fade — the picture's contrast at least DIP_RAMP_RATIO× higher DIP_RAMP_S further out.
        Each is a gradual candidate spanning the two neighbours; ContentCheck then keeps it only
        if they show different pictures (a dip inside one shot is dropped).

        Longer black holds (up to BLANK_MAX_S) are candidates whatever brings the pictures in
        and out: the blend test finds fades with a steady black only when they change enough
        (D ≥ FADE_MIN_DIFF), which a dark shot or text on black fading in or out does not, and
        the hard-cut detector misses cuts from black to a few lines of text. The candidate
        compares the pictures DIP_RAMP_S beyond the hold's neighbours (past the fades);
        ContentCheck keeps it between different pictures, and groups it with the blend test's
        and the hard cuts' candidates for the same hold (one transition)."""
        check = self.check
        ts, blank, std, n = check.ts, check.blank, check.std, check.n
        i = self._dip_from
        while i < n:
            if not blank[i]:
                i += 1
                continue
            j = i
            while j < n and blank[j]:
                j += 1
            if j == n or (duration is None and ts[-1] < ts[j] + max(DIP_RAMP_S, EDGE_S)):
                break  # the run, or the fade after it, is not complete yet (or it is near the end)
            t = 0.5 * float(ts[i - 1] + ts[j]) if i > 0 else 0.0
            k = 0.5 * float(ts[j] - ts[i - 1]) if i > 0 else 0.0
            inside = i > 0 and EDGE_S <= t <= (duration or np.inf) - EDGE_S
            if inside and ts[j - 1] - ts[i] <= DIP_MAX_S:
                before = int(np.searchsorted(ts, ts[i - 1] - DIP_RAMP_S))
                after = min(n - 1, int(np.searchsorted(ts, ts[j] + DIP_RAMP_S)))
                if (
                    std[before].sum() >= DIP_RAMP_RATIO * std[i - 1].sum()
                    and std[after].sum() >= DIP_RAMP_RATIO * std[j].sum()
                ):
                    self.dips.append((t, k))
                    self._pending.append((t, k))
            elif inside and ts[j - 1] - ts[i] <= BLANK_MAX_S:
                # A black hold: whatever brings the pictures in and out (a cut, a fade too faint
                # for the blend test — a dark shot, text on black), the pictures DIP_RAMP_S beyond
                # its neighbours are compared; ContentCheck keeps it between different ones.
                self.dips.append((t, k + DIP_RAMP_S))
                self._pending.append((t, k + DIP_RAMP_S))
            i = j
        self._dip_from = i

    def _settle(self, run: list[tuple[float, float, float]]) -> None:
        """Greedy non-maximum suppression over one run of candidates; survivors get judged."""
        kept: list[tuple[float, float]] = []
        for _, t, k in sorted(run, reverse=True):
            if all(abs(t - u) >= FADE_MERGE_S for u, _ in kept):
                kept.append((t, k))
        kept.sort()
        self.gradual += kept
        self._pending += kept
        self._run = []


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


def resolve_transitions(
    hard: Sequence[float],
    gradual: Sequence[tuple[float, float]],
    check: ContentCheck | TransitionScanner,
    weak: Sequence[float] = (),
) -> list[float]:
    """`merge_cuts` of hard cuts and (time, k) gradual candidates, then the content check
    (`check.judge`): drop brightness ramps and flashes, one time per transition, never inside a
    fade ramp."""
    k_of = dict(gradual)
    merged = merge_cuts(hard, [t for t, _ in gradual], weak=weak)
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
