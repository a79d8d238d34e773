"""`score` and `demo`: any video in, a fitted soundtrack out."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from emsync_bridge.commands.registry import command
from emsync_bridge.commands import argtypes
from emsync_bridge.commands.music import DRUM_FEEL_HELP, FREE_KEY_HELP, TEMPO_HELP, UNTRAINED_BANNER, VALENCE_GUIDANCE_HELP
from emsync_bridge.errors import EmsyncError
from emsync_bridge.music.model_config import (DEFAULT_DRUM_FEEL, DEFAULT_TEMPERATURE, DEFAULT_TOP_P,
                                              DEFAULT_VALENCE_GUIDANCE)


class _Bars:
    """One tqdm bar per stage (analyze, generate, render); silent with --quiet/--json."""

    def __init__(self, enabled: bool):
        self.enabled, self.bars = enabled, {}

    def __call__(self, stage, done, total):
        if not self.enabled:
            return
        from tqdm import tqdm
        bar = self.bars.get(stage)
        if bar is None:
            unit = "step" if stage == "render" else "s"
            bar = self.bars[stage] = tqdm(total=round(total, 1), desc=f"{stage:8s}", unit=unit,
                                          file=sys.stderr, leave=True, bar_format="{desc} {bar} {n:.1f}/{total:.1f} {unit} [{elapsed}]")
        bar.n = round(min(done, total), 1)
        bar.refresh()
        if done >= total:
            bar.close()

    def close(self):
        for bar in self.bars.values():
            bar.close()


def _options(args):
    from emsync_bridge.score import ScoreOptions

    from emsync_bridge.commands.music import parse_tempo

    tempo = parse_tempo(args.tempo)
    if args.tempo_grid is not None:  # the old option: a BPM or 'off', now the same as --tempo
        tempo = parse_tempo(args.tempo_grid, "--tempo-grid")
    instruments = tuple(i.strip() for i in args.instruments.split(",") if i.strip())
    return ScoreOptions(valence=args.valence, arousal=args.arousal, emotion=args.emotion, seed=args.seed,
                        instruments=instruments, tempo=tempo, render=not args.no_render,
                        model=args.model, backend=args.backend, temperature=args.temperature,
                        top_p=args.top_p, valence_guidance=args.valence_guidance, min_scene_s=args.min_scene,
                        mode_from_valence=not args.free_key, drum_feel=args.drum_feel)


def _run_score(video, out_dir, args) -> int:
    from emsync_bridge.score import score_video

    options = _options(args)
    bars = _Bars(not (args.quiet or args.json))
    try:
        result = score_video(video, out_dir, options, progress=bars)
    finally:
        bars.close()
    rep, t = result.report, result.timings
    if args.json:
        print(json.dumps({"outputs": {k: str(v) for k, v in result.paths.items()}, **rep}))
        return 0
    if not rep["trained"]:
        print(UNTRAINED_BANNER, file=sys.stderr)
    if not args.quiet:
        hits = sum(b["chord_onset"] is not None for b in rep["boundaries"])
        print(f"scored {video} -> {out_dir}")
        for name, path in result.paths.items():
            print(f"  {name:16s} {path}")
        print(f"  {len(result.score.notes)} notes, {rep['metrics']['instruments_active']} instruments, "
              f"{hits}/{len(rep['boundaries'])} boundaries hit by a CHORD")
        if rep.get("tempo"):
            from emsync_bridge.music.tempo_fit import describe
            print(f"  {describe(rep['tempo'])}")
        split = ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in t.items() if k != "total_s")
        print(f"total {t['total_s']:.1f} s wall ({split}); "
              f"{rep['duration'] / max(t['total_s'], 1e-9):.1f} music-seconds per wall second overall, "
              f"{rep['music_seconds_per_wall_second']:.1f} for generation ({rep['engine']}/{rep['provider']})")
    return 0


def _score_args(p, video=True):
    if video:
        p.add_argument("video", help="video file to score")
    p.add_argument("-o", "--out", default=None if video else "demo_out", required=video,
                   help="output folder (created; outputs in it are replaced)")
    p.add_argument("--valence", type=argtypes.finite, default=None, help="fix valence -1..1 for the whole film")
    p.add_argument("--arousal", type=argtypes.finite, default=None, help="fix arousal -1..1 for the whole film")
    p.add_argument("--emotion", default=None, help="fix the emotion: anger|disgust|fear|joy|sadness|surprise")
    p.add_argument("--seed", type=argtypes.seed, default=0)
    p.add_argument("--instruments", default="bass,drums,guitar,piano,strings")
    p.add_argument("--tempo", default="auto", help=TEMPO_HELP)
    p.add_argument("--tempo-grid", default=None, help=argparse.SUPPRESS)  # old name of --tempo BPM|off
    p.add_argument("--no-render", action="store_true", help="skip preview.wav and preview.mp4")
    p.add_argument("--model", default=None)
    p.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"])
    p.add_argument("--temperature", type=argtypes.finite, default=DEFAULT_TEMPERATURE)
    p.add_argument("--top-p", type=argtypes.finite, default=DEFAULT_TOP_P)
    p.add_argument("--valence-guidance", type=argtypes.finite, default=DEFAULT_VALENCE_GUIDANCE, help=VALENCE_GUIDANCE_HELP)
    p.add_argument("--free-key", action="store_true", help=FREE_KEY_HELP)
    p.add_argument("--drum-feel", type=argtypes.unit_interval, default=DEFAULT_DRUM_FEEL, help=DRUM_FEEL_HELP)
    p.add_argument("--min-scene", type=argtypes.non_negative, default=4.0, help="minimum seconds between boundaries")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--json", action="store_true", help="print one JSON object (for scripts)")


@command("score", "score a video: MIDI, analysis, report, audio preview and preview video")
def score_cmd(args) -> int:
    if not Path(args.video).exists():
        raise EmsyncError(f"video not found: {args.video}")
    return _run_score(args.video, args.out, args)


score_cmd.add_arguments = _score_args


@command("demo", "make the built-in example video and score it")
def demo_cmd(args) -> int:
    from emsync_bridge.paths import check_output_dir
    from emsync_bridge.score import OUTPUTS, make_demo_video

    out = check_output_dir(args.out, OUTPUTS + ("demo_video.mp4",), "-o/--out")
    video = out / "demo_video.mp4"
    if not video.exists():
        with tempfile.TemporaryDirectory(dir=out) as tmp:
            made = make_demo_video(Path(tmp) / "demo_video.mp4")
            made.replace(video)
    return _run_score(str(video), out, args)


demo_cmd.add_arguments = lambda p: _score_args(p, video=False)
