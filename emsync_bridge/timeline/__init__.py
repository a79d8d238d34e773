"""Video time <-> project time <-> beats; REAPER project state from the Lua spool; the protocol.

The daemon imports from here; docs/protocol.md is the spec of what these functions read and write.
"""

from emsync_bridge.timeline.spool import (
    Manifest,
    ManifestItem,
    ProjectStateWatcher,
    Request,
    ensure_spool,
    load_manifest,
    load_project_state,
    load_request,
    parse_project_state,
    poll_requests,
    prune_generations,
    resolve_spool_dir,
    spool_path,
    write_manifest,
)
from emsync_bridge.timeline.state import (
    Marker,
    ProjectState,
    Region,
    TargetTrack,
    TempoPoint,
    TimeRange,
    VideoItem,
)
from emsync_bridge.tempo import TempoMap
from emsync_bridge.timeline.timeline import (
    EMOTION_VA,
    Emotion,
    EmotionOverride,
    Timeline,
    parse_emotion,
)

__all__ = [
    "EMOTION_VA", "Emotion", "EmotionOverride", "Manifest", "ManifestItem", "Marker",
    "ProjectState", "ProjectStateWatcher", "Region", "Request", "TargetTrack", "TempoMap",
    "TempoPoint", "TimeRange", "Timeline", "VideoItem", "ensure_spool", "load_manifest",
    "load_project_state", "load_request", "parse_emotion", "parse_project_state", "poll_requests",
    "prune_generations", "resolve_spool_dir", "spool_path", "write_manifest",
]
