"""One entry point that hides which runtime runs the model: `load_engine`."""

from __future__ import annotations

import logging

from emsync_bridge.runtime.engine import Engine

log = logging.getLogger(__name__)

__all__ = ["Engine", "load_engine"]


def load_engine(model: str | None = None, backend: str = "auto", seed: int = 0) -> tuple[Engine, object]:
    """(engine, ModelFiles) for a model name or path. backend: auto | onnx | torch."""
    from emsync_bridge.models import load_torch_model
    from emsync_bridge.runtime.torch_engine import TorchEngine

    torch_model, files = load_torch_model(model, seed=seed)
    return TorchEngine(torch_model), files
