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
