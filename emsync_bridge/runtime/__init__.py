"""One entry point that hides which runtime runs the model: `load_engine`.

`auto` (the default) runs the model in ONNX Runtime when it is installed (exporting it on first
use into the user cache; see `onnx_cache`), else in torch with one log line saying how to get the
fast path. Running an already exported model never imports torch.
"""

from __future__ import annotations

import logging

from emsync_bridge.errors import EmsyncError
from emsync_bridge.runtime.engine import Engine

log = logging.getLogger(__name__)

__all__ = ["Engine", "load_engine", "engine_for_files", "BACKENDS"]

BACKENDS = ("auto", "onnx", "torch")


def load_engine(model: str | None = None, backend: str = "auto", seed: int = 0,
                providers: list[str] | None = None) -> tuple[Engine, object]:
    """(engine, ModelFiles) for a model name or path. backend: auto | onnx | torch.
    `seed` builds an untrained model's weights (when the named model has none)."""
    from emsync_bridge.models import resolve

    files = resolve(model)
    return engine_for_files(files, backend, seed, providers), files


def engine_for_files(files, backend: str = "auto", seed: int = 0, providers: list[str] | None = None) -> Engine:
    """An engine for a resolved `ModelFiles` (also used by the benchmark for ad-hoc models)."""
    if backend not in BACKENDS:
        raise EmsyncError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if backend == "auto":
        try:
            from emsync_bridge.onnxrt import import_onnxruntime

            import_onnxruntime()
        except EmsyncError:
            log.warning("onnxruntime is not installed: running the model in torch (slower); "
                        "pip install emsync-bridge[cpu] or emsync-bridge[gpu] for the fast runtime")
            backend = "torch"
    if backend == "torch":
        return _torch_engine(files, seed)
    try:
        return _onnx_engine(files, seed, providers)
    except EmsyncError as exc:
        if backend == "onnx":
            raise
        log.error("ONNX runtime unavailable for %s (%s); falling back to torch", files.name, exc)
        return _torch_engine(files, seed)


def _torch_engine(files, seed: int) -> Engine:
    from emsync_bridge.runtime.onnx_cache import torch_model_for
    from emsync_bridge.runtime.torch_engine import TorchEngine

    return TorchEngine(torch_model_for(files, seed))


def _onnx_engine(files, seed: int, providers) -> Engine:
    from emsync_bridge.music.model_config import ModelConfig
    from emsync_bridge.runtime.onnx_cache import ensure_exported
    from emsync_bridge.onnxrt import import_onnxruntime
    from emsync_bridge.runtime.onnx_engine import OnnxEngine

    import_onnxruntime()  # a clear error before any export work
    cfg = ModelConfig.from_dict(files.config)
    cached = ensure_exported(files, seed)
    try:
        return OnnxEngine(cached.prefill, cached.step, cfg, providers=providers, append_path=cached.append)
    except EmsyncError:
        raise
    except Exception as exc:  # onnxruntime refused an entry that passed its checksums
        if cached.exported_now:
            raise EmsyncError(f"onnxruntime cannot load the fresh export of {files.name}: {exc}") from None
        log.warning("onnxruntime cannot load the cached export of %s (%s); re-exporting",
                    files.name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        cached = ensure_exported(files, seed, force=True)
        return OnnxEngine(cached.prefill, cached.step, cfg, providers=providers, append_path=cached.append)
