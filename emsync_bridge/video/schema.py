"""Typed results of video analysis and their JSON form.

JSON (what `emsync-bridge analyze --json` writes and the scoring pipeline reads):
    {"video", "duration", "fps", "width", "height", "has_audio",
     "cuts": [s…], "boundaries": [s…],
     "scenes": [{"start", "end", "valence", "arousal", "emotions": {class: p}, "confidence"}],
     "valence", "arousal"}
Scenes tile [0, duration] and are delimited by `boundaries` (cuts thinned to ≥ min spacing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emsync_bridge.errors import EmsyncError
from emsync_bridge.video.emotion import EMOTIONS, dominant_emotion


@dataclass
class SceneEmotion:
    start: float
    end: float
    valence: float  # [-1, 1]
    arousal: float  # [-1, 1]
    emotions: dict[str, float]  # Ekman-6 probabilities, keys in EMOTIONS order, sum 1
    confidence: float  # [0, 1]: how much to trust this scene's estimate
    features: dict[str, Any] | None = None  # estimator inputs, kept for inspection; not in the schema

    @property
    def dominant(self) -> str:
        return dominant_emotion(self.emotions)

    def to_dict(self, include_features: bool = False) -> dict[str, Any]:
        d = {
            "start": round(self.start, 4),
            "end": round(self.end, 4),
            "valence": round(self.valence, 4),
            "arousal": round(self.arousal, 4),
            "emotions": {e: round(float(self.emotions.get(e, 0.0)), 4) for e in EMOTIONS},
            "confidence": round(self.confidence, 4),
        }
        if include_features and self.features is not None:
            d["features"] = self.features
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SceneEmotion":
        return cls(
            start=float(d["start"]),
            end=float(d["end"]),
            valence=float(d["valence"]),
            arousal=float(d["arousal"]),
            emotions={e: float(d["emotions"].get(e, 0.0)) for e in EMOTIONS},
            confidence=float(d["confidence"]),
            features=d.get("features"),
        )


@dataclass
class VideoAnalysis:
    video: str
    duration: float
    fps: float
    width: int
    height: int
    has_audio: bool
    cuts: list[float]  # every detected cut (hard cuts and the middle of gradual transitions), s
    boundaries: list[float]  # cuts thinned to the minimum scene spacing (EMSYNC rule), s
    scenes: list[SceneEmotion]
    valence: float  # duration-weighted mean over scenes
    arousal: float
    # Not serialised: RGB frames (time, HxWx3 uint8) for the report strip.
    thumbnails: list[tuple[float, np.ndarray]] = field(default_factory=list, repr=False, compare=False)

    def scene_at(self, t: float) -> SceneEmotion:
        for s in self.scenes:
            if s.start <= t < s.end:
                return s
        return self.scenes[-1]

    def to_dict(self, include_features: bool = False) -> dict[str, Any]:
        return {
            "video": self.video,
            "duration": round(self.duration, 4),
            "fps": round(self.fps, 4),
            "width": self.width,
            "height": self.height,
            "has_audio": self.has_audio,
            "cuts": [round(c, 4) for c in self.cuts],
            "boundaries": [round(b, 4) for b in self.boundaries],
            "scenes": [s.to_dict(include_features) for s in self.scenes],
            "valence": round(self.valence, 4),
            "arousal": round(self.arousal, 4),
        }

    def to_json(self, indent: int | None = 2, include_features: bool = False) -> str:
        return json.dumps(self.to_dict(include_features), indent=indent)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "VideoAnalysis":
        try:
            return cls(
                video=str(d["video"]),
                duration=float(d["duration"]),
                fps=float(d["fps"]),
                width=int(d["width"]),
                height=int(d["height"]),
                has_audio=bool(d["has_audio"]),
                cuts=[float(c) for c in d["cuts"]],
                boundaries=[float(b) for b in d["boundaries"]],
                scenes=[SceneEmotion.from_dict(s) for s in d["scenes"]],
                valence=float(d["valence"]),
                arousal=float(d["arousal"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EmsyncError(f"not a video analysis JSON ({type(exc).__name__}: {exc})") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> "VideoAnalysis":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise EmsyncError(f"invalid video analysis JSON: {exc}") from None
        if not isinstance(d, dict):
            raise EmsyncError("invalid video analysis JSON: expected an object")
        return cls.from_dict(d)
