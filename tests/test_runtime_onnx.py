"""ONNX runtime: parity with torch through real generation (window slides included), the export
cache (reuse, corruption, staleness), torch-free running, provider fallback. Real sessions."""

import json
import logging
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from emsync_bridge.export import EXPORTER_VERSION
from emsync_bridge.models import ModelFiles, save_model
from emsync_bridge.music.generate import Conditioning, EmotionSegment, SamplingConfig, generate
from emsync_bridge.music.model_config import N_PREFIX, ModelConfig
from emsync_bridge.runtime import engine_for_files
from emsync_bridge.runtime.onnx_cache import MANIFEST, ensure_exported, torch_model_for, verify
from emsync_bridge.runtime.onnx_engine import OnnxEngine
from emsync_bridge.runtime.torch_engine import TorchEngine

# Short context so the window slides every few dozen tokens.
TINY = ModelConfig(n_layer=2, n_head=2, d_model=64, d_inner=128, context_len=64)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models: one thread is fastest, and this machine's cores are shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_files(name="test-tiny"):
    return ModelFiles(name, None, {**TINY.to_dict(), "meta": {"trained": False}})


class CheckedEngine:
    """Forwards to an engine and compares every returned logits vector with torch's full pass
    over exactly the window the engine holds (V/A prefix + the tokens since its last prefill)."""

    def __init__(self, engine, model):
        self.engine, self.model = engine, model
        self.name, self.provider, self.context_len = engine.name, engine.provider, engine.context_len
        self.worst, self.steps, self.prefills, self.slides = 0.0, 0, 0, 0

    @property
    def cached_len(self):
        return self.engine.cached_len

    def prefill(self, tokens, boundary, valence, arousal):
        self.slides += self.engine.cached_len >= self.context_len
        self.window = [list(tokens), list(boundary), valence, arousal]
        self.prefills += 1
        return self._check(self.engine.prefill(tokens, boundary, valence, arousal))

    def step(self, token, b):
        self.window[0].append(token)
        self.window[1].append(b)
        self.steps += 1
        return self._check(self.engine.step(token, b))

    def _check(self, logits):
        tokens, b, v, a = self.window
        assert self.engine.cached_len == len(tokens) + N_PREFIX
        nan = lambda x: math.nan if x is None else x  # noqa: E731
        with torch.no_grad():
            ref, _ = self.model(torch.tensor([tokens]), torch.tensor([b], dtype=torch.float32),
                                torch.tensor([nan(v)]), torch.tensor([nan(a)]), last_only=True)
        self.worst = max(self.worst, float(np.max(np.abs(ref[0, -1].numpy() - logits))))
        return logits


def test_onnx_cached_generation_matches_torch_full_pass():
    files = tiny_files()
    engine = engine_for_files(files, "onnx", seed=0)
    assert isinstance(engine, OnnxEngine)
    checked = CheckedEngine(engine, torch_model_for(files, seed=0))
    # Emotion changes (and goes missing -> NaN null vectors) mid-piece: re-primes on top of slides.
    cond = Conditioning([EmotionSegment(0.0, 0.5, None), EmotionSegment(4.0, None, -0.4)], [1.0, 3.0, 6.5])
    gen = generate(checked, 1000.0, cond, SamplingConfig(seed=3), max_tokens=330)
    assert gen.truncated and len(gen.tokens) >= 330
    assert checked.steps >= 300
    assert checked.slides >= 3  # the window filled up and slid, several times
    assert checked.worst <= 1e-3, checked.worst


def test_a_twin_engine_has_its_own_cache():
    """Valence guidance decodes two sequences on one loaded model: neither may disturb the other."""
    files = tiny_files()
    engine = engine_for_files(files, "onnx", seed=0)
    twin = engine.twin()
    fresh = engine_for_files(files, "onnx", seed=0)
    tokens, b = np.array([3, 10, 200]), np.full(3, 8.0, dtype=np.float32)
    engine.prefill(tokens, b, 0.5, 0.1)
    twin.prefill(tokens[:2], b[:2], None, -0.7)
    twin.step(150, 2.0)
    fresh.prefill(tokens, b, 0.5, 0.1)
    np.testing.assert_allclose(engine.step(400, 1.0), fresh.step(400, 1.0), atol=1e-5)
    assert engine.cached_len == len(tokens) + N_PREFIX + 1 and twin.cached_len == 2 + N_PREFIX + 1


def test_io_binding_path_matches_torch():
    """The CUDA code path (cache kept as OrtValues, grown by append.onnx), run on the CPU."""
    files = tiny_files()
    entry = ensure_exported(files, seed=0)
    engine = OnnxEngine(entry.prefill, entry.step, TINY, providers=["CPUExecutionProvider"],
                        append_path=entry.append, io_binding=True)
    checked = CheckedEngine(engine, torch_model_for(files, seed=0))
    generate(checked, 1000.0, Conditioning.constant(None, 0.7), SamplingConfig(seed=4), max_tokens=90)
    assert checked.steps >= 80 and checked.slides >= 1
    assert checked.worst <= 1e-3, checked.worst


def test_export_cache_reuses_and_rebuilds_corrupt_files(caplog):
    files = tiny_files("test-cache")
    first = ensure_exported(files, seed=1)
    assert first.exported_now and first.manifest["parity_max_abs_diff"] <= 1e-3
    again = ensure_exported(files, seed=1)
    assert not again.exported_now and again.dir == first.dir

    # Same size, flipped bytes: caught by the checksum.
    data = bytearray(first.step.read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = bytes(64)
    first.step.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        rebuilt = ensure_exported(files, seed=1)
    assert rebuilt.exported_now and "corrupt" in caplog.text
    assert not ensure_exported(files, seed=1).exported_now
    assert not list(first.dir.parent.glob(".*"))  # no temp or trash folders left behind

    # Each of these makes the entry invalid, which is what sends ensure_exported to rebuild it.
    manifest_text = (first.dir / MANIFEST).read_text()
    good_prefill = first.prefill.read_bytes()
    first.prefill.write_bytes(good_prefill[:1000])  # truncated (a crash mid-copy): size mismatch
    assert verify(first.dir) is None
    first.prefill.write_bytes(good_prefill)
    assert verify(first.dir) is not None
    first.append.unlink()  # missing graph
    assert verify(first.dir) is None
    (first.dir / MANIFEST).write_text("{not json")  # unreadable manifest
    assert verify(first.dir) is None
    stale = {**json.loads(manifest_text), "exporter_version": EXPORTER_VERSION - 1}  # older exporter
    (first.dir / MANIFEST).write_text(json.dumps(stale))
    assert verify(first.dir) is None


def test_file_onnxruntime_rejects_is_rebuilt(caplog):
    """An entry whose checksums match but which onnxruntime cannot load is re-exported."""
    files = tiny_files("test-bad-graph")
    entry = ensure_exported(files, seed=2)
    entry.step.write_bytes(b"not an onnx model at all")
    manifest = json.loads((entry.dir / MANIFEST).read_text())
    manifest["files"]["step.onnx"] = {"sha256": __import__("hashlib").sha256(b"not an onnx model at all").hexdigest(),
                                      "size": len(b"not an onnx model at all")}
    (entry.dir / MANIFEST).write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING):
        engine = engine_for_files(files, "onnx", seed=2)
    assert "re-exporting" in caplog.text
    assert engine.prefill([2, 3], [1.0, 1.0], 0.1, 0.2).shape == (TINY.vocab_size,)


def test_running_an_exported_model_never_imports_torch(tmp_path):
    from emsync_bridge.models import resolve
    from emsync_bridge.music.model import MusicTransformer

    torch.manual_seed(5)
    weights = save_model(MusicTransformer(TINY), tmp_path / "tiny.safetensors", {"trained": True})
    assert ensure_exported(resolve(str(weights))).exported_now  # first use exports (needs torch)
    # A later run, as `generate` does it, finds the cached export and never imports torch.
    code = ("import sys; from emsync_bridge.runtime import load_engine; "
            "from emsync_bridge.music.generate import generate, Conditioning; "
            f"e, f = load_engine({str(weights)!r}); g = generate(e, 5.0, Conditioning.constant(0.2, None, [2.0])); "
            "print(e.name, len(g.tokens), 'torch' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    name, n_tokens, torch_imported = run.stdout.split()
    assert name == "onnxruntime" and int(n_tokens) > 0 and torch_imported == "False"
    assert "exporting" not in run.stderr


def test_cuda_requested_on_cpu_onnxruntime_falls_back_with_one_line(caplog):
    entry = ensure_exported(tiny_files(), seed=0)
    with caplog.at_level(logging.INFO, logger="emsync_bridge.runtime.onnx_engine"), warnings.catch_warnings():
        warnings.simplefilter("error")  # no raw onnxruntime UserWarning about the CUDA provider
        engine = OnnxEngine(entry.prefill, entry.step, TINY, append_path=entry.append,
                            providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert engine.provider == "CPUExecutionProvider"
    lines = [r.getMessage() for r in caplog.records if r.name == "emsync_bridge.runtime.onnx_engine"]
    assert len(lines) == 1 and "CUDA" in lines[0] and "CPUExecutionProvider" in lines[0], lines


def test_auto_without_onnxruntime_uses_torch_and_says_how_to_fix(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with caplog.at_level(logging.WARNING):
        engine = engine_for_files(tiny_files(), "auto", seed=0)
    assert isinstance(engine, TorchEngine)
    assert "emsync-bridge[cpu]" in caplog.text and "emsync-bridge[gpu]" in caplog.text
