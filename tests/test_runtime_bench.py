"""`emsync-bridge bench decode --quick --json` runs end to end and prints the promised keys."""

import json
import subprocess
import sys

KEYS = {"reference_tok_s", "cached_torch_tok_s", "onnx_tok_s", "speedup_vs_reference",
        "music_seconds_per_wall_second", "provider", "peak_rss_mb"}


def test_bench_decode_quick_json():
    proc = subprocess.run([sys.executable, "-m", "emsync_bridge", "bench", "decode", "--quick", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert KEYS <= set(result)
    assert all(result[k] > 0 for k in KEYS - {"provider"})
    assert result["provider"] == "CPUExecutionProvider"
    assert result["generation"]["torch_imported"] is False
    assert result["quick"] is True


def test_bench_analyze_without_the_video_bench_says_not_available(monkeypatch):
    from emsync_bridge.bench.decode import bench_analyze

    monkeypatch.setitem(sys.modules, "emsync_bridge.bench.analyze", None)
    assert bench_analyze()["available"] is False


def test_export_cli_writes_single_file_graphs_with_manifest(tmp_path, capsys):
    import torch

    from emsync_bridge.cli import main
    from emsync_bridge.models import save_model
    from emsync_bridge.music.model import MusicTransformer
    from emsync_bridge.music.model_config import ModelConfig

    torch.manual_seed(1)
    cfg = ModelConfig(n_layer=1, n_head=2, d_model=32, d_inner=64, context_len=32)
    weights = save_model(MusicTransformer(cfg), tmp_path / "m.safetensors", {"trained": True})
    assert main(["export", "--model", str(weights), "--out", str(tmp_path / "onnx")]) == 0
    assert "max |logits diff| vs torch" in capsys.readouterr().out
    files = sorted(p.name for p in (tmp_path / "onnx").iterdir())
    assert files == ["append.onnx", "manifest.json", "prefill.onnx", "step.onnx"]  # no .onnx.data sidecar
    manifest = json.loads((tmp_path / "onnx" / "manifest.json").read_text())
    assert manifest["parity_max_abs_diff"] <= 1e-3 and manifest["model"] == "m"


def test_on_a_gpu_provider_the_bench_also_times_the_cpu_provider_in_the_same_run(monkeypatch):
    """Where the active provider is a GPU's, the decoder and the generation are timed again on the
    CPU provider and the ratios reported (simulated here: the engine says it runs on CUDA)."""
    import emsync_bridge.runtime as runtime
    from emsync_bridge.bench import decode as bench

    real = runtime.engine_for_files
    asked = []

    def engine_for_files(files, backend="auto", seed=0, providers=None):
        asked.append(providers)
        engine = real(files, backend, seed, providers)
        if providers is None:
            engine.provider = "CUDAExecutionProvider"
        return engine

    monkeypatch.setattr(runtime, "engine_for_files", engine_for_files)
    speed = bench.decoder_speed(bench.QUICK_CONFIG, "quick", n_reference=1)
    assert asked == [None, ["CPUExecutionProvider"]]
    assert speed["provider"] == "CUDAExecutionProvider" and speed["onnx_cpu"]["tok_s"] > 0

    def generation_speed(model, seconds, seed=0, config=None, providers=None):
        on_cpu = providers == ["CPUExecutionProvider"]
        return {"provider": "CPUExecutionProvider" if on_cpu else "CUDAExecutionProvider",
                "music_seconds_per_wall_second": 30.0 if on_cpu else 90.0, "music_seconds_per_cpu_second": 30.0,
                "peak_rss_mb": 90.0, "gpu_memory_used_mb": None if on_cpu else 700.0, "model": "m",
                "trained": True, "music_seconds": seconds, "tokens": 100, "wall_s": 1.0, "torch_imported": False}

    monkeypatch.setattr(bench, "decoder_speed", lambda *a, **k: speed)
    monkeypatch.setattr(bench, "generation_speed", generation_speed)
    r = bench.bench_decode(quick=True)
    assert r["onnx_gpu_vs_cpu"] == round(r["onnx_tok_s"] / r["onnx_cpu_tok_s"], 2)
    assert r["generation_gpu_vs_cpu"] == 3.0 and r["gpu_memory_used_mb"] == 700.0
    assert "GPU vs CPU provider, same run" in bench.format_decode(r)
