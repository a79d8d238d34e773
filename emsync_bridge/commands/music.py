"""Music subcommands: generate, train, import-checkpoint."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from emsync_bridge.cli import command
from emsync_bridge.errors import EmsyncError
from emsync_bridge.music.model_config import DEFAULT_VALENCE_GUIDANCE


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
    from emsync_bridge.timeline.spool import write_json_atomic

    boundaries = parse_times(args.boundaries)
    tempo = parse_tempo(args.tempo)
    fit = None if tempo is None else (fit_tempo(boundaries, args.arousal) if tempo == "auto"
                                      else fixed_tempo(tempo, boundaries))
    cond = Conditioning.constant(args.valence, args.arousal, boundaries, tempo=fit.tempo if fit else None)
    sampling = SamplingConfig(seed=args.seed, temperature=args.temperature, top_p=args.top_p,
                              valence_guidance=args.valence_guidance, mode_from_valence=not args.free_key)
    cond.validate(args.duration)  # before the model loads: bad values fail fast
    sampling.validate()
    engine, files = load_engine(args.model, backend=args.backend, seed=args.seed)
    if not files.trained:
        print(UNTRAINED_BANNER, file=sys.stderr)
    gen = generate(engine, args.duration, cond, sampling)
    score = gen.score()
    out = Path(args.output)
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
    }
    if not files.trained:
        report["warning"] = UNTRAINED_BANNER
    json_path = out.with_suffix(".json")
    write_json_atomic(json_path, report)
    hit = sum(h.hit_time is not None for h in gen.hits)
    print(f"wrote {out} and {json_path}: {gen.duration:.1f} s of music, {len(score.notes)} notes, "
          f"{hit}/{len(gen.hits)} boundaries hit, {gen.wall_time:.2f} s wall "
          f"({report['music_seconds_per_wall_second']:.1f}x real time, {gen.engine}/{gen.provider})")
    return 0


def _generate_args(p):
    p.add_argument("--duration", type=float, default=30.0, help="seconds of music")
    p.add_argument("--valence", type=float, default=None, help="-1..1 (omit: model's own choice)")
    p.add_argument("--arousal", type=float, default=None, help="-1..1 (omit: model's own choice)")
    p.add_argument("--boundaries", default="", help="comma-separated seconds, e.g. 4,9.5,16")
    p.add_argument("--tempo", default="auto", help=TEMPO_HELP)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.2)
    p.add_argument("--top-p", type=float, default=0.7)
    p.add_argument("--valence-guidance", type=float, default=DEFAULT_VALENCE_GUIDANCE, help=VALENCE_GUIDANCE_HELP)
    p.add_argument("--free-key", action="store_true", help=FREE_KEY_HELP)
    p.add_argument("--model", default=None, help="default | emsync-37m | path to .safetensors")
    p.add_argument("--backend", default="auto", choices=["auto", "onnx", "torch"])
    p.add_argument("-o", "--output", default="out.mid")


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
    from emsync_bridge.music.model_config import CONFIGS
    from emsync_bridge.music.train import ship, train

    if args.ship:
        print(ship(Path(args.run), Path(args.ship), init=args.init))
        return 0
    if not (Path(args.data) / "tokens.npy").is_file():
        raise EmsyncError(f"no token cache in {args.data}: build it with "
                          f"`python -m emsync_bridge.music.data --pop909 DIR --out {args.data}`")
    if args.config not in CONFIGS:
        raise EmsyncError(f"unknown config {args.config!r}: {', '.join(CONFIGS)}")
    summary = train(Path(args.data), Path(args.run), CONFIGS[args.config], args.minutes, args.batch_size,
                    args.lr, args.seed, threads=args.threads, init=args.init)
    print(json.dumps(summary, indent=2))
    return 0


def _train_args(p):
    """Also the options of `python -m emsync_bridge.music.train`, which runs this command."""
    p.add_argument("--data", default="data_cache")
    p.add_argument("--run", default="runs/small")
    p.add_argument("--config", default="emsync-small")
    p.add_argument("--minutes", type=float, default=90.0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--init", default=None, metavar="MODEL",
                   help="start a new run from this model (name or .safetensors) instead of random weights")
    p.add_argument("--ship", default=None, metavar="OUT.safetensors",
                   help="don't train: save the run's best weights to OUT (+ .json)")


train_cmd.add_arguments = _train_args
