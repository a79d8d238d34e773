"""Typed results of video analysis and their JSON form.

JSON (what `emsync-bridge analyze --json` writes and the scoring pipeline reads):
    {"video", "duration", "fps", "width", "height", "has_audio",
     "cuts": [s…], "boundaries": [s…],
     "scenes": [{"start", "end", "valence", "arousal", "emotions": {class: p}, "confidence"}],
     "valence", "arousal"}
Scenes tile [0, duration] and are delimited by `boundaries` (cuts thinned to ≥ min spacing).

`from_dict`/`from_json`/`from_file` are the one schema check for analysis files, whoever wrote
them (the panel opens them, the analysis cache reloads them): types, finite numbers in range,
ordered scenes inside the film, and caps (file size, nesting depth, counts) so a hostile or
broken file is one `EmsyncError` line in milliseconds, never a traceback or a frozen UI.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emsync_bridge.errors import EmsyncError
from emsync_bridge.video.emotion import EMOTIONS, dominant_emotion


MAX_FILE_BYTES = 8 * 1024 * 1024  # an analysis of a 2-hour film with --features is ~1 MB
MAX_DEPTH = 32  # the schema nests 4 deep (the optional "features" a little more)
MAX_SCENES = 2000  # a 2 h 13 min film at EMSYNC's 4 s minimum spacing; the panel draws each one
MAX_CUTS = 20000
MAX_DURATION_S = 1.0e7  # the spool's time bound (timeline.spool.MAX_TIME_S)
_EPS = 1e-3  # rounding slack (to_dict rounds to 4 decimals)


def _bad(where: str, why: str) -> EmsyncError:
    return EmsyncError(f"not a valid video analysis: {where} {why}")


def _num(d: dict, key: str, where: str, lo: float, hi: float) -> float:
    v = d.get(key) if isinstance(d, dict) else None
    if key not in d:
        raise _bad(where, f"has no {key!r}")
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _bad(f"{where}.{key}", f"must be a finite number, got {str(v)[:40]!r}")
    if not lo - _EPS <= v <= hi + _EPS:
        raise _bad(f"{where}.{key}", f"must be within [{lo:g}, {hi:g}], got {v:g}")
    return float(v)


def _times(d: dict, key: str, duration: float, cap: int) -> list[float]:
    v = d.get(key)
    if not isinstance(v, list):
        raise _bad(key, "must be a list of seconds")
    if len(v) > cap:
        raise _bad(key, f"has {len(v)} entries (at most {cap})")
    return [_num({key: t}, key, f"{key}[{i}]", 0.0, duration) for i, t in enumerate(v)]


def _depth(obj, limit: int) -> int:
    """Nesting depth of parsed JSON, stopping early past `limit` (iterative: no recursion)."""
    stack, deepest = [(obj, 1)], 0
    while stack:
        o, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)
    return deepest


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
    def from_dict(cls, d: dict[str, Any], where: str = "scene", duration: float = MAX_DURATION_S) -> "SceneEmotion":
        if not isinstance(d, dict):
            raise _bad(where, f"must be an object, got {type(d).__name__}")
        emotions = d.get("emotions")
        if not isinstance(emotions, dict):
            raise _bad(f"{where}.emotions", f"must be an object of class probabilities, got {type(emotions).__name__}")
        start, end = _num(d, "start", where, 0.0, duration), _num(d, "end", where, 0.0, duration)
        if not end > start:
            raise _bad(where, f"ends ({end:g}) before it starts ({start:g})")
        features = d.get("features")
        return cls(
            start=start,
            end=end,
            valence=_num(d, "valence", where, -1.0, 1.0),
            arousal=_num(d, "arousal", where, -1.0, 1.0),
            emotions={e: _num(emotions, e, f"{where}.emotions", 0.0, 1.0) if e in emotions else 0.0
                      for e in EMOTIONS},
            confidence=_num(d, "confidence", where, 0.0, 1.0),
            features=features if isinstance(features, dict) else None,
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
        if not isinstance(d, dict):
            raise _bad("the top level", "must be an object")
        if _depth(d, MAX_DEPTH) > MAX_DEPTH:
            raise _bad("the file", f"nests deeper than {MAX_DEPTH} levels")
        video = d.get("video")
        if not isinstance(video, str) or not video or len(video) > 4096:
            raise _bad("video", "must be the video's path (a non-empty string)")
        duration = _num(d, "duration", "top level", 0.0, MAX_DURATION_S)
        if not duration > 0:
            raise _bad("duration", f"must be positive, got {duration:g}")
        for key in ("width", "height"):
            v = d.get(key)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 100_000:
                raise _bad(key, f"must be a whole number of pixels, got {str(v)[:40]!r}")
        if not isinstance(d.get("has_audio"), bool):
            raise _bad("has_audio", "must be true or false")
        scenes = d.get("scenes")
        if not isinstance(scenes, list):
            raise _bad("scenes", "must be a list")
        if not scenes:
            raise _bad("scenes", "is empty (scenes tile the whole film)")
        if len(scenes) > MAX_SCENES:
            raise _bad("scenes", f"has {len(scenes)} entries (at most {MAX_SCENES})")
        parsed = [SceneEmotion.from_dict(s, f"scenes[{i}]", duration) for i, s in enumerate(scenes)]
        if any(b.start < a.start for a, b in zip(parsed, parsed[1:])):
            raise _bad("scenes", "are not in time order")
        return cls(
            video=video,
            duration=duration,
            fps=_num(d, "fps", "top level", 0.0, 10_000.0),
            width=d["width"],
            height=d["height"],
            has_audio=d["has_audio"],
            cuts=_times(d, "cuts", duration, MAX_CUTS),
            boundaries=_times(d, "boundaries", duration, MAX_CUTS),
            scenes=parsed,
            valence=_num(d, "valence", "top level", -1.0, 1.0),
            arousal=_num(d, "arousal", "top level", -1.0, 1.0),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> "VideoAnalysis":
        if len(text) > MAX_FILE_BYTES:
            raise EmsyncError(f"not a valid video analysis: {len(text)} bytes (at most {MAX_FILE_BYTES})")
        try:
            d = json.loads(text, parse_constant=_no_constant)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EmsyncError(f"invalid video analysis JSON: {exc}") from None
        except (RecursionError, ValueError) as exc:  # 50 000 nested brackets; NaN/Infinity; a 5000-digit int
            raise EmsyncError(f"invalid video analysis JSON: {str(exc)[:120] or type(exc).__name__}") from None
        if not isinstance(d, dict):
            raise EmsyncError("invalid video analysis JSON: expected an object")
        return cls.from_dict(d)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "VideoAnalysis":
        """Read an analysis file: a regular file, at most MAX_FILE_BYTES, checked by the schema."""
        p = Path(path)
        try:
            if not p.is_file():
                raise EmsyncError(f"not a file: {p}")
            if p.stat().st_size > MAX_FILE_BYTES:
                raise EmsyncError(f"{p.name} is too large for a video analysis ({p.stat().st_size} bytes, "
                                  f"at most {MAX_FILE_BYTES})")
            with open(p, "rb") as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise EmsyncError(f"cannot read {p}: {exc.strerror or exc}") from None
        return cls.from_json(data)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")
