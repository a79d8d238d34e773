"""Video subcommands: analyze (cuts, boundaries, per-scene emotion; JSON and PNG report).

Kept import-light: the heavy modules (PyAV, OpenCV, PySceneDetect, matplotlib) load only when the
command runs, and nothing here imports torch.
"""

from __future__ import annotations

import sys

from emsync_bridge.commands.registry import command
from emsync_bridge.commands import argtypes
from emsync_bridge.errors import EmsyncError


@command("analyze", "analyse a video: scene cuts, boundaries and per-scene emotion (JSON/PNG)")
def analyze(args) -> int:
    from pathlib import Path

    from emsync_bridge.atomic import write_atomic
    from emsync_bridge.paths import check_output_file
    from emsync_bridge.video.analysis import analyze_video
    from emsync_bridge.video.emotion import dominant_emotion

    from emsync_bridge.video.cuts import import_scenedetect

    if not Path(args.video).exists():
        raise EmsyncError(f"no such file: {args.video}")
    # then the outputs: a bad path is one line now, not a traceback after the whole analysis
    if args.json is not None and args.json != "-":
        check_output_file(args.json, "--json", inputs=[args.video])
    if args.png is not None:
        check_output_file(args.png, "--png", inputs=[args.video], suffixes=(".png",))
    if args.json and args.png and Path(args.json).resolve() == Path(args.png).resolve():
        raise EmsyncError("--json and --png name the same file")

    import_scenedetect()  # before tqdm starts its monitor thread (see import_scenedetect)
    bar = None
    progress = None
    if not args.quiet:
        from tqdm import tqdm

        # disable=None: no bar when stderr is not a terminal (logs, CI, subprocess capture)
        bar = tqdm(total=1.0, unit="s", desc="analyze", file=sys.stderr, disable=None,
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}]")

        def progress(done: float, total: float) -> None:
            bar.total = max(total, 1e-3)
            bar.n = min(done, bar.total)
            bar.refresh()

    try:
        a = analyze_video(
            args.video,
            min_scene_s=args.min_scene,
            estimator=args.estimator,
            detector=args.detector,
            cache=not args.no_cache,
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.close()

    if args.json == "-":
        print(a.to_json(include_features=args.features))
    elif args.json:
        write_atomic(args.json, (a.to_json(include_features=args.features) + "\n").encode())
    if args.png:
        from emsync_bridge.video.report import save_report_png

        save_report_png(a, args.png)
    if args.json != "-":
        mood = dominant_emotion({e: sum(s.emotions[e] * (s.end - s.start) for s in a.scenes) for e in a.scenes[0].emotions})
        print(
            f"{Path(a.video).name}: {a.duration:.1f} s {a.width}x{a.height} {a.fps:.2f} fps"
            f"{'' if a.has_audio else ' (no audio)'}; {len(a.cuts)} cuts, {len(a.scenes)} scenes; "
            f"valence {a.valence:+.2f} arousal {a.arousal:+.2f} (mostly {mood})"
        )
    return 0


def _add_analyze_arguments(p) -> None:
    p.add_argument("video", help="video file (anything FFmpeg reads)")
    p.add_argument("--json", metavar="PATH", help="write the analysis JSON here ('-' for stdout)")
    p.add_argument("--png", metavar="PATH.png", help="write a timeline report PNG here")
    p.add_argument("--min-scene", metavar="S", type=argtypes.non_negative, default=4.0,
                   help="minimum spacing of scene boundaries in seconds (EMSYNC: 4)")
    p.add_argument("--estimator", metavar="SPEC", default=None,
                   help="emotion estimator: learned (default), heuristic, onnx:PATH or module:Name")
    p.add_argument("--detector", choices=("both", "adaptive", "content"), default="both",
                   help="hard-cut rule: PySceneDetect AdaptiveDetector + strong ContentDetector rule (both), or one")
    p.add_argument("--features", action="store_true",
                   help="also write each scene's affect features into the JSON (extra 'features' key)")
    p.add_argument("--no-cache", action="store_true", help="ignore and do not write the analysis cache")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


analyze.add_arguments = _add_analyze_arguments
