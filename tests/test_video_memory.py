"""Video analysis memory does not grow with the film's length beyond compact per-frame numbers
(issue 19: a 2 h film peaked at ~2 GB, then ~470 MB; the 10 Hz thumbnails were kept for the
whole film, 17 KB per video-second)."""

from __future__ import annotations

import subprocess
import tracemalloc

import numpy as np

from emsync_bridge.video.analysis import analyze_video
from emsync_bridge.video.synth import Segment, make_video

# Per video-second, what may still grow: frame times, motion and cut scores (16 B per frame at
# 25 fps), colour statistics and content-check statistics per 10 Hz sample (~58 B), audio
# features (8 B per 16 ms) — about 1.5 KB/s. The thumbnails alone were 17 KB/s.
MAX_GROWTH_PER_S = 4000  # bytes


def _film(tmp_path, base, repeats: int):
    """`repeats` copies of `base` back to back (stream copy: no re-encoding)."""
    lst = tmp_path / f"list{repeats}.txt"
    lst.write_text(f"file '{base}'\n" * repeats)
    out = tmp_path / f"film{repeats}.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0",
                    "-i", str(lst), "-c", "copy", str(out)], check=True)
    return out


def test_peak_python_memory_does_not_grow_with_film_length(tmp_path):
    # 15 s: hard cuts, a crossfade, a fade to black, black, a fade in — repeated 6× and 20×: both
    # longer than the thumbnails the scanner holds (under a minute and a half).
    segs = [Segment("testsrc2", 4.0), Segment("mandelbrot", 3.0, fade_in=1.0),
            Segment("smptehdbars,fade=out:st=2:d=1", 3.0), Segment("color=c=black", 0.5),
            Segment("testsrc,fade=in:st=0:d=1", 5.5)]
    base = make_video(tmp_path / "base.mp4", segs, size=(160, 90), fps=25)
    peaks, durations, cuts = [], [], []
    for repeats in (1, 6, 20):  # the first run only warms up (imports, caches)
        path = _film(tmp_path, base, repeats)
        tracemalloc.start()
        try:
            # The heuristic estimator: the learned one's worker thread holds a 5 MB batch at moments
            # that vary from run to run, which would blur a peak measured on short films.
            a = analyze_video(path, cache=False, estimator="heuristic")
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        durations.append(a.duration)
        cuts.append(len(a.cuts))
    peaks, durations, cuts = peaks[1:], durations[1:], cuts[1:]
    assert cuts[1] >= 3 * cuts[0] > 0  # the long film really has its transitions all along
    growth = (peaks[1] - peaks[0]) / (durations[1] - durations[0])
    print(f"peak growth {growth:.0f} B per video-second (peaks {peaks}, durations {durations})")
    assert growth < MAX_GROWTH_PER_S, f"{growth:.0f} B per video-second (peaks {peaks})"


def test_scanner_holds_a_bounded_window_of_thumbnails():
    from emsync_bridge.video.cuts import TransitionScanner

    rng = np.random.default_rng(0)
    pics = rng.integers(0, 255, (8, 18, 32, 3), dtype=np.uint8)
    held = []
    for n in (2_000, 20_000):  # 200 s and 2 000 s at 10 Hz, a cut every 3 s
        scan = TransitionScanner(10.0)
        for i in range(n):
            scan.push(i * 0.1, pics[(i // 30) % 8])
            if i % 30 == 0 and i:
                scan.add_hard_cut(i * 0.1)
        found = scan.finish(n * 0.1, [i * 0.1 for i in range(30, n, 30)])
        assert len(found) == len(range(30, n, 30))
        held.append(scan.max_held)
    assert held[1] <= held[0] <= 1_200, held  # about a minute of thumbnails, whatever the length


def _sequence(rng, n):
    """Thumbnails of random pictures joined by cuts, dissolves, dips to black, lighting changes."""
    pics = [rng.integers(0, 255, (18, 32, 3)).astype(np.float32) for _ in range(10)] + [np.zeros((18, 32, 3))]
    out, cur = [], 0
    while len(out) < n:
        nxt, length, kind = rng.integers(len(pics)), int(rng.integers(3, 80)), rng.integers(4)
        for s in range(length):
            x = s / length
            out.append([pics[cur], (1 - x) * pics[cur] + x * pics[nxt], pics[cur] * abs(2 * x - 1),
                        pics[cur] * (0.3 + 0.7 * x)][kind])
        cur = nxt
    return np.clip(np.asarray(out[:n]), 0, 255).astype(np.uint8)


def test_streamed_scan_equals_scan_of_the_whole_film():
    from emsync_bridge.video.cuts import TransitionScanner

    found = 0
    for seed in range(4):
        rng = np.random.default_rng(seed)
        n = 1500
        ts = np.cumsum(np.r_[0.0, rng.choice([0.08, 0.1, 0.12], n - 1)])
        thumbs = _sequence(rng, n)
        hard = sorted({float(ts[i]) for i in rng.integers(1, n, n // 40)})
        results = []
        for block in (7, 10**6):  # thumbnails forgotten as it goes / all held until the end
            scan = TransitionScanner.for_arrays(ts, block=block)
            for t, th in zip(ts, thumbs):
                scan.push(float(t), th)
                if float(t) in hard:
                    scan.add_hard_cut(float(t))
            results.append((scan.finish(float(ts[-1]) + 0.04, hard, weak=hard[::3]), scan.gradual, scan.max_held))
        assert results[0][:2] == results[1][:2]
        assert results[0][2] < n == results[1][2]
        found += len(results[0][0]) + len(results[0][1])
    assert found >= 10  # transitions and gradual candidates were there to compare
