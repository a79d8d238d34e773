"""Python side of scripts/gpu-run.sh (the one scripted GPU run) and of bringing its results home.

    python scripts/gpu/gpu_run.py providers                  which providers the sessions really use
    python scripts/gpu/gpu_run.py generation MODEL           generation speed, GPU and CPU provider
    python scripts/gpu/gpu_run.py synth-cache DIR            a tiny token cache (the CPU smoke run)
    python scripts/gpu/gpu_run.py package W OUTDIR SHIP_JSON  shipped weights -> parts (<= 15 MiB) + sha256
    python scripts/gpu/gpu_run.py collect WORK OUT           merge the stage results into OUT/results.json
    python scripts/gpu/gpu_run.py join FILES_AT OUT.safetensors   reassemble the weights (here)
    python scripts/gpu/gpu_run.py decide CANDIDATE --data DIR     CPU evaluation: default, optional or not

Test machinery, not product: it lives outside the installed package and calls the project's own
entry points (the token cache builder, `emsync-bridge train`, `bench`, `music.evaluate`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

PART_BYTES = 15 * 2**20  # the device tool brings back files of at most 16 MiB
# The product's CPU targets (README): 60 s of music in <= 3 s, a 60 s film scored in <= 20 s
# without render.
MIN_MUSIC_S_PER_WALL_S = 20.0
MAX_FILM_SCORE_S = 20.0


def _write_json(path: Path, data) -> None:
    from emsync_bridge.atomic import write_atomic

    write_atomic(Path(path), (json.dumps(data, indent=2) + "\n").encode())


# ------------------------------------------------------------------------------ on the GPU machine


def providers(_args) -> int:
    """Export a tiny model, open it with CUDA requested, and print what each session runs on:
    `session.get_providers()`, not `get_available_providers()` (the GPU wheel lists CUDA even
    where it cannot load it)."""
    import onnxruntime as ort

    from emsync_bridge.models import ModelFiles
    from emsync_bridge.music.model_config import ModelConfig
    from emsync_bridge.runtime.onnx_cache import ensure_exported
    from emsync_bridge.runtime.onnx_engine import CPU, CUDA, OnnxEngine

    cfg = ModelConfig(n_layer=2, n_head=2, d_model=64, d_inner=128, context_len=64)
    files = ModelFiles("providers-check", None, {**cfg.to_dict(), "meta": {"trained": False}})
    cached = ensure_exported(files)
    engine = OnnxEngine(cached.prefill, cached.step, cfg, providers=[CUDA, CPU], append_path=cached.append)
    sessions = {"prefill": engine._prefill, "step": engine._step}
    if engine._bound:
        sessions["append"] = engine._append
    logits = engine.prefill([5, 6, 7], [1.0, 1.0, 1.0], 0.2, 0.1)
    logits = engine.step(8, 1.0)  # one step through whichever path (IO binding on CUDA) runs
    out = {"onnxruntime": ort.__version__, "onnxruntime_file": ort.__file__, "device": ort.get_device(),
           "available": ort.get_available_providers(),
           "session_providers": {k: s.get_providers() for k, s in sessions.items()},
           "active": engine.provider, "io_binding": engine._bound, "step_logits_finite": bool(abs(logits).max() < 1e30)}
    if engine.provider != CUDA and CUDA in out["available"]:
        # The engine keeps onnxruntime quiet while it falls back; here its own words on why CUDA
        # did not load go to the run's log (stderr).
        ort.set_default_logger_severity(1)
        try:
            out["cuda_retry_with_logging"] = ort.InferenceSession(str(cached.step), providers=[CUDA, CPU]).get_providers()
        except Exception as exc:  # noqa: BLE001 - a diagnosis, whatever onnxruntime raises
            out["cuda_retry_error"] = f"{type(exc).__name__}: {str(exc)[:500]}"
        out["ld_library_path_entries"] = len([p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p])
    print(json.dumps(out))
    return 0


def generation(args) -> int:
    """`bench.generation_speed` for one model (e.g. emsync-37m, random weights when none are
    installed) on the default providers and, when that is a GPU's, again on the CPU provider: the
    generation half of `bench decode` without timing the decoder again."""
    from emsync_bridge.bench.decode import CPU_PROVIDER, generation_speed

    gpu = generation_speed(args.model, args.seconds)
    out = {"model": args.model, "seconds": args.seconds, "generation": gpu}
    if gpu["provider"] != CPU_PROVIDER:
        cpu = generation_speed(args.model, args.seconds, providers=[CPU_PROVIDER])
        out.update(generation_cpu=cpu, gpu_vs_cpu=round(gpu["music_seconds_per_wall_second"]
                                                        / cpu["music_seconds_per_wall_second"], 2))
    print(json.dumps(out))
    return 0


def synth_cache(args) -> int:
    """A token cache in the builder's format from a few plain generated pieces (held triads over a
    bass line and drums, major and minor): enough for a few training steps, in seconds."""
    import numpy as np

    from emsync_bridge.music.midi import Note, Score, score_to_tokens

    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays, entries, offset = [], [], 0
    for i in range(args.pieces):
        minor, tonic, beat = i % 2 == 1, i % 5, 0.45 + 0.05 * (i % 3)
        notes, downbeats, beats = [], [], []
        for bar in range(24):
            t0 = bar * 4 * beat
            downbeats.append(t0)
            root = tonic + (0, 5, 7, 0)[bar % 4]
            notes += [Note("piano", 60 + root + k, t0, t0 + 4 * beat) for k in (0, 3 if minor else 4, 7)]
            for b in range(4):
                t = t0 + b * beat
                beats.append(t)
                notes.append(Note("bass", 36 + root, t, t + 0.8 * beat))
                notes.append(Note("drums", 36 if b % 2 == 0 else 38, t, t + 0.1))
        tokens = score_to_tokens(Score(notes, downbeats, beats, 24 * 4 * beat))
        entries.append({"offset": offset, "length": len(tokens), "song": f"{i:03d}",
                        "split": "val" if i == args.pieces - 1 else "train", "valence": -0.8 if minor else 0.8})
        arrays.append(np.asarray(tokens, dtype=np.uint16))
        offset += len(tokens)
    np.save(out / "tokens.npy", np.concatenate(arrays))
    _write_json(out / "index.json", {"version": 1, "synthetic": True, "renditions": entries})
    print(f"synthetic cache: {len(entries)} pieces, {offset} tokens in {out}")
    return 0


def package(args) -> int:
    """Split shipped weights FILE into OUT/NAME.part00, .part01, ... of at most 15 MiB (the device
    tool brings back files of at most 16 MiB) and write SHIP_JSON: their size, sha256 and parts,
    and the model's config JSON."""
    from emsync_bridge.runtime.onnx_cache import sha256_file

    src, outdir = Path(args.file), Path(args.outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    parts = []
    with open(src, "rb") as fh:
        while chunk := fh.read(PART_BYTES):
            p = outdir / f"{src.name}.part{len(parts):02d}"
            p.write_bytes(chunk)
            parts.append(p.name)
    info = {"weights": {"name": src.name, "size": src.stat().st_size, "sha256": sha256_file(src), "parts": parts},
            "config": json.loads(src.with_suffix(".json").read_text())}
    _write_json(Path(args.ship_json), info)
    print(f"{src.name}: {info['weights']['size'] / 1e6:.1f} MB in {len(parts)} parts")
    return 0


def collect(args) -> int:
    """Merge every WORK/*.json stage result into OUT/results.json (rewritten after each stage, so
    that a run stopped at its time limit still brings back what it finished)."""
    work, out = Path(args.work), Path(args.out)
    result = {"collected": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for p in sorted(work.glob("*.json")):
        try:
            result[p.stem] = json.loads(p.read_text())
        except ValueError:
            text = p.read_text()
            # bench and train print a JSON object last, after progress lines
            for line in reversed(text.strip().splitlines() or [""]):
                try:
                    result[p.stem] = json.loads(line)
                    break
                except ValueError:
                    continue
            else:
                result[p.stem] = {"unparsed": text[-2000:]}
    _write_json(out / "results.json", result)
    return 0


# ------------------------------------------------------------------------------ back home (CPU)


def join(args) -> int:
    """Reassemble the shipped weights from the run's parts, check them, write OUT(.json)."""
    from emsync_bridge.atomic import write_atomic

    src = Path(args.files_at)
    results = json.loads((src / "results.json").read_text())
    ship = results.get("ship")
    if not ship or "weights" not in ship:
        print("error: the run shipped no weights (results.json has no 'ship' stage)", file=sys.stderr)
        return 2
    w = ship["weights"]
    blob = b"".join((src / p).read_bytes() for p in w["parts"])
    if len(blob) != w["size"] or hashlib.sha256(blob).hexdigest() != w["sha256"]:
        print(f"error: the weight parts do not add up to {w['name']} (size or sha256 differ)", file=sys.stderr)
        return 2
    out = Path(args.out)
    write_atomic(out, blob)
    config = dict(ship["config"])
    meta = config.setdefault("meta", {})
    meta["trained_on"] = results.get("env", {}).get("gpu") or "GPU run"
    write_atomic(out.with_suffix(".json"), (json.dumps(config, indent=2) + "\n").encode())
    from emsync_bridge.models import load_torch_model

    model, files = load_torch_model(str(out))
    print(f"{out}: {model.num_parameters():,} parameters, trained {files.trained}, "
          f"{meta.get('steps')} steps, best val loss {meta.get('best_val_loss')}")
    return 0


def val_loss(model_name: str, data: Path, batches: int, batch_size: int, seed: int = 1) -> float:
    """Validation cross-entropy of a model on fixed windows of the cache's val split (the trainer's
    own measure, `train.evaluate`), at the model's context length."""
    import numpy as np

    from emsync_bridge.models import load_torch_model
    from emsync_bridge.music.model_config import N_PREFIX
    from emsync_bridge.music.train import Corpus, WindowSampler, evaluate

    model, files = load_torch_model(model_name)
    scale = files.config.get("meta", {}).get("arousal_scale_log_notes_per_s")
    val = Corpus.load(data, "val")
    sampler = WindowSampler(val, model.cfg.context_len - N_PREFIX - 1, np.random.default_rng(seed),
                            tuple(scale) if scale else None)
    return evaluate(model, [sampler.batch(batch_size) for _ in range(batches)])


def quality(model_name: str, data: Path, seeds: int, batches: int) -> dict:
    from emsync_bridge.music.evaluate import eval_arousal, eval_boundaries, eval_valence
    from emsync_bridge.runtime import load_engine

    engine, files = load_engine(model_name)
    s = list(range(seeds))
    b = eval_boundaries(engine, s)
    a = eval_arousal(engine, s)
    v = eval_valence(engine, s)
    return {"model": files.name, "val_loss": val_loss(model_name, data, batches, 8),
            "boundary_hit_rate_0.5s": b["hit_rate"]["0.5"], "arousal_ratio_high_low": a["ratio_high_low"],
            "arousal_monotone": a["monotone"], "valence_major_difference_pp": v["difference_pp"],
            "boundaries": b, "arousal": a, "valence": v}


# Each quality metric and whether higher is better.
METRICS = {"val_loss": False, "boundary_hit_rate_0.5s": True, "arousal_ratio_high_low": True,
           "valence_major_difference_pp": True}


def film_score_seconds(model_name: str) -> float:
    """Wall seconds to score the 60 s benchmark film without render (the second of two runs: the
    first pays the ONNX export and cold caches)."""
    import tempfile

    from emsync_bridge.score import ScoreOptions, score_video
    from emsync_bridge.video.synth import make_bench_video

    with tempfile.TemporaryDirectory() as tmp:
        video = make_bench_video(Path(tmp) / "film.mp4")
        opts = ScoreOptions(render=False, model=model_name)
        score_video(video, Path(tmp) / "warm", opts)
        t = time.perf_counter()
        score_video(video, Path(tmp) / "out", opts)
        return round(time.perf_counter() - t, 2)


def verdict(base: dict, cand: dict, cand_speed: float, film_s: float = 0.0) -> dict:
    """default: better on every metric and the CPU targets kept; optional: lower validation loss
    and better on at least as many musical metrics as it is worse; else not shipped."""
    better = {k: (cand[k] > base[k]) if up else (cand[k] < base[k]) for k, up in METRICS.items()}
    worse = {k: (cand[k] < base[k]) if up else (cand[k] > base[k]) for k, up in METRICS.items()}
    fast = cand_speed >= MIN_MUSIC_S_PER_WALL_S and film_s <= MAX_FILM_SCORE_S
    musical = [k for k in METRICS if k != "val_loss"]
    if all(better.values()) and fast:
        choice = "default"
    elif better["val_loss"] and sum(better[k] for k in musical) >= sum(worse[k] for k in musical):
        choice = "optional"
    else:
        choice = "not shipped"
    return {"choice": choice, "better": better, "worse": worse, "cpu_target_met": fast,
            "music_seconds_per_wall_second": cand_speed, "film_60s_score_s": film_s}


def decide(args) -> int:
    from emsync_bridge.bench.decode import generation_speed

    t = time.time()
    base = quality(args.baseline, Path(args.data), args.seeds, args.batches)
    cand = quality(args.candidate, Path(args.data), args.seeds, args.batches)
    speed = generation_speed(args.candidate, 60.0)
    film = film_score_seconds(args.candidate)
    result = {"baseline": base, "candidate": cand, "candidate_generation_cpu": speed,
              "verdict": verdict(base, cand, speed["music_seconds_per_wall_second"], film),
              "seeds": args.seeds, "wall_s": round(time.time() - t, 1)}
    if args.out:
        _write_json(Path(args.out), result)
    v = result["verdict"]
    print(json.dumps({k: {m: base[m] if k == "baseline" else cand[m] for m in METRICS}
                      for k in ("baseline", "candidate")}))
    print(f"verdict: {v['choice']} (better: {[k for k, b in v['better'].items() if b]}; "
          f"CPU {v['music_seconds_per_wall_second']} music-s per wall-s (target >= {MIN_MUSIC_S_PER_WALL_S}), "
          f"60 s film scored in {v['film_60s_score_s']} s without render (target <= {MAX_FILM_SCORE_S}))")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("providers").set_defaults(fn=providers)
    p = sub.add_parser("generation")
    p.add_argument("model")
    p.add_argument("--seconds", type=float, default=20.0)
    p.set_defaults(fn=generation)
    p = sub.add_parser("synth-cache")
    p.add_argument("dir")
    p.add_argument("--pieces", type=int, default=6)
    p.set_defaults(fn=synth_cache)
    p = sub.add_parser("package")
    p.add_argument("file")
    p.add_argument("outdir")
    p.add_argument("ship_json")
    p.set_defaults(fn=package)
    p = sub.add_parser("collect")
    p.add_argument("work")
    p.add_argument("out")
    p.set_defaults(fn=collect)
    p = sub.add_parser("join")
    p.add_argument("files_at", help="the folder the run's files came back to")
    p.add_argument("out", help="e.g. emsync_bridge/models/emsync-base.safetensors")
    p.set_defaults(fn=join)
    p = sub.add_parser("decide")
    p.add_argument("candidate", help="model name or .safetensors path")
    p.add_argument("--baseline", default="default")
    p.add_argument("--data", required=True, help="token cache (for the validation loss)")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--batches", type=int, default=16)
    p.add_argument("--out", default=None)
    p.set_defaults(fn=decide)
    a = ap.parse_args(argv)
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
