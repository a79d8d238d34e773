"""The shipped video weights: where each file is (sources, licences and sha256 in
`emsync_bridge/models/VIDEO_MODELS.md`). One home for the paths, so the scene estimator and the
face channel can both name them without importing each other."""

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
