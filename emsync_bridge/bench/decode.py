"""Decoder benchmarks behind `emsync-bridge bench` and `benchmarks/bench_decode.py`.

`bench_decode()` measures, in one run on the same weights and machine:
- decoder speed on the `emsync-37m` shape with random weights (speed does not depend on them):
  * reference: EMSYNC's loop, a full recompute of the whole window (context_len positions) per
    token, in torch; timed over a few full-window tokens;
  * cached torch and cached ONNX Runtime: the steady state of our cached decoder at a full window,
    i.e. one re-prime of 3/4 of the window followed by single steps until the window is full again
    (exactly what `_CachedDecoder` does over a long piece), so re-prime cost is included;
- generation: 60 s of music with the default model through `generate()` and ONNX Runtime, in a
  fresh subprocess that never imports torch, reporting wall time, music seconds per wall second and
  the peak RSS of that process.
Wall times on a shared machine are noisy, so every measurement also reports CPU seconds and the
load average is recorded.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

from emsync_bridge.errors import EmsyncError
from emsync_bridge.music.model_config import CONFIGS, N_PREFIX, ModelConfig

# POP909 training data: 26,703,112 tokens over 188.7 hours (emsync_bridge/models/DATA_CARD.md).
DATA_TOKENS_PER_SECOND = 39.3

CPU_PROVIDER = "CPUExecutionProvider"

# --quick (tests): a tiny model, a short piece; same code paths.
QUICK_CONFIG = ModelConfig(n_layer=2, n_head=2, d_model=64, d_inner=128, context_len=128)


@dataclass
class Timing:
    tokens: int
    wall_s: float
    cpu_s: float  # this process, all threads

    @property
    def tok_s(self) -> float:
        return self.tokens / self.wall_s

    def as_dict(self) -> dict:
        return {"tokens": self.tokens, "wall_s": round(self.wall_s, 4), "cpu_s": round(self.cpu_s, 4),
                "tok_s": round(self.tok_s, 2)}


def _timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def time_reference(engine, n_tokens: int, seed: int = 0) -> Timing:
    """EMSYNC's decoder: every token is a forward pass over a full window."""
    rng = np.random.default_rng(seed)
    n = engine.context_len - N_PREFIX
    tokens = rng.integers(2, 1009, n)
    b = rng.uniform(0, 8, n).astype(np.float32)
    engine.prefill(tokens, b, 0.0, 0.0)  # warm-up: first calls at a new shape pay one-time setup

    def run():
        for _ in range(n_tokens):
            engine.prefill(tokens, b, 0.0, 0.0)

    wall, cpu = _timed(run)
    return Timing(n_tokens, wall, cpu)


def time_cached_cycle(engine, drop_fraction: float = 0.25, seed: int = 0) -> Timing:
    """The cached decoder's steady state at a full window: re-prime with the newest 3/4 of the
    window, then single steps until the window is full (then it re-primes again)."""
    rng = np.random.default_rng(seed)
    ctx = engine.context_len
    keep = ctx - N_PREFIX - max(1, int(ctx * drop_fraction))
    tokens = rng.integers(2, 1009, ctx)
    b = rng.uniform(0, 8, ctx).astype(np.float32)
    engine.prefill(tokens[:keep], b[:keep], 0.0, 0.0)  # warm-up: first calls at a new shape pay
    for t in range(3):                                 # one-time setup (kernels, allocations)
        engine.step(int(tokens[t]), float(b[t]))
    count = 0

    def run():
        nonlocal count
        engine.prefill(tokens[:keep], b[:keep], 0.0, 0.0)
        count = 1
        i = keep
        while engine.cached_len < ctx:
            engine.step(int(tokens[i]), float(b[i]))
            i += 1
            count += 1

    wall, cpu = _timed(run)
    return Timing(count, wall, cpu)


def _best_threads(run, default: int) -> int:
    """The torch thread count (1 or the default) that runs `run` faster, after a warm-up each."""
    import torch

    if default <= 1:
        return 1
    times = {}
    for n in (1, default):
        torch.set_num_threads(n)
        run()
        times[n] = _timed(run)[0]
    torch.set_num_threads(default)
    return min(times, key=times.get)


def _full_window(engine, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = engine.context_len - N_PREFIX
    engine.prefill(rng.integers(2, 1009, n), rng.uniform(0, 8, n).astype(np.float32), 0.0, 0.0)


def _some_steps(engine, seed: int, n: int = 16) -> None:
    rng = np.random.default_rng(seed)
    engine.prefill(rng.integers(2, 1009, 8), np.ones(8, np.float32), 0.0, 0.0)
    for t in rng.integers(2, 1009, n):
        engine.step(int(t), 1.0)


def decoder_speed(config: ModelConfig, name: str, n_reference: int, seed: int = 0) -> dict:
    """Reference vs cached torch vs cached ONNX Runtime tokens/s on one set of random weights."""
    import torch

    from emsync_bridge.models import ModelFiles
    from emsync_bridge.runtime import engine_for_files
    from emsync_bridge.runtime.onnx_cache import ensure_exported, torch_model_for
    from emsync_bridge.runtime.torch_engine import TorchEngine

    files = ModelFiles(f"{name}-random", None, {**config.to_dict(), "meta": {"trained": False}})
    cached = ensure_exported(files, seed)  # first use exports; timed runs below never do
    model = torch_model_for(files, seed)
    params = model.num_parameters()
    default_threads = torch.get_num_threads()
    # The torch baselines get their best thread count: on a shared machine torch's 2 threads can
    # be far slower than 1 (each parallel region waits for a descheduled thread), which would
    # flatter our speedup.
    ref_threads = _best_threads(lambda: _full_window(TorchEngine(model), seed), default_threads)
    torch.set_num_threads(ref_threads)
    ref = time_reference(TorchEngine(model), n_reference, seed)
    step_threads = _best_threads(lambda: _some_steps(TorchEngine(model), seed), default_threads)
    torch.set_num_threads(step_threads)
    cached_torch = time_cached_cycle(TorchEngine(model), seed=seed)
    torch.set_num_threads(default_threads)
    del model
    onnx_engine = engine_for_files(files, "onnx", seed)
    cached_onnx = time_cached_cycle(onnx_engine, seed=seed)
    out = {
        "config": name, "params": params, "context_len": config.context_len,
        "weights": "random (speed does not depend on the values)",
        "torch_threads": {"reference": ref_threads, "cached_torch": step_threads},
        "reference": ref.as_dict(), "cached_torch": cached_torch.as_dict(), "onnx": cached_onnx.as_dict(),
        "provider": onnx_engine.provider, "export_seconds": cached.manifest.get("export_seconds"),
        "parity_max_abs_diff": cached.manifest.get("parity_max_abs_diff"),
    }
    if onnx_engine.provider != CPU_PROVIDER:
        # The same graphs on the CPU provider, in the same run: the GPU's gain is this ratio.
        del onnx_engine
        cpu_engine = engine_for_files(files, "onnx", seed, providers=[CPU_PROVIDER])
        out["onnx_cpu"] = time_cached_cycle(cpu_engine, seed=seed).as_dict()
    return out


def generation_speed(model: str | None, seconds: float, seed: int = 0, config: ModelConfig | None = None,
                     providers: list[str] | None = None) -> dict:
    """Generate `seconds` of music in a fresh process (already exported, so no torch there) and
    report wall time, music-seconds per wall second and that process's peak RSS (and, on a GPU,
    the GPU memory in use at its end: onnxruntime's arena only grows, so that is its peak).
    `providers`: the onnxruntime providers to ask for (default: the engine's, CUDA first)."""
    from emsync_bridge.models import ModelFiles, resolve
    from emsync_bridge.runtime.onnx_cache import ensure_exported

    if config is not None:
        files = ModelFiles("quick-random", None, {**config.to_dict(), "meta": {"trained": False}})
    elif model in CONFIGS:
        try:
            files = resolve(model)
        except EmsyncError:  # e.g. emsync-37m before import-checkpoint: its shape, random weights
            files = ModelFiles(f"{model}-random", None, {**CONFIGS[model].to_dict(), "meta": {"trained": False}})
    else:
        files = resolve(model)
    cached = ensure_exported(files, seed)
    spec = {"files": {"name": files.name, "weights": str(files.weights) if files.weights else None,
                      "config": files.config},
            "seconds": seconds, "seed": seed, "providers": providers}
    proc = subprocess.run([sys.executable, "-m", "emsync_bridge.bench.decode", "--child", json.dumps(spec)],
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"generation benchmark failed: {proc.stderr.strip()[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out.update(model=files.name, trained=files.trained,
               config={k: files.config[k] for k in ("n_layer", "n_head", "d_model", "d_inner", "context_len")},
               onnx_mb=round(sum(f["size"] for f in cached.manifest["files"].values()) / 1e6, 1),
               music_seconds_per_wall_second=round(seconds / out["wall_s"], 2),
               music_seconds_per_cpu_second=round(seconds / out["cpu_s"], 2))
    if not files.trained:
        # A random model emits ~16 tokens per second of music, a trained one about as many as the
        # training data has; project its rate from the measured time per token.
        per_token = out["wall_s"] / out["tokens"]
        out["note"] = (f"untrained weights (the shipped default model is not built yet): a trained model emits "
                       f"~{DATA_TOKENS_PER_SECOND} tokens per music second (POP909 data card), this one "
                       f"{out['tokens'] / seconds:.1f}")
        out["projected_trained_music_seconds_per_wall_second"] = round(1 / (per_token * DATA_TOKENS_PER_SECOND), 2)
    return out


def _child(spec: dict) -> None:
    """Subprocess side of `generation_speed`: nothing here may import torch."""
    from pathlib import Path

    from emsync_bridge.models import ModelFiles
    from emsync_bridge.music.generate import Conditioning, SamplingConfig, generate
    from emsync_bridge.runtime import engine_for_files

    f = spec["files"]
    files = ModelFiles(f["name"], Path(f["weights"]) if f["weights"] else None, f["config"])
    t = time.perf_counter()
    engine = engine_for_files(files, "onnx", spec["seed"], providers=spec.get("providers"))
    load_s = time.perf_counter() - t
    seconds = spec["seconds"]
    bounds = [seconds * k / 6 for k in range(1, 6)]
    # the product's default path: a tempo fitted to the boundaries, onsets kept to its grid
    from emsync_bridge.music.tempo_fit import fit_tempo
    cond = Conditioning.constant(0.5, 0.3, boundaries=bounds, tempo=fit_tempo(bounds, 0.3).tempo)
    c = time.process_time()
    gen = generate(engine, seconds, cond, SamplingConfig(seed=spec["seed"]))
    cpu = time.process_time() - c
    print(json.dumps({
        "music_seconds": seconds, "tokens": len(gen.tokens), "wall_s": round(gen.wall_time, 4),
        "cpu_s": round(cpu, 4), "tok_s": round(len(gen.tokens) / gen.wall_time, 1),
        "engine_load_s": round(load_s, 3), "provider": engine.provider,
        "peak_rss_mb": _peak_rss_mb(),
        "torch_imported": "torch" in sys.modules,
        "gpu_memory_used_mb": _gpu_memory_used_mb() if engine.provider != CPU_PROVIDER else None,
    }))


def _gpu_memory_used_mb() -> float | None:
    """GPU memory in use now (whole device, from nvidia-smi), or None where that cannot be read."""
    try:
        proc = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=20)
        return float(proc.stdout.split()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def _peak_rss_mb() -> float:
    """Peak resident memory of this process. Linux: VmHWM, because ru_maxrss survives exec and
    would report the forking parent's (torch-laden) size; elsewhere ru_maxrss."""
    import resource

    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(rss / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count()}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    if hasattr(os, "getloadavg"):
        info["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def bench_decode(quick: bool = False, model: str | None = None, seconds: float | None = None, seed: int = 0,
                 progress=None) -> dict:
    """The full decode benchmark as one JSON-ready dict (see the module docstring)."""
    say = progress or (lambda msg: None)
    import torch

    info = machine()
    info["torch"] = torch.__version__
    if quick:
        say("decoder speed (quick config)")
        speed = decoder_speed(QUICK_CONFIG, "quick", n_reference=4, seed=seed)
        say("generation (quick config)")
        gen = generation_speed(None, seconds or 5.0, seed, config=QUICK_CONFIG)
    else:
        say("decoder speed: emsync-37m shape, random weights (exports on first use, ~1 min)")
        speed = decoder_speed(CONFIGS["emsync-37m"], "emsync-37m", n_reference=3, seed=seed)
        say("generation: default model, 60 s of music")
        gen = generation_speed(model, seconds or 60.0, seed)
    gen_cpu = None
    if gen["provider"] != CPU_PROVIDER:
        say("generation again on the CPU provider (same run, for the GPU/CPU ratio)")
        gen_cpu = generation_speed(None if quick else model, seconds or (5.0 if quick else 60.0), seed,
                                   config=QUICK_CONFIG if quick else None, providers=[CPU_PROVIDER])
    if hasattr(os, "getloadavg"):
        info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    ref, ct, ox = (speed[k]["tok_s"] for k in ("reference", "cached_torch", "onnx"))
    gpu = {}
    if "onnx_cpu" in speed:  # the active provider is a GPU's: its gain over the CPU, same run
        gpu = {"onnx_cpu_tok_s": speed["onnx_cpu"]["tok_s"],
               "onnx_gpu_vs_cpu": round(ox / speed["onnx_cpu"]["tok_s"], 2)}
    if gen_cpu is not None:
        gpu.update(generation_cpu=gen_cpu,
                   cpu_music_seconds_per_wall_second=gen_cpu["music_seconds_per_wall_second"],
                   generation_gpu_vs_cpu=round(gen["music_seconds_per_wall_second"]
                                               / gen_cpu["music_seconds_per_wall_second"], 2),
                   gpu_memory_used_mb=gen.get("gpu_memory_used_mb"))
    return {
        "reference_tok_s": ref,
        "cached_torch_tok_s": ct,
        "onnx_tok_s": ox,
        "speedup_vs_reference": round(ox / ref, 1),
        "cached_torch_speedup_vs_reference": round(ct / ref, 1),
        "onnx_speedup_vs_cached_torch": round(ox / ct, 2),
        "music_seconds_per_wall_second": gen["music_seconds_per_wall_second"],
        "music_seconds_per_cpu_second": gen["music_seconds_per_cpu_second"],
        "speedup_vs_reference_cpu_time": round(
            (speed["onnx"]["tokens"] / speed["onnx"]["cpu_s"]) / (speed["reference"]["tokens"] / speed["reference"]["cpu_s"]), 1),
        "peak_rss_mb": gen["peak_rss_mb"],
        "provider": speed["provider"],
        "quick": quick,
        "decoder": speed,
        "generation": gen,
        "machine": info,
        **gpu,
    }


def bench_analyze() -> dict:
    """`emsync_bridge.bench.analyze.bench_analyze()` when that module exists."""
    try:
        from emsync_bridge.bench.analyze import bench_analyze as run
    except ImportError:
        return {"available": False, "reason": "emsync_bridge.bench.analyze is not available"}
    return {"available": True, **run()}


def format_decode(r: dict) -> str:
    d, g = r["decoder"], r["generation"]
    lines = [
        f"decoder speed, {d['config']} ({d['params'] / 1e6:.1f} M params, window {d['context_len']}, "
        f"{d['weights']}):",
        f"  reference (full recompute, torch)  {r['reference_tok_s']:9.2f} tok/s",
        f"  cached torch                       {r['cached_torch_tok_s']:9.2f} tok/s  "
        f"({r['cached_torch_speedup_vs_reference']}x reference)",
        f"  cached ONNX Runtime ({r['provider']}) {r['onnx_tok_s']:9.2f} tok/s  "
        f"({r['speedup_vs_reference']}x reference, {r['onnx_speedup_vs_cached_torch']}x cached torch)",
        f"generation, {g['model']}{'' if g['trained'] else ' (UNTRAINED)'}: {g['music_seconds']:.0f} s of music, "
        f"{g['tokens']} tokens in {g['wall_s']:.2f} s wall -> {r['music_seconds_per_wall_second']} music-s per "
        f"wall-s ({r['music_seconds_per_cpu_second']} per CPU-s); peak RSS {r['peak_rss_mb']} MB; "
        f"torch imported: {g['torch_imported']}"
        + (f"; projected for a trained model: {g['projected_trained_music_seconds_per_wall_second']} music-s "
           f"per wall-s" if "projected_trained_music_seconds_per_wall_second" in g else ""),
    ]
    if "onnx_gpu_vs_cpu" in r:
        lines.append(f"GPU vs CPU provider, same run: decoder {r['onnx_tok_s']} vs {r['onnx_cpu_tok_s']} tok/s "
                     f"({r['onnx_gpu_vs_cpu']}x)")
    if "generation_gpu_vs_cpu" in r:
        lines.append(f"  generation {r['music_seconds_per_wall_second']} vs {r['cpu_music_seconds_per_wall_second']} "
                     f"music-s per wall-s ({r['generation_gpu_vs_cpu']}x); GPU memory in use "
                     f"{r['gpu_memory_used_mb']} MB")
    lines += [
        f"machine: {r['machine'].get('cpu', '?')}, {r['machine']['cpu_count']} cores, load "
        f"{r['machine'].get('loadavg_start')} -> {r['machine'].get('loadavg_end')}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child(json.loads(sys.argv[2]))
    else:
        print("internal entry point; use `emsync-bridge bench` or benchmarks/bench_decode.py", file=sys.stderr)
        sys.exit(2)
