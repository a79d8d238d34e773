"""First-use ONNX export cache.

Layout: `<cache>/onnx/<model>-<weights hash>-x<exporter version>/` holding `prefill.onnx`,
`step.onnx`, `append.onnx` and `manifest.json` (sha256 and size of each graph, parity, config). `<cache>` is
`platformdirs.user_cache_dir("emsync-bridge")`, or `$EMSYNC_CACHE_DIR`.

An entry is built in a temporary folder and renamed into place in one step, with the manifest
written last, so a crash mid-export never leaves a half entry that looks whole. On load each graph
is checked against the manifest; anything missing, truncated, corrupt or from another exporter
version is rebuilt (as is an entry onnxruntime refuses to load) instead of failing the run.
torch is imported only when an export is actually needed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from emsync_bridge.atomic import write_atomic
from emsync_bridge.errors import EmsyncError
from emsync_bridge.export import EXPORTER_VERSION, GRAPHS

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def cache_root() -> Path:
    return Path(os.environ.get("EMSYNC_CACHE_DIR") or platformdirs.user_cache_dir("emsync-bridge")) / "onnx"


@dataclass
class CachedExport:
    dir: Path
    prefill: Path
    step: Path
    append: Path
    manifest: dict
    exported_now: bool  # False: reused from the cache


def cache_key(files, seed: int = 0) -> str:
    """Weights hash + exporter version. Untrained models are built from the seed, so it joins the
    key (their weights hash covers only the config)."""
    key = f"{files.name}-{files.weights_hash()}"
    if files.weights is None:
        key += f"-seed{seed}"
    return f"{key}-x{EXPORTER_VERSION}"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(entry: Path) -> dict | None:
    """The manifest if `entry` is complete and intact, else None (with the reason logged)."""
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ONNX cache %s: unreadable manifest (%s); re-exporting", entry.name, exc)
        return None
    if manifest.get("exporter_version") != EXPORTER_VERSION:
        log.warning("ONNX cache %s: exporter version %s, expected %s; re-exporting",
                    entry.name, manifest.get("exporter_version"), EXPORTER_VERSION)
        return None
    for g in GRAPHS:
        path = entry / f"{g}.onnx"
        want = manifest.get("files", {}).get(path.name, {})
        try:
            size = path.stat().st_size
        except OSError:
            log.warning("ONNX cache %s: %s missing; re-exporting", entry.name, path.name)
            return None
        # Size first: a truncated file is caught without hashing it.
        if size != want.get("size") or sha256_file(path) != want.get("sha256"):
            log.warning("ONNX cache %s: %s is corrupt or truncated; re-exporting", entry.name, path.name)
            return None
    return manifest


def ensure_exported(files, seed: int = 0, force: bool = False) -> CachedExport:
    """The cached export for `files` (a `ModelFiles`), exporting it first if needed."""
    entry = cache_root() / cache_key(files, seed)
    manifest = None if force else verify(entry)
    if manifest is not None:
        return _entry(entry, manifest, False)
    try:
        export_into(files, entry, seed, force)
    except OSError as exc:
        raise EmsyncError(f"cannot write the ONNX export cache in {entry.parent} ({exc.strerror or exc}); "
                          f"set EMSYNC_CACHE_DIR to a writable folder") from None
    manifest = verify(entry)
    if manifest is None:
        raise EmsyncError(f"the fresh ONNX export in {entry} failed verification (disk full?)")
    # Exports of these weights by older exporter versions will never be read again.
    for old in entry.parent.glob(entry.name.rsplit("-x", 1)[0] + "-x*"):
        if old != entry and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return _entry(entry, manifest, True)


def _entry(entry: Path, manifest: dict, exported_now: bool) -> CachedExport:
    return CachedExport(entry, *(entry / f"{g}.onnx" for g in GRAPHS), manifest, exported_now)


def export_into(files, entry: Path, seed: int = 0, force: bool = False) -> dict:
    """Export `files` into the folder `entry`, atomically replacing whatever is there."""
    from emsync_bridge.export.onnx_export import export_onnx  # imports torch

    log.info("exporting %s to ONNX (first use; cached in %s)", files.name, entry.parent)
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        model = torch_model_for(files, seed)
        result = export_onnx(model, tmp, check=True)
        manifest = {
            "exporter_version": EXPORTER_VERSION,
            "model": files.name,
            "weights_hash": files.weights_hash(),
            "trained": files.trained,
            "seed": seed,
            "config": model.cfg.to_dict(),
            "opset": result.opset,
            "parity_max_abs_diff": result.max_abs_diff,
            "export_seconds": round(result.seconds, 3),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": {p.name: {"sha256": sha256_file(p), "size": p.stat().st_size}
                      for p in (result.prefill, result.step, result.append)},
        }
        _write_json(tmp / MANIFEST, manifest)
        _replace_dir(tmp, entry, keep_valid=not force)
        return manifest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def torch_model_for(files, seed: int = 0):
    """The torch model behind `files`: its weights, or (untrained) built from `seed` exactly as
    `models.load_torch_model` builds it, so the export matches the torch engine."""
    import torch

    from emsync_bridge.models import load_torch_model
    from emsync_bridge.music.model import MusicTransformer
    from emsync_bridge.music.model_config import ModelConfig

    if files.weights is not None:
        return load_torch_model(str(files.weights), seed=seed)[0]
    torch.manual_seed(seed)
    return MusicTransformer(ModelConfig.from_dict(files.config)).eval()


def write_export(model, out_dir: Path, extra: dict | None = None) -> dict:
    """Export a torch model into `out_dir` (the `export` CLI), with the same manifest."""
    from emsync_bridge.export.onnx_export import export_onnx

    out_dir = Path(out_dir)
    result = export_onnx(model, out_dir, check=True)
    manifest = {
        "exporter_version": EXPORTER_VERSION, **(extra or {}), "config": model.cfg.to_dict(),
        "opset": result.opset, "parity_max_abs_diff": result.max_abs_diff,
        "export_seconds": round(result.seconds, 3),
        "files": {p.name: {"sha256": sha256_file(p), "size": p.stat().st_size} for p in (result.prefill, result.step, result.append)},
    }
    _write_json(out_dir / MANIFEST, manifest)
    return manifest


def _write_json(path: Path, data: dict) -> None:
    write_atomic(path, (json.dumps(data, indent=2) + "\n").encode())


def _replace_dir(src: Path, dst: Path, keep_valid: bool = True) -> None:
    """Move the finished folder `src` to `dst` (the caller deletes `src` if it is left). A folder
    cannot be atomically renamed over a non-empty one, so an old (stale or corrupt) `dst` is first
    renamed aside, then deleted."""
    if keep_valid and dst.exists() and verify(dst) is not None:
        return  # another process finished the same export meanwhile: keep theirs (it may be in use)
    if dst.exists():
        trash = dst.with_name(f".{dst.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        try:
            os.replace(dst, trash)
        except OSError:
            pass
        shutil.rmtree(trash, ignore_errors=True)
    try:
        os.replace(src, dst)
    except OSError:
        # Another process finished the same export first: theirs is as good as ours.
        if verify(dst) is None:
            raise
