"""The prepared GPU run (scripts/gpu-run.sh, issue 22) at a tiny scale on the CPU: every stage of
the real run (env with the sessions' providers, data, bench, emsync-base training, shipping the
weights in parts) runs and leaves what the device tool can bring back; the parts join into a model
that loads. Also the onnxruntime-gpu slimming (scripts/gpu/slim_wheel.py) on a built ELF, and the
default/optional rule."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


gpu_run = _load("gpu_run", ROOT / "scripts" / "gpu" / "gpu_run.py")
slim_wheel = _load("slim_wheel", ROOT / "scripts" / "gpu" / "slim_wheel.py")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gpu-run")
    env = {**os.environ, "GPU_RUN_SMOKE": "1", "PYTHON": sys.executable, "OUT": str(tmp / "out"),
           "GPU_CARRY": str(tmp / "no-carry"), "GPU_WORK": str(tmp / "work")}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu-run.sh")], env=env, capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp, json.loads((tmp / "out" / "results.json").read_text())


@pytest.mark.slow
def test_smoke_run_does_every_stage_on_the_cpu(smoke):
    _, r = smoke
    for name in ("env", "providers", "data", "bench", "train", "ship", "gen37"):
        assert r[f"{name}-status"]["rc"] == 0, (name, r[f"{name}-status"])
    # what the inference sessions use, not what the build lists
    p = r["providers"]
    assert p["active"] == "CPUExecutionProvider" and p["io_binding"] is False
    assert all(v == ["CPUExecutionProvider"] for v in p["session_providers"].values())
    assert p["step_logits_finite"]
    bench = r["bench-default"]
    assert bench["quick"] and bench["provider"] == "CPUExecutionProvider" and bench["onnx_tok_s"] > 0
    assert "onnx_gpu_vs_cpu" not in bench  # no second CPU timing when the CPU is all there is
    gen = r["gen-37m"]  # the smoke run generates with the shipped model on this path
    assert gen["generation"]["provider"] == "CPUExecutionProvider" and "generation_cpu" not in gen
    assert gen["generation"]["music_seconds_per_wall_second"] > 0
    t = r["train"]
    assert t["steps"] >= 1 and t["device"] == "cpu" and t["best_val_loss"] > 0
    from emsync_bridge.music.model_config import CONFIGS

    cfg = {k: v for k, v in r["ship"]["config"].items() if k != "meta"}
    assert cfg == CONFIGS["emsync-base"].to_dict()
    assert t["params"] == 11_943_347


@pytest.mark.slow
def test_smoke_run_output_fits_the_device_tool_and_joins_into_a_model(smoke, tmp_path):
    tmp, r = smoke
    out = tmp / "out"
    files = sorted(out.iterdir())
    # the device tool brings back at most 8 plain files of at most 16 MiB, named in [A-Za-z0-9._-]
    assert len(files) <= 8 and all(f.is_file() for f in files)
    assert all(f.stat().st_size <= 16 * 2**20 and re.fullmatch(r"[A-Za-z0-9._-]+", f.name) for f in files)
    assert {"run.log", "results.json", "train.log"} <= {f.name for f in files}
    assert "done in" in (out / "run.log").read_text()
    w = r["ship"]["weights"]
    assert len(w["parts"]) >= 2 and all((out / p).is_file() for p in w["parts"])

    dst = tmp_path / "emsync-base.safetensors"
    assert gpu_run.main(["join", str(out), str(dst)]) == 0
    assert hashlib.sha256(dst.read_bytes()).hexdigest() == w["sha256"]
    from emsync_bridge.models import load_torch_model

    model, info = load_torch_model(str(dst))
    assert info.trained and model.num_parameters() == r["train"]["params"]
    # a damaged part is refused, and nothing is written
    (out / w["parts"][0]).write_bytes(b"x" * 10)
    assert gpu_run.main(["join", str(out), str(tmp_path / "bad.safetensors")]) == 2
    assert not (tmp_path / "bad.safetensors").exists()


# ---------------------------------------------------------------------------- slimming the wheel

def _entry(sm: int, payload: bytes) -> bytes:
    header = bytearray(64)
    struct.pack_into("<HHII", header, 0, 2, 0x101, 64, len(payload))
    struct.pack_into("<I", header, 28, sm)
    return bytes(header) + payload


def _elf_with_fatbin(payloads: dict[int, bytes]) -> bytes:
    """A minimal ELF64 whose .nv_fatbin section holds one fat binary with an entry per arch."""
    entries = b"".join(_entry(sm, p) for sm, p in payloads.items())
    fatbin = struct.pack("<IHHQ", slim_wheel.FATBIN_MAGIC, 1, 16, len(entries)) + entries
    shstr = b"\0.nv_fatbin\0.shstrtab\0"
    fat_off = 64
    str_off = fat_off + len(fatbin)
    shoff = (str_off + len(shstr) + 7) // 8 * 8
    elf = bytearray(shoff + 3 * 64)
    elf[:8] = b"\x7fELF\x02\x01\x01\x00"
    struct.pack_into("<Q", elf, 0x28, shoff)
    struct.pack_into("<HHH", elf, 0x3A, 64, 3, 2)
    elf[fat_off:fat_off + len(fatbin)] = fatbin
    elf[str_off:str_off + len(shstr)] = shstr
    struct.pack_into("<I", elf, shoff + 64, 1)
    struct.pack_into("<QQ", elf, shoff + 64 + 0x18, fat_off, len(fatbin))
    struct.pack_into("<I", elf, shoff + 128, 12)
    struct.pack_into("<QQ", elf, shoff + 128 + 0x18, str_off, len(shstr))
    return bytes(elf)


def test_slim_wheel_keeps_one_architecture_and_drops_unloaded_files(tmp_path):
    payloads = {80: b"\x80" * 40, 90: b"\x90" * 48, 120: b"\x12" * 32}
    so = _elf_with_fatbin(payloads)
    src = tmp_path / "onnxruntime_gpu-9.9-cp312-cp312-linux_x86_64.whl"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("onnxruntime/__init__.py", "x = 1\n")
        z.writestr("onnxruntime/capi/libonnxruntime_providers_cuda.so", so)
        z.writestr("onnxruntime/capi/libonnxruntime.so.9.9", b"C API")
        z.writestr("onnxruntime/capi/libonnxruntime_providers_tensorrt.so", b"trt")
        z.writestr("onnxruntime/tools/big.py", "y = 2\n")
        z.writestr("onnxruntime_gpu-9.9.dist-info/RECORD", "stale\n")
    dst = tmp_path / "slim.whl"
    assert slim_wheel.main([str(src), str(dst)]) == 0
    with zipfile.ZipFile(dst) as z:
        names = set(z.namelist())
        assert names == {"onnxruntime/__init__.py", "onnxruntime/capi/libonnxruntime_providers_cuda.so",
                         "onnxruntime_gpu-9.9.dist-info/RECORD"}
        out = z.read("onnxruntime/capi/libonnxruntime_providers_cuda.so")
        record = z.read("onnxruntime_gpu-9.9.dist-info/RECORD").decode()
    assert len(out) == len(so)  # offsets and headers untouched
    assert b"\x90" * 48 in out and b"\x80" * 40 not in out and b"\x12" * 32 not in out
    diff = [i for i in range(len(so)) if so[i] != out[i]]
    assert len(diff) == 40 + 32  # exactly the two foreign payloads were zeroed
    row = next(line for line in record.splitlines() if line.startswith("onnxruntime/capi/libonnxruntime_providers_cuda"))
    assert row.split(",")[1] == slim_wheel._record_hash(out) and row.split(",")[2] == str(len(out))


def test_slim_wheel_without_the_gpus_code_is_a_one_line_error(tmp_path):
    src = tmp_path / "w.whl"
    with zipfile.ZipFile(src, "w") as z:
        z.writestr("onnxruntime/capi/libonnxruntime_providers_cuda.so", _elf_with_fatbin({80: b"\x80" * 16}))
        z.writestr("onnxruntime_gpu-9.9.dist-info/RECORD", "")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu" / "slim_wheel.py"), str(src),
                           str(tmp_path / "o.whl")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "no sm_90 code" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------- default or optional

BASE = {"val_loss": 2.0, "boundary_hit_rate_0.5s": 0.6, "arousal_ratio_high_low": 2.0,
        "valence_major_difference_pp": 80.0}


def test_verdict_default_only_when_better_everywhere_and_fast_enough():
    better = {"val_loss": 1.8, "boundary_hit_rate_0.5s": 0.7, "arousal_ratio_high_low": 2.5,
              "valence_major_difference_pp": 85.0}
    assert gpu_run.verdict(BASE, better, 25.0)["choice"] == "default"
    assert gpu_run.verdict(BASE, better, 25.0, film_s=8.0)["choice"] == "default"
    slow = gpu_run.verdict(BASE, better, 12.0)
    assert slow["choice"] == "optional" and not slow["cpu_target_met"]
    slow_film = gpu_run.verdict(BASE, better, 25.0, film_s=24.0)  # the 60 s film over 20 s
    assert slow_film["choice"] == "optional" and not slow_film["cpu_target_met"]
    mixed = {**better, "valence_major_difference_pp": 70.0}  # 2 musical metrics better, 1 worse
    assert gpu_run.verdict(BASE, mixed, 25.0)["choice"] == "optional"
    worse_music = {**better, "boundary_hit_rate_0.5s": 0.5, "valence_major_difference_pp": 70.0}
    assert gpu_run.verdict(BASE, worse_music, 25.0)["choice"] == "not shipped"
    higher_loss = {**better, "val_loss": 2.1}
    assert gpu_run.verdict(BASE, higher_loss, 25.0)["choice"] == "not shipped"
