"""The one way this project imports onnxruntime: with its telemetry off (see `emsync_bridge/__init__.py`).

A leaf beside `errors.py`, so that every part that runs an ONNX graph (the music runtime, the
video estimators, the export parity check) imports it the same way without depending on each other.
"""

from __future__ import annotations

from emsync_bridge.errors import EmsyncError


def import_onnxruntime(missing: str = "onnxruntime is not installed: pip install emsync-bridge[cpu] "
                                      "(or emsync-bridge[gpu] for CUDA)"):
    """onnxruntime, with its telemetry off: the one way this project imports it.

    onnxruntime records usage events (with the venv path, OS, CPU model and a device id) in a
    local store, ~/.cache/Microsoft/DeveloperTools/.onnxruntime/, on every session created; a DAW
    backend has no business doing that, so every InferenceSession here is made after this."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise EmsyncError(missing) from None
    disable = getattr(ort, "disable_telemetry_events", None)  # present in every 1.x we support
    if disable is not None:
        disable()
    return ort
