"""Video time <-> project time <-> beats, markers, emotion overrides and boundaries.

Video time is seconds in the analysed video file; project time is seconds on REAPER's timeline:
project = item.position + (video - item.take_offset) / item.playrate for the item showing it.
Beats (quarter notes) come from the tempo map. Boundaries are what the music model aims chords at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Sequence

from emsync_bridge.errors import EmsyncError
from emsync_bridge.timeline.state import Marker, ProjectState, Region, TempoPoint, VideoItem
from emsync_bridge.tempo import TempoMap

# Ekman-6 -> (valence, arousal): Russell & Mehrabian (1977) centroids rescaled so the six means span
# [-0.8, 0.8] on each axis, as EMSYNC conditions its model (shared/docs/emsync-model-and-peers.md
# 2.6). reaper_scripts/emsync_lib.lua carries the same table; a test keeps them equal.
EMOTION_VA: dict[str, tuple[float, float]] = {
    "anger": (-0.651, 0.664),
    "disgust": (-0.754, 0.255),
    "fear": (-0.800, 0.681),
    "joy": (0.800, 0.477),
    "sadness": (-0.789, -0.800),
    "surprise": (0.389, 0.800),
}

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
# "v=0.5 a=-0.2" (either order, spaces or commas between, spaces around '=' allowed).
_VA_RE = re.compile(rf"^v\s*=\s*({_NUM})[\s,;]+a\s*=\s*({_NUM})$|^a\s*=\s*({_NUM})[\s,;]+v\s*=\s*({_NUM})$")
_PREFIX_RE = re.compile(r"^emo(?:tion)?[\s:]+")


@dataclass(frozen=True)
class Emotion:
    valence: float
    arousal: float
    label: str  # "joy", or "" for an explicit v/a pair


@dataclass(frozen=True)
class EmotionOverride:
    """From `time` (project s) on, the user's emotion replaces the video's estimate."""

    time: float
    emotion: Emotion
    source: str  # "marker 3" / "region 2"


def parse_emotion(name: str) -> Emotion | None:
    """A marker/region name as an emotion, or None if it is not one.

    Accepts `joy`, `sadness`, `anger`, `fear`, `disgust`, `surprise` or `v=0.5 a=-0.2`,
    case-insensitive, optionally prefixed `emo ` (or `emo:`, `emotion `). v and a must be in
    [-1, 1]; anything else (including out-of-range numbers) is an ordinary marker.
    """
    if not isinstance(name, str):
        return None
    s = name.strip().lower()
    s = _PREFIX_RE.sub("", s, count=1).strip()
    if s in EMOTION_VA:
        v, a = EMOTION_VA[s]
        return Emotion(v, a, s)
    m = _VA_RE.match(s)
    if not m:
        return None
    if m.group(1) is not None:
        v, a = float(m.group(1)), float(m.group(2))
    else:
        a, v = float(m.group(3)), float(m.group(4))
    if not (-1.0 <= v <= 1.0 and -1.0 <= a <= 1.0):
        return None
    return Emotion(v, a, "")


BOUNDARY_POLICIES = ("cuts", "markers", "both")


def _continues(a: VideoItem, b: VideoItem) -> bool:
    """b picks up exactly where a stops: same file, same speed, no gap in time or picture."""
    return (
        a.file == b.file
        and abs(a.end - b.position) < 1e-6
        and abs(a.playrate - b.playrate) < 1e-9
        and abs(a.project_to_video(a.end) - b.take_offset) < 1e-3
    )


class Timeline:
    """The project's time axes. Build with `Timeline.from_state(load_project_state(path))`."""

    def __init__(
        self,
        video_items: Sequence[VideoItem] = (),
        markers: Sequence[Marker] = (),
        regions: Sequence[Region] = (),
        tempo: TempoMap | Iterable[TempoPoint] | None = None,
    ):
        self.video_items: tuple[VideoItem, ...] = tuple(sorted(video_items, key=lambda it: it.position))
        for it in self.video_items:
            if not it.playrate > 0:
                raise EmsyncError(f"video item {it.file} has playrate {it.playrate}; it must be > 0")
        self.markers: tuple[Marker, ...] = tuple(sorted(markers, key=lambda m: (m.position, m.index)))
        self.regions: tuple[Region, ...] = tuple(sorted(regions, key=lambda r: (r.position, r.index)))
        if tempo is None:
            tempo = TempoMap([])
        self.tempo: TempoMap = tempo if isinstance(tempo, TempoMap) else TempoMap(tempo)

    @classmethod
    def from_state(cls, state: ProjectState) -> "Timeline":
        return cls(state.video_items, state.markers, state.regions, TempoMap(state.tempo_map))

    # -- video <-> project

    def _items_for(self, file: str | None) -> list[VideoItem]:
        return [it for it in self.video_items if file is None or it.file == file]

    def video_to_project(self, video_s: float, item: int = 0) -> float:
        """Project time of a video time through one item (index in position order), unclipped."""
        if not self.video_items:
            return video_s  # no video item: the video starts at project 0 at normal speed
        return self.video_items[item].video_to_project(video_s)

    def video_to_project_all(self, video_s: float, file: str | None = None) -> list[float]:
        """Every project time where this video time is on screen (split or repeated items)."""
        if not self.video_items:
            return [video_s]
        return sorted(it.video_to_project(video_s) for it in self._items_for(file) if it.shows_video_time(video_s))

    def project_to_video(self, project_s: float) -> tuple[VideoItem, float] | None:
        """(item, video time) on screen at this project time; the later item wins on overlap."""
        found = None
        for it in self.video_items:
            if it.shows_project_time(project_s):
                found = it
        if found is None:
            return None
        return found, found.project_to_video(project_s)

    # -- project <-> beats

    def project_to_qn(self, project_s: float) -> float:
        return self.tempo.time_to_qn(project_s)

    def qn_to_project(self, qn: float) -> float:
        return self.tempo.qn_to_time(qn)

    def video_to_qn(self, video_s: float, item: int = 0) -> float:
        return self.project_to_qn(self.video_to_project(video_s, item))

    def qn_to_video(self, qn: float) -> tuple[VideoItem, float] | None:
        return self.project_to_video(self.qn_to_project(qn))

    def project_to_bar_beat(self, project_s: float) -> tuple[int, float]:
        return self.tempo.time_to_bar_beat(project_s)

    # -- markers and emotions

    def marker_at_or_before(self, project_s: float) -> Marker | None:
        found = None
        for m in self.markers:
            if m.position <= project_s + 1e-9:
                found = m
        return found

    def emotion_overrides(self) -> list[EmotionOverride]:
        """Markers and regions (their start) named with an emotion, in time order."""
        out = []
        for m in self.markers:
            e = parse_emotion(m.name)
            if e:
                out.append(EmotionOverride(m.position, e, f"marker {m.index}"))
        for r in self.regions:
            e = parse_emotion(r.name)
            if e:
                out.append(EmotionOverride(r.position, e, f"region {r.index}"))
        out.sort(key=lambda o: o.time)
        return out

    def emotion_at(self, project_s: float) -> Emotion | None:
        """The user's emotion in force at this time (the last override at or before it)."""
        current = None
        for o in self.emotion_overrides():
            if o.time <= project_s + 1e-9:
                current = o.emotion
        return current

    # -- boundaries

    def cut_times(self, cuts_video_s: Iterable[float] = (), file: str | None = None) -> list[float]:
        """Video cuts in project time (only where on screen), plus the edits between video items."""
        times = set()
        for c in cuts_video_s:
            times.update(self.video_to_project_all(float(c), file))
        items = self.video_items
        for i, it in enumerate(items):
            # An item's start or end inside the film is an edit the viewer sees as a cut, unless
            # the next item simply continues the same shot (a plain split).
            nxt = items[i + 1] if i + 1 < len(items) else None
            if nxt is not None and _continues(it, nxt):
                continue
            times.add(it.end)
            if nxt is not None:
                times.add(nxt.position)
        if self.video_items:
            times.discard(self.video_items[0].position)
            times.discard(max(it.end for it in self.video_items))
        return sorted(t for t in times if t >= 0.0)

    def marker_times(self) -> list[float]:
        times = {m.position for m in self.markers}
        for r in self.regions:
            times.add(r.position)
            times.add(r.end)
        return sorted(t for t in times if t >= 0.0)

    def boundaries(
        self,
        policy: str = "cuts",
        cuts_video_s: Iterable[float] = (),
        min_spacing: float = 4.0,
        *,
        file: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> list[float]:
        """Boundary times in project seconds, sorted.

        policy "cuts": video cuts (and edits between video items), thinned EMSYNC-style: keep the
        first, then each one at least `min_spacing` s after the last kept. "markers": every marker
        and region edge, unthinned (the user placed them on purpose). "both": all markers, plus the
        cuts that are at least `min_spacing` from every kept boundary. `start`/`end` clip the result.
        """
        if policy not in BOUNDARY_POLICIES:
            raise EmsyncError(f"boundary policy must be one of {', '.join(BOUNDARY_POLICIES)}, got {policy!r}")
        if min_spacing < 0:
            raise EmsyncError(f"min_spacing must be >= 0, got {min_spacing}")
        kept: list[float] = []
        if policy in ("markers", "both"):
            for t in self.marker_times():
                if not kept or t - kept[-1] > 1e-6:
                    kept.append(t)
        if policy in ("cuts", "both"):
            for t in self.cut_times(cuts_video_s, file):
                # Cuts come in time order, so for "cuts" this is EMSYNC's keep-first thinning.
                if all(abs(t - k) >= min_spacing for k in kept):
                    kept.append(t)
                    kept.sort()
        return [t for t in kept if (start is None or t >= start) and (end is None or t <= end)]
