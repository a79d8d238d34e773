"""Video analysis: scene cuts, per-scene emotion, report (issue 6).

Light to import: `emsync_bridge.video.emotion` needs nothing heavy, and the names below are
loaded on first use so that importing the package does not pull in PyAV/OpenCV/PySceneDetect.
"""

from __future__ import annotations

_LAZY = {
    "analyze_video": "emsync_bridge.video.analysis",
    "VideoAnalysis": "emsync_bridge.video.schema",
    "SceneEmotion": "emsync_bridge.video.schema",
    "EmotionEstimator": "emsync_bridge.video.estimators",
    "get_estimator": "emsync_bridge.video.estimators",
    "register_estimator": "emsync_bridge.video.estimators",
    "EMOTIONS": "emsync_bridge.video.emotion",
    "emotion_to_va": "emsync_bridge.video.emotion",
    "va_for_emotion": "emsync_bridge.video.emotion",
    "va_to_probs": "emsync_bridge.video.emotion",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'emsync_bridge.video' has no attribute {name!r}")
