"""Typed project state: what "EmSync: Send project" writes into project.json (docs/protocol.md).

All times are project seconds unless a name says otherwise; `bpm` is quarter notes per minute.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emsync_bridge.tempo import TempoPoint  # noqa: F401  (REAPER tempo markers; ProjectState holds them)


@dataclass(frozen=True)
class VideoItem:
    """One video item on the REAPER timeline.

    Project time = position + (video time - take_offset) / playrate, for project times inside
    [position, position + length).
    """

    file: str
    position: float
    length: float
    take_offset: float = 0.0
    playrate: float = 1.0
    track_index: int = 0
    track_name: str = ""
    guid: str = ""
    source_length: float | None = None  # the whole video file's duration, when REAPER knows it

    @property
    def end(self) -> float:
        return self.position + self.length

    def video_to_project(self, video_s: float) -> float:
        return self.position + (video_s - self.take_offset) / self.playrate

    def project_to_video(self, project_s: float) -> float:
        return self.take_offset + (project_s - self.position) * self.playrate

    def shows_project_time(self, project_s: float) -> bool:
        return self.position <= project_s < self.end

    def shows_video_time(self, video_s: float) -> bool:
        """Whether this video time is visible in the item (start inclusive, end exclusive)."""
        return self.shows_project_time(self.video_to_project(video_s))


@dataclass(frozen=True)
class Marker:
    index: int  # the number REAPER shows in the ruler (stable when markers move)
    name: str
    position: float
    guid: str = ""


@dataclass(frozen=True)
class Region:
    index: int
    name: str
    position: float
    end: float
    guid: str = ""


@dataclass(frozen=True)
class TimeRange:
    start: float
    end: float


@dataclass(frozen=True)
class TargetTrack:
    """An existing `EmSync <Instrument>` track in the project."""

    instrument: str
    name: str
    index: int
    guid: str = ""


@dataclass(frozen=True)
class ProjectState:
    version: int
    written_at: str
    video_items: tuple[VideoItem, ...] = ()
    markers: tuple[Marker, ...] = ()
    regions: tuple[Region, ...] = ()
    tempo_map: tuple[TempoPoint, ...] = (TempoPoint(0.0, 120.0),)
    time_selection: TimeRange | None = None
    cursor: float = 0.0
    target_tracks: tuple[TargetTrack, ...] = ()
    frame_rate: float | None = None
    project_name: str = ""
    project_file: str = ""
    project_id: str = ""  # random id the scripts keep in the project; manifests echo it
    actions: dict[str, str] = field(default_factory=dict)  # action key -> "_RS..." named id
