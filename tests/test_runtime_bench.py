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
    from emsync_bridge.runtime.bench import bench_analyze

    monkeypatch.setitem(sys.modules, "emsync_bridge.video.bench", None)
    assert bench_analyze()["available"] is False
