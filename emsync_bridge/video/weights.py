"""The shipped video weights: where each file is (sources, licences and sha256 in
`emsync_bridge/models/VIDEO_MODELS.md`) and how one is opened. One home for the paths and the
session options, so the scene, face and sound channels share them without importing each other."""

from __future__ import annotations

from pathlib import Path

MODELS = Path(__file__).resolve().parent.parent / "models"
EMBEDDER_FILE = MODELS / "scene-mobilenet-v1.onnx"  # MobileNet V1 embedding extractor (Apache-2.0)
HEAD_FILE = MODELS / "scene-head-oasis.npz"  # ridge head trained here on OASIS (coefficients only)
DETECTOR_FILE = MODELS / "face-blazeface-short.onnx"  # BlazeFace short range (MIT)
EXPRESSION_FILE = MODELS / "face-fer-mini-xception.onnx"  # FER mini-Xception (MIT)
AUDIO_FILE = MODELS / "audio-yamnet.onnx"  # YAMNet AudioSet classifier (Apache-2.0)
AUDIO_CLASSES_FILE = MODELS / "audio-yamnet-classes.csv"  # its 521 class names (Apache-2.0)
ALL = (EMBEDDER_FILE, HEAD_FILE, DETECTOR_FILE, EXPRESSION_FILE, AUDIO_FILE, AUDIO_CLASSES_FILE)


def open_session(path: Path, needed_by: str, *, fold_int8: bool = False, arena: bool = True, threads: int = 1):
    """A CPU onnxruntime session for one shipped file, quiet, on `threads` threads; without
    onnxruntime a one-line error naming `needed_by`, the [cpu] extra and the heuristic estimator.

    fold_int8: the file keeps int8/uint8 weights behind DequantizeLinear (a quarter of the size);
        without this onnxruntime treats them as a QDQ model and dequantizes on every run (the scene
        network: 10.3 vs 5.1 ms per 160² frame, identical outputs; YAMNet: 3.84 vs 1.75 ms per patch).
    arena: keep onnxruntime's buffer arena between runs (off: freed after each run).
    """
    from emsync_bridge.onnxrt import import_onnxruntime

    ort = import_onnxruntime(f"{needed_by} needs onnxruntime (pip install 'emsync-bridge[cpu]'); "
                             "or use --estimator heuristic")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.enable_cpu_mem_arena = arena
    if fold_int8:
        opts.add_session_config_entry("session.disable_quant_qdq", "1")
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # a missing, truncated or corrupt shipped file: one line, not a traceback
        from emsync_bridge.errors import EmsyncError

        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EmsyncError(f"{needed_by} cannot load {path.name} (reinstall emsync-bridge): {reason}") from None
