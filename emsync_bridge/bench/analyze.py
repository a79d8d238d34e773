"""`bench analyze`: × real time and cut accuracy of our analysis vs `scenedetect.detect` defaults.

Both sides are measured in the same run on the same file:
  * `ours_cli`: the whole `emsync-bridge analyze FILE --json …` command in a fresh process with a
    cold (empty, temporary) cache — what the acceptance target (≥ 20× real time) is about;
  * `scenedetect_cli`: a fresh process running `scenedetect.detect(FILE, ContentDetector())`;
  * `ours_lib` / `scenedetect_lib`: the same two calls in this process (imports already warm).
With no path, a synthetic 60 s 640×360 25 fps H.264+AAC video with five hard cuts and one 1 s
crossfade is made first (synth.make_bench_video), so accuracy is scored too (a cut counts as found
within 0.1 s; the crossfade's truth is its midpoint and it counts within 0.5 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from emsync_bridge.video.cuts import match_cuts

_SCENEDETECT_SNIPPET = (
    "import sys, json, scenedetect; from scenedetect.detectors import ContentDetector; "
    "s = scenedetect.detect(sys.argv[1], ContentDetector()); "
    "print(json.dumps([x[0].seconds for x in s[1:]]))"
)
_CLI_SNIPPET = "import sys; from emsync_bridge.cli import main; sys.exit(main())"


def _timed(cmd: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(wall s, CPU s of the child incl. its threads, stdout). CPU time is what a busy shared
    machine cannot inflate much; wall time is what the user waits."""
    import resource

    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    dt = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {res.stderr.strip()[-300:]}")
    return dt, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), res.stdout


def _score(found: list[float], hard: list[float], fades: list[tuple[float, float]]) -> dict:
    tp, fp, fn = match_cuts(found, hard, 0.1)
    rest = [f for f in found if all(abs(f - h) > 0.1 for h in hard)]
    ftp, ffp, ffn = match_cuts(rest, [(a + b) / 2 for a, b in fades], 0.5)
    tp, fp, fn = tp + ftp, ffp, fn + ffn
    return {"tp": tp, "fp": fp, "fn": fn, "f1": round(2 * tp / max(2 * tp + fp + fn, 1), 3)}


def bench_analyze(path: str | Path | None = None) -> dict:
    """Measure both pipelines on `path` (or a synthetic 60 s 640×360 video); returns numbers.

    Keys: video, duration, ours_cli_s, ours_cli_x_realtime, ours_cli_cpu_s (user+sys of the whole
    process, all threads), scenedetect_cli_s, scenedetect_cli_cpu_s,
    scenedetect_cli_x_realtime, ours_lib_s, ours_lib_x_realtime, scenedetect_lib_s,
    scenedetect_lib_x_realtime, speedup_cli (scenedetect / ours), ours_cuts, scenedetect_cuts,
    and, for the synthetic video, accuracy_ours / accuracy_scenedetect ({tp, fp, fn, f1}).
    """
    from emsync_bridge.video import synth
    from emsync_bridge.video.analysis import analyze_video

    with tempfile.TemporaryDirectory(prefix="emsync-bench-") as tmp:
        tmp = Path(tmp)
        truth = None
        if path is None:
            path = synth.make_bench_video(tmp / "bench_640x360_60s.mp4")
            truth = (synth.BENCH_HARD_CUTS, synth.BENCH_FADES)
        path = Path(path)
        # Fresh process, cold cache: the acceptance number.
        env = dict(os.environ, XDG_CACHE_HOME=str(tmp / "cache"))
        ours_cli_s, ours_cpu_s, _ = _timed(
            [sys.executable, "-c", _CLI_SNIPPET, "analyze", str(path), "-q", "--json", str(tmp / "a.json")], env
        )
        sd_cli_s, sd_cpu_s, out = _timed([sys.executable, "-c", _SCENEDETECT_SNIPPET, str(path)])
        sd_cuts = json.loads(out)
        # In-process, imports warm, no cache.
        t = time.perf_counter()
        a = analyze_video(path, cache=False)
        ours_lib_s = time.perf_counter() - t
        import scenedetect
        from scenedetect.detectors import ContentDetector

        t = time.perf_counter()
        scenedetect.detect(str(path), ContentDetector())
        sd_lib_s = time.perf_counter() - t

    dur = a.duration
    res = {
        "video": str(path) if truth is None else "synthetic 60 s 640x360 25 fps (5 hard cuts + 1 s crossfade)",
        "duration": round(dur, 3),
        "ours_cli_s": round(ours_cli_s, 3),
        "ours_cli_x_realtime": round(dur / ours_cli_s, 1),
        "ours_cli_cpu_s": round(ours_cpu_s, 3),
        "scenedetect_cli_s": round(sd_cli_s, 3),
        "scenedetect_cli_cpu_s": round(sd_cpu_s, 3),
        "scenedetect_cli_x_realtime": round(dur / sd_cli_s, 1),
        "ours_lib_s": round(ours_lib_s, 3),
        "ours_lib_x_realtime": round(dur / ours_lib_s, 1),
        "scenedetect_lib_s": round(sd_lib_s, 3),
        "scenedetect_lib_x_realtime": round(dur / sd_lib_s, 1),
        "speedup_cli": round(sd_cli_s / ours_cli_s, 2),
        "ours_cuts": [round(c, 3) for c in a.cuts],
        "scenedetect_cuts": [round(c, 3) for c in sd_cuts],
    }
    if truth is not None:
        res["accuracy_ours"] = _score(a.cuts, *truth)
        res["accuracy_scenedetect"] = _score(sd_cuts, *truth)
    else:
        # No ground truth: how many of scenedetect's cuts we also report (within 0.1 s).
        tp, _, fn = match_cuts(a.cuts, sd_cuts, 0.1)
        res["scenedetect_cuts_we_also_find"] = f"{tp}/{tp + fn}"
    return res


EVAL_SOURCES = [
    "testsrc", "testsrc2", "smptehdbars", "rgbtestsrc", "mandelbrot", "gradients=speed=0.03:seed={seed}",
    "pal100bars", "life=mold=10:ratio=0.3:death_color=#C83232:seed={seed}", "cellauto=rule=30", "yuvtestsrc",
    "color=c=0x{colour:06x}",
]  # random sources get seeds from the eval's RNG, so a seed gives the same clips every time


def eval_cuts(seed: int = 0, n_clips: int = 8, size: tuple[int, int] = (640, 360), detector: str = "content") -> dict:
    """Cut accuracy of ours vs `scenedetect.detect(…, ContentDetector())` on random synthetic clips.

    Each clip: 8 shots of 0.6–3.5 s from `EVAL_SOURCES` (40 % with temporal noise), joined by hard
    cuts or (25 %) 1 s crossfades. A hard cut counts within 0.1 s, a crossfade within 0.5 s of its
    midpoint. Returns totals {tp, fp, fn, f1} per side. Takes ~3 s per clip here.
    """
    import random

    import scenedetect
    from scenedetect.detectors import ContentDetector

    from emsync_bridge.video.analysis import analyze_video
    from emsync_bridge.video.synth import Segment, make_video

    rng = random.Random(seed)
    tot = {"ours": [0, 0, 0], "scenedetect": [0, 0, 0]}
    clips: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="emsync-eval-") as tmp:
        for clip in range(n_clips):
            segs, hard, fades, t, prev = [], [], [], 0.0, None
            for i in range(8):
                src = rng.choice([x for x in EVAL_SOURCES if x != prev])
                prev = src
                src = src.format(seed=rng.randrange(1 << 16), colour=rng.randrange(1 << 24))
                n = round(rng.uniform(0.6, 3.5) * 25) / 25
                fade = 1.0 if (i > 0 and rng.random() < 0.25 and n > 1.5 and segs[-1].duration > 1.6) else 0.0
                if fade:
                    fades.append((t - fade, t))
                    t += n - fade
                else:
                    if i > 0:
                        hard.append(round(t, 4))
                    t += n
                noise = ",noise=alls=25:allf=t" if rng.random() < 0.4 else ""
                segs.append(Segment(src + noise, n, fade_in=fade))
            path = make_video(Path(tmp) / f"c{clip}.mp4", segs, size=size, fps=25, audio=None)
            found = {
                "ours": analyze_video(path, cache=False, detector=detector).cuts,
                "scenedetect": [x[0].seconds for x in scenedetect.detect(str(path), ContentDetector())[1:]],
            }
            for k, cuts in found.items():
                sc = _score(cuts, hard, fades)
                tot[k] = [tot[k][0] + sc["tp"], tot[k][1] + sc["fp"], tot[k][2] + sc["fn"]]
            clips.append({"shots": [(x.source, x.duration, x.fade_in) for x in segs], "hard": hard,
                          "fades": fades, **{k: [round(c, 3) for c in v] for k, v in found.items()}})
    res = {
        k: {"tp": tp, "fp": fp, "fn": fn, "f1": round(2 * tp / max(2 * tp + fp + fn, 1), 3)}
        for k, (tp, fp, fn) in tot.items()
    }
    res["clips"] = clips
    return res


def format_bench(res: dict) -> str:
    """One line for the bench table."""
    acc = ""
    if "accuracy_ours" in res:
        acc = f"; cut F1 ours {res['accuracy_ours']['f1']:.2f} vs scenedetect {res['accuracy_scenedetect']['f1']:.2f}"
    return (
        f"analyze: {res['ours_cli_x_realtime']:.1f}x real time (CLI, cold cache, {res['ours_cli_s']:.2f} s) vs "
        f"scenedetect.detect {res['scenedetect_cli_x_realtime']:.1f}x ({res['scenedetect_cli_s']:.2f} s), "
        f"speed-up {res['speedup_cli']:.2f}x; CPU {res['ours_cli_cpu_s']:.2f} s vs {res['scenedetect_cli_cpu_s']:.2f} s{acc}"
    )


if __name__ == "__main__":  # python -m emsync_bridge.bench.analyze [VIDEO | --eval SEED N]
    if len(sys.argv) > 1 and sys.argv[1] == "--eval":
        print(json.dumps(eval_cuts(int(sys.argv[2]), int(sys.argv[3])), indent=1))
    else:
        r = bench_analyze(sys.argv[1] if len(sys.argv) > 1 else None)
        print(json.dumps(r, indent=2))
        print(format_bench(r))
