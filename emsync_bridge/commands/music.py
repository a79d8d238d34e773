"""Music subcommands: generate, train, import-checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path

from emsync_bridge.commands.registry import command
from emsync_bridge.commands import argtypes
from emsync_bridge.errors import EmsyncError
from emsync_bridge.music import train_options
from emsync_bridge.music.model_config import (DEFAULT_DRUM_FEEL, DEFAULT_TEMPERATURE, DEFAULT_TOP_P,
                                              DEFAULT_VALENCE_GUIDANCE)


def parse_times(text: str | None) -> list[float]:
    if not text:
        return []
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise EmsyncError(f"boundaries must be comma-separated seconds, got {text!r}") from None


TEMPO_HELP = ("'auto' (default): a tempo fitted so the boundaries fall on beats; a BPM fixes it; "
              "'off': no grid (the model's own timing). Onsets keep to its 16th grid; score.mid carries it")


def parse_tempo(text: str, option: str = "--tempo") -> float | str | None:
    """'auto', 'off' (None) or a BPM, as ScoreOptions.tempo takes it."""
    text = str(text).strip().lower()
    if text in ("auto", "off"):
        return None if text == "off" else "auto"
    try:
        bpm = float(text)
    except ValueError:
        raise EmsyncError(f"{option} takes 'auto', 'off' or a BPM, got {text!r}") from None
    if not 20 <= bpm <= 400:
        raise EmsyncError(f"{option} must be 20..400 BPM, got {text}")
    return bpm


DRUM_FEEL_HELP = ("human drum feel, 0..1: each drum hit moved and accented as a real drummer played that 16th "
                  "(Groove MIDI Dataset templates); 0 = drums exactly on the grid (default %(default)s)")
FREE_KEY_HELP = "let the model choose key and mode (no valence -> mode key lock; it barely follows valence alone)"
VALENCE_GUIDANCE_HELP = "follow valence this much more strongly (classifier-free guidance; 1 = off, 2x compute when > 1)"
UNTRAINED_BANNER = ("UNTRAINED MODEL: random weights, not the product's music "
                    "(the shipped default model is missing from emsync_bridge/models/)")


@command("generate", "generate emotion-conditioned MIDI whose long chords land on given boundaries")
def generate_cmd(args) -> int:
    from emsync_bridge.music.generate import Conditioning, SamplingConfig, generate
    from emsync_bridge.music.metrics import summary
    from emsync_bridge.music.midi import write_midi
    from emsync_bridge.music.tempo_fit import fit_tempo, fixed_tempo
    from emsync_bridge.runtime import load_engine
    from emsync_bridge.atomic import write_json_atomic
    from emsync_bridge.paths import check_output_file

    out = check_output_file(args.output, "-o/--output", inputs=[args.model])
    json_path = out.with_suffix(".json")
    if json_path == out:
        raise EmsyncError(f"-o/--output must not end in .json (the report is written next to it as NAME.json): {out}")
    check_output_file(json_path, "the report next to -o/--output", inputs=[args.model])
    boundaries = parse_times(args.boundaries)
    tempo = parse_tempo(args.tempo)
    fit = None if tempo is None else (fit_tempo(boundaries, args.arousal) if tempo == "auto"
                                      else fixed_tempo(tempo, boundaries))
    cond = Conditioning.constant(args.valence, args.arousal, boundaries, tempo=fit.tempo if fit else None)
    sampling = SamplingConfig(seed=args.seed, temperature=args.temperature, top_p=args.top_p,
                              valence_guidance=args.valence_guidance, mode_from_valence=not args.free_key,
                              drum_feel=args.drum_feel)
    cond.validate(args.duration)  # before the model loads: bad values fail fast
    sampling.validate()
    engine, files = load_engine(args.model, backend=args.backend, seed=args.seed)
    if not files.trained:
        print(UNTRAINED_BANNER, file=sys.stderr)
    gen = generate(engine, args.duration, cond, sampling)
    score = gen.score()
    write_midi(score, out, tempo=fit.tempo if fit else None)
    report = {
        "model": files.name, "trained": files.trained, "engine": gen.engine, "provider": gen.provider,
        "seed": gen.seed, "duration": gen.duration, "valence": args.valence, "arousal": args.arousal,
        "mode_from_valence": sampling.mode_from_valence,
        "tokens": gen.tokens, "n_tokens": len(gen.tokens), "wall_time": gen.wall_time,
        "music_seconds_per_wall_second": gen.duration / max(gen.wall_time, 1e-9),
        "boundaries": [{"target": h.target, "hit_time": h.hit_time} for h in gen.hits],
        "metrics": summary(score, boundaries), "truncated": gen.truncated,
        "tempo": fit.to_dict() if fit else None,
        "drum_feel": gen.feel.to_dict() if gen.feel else None,
    }
    if not files.trained:
        report["warning"] = UNTRAINED_BANNER
    write_json_atomic(json_path, report)
    hit = sum(h.hit_time is not None for h in gen.hits)
    print(f"wrote {out} and {json_path}: {gen.duration:.1f} s of music, {len(score.notes)} notes, "
          f"{hit}/{len(gen.hits)} boundaries hit, {gen.wall_time:.2f} s wall "
          f"({report['music_seconds_per_wall_second']:.1f}x real time, {gen.engine}/{gen.provider})")
    return 0


def _generate_args(p):
    p.add_argument("--duration", type=argtypes.duration, default=30.0,
                   help=f"seconds of music (at most {argtypes.MAX_DURATION_S:.0f})")
    p.add_argument("--valence", type=argtypes.finite, default=None, help="-1..1 (omit: model's own choice)")
    p.add_argument("--arousal", type=argtypes.finite, default=None, help="-1..1 (omit: model's own choice)")
    p.add_argument("--boundaries", default="", help="comma-separated seconds, e.g. 4,9.5,16")
    p.add_argument("--tempo", default="auto", help=TEMPO_HELP)
    p.add_argument("--seed", type=argtypes.seed, default=0)
    p.add_argument("--temperature", type=argtypes.finite, default=DEFAULT_TEMPERATURE)
    p.add_argument("--top-p", type=argtypes.finite, default=DEFAULT_TOP_P)
    p.add_argument("--valence-guidance", type=argtypes.finite, default=DEFAULT_VALENCE_GUIDANCE,
                   help=VALENCE_GUIDANCE_HELP)
    p.add_argument("--free-key", action="store_true", help=FREE_KEY_HELP)
    p.add_argument("--drum-feel", type=argtypes.unit_interval, default=DEFAULT_DRUM_FEEL, help=DRUM_FEEL_HELP)
    p.add_argument("--model", default=None, help="default | emsync-37m | path to .safetensors")
    p.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"])
    p.add_argument("-o", "--output", default="out.mid", help="MIDI file (the report goes next to it as .json)")


generate_cmd.add_arguments = _generate_args


@command("import-checkpoint", "convert the official EMSYNC midi_model.pt into emsync-37m (no download)")
def import_checkpoint_cmd(args) -> int:
    from emsync_bridge.models import import_checkpoint

    out = import_checkpoint(args.path)
    print(f"imported {args.path} as emsync-37m: {out} (use --model emsync-37m)")
    return 0


import_checkpoint_cmd.add_arguments = lambda p: p.add_argument("path", help="path to midi_model.pt")


@command("train", "train the default model on the token cache (see emsync_bridge/music/train.py)")
def train_cmd(args) -> int:
    from emsync_bridge.music.train import run

    return run(args)


train_cmd.add_arguments = train_options.add_arguments  # also `python -m emsync_bridge.music.train`'s
