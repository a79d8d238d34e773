"""The spool folder shared by the Lua scripts and the daemon (spec: docs/protocol.md).

- `resolve_spool_dir` finds the folder exactly as `reaper_scripts/emsync_lib.lua` does.
- `write_json_atomic` (from `emsync_bridge.atomic`) is the one way anything writes a JSON file others read.
- `load_project_state`, `load_request`, `poll_requests`, `load_manifest` read what the other side
  wrote and validate it; anything wrong raises `EmsyncError` with one clear line.
- `spool_path` joins a relative path onto the spool without ever leaving it.
"""

from __future__ import annotations

import json
import logging
import math
import ntpath
import os
import posixpath
import shutil
import stat
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from emsync_bridge.atomic import write_json_atomic
from emsync_bridge.errors import EmsyncError
from emsync_bridge.timeline import protocol
from emsync_bridge.timeline.state import (
    Marker,
    ProjectState,
    Region,
    TargetTrack,
    TempoPoint,
    TimeRange,
    VideoItem,
)

log = logging.getLogger(__name__)

SPOOL_ENV = "EMSYNC_SPOOL"
APP_DIR = "emsync-bridge"

# Sanity bounds: generous for real projects, small enough that a corrupt file cannot hurt.
MAX_ITEMS = 1024
MAX_MARKERS = 10000
MAX_TEMPO_POINTS = 10000
MAX_STRING = 4096
MAX_TIME_S = 1.0e7  # ~115 days of project time
MAX_BPM = 960.0  # REAPER's own tempo limit
MAX_PLAYRATE = 100.0


# --------------------------------------------------------------------------------------------
# Spool folder resolution (must match emsync_lib.lua's M.spool_dir)


def _os_family(platform: str) -> str:
    if platform.startswith("win"):
        return "windows"
    if platform == "darwin":
        return "macos"
    return "posix"


def _is_abs(path: str, family: str) -> bool:
    # Spelled out rather than ntpath.isabs, whose answer for "\\foo" changed in Python 3.13:
    # on Windows only "C:\..." and UNC "\\server\..." count, as in the Lua script.
    if family == "windows":
        return (len(path) >= 3 and path[0].isalpha() and path[0].isascii() and path[1] == ":" and path[2] in "\\/") or path[:2] in ("\\\\", "//", "\\/", "/\\")
    return path.startswith("/")


def spool_dir_string(env: Mapping[str, str], platform: str) -> str:
    """The spool folder as a string, for an explicit environment and `sys.platform` value.

    Order: $EMSYNC_SPOOL (absolute, trailing separators dropped), else per OS:
    Windows `%LOCALAPPDATA%\\emsync-bridge\\spool` (or `%USERPROFILE%\\AppData\\Local\\...`),
    macOS `$HOME/Library/Application Support/emsync-bridge/spool`,
    others `$XDG_DATA_HOME/emsync-bridge/spool` if absolute, else `$HOME/.local/share/...`.
    """
    family = _os_family(platform)
    sep = "\\" if family == "windows" else "/"
    explicit = env.get(SPOOL_ENV, "")
    if explicit:
        if not _is_abs(explicit, family):
            raise EmsyncError(f"{SPOOL_ENV} must be an absolute path, got '{explicit}'")
        stripped = explicit.rstrip("/\\") if family == "windows" else explicit.rstrip("/")
        # Keep a bare root ("/" or "C:\") intact.
        if not stripped or stripped.endswith(":"):
            return explicit
        return stripped
    if family == "windows":
        base = env.get("LOCALAPPDATA", "")
        if not base:
            profile = env.get("USERPROFILE", "")
            if not profile:
                raise EmsyncError("cannot find the spool folder: set EMSYNC_SPOOL (no LOCALAPPDATA or USERPROFILE)")
            base = profile + "\\AppData\\Local"
        return base + sep + APP_DIR + sep + "spool"
    home = env.get("HOME", "")
    if family == "macos":
        if not home:
            raise EmsyncError("cannot find the spool folder: set EMSYNC_SPOOL (no HOME)")
        return home + "/Library/Application Support/" + APP_DIR + "/spool"
    xdg = env.get("XDG_DATA_HOME", "")
    if xdg.startswith("/"):
        base = xdg
    elif home:
        base = home + "/.local/share"
    else:
        raise EmsyncError("cannot find the spool folder: set EMSYNC_SPOOL (no HOME)")
    return base + "/" + APP_DIR + "/spool"


def resolve_spool_dir(env: Mapping[str, str] | None = None, platform: str | None = None) -> Path:
    """The spool folder REAPER's scripts use (does not create it)."""
    return Path(spool_dir_string(os.environ if env is None else env, platform or sys.platform))


def ensure_spool(spool: Path) -> Path:
    """Create the spool and its subfolders; refuse a spool that is a symlink or not a folder."""
    spool = Path(spool)
    for sub in ("", protocol.REQUESTS_DIR, protocol.REJECTED_DIR, protocol.OUT_DIR):
        p = spool / sub if sub else spool
        try:
            p.mkdir(parents=not sub, exist_ok=True)
            st = os.lstat(p)
        except OSError as exc:
            raise EmsyncError(f"spool folder {p} is unusable: {exc.strerror or exc}") from None
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise EmsyncError(f"spool folder {p} must be a real folder (not a symlink or file)")
    return spool


LOCK_FILE = ".daemon.lock"  # in the spool; a dot name, so pollers and the Lua scripts skip it


def lock_spool(spool: Path) -> int:
    """Take the spool for this daemon: an exclusive, non-blocking lock on SPOOL/.daemon.lock
    (flock; msvcrt on Windows), which the OS releases when the process ends, even by kill -9.
    Returns the lock's file descriptor (close it to release). A spool another daemon holds is
    one EmsyncError naming that daemon's pid."""
    path = Path(spool) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        raise EmsyncError(f"cannot lock the spool {spool}: {exc.strerror or exc}") from None
    try:
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # Windows
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        try:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
        except OSError:
            holder = "?"
        os.close(fd)
        raise EmsyncError(f"another emsync-bridge daemon (pid {holder}) is serving the spool {spool}: "
                          f"stop it first, or give this one another --spool") from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError:
        pass  # the lock is what counts; the pid is only for the message
    return fd


def check_relative_path(relative: str) -> list[str]:
    """The '/'-separated parts of a spool-relative path; raises if it could escape the spool."""
    if not isinstance(relative, str) or not relative or len(relative) > MAX_STRING:
        raise EmsyncError(f"bad spool path {relative!r}")
    if "\\" in relative or "\x00" in relative or ":" in relative or relative.startswith("/"):
        raise EmsyncError(f"spool path must be relative with '/' separators: {relative!r}")
    parts = relative.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise EmsyncError(f"spool path must not contain '..', '.' or empty parts: {relative!r}")
    return parts


def spool_path(spool: Path, relative: str) -> Path:
    """`spool / relative`, refusing anything that could land outside the spool.

    Rejects absolute paths, drive letters, backslashes, `..` and empty segments, and any existing
    component (including the target) that is a symlink, so writing there never follows a link.
    """
    parts = check_relative_path(relative)
    current = Path(spool)
    for part in parts:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode):
            raise EmsyncError(f"refusing to follow a symlink inside the spool: {current}")
    return current


# --------------------------------------------------------------------------------------------
# Writing and reading JSON


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def read_json_file(path: Path | str, what: str, max_bytes: int = protocol.MAX_JSON_BYTES) -> Any:
    """Read a JSON file that another process wrote; every failure is one EmsyncError line."""
    path = Path(path)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise EmsyncError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise EmsyncError(f"{what} unreadable: {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise EmsyncError(f"{what} must be a regular file (not a symlink or folder): {path}")
    if st.st_size > max_bytes:
        raise EmsyncError(f"{what} is too large ({st.st_size} bytes > {max_bytes}): {path}")
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise EmsyncError(f"{what} unreadable: {path}: {exc.strerror}") from None
    if len(raw) > max_bytes:
        raise EmsyncError(f"{what} is too large (> {max_bytes} bytes): {path}")
    if not raw.strip():
        raise EmsyncError(f"{what} is empty (half-written?): {path}")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise EmsyncError(f"{what} is not UTF-8 (corrupt?): {path}: byte {exc.start}") from None
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EmsyncError(f"{what} is not valid JSON (half-written or corrupt): {path}: {msg}") from None


# --------------------------------------------------------------------------------------------
# Field validation: each helper names the field in its error so the one line is actionable.


class _Fields:
    def __init__(self, what: str):
        self.what = what

    def fail(self, where: str, msg: str) -> EmsyncError:
        return EmsyncError(f"{self.what}: {where} {msg}")

    def obj(self, value: Any, where: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be an object, got {type(value).__name__}")
        return value

    def array(self, value: Any, where: str, max_len: int) -> list:
        if not isinstance(value, list):
            raise self.fail(where, f"must be an array, got {type(value).__name__}")
        if len(value) > max_len:
            raise self.fail(where, f"has {len(value)} entries (at most {max_len})")
        return value

    def num(self, d: dict, key: str, where: str, lo: float, hi: float, *, default: Any = ..., lo_open: bool = False) -> float:
        if key not in d or d[key] is None:
            if default is ...:
                raise self.fail(f"{where}.{key}", "is missing")
            return default
        v = d[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.fail(f"{where}.{key}", f"must be a finite number, got {v!r}")
        if v < lo or v > hi or (lo_open and v == lo):
            bound = f"({lo}, {hi}]" if lo_open else f"[{lo}, {hi}]"
            raise self.fail(f"{where}.{key}", f"must be in {bound}, got {v!r}")
        return float(v)

    def int_(self, d: dict, key: str, where: str, lo: int, hi: int, *, default: Any = ...) -> int:
        if key not in d or d[key] is None:
            if default is ...:
                raise self.fail(f"{where}.{key}", "is missing")
            return default
        v = d[key]
        if isinstance(v, float) and v.is_integer():
            v = int(v)  # Lua writes whole floats like 4.0 as "4"; tolerate "4.0" from elsewhere
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.fail(f"{where}.{key}", f"must be an integer in [{lo}, {hi}], got {v!r}")
        return v

    def str_(self, d: dict, key: str, where: str, *, default: Any = ..., max_len: int = MAX_STRING) -> str:
        if key not in d or d[key] is None:
            if default is ...:
                raise self.fail(f"{where}.{key}", "is missing")
            return default
        v = d[key]
        if not isinstance(v, str):
            raise self.fail(f"{where}.{key}", f"must be a string, got {type(v).__name__}")
        if len(v) > max_len or "\x00" in v:
            raise self.fail(f"{where}.{key}", f"is too long or contains NUL ({len(v)} chars)")
        return v

    def bool_(self, d: dict, key: str, where: str, *, default: bool = False) -> bool:
        v = d.get(key, default)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise self.fail(f"{where}.{key}", f"must be true or false, got {v!r}")
        return v


def _check_version(f: _Fields, d: dict, kind: str) -> int:
    version = f.int_(d, "version", "top level", 0, 1_000_000)
    if version != protocol.PROTOCOL_VERSION:
        raise f.fail("version", f"{version} is not supported (this emsync-bridge reads {protocol.PROTOCOL_VERSION}); update the REAPER scripts and emsync-bridge together")
    if d.get("kind", kind) != kind:
        raise f.fail("kind", f"must be {kind!r}, got {d.get('kind')!r}")
    return version


# --------------------------------------------------------------------------------------------
# project.json


def load_project_state(path: Path | str, *, check_media: bool = True) -> ProjectState:
    """Read and validate project.json (written by "EmSync: Send project").

    `check_media`: every video item's file must be an absolute path to an existing regular file.
    """
    raw = read_json_file(path, "project.json")
    return parse_project_state(raw, check_media=check_media)


def parse_project_state(raw: Any, *, check_media: bool = True) -> ProjectState:
    f = _Fields("project.json")
    d = f.obj(raw, "top level")
    version = _check_version(f, d, "emsync.project")
    written_at = f.str_(d, "written_at", "top level", max_len=64)

    items = []
    for i, it in enumerate(f.array(d.get("video_items", []), "video_items", MAX_ITEMS)):
        w = f"video_items[{i}]"
        it = f.obj(it, w)
        file = f.str_(it, "file", w)
        if check_media:
            if not (posixpath.isabs(file) or ntpath.isabs(file)):
                raise f.fail(f"{w}.file", f"must be an absolute path, got {file!r}")
            if not os.path.isfile(file):
                raise f.fail(f"{w}.file", f"is not an existing regular file: {file}")
        src_len = f.num(it, "source_length", w, 0.0, MAX_TIME_S, default=None)
        items.append(
            VideoItem(
                file=file,
                position=f.num(it, "position", w, 0.0, MAX_TIME_S),
                length=f.num(it, "length", w, 0.0, MAX_TIME_S, lo_open=True),
                take_offset=f.num(it, "take_offset", w, -MAX_TIME_S, MAX_TIME_S, default=0.0),
                playrate=f.num(it, "playrate", w, 0.0, MAX_PLAYRATE, default=1.0, lo_open=True),
                track_index=f.int_(it, "track_index", w, 0, 1_000_000, default=0),
                track_name=f.str_(it, "track_name", w, default=""),
                guid=f.str_(it, "guid", w, default="", max_len=64),
                source_length=src_len,
            )
        )

    markers = []
    for i, m in enumerate(f.array(d.get("markers", []), "markers", MAX_MARKERS)):
        w = f"markers[{i}]"
        m = f.obj(m, w)
        markers.append(
            Marker(
                index=f.int_(m, "index", w, 0, 10_000_000),
                name=f.str_(m, "name", w, default=""),
                position=f.num(m, "position", w, -MAX_TIME_S, MAX_TIME_S),
                guid=f.str_(m, "guid", w, default="", max_len=64),
            )
        )
    markers.sort(key=lambda m: (m.position, m.index))

    regions = []
    for i, r in enumerate(f.array(d.get("regions", []), "regions", MAX_MARKERS)):
        w = f"regions[{i}]"
        r = f.obj(r, w)
        start = f.num(r, "position", w, -MAX_TIME_S, MAX_TIME_S)
        end = f.num(r, "end", w, -MAX_TIME_S, MAX_TIME_S)
        if end < start:
            raise f.fail(f"{w}.end", f"({end}) is before its position ({start})")
        regions.append(
            Region(
                index=f.int_(r, "index", w, 0, 10_000_000),
                name=f.str_(r, "name", w, default=""),
                position=start,
                end=end,
                guid=f.str_(r, "guid", w, default="", max_len=64),
            )
        )
    regions.sort(key=lambda r: (r.position, r.index))

    tempo = []
    for i, t in enumerate(f.array(d.get("tempo_map", []), "tempo_map", MAX_TEMPO_POINTS)):
        w = f"tempo_map[{i}]"
        t = f.obj(t, w)
        denom = f.int_(t, "denom", w, 1, 256, default=4)
        if denom & (denom - 1):
            raise f.fail(f"{w}.denom", f"must be a power of two, got {denom}")
        tempo.append(
            TempoPoint(
                time=f.num(t, "time", w, 0.0, MAX_TIME_S),
                bpm=f.num(t, "bpm", w, 1.0, MAX_BPM),
                num=f.int_(t, "num", w, 1, 255, default=4),
                denom=denom,
                linear=f.bool_(t, "linear", w),
            )
        )
    tempo.sort(key=lambda p: p.time)
    for a, b in zip(tempo, tempo[1:]):
        if b.time == a.time:
            raise f.fail("tempo_map", f"has two points at {a.time} s")
    if not tempo:
        tempo = [TempoPoint(0.0, 120.0)]

    sel = None
    if d.get("time_selection") is not None:
        s = f.obj(d["time_selection"], "time_selection")
        start = f.num(s, "start", "time_selection", 0.0, MAX_TIME_S)
        end = f.num(s, "end", "time_selection", 0.0, MAX_TIME_S)
        if end <= start:
            raise f.fail("time_selection.end", f"({end}) must be after start ({start})")
        sel = TimeRange(start, end)

    targets = []
    for i, t in enumerate(f.array(d.get("target_tracks", []), "target_tracks", 256)):
        w = f"target_tracks[{i}]"
        t = f.obj(t, w)
        targets.append(
            TargetTrack(
                instrument=f.str_(t, "instrument", w, max_len=64),
                name=f.str_(t, "name", w),
                index=f.int_(t, "index", w, 0, 1_000_000),
                guid=f.str_(t, "guid", w, default="", max_len=64),
            )
        )

    project = f.obj(d.get("project", {}), "project")
    actions_raw = f.obj(d.get("actions", {}), "actions")
    actions = {}
    for key, value in actions_raw.items():
        if not isinstance(key, str) or not isinstance(value, str) or len(value) > 256:
            raise f.fail("actions", f"entry {key!r} must map to a command id string")
        actions[key] = value

    return ProjectState(
        version=version,
        written_at=written_at,
        video_items=tuple(items),
        markers=tuple(markers),
        regions=tuple(regions),
        tempo_map=tuple(tempo),
        time_selection=sel,
        cursor=f.num(d, "cursor", "top level", -MAX_TIME_S, MAX_TIME_S, default=0.0),
        target_tracks=tuple(targets),
        frame_rate=f.num(d, "frame_rate", "top level", 0.0, 1000.0, default=None),
        project_name=f.str_(project, "name", "project", default=""),
        project_file=f.str_(project, "file", "project", default=""),
        project_id=f.str_(project, "id", "project", default="", max_len=64),
        actions=actions,
    )


# --------------------------------------------------------------------------------------------
# requests/*.json


@dataclass(frozen=True)
class Request:
    """A request a Lua action dropped into requests/.

    type "regenerate": from `time` (project s; None = from the start), `marker_index` if it was
    taken from a marker. "set_emotion": `time`, `valence`, `arousal`, `label`. "panic": nothing.
    "set_mode": `mode` ("commit" | "live").
    """

    id: str
    type: str
    written_at: str
    time: float | None = None
    marker_index: int | None = None
    valence: float | None = None
    arousal: float | None = None
    label: str = ""
    mode: str = ""


def parse_request(raw: Any) -> Request:
    f = _Fields("request")
    d = f.obj(raw, "top level")
    _check_version(f, d, "emsync.request")
    rid = f.str_(d, "id", "top level", max_len=64)
    rtype = f.str_(d, "type", "top level", max_len=32)
    if rtype not in protocol.REQUEST_TYPES:
        raise f.fail("type", f"must be one of {', '.join(protocol.REQUEST_TYPES)}, got {rtype!r}")
    written_at = f.str_(d, "written_at", "top level", default="", max_len=64)
    if rtype == "regenerate":
        return Request(rid, rtype, written_at,
                       time=f.num(d, "time", "top level", 0.0, MAX_TIME_S, default=None),
                       marker_index=f.int_(d, "marker_index", "top level", 0, 10_000_000, default=None))
    if rtype == "set_emotion":
        return Request(rid, rtype, written_at,
                       time=f.num(d, "time", "top level", 0.0, MAX_TIME_S),
                       valence=f.num(d, "valence", "top level", -1.0, 1.0),
                       arousal=f.num(d, "arousal", "top level", -1.0, 1.0),
                       label=f.str_(d, "label", "top level", default="", max_len=256),
                       marker_index=f.int_(d, "marker_index", "top level", 0, 10_000_000, default=None))
    if rtype == "set_mode":
        mode = f.str_(d, "mode", "top level", max_len=16)
        if mode not in ("commit", "live"):
            raise f.fail("mode", f"must be 'commit' or 'live', got {mode!r}")
        return Request(rid, rtype, written_at, mode=mode)
    return Request(rid, rtype, written_at)


def load_request(path: Path | str) -> Request:
    return parse_request(read_json_file(path, "request", protocol.MAX_REQUEST_BYTES))


_unmovable: set[tuple[str, str]] = set()  # bad requests already warned about that could not be moved


def poll_requests(spool: Path) -> list[Request]:
    """Take every finished request from requests/, oldest first, and delete it.

    Temp files (leading dot) are skipped: they are still being written. A request that cannot be
    read is moved to requests/rejected/ with a warning, so it is not retried forever.
    A requests/ folder that cannot be listed (a file, a symlink loop) is one EmsyncError; a bad
    request that cannot be moved (rejected/ is a file) stays where it is, and is warned about once.
    """
    folder = Path(spool) / protocol.REQUESTS_DIR
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json") and not n.startswith("."))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise EmsyncError(f"spool folder {folder} cannot be read: {exc.strerror or exc}") from None
    out = []
    for name in names:
        path = folder / name
        try:
            out.append(load_request(path))
        except EmsyncError as exc:
            text = str(exc)
            rejected = Path(spool) / protocol.REJECTED_DIR
            try:
                rejected.mkdir(exist_ok=True)
                os.replace(path, rejected / name)
            except OSError as move_exc:
                key = (str(path), text)
                if key not in _unmovable:
                    if len(_unmovable) < 1024:
                        _unmovable.add(key)
                    log.warning("%s (requests/%s; cannot move it to rejected/: %s)", text, name,
                                move_exc.strerror or move_exc)
                continue
            log.warning("%s", text if name in text else f"{text} (requests/{name}, moved to rejected/)")
            continue
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:  # not taken (it would run again on every poll)
            out.pop()
            if (str(path), "unlink") not in _unmovable and len(_unmovable) < 1024:
                _unmovable.add((str(path), "unlink"))
                log.warning("request requests/%s ignored: cannot remove it: %s", name, exc.strerror or exc)
    return out


# --------------------------------------------------------------------------------------------
# out/manifest.json (commit mode; written by the daemon, read by "EmSync: Import generated MIDI")


@dataclass(frozen=True)
class ManifestItem:
    instrument: str
    file: str  # relative to the spool, '/' separators, e.g. "out/<generation_id>/piano.mid"
    track: str  # REAPER track name, "EmSync Piano"
    position: float  # project seconds where the MIDI file's tick 0 goes
    length: float  # project seconds
    program: int | None = None  # GM program the file sets (a hint for the track's instrument)
    channel: int | None = None  # 0-based MIDI channel used in the file (drums: 9)


@dataclass(frozen=True)
class Manifest:
    generation_id: str
    items: tuple[ManifestItem, ...]
    replace_from: float | None = None  # None: replace all earlier EmSync items
    written_at: str = ""
    project_written_at: str = ""  # the project.json this was generated from
    project_id: str = ""  # ProjectState.project_id; the importer refuses another project's MIDI


_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def _manifest_dict(m: Manifest) -> dict:
    return {
        "version": protocol.PROTOCOL_VERSION,
        "kind": "emsync.manifest",
        "generation_id": m.generation_id,
        "written_at": m.written_at or utc_now_iso(),
        "project_written_at": m.project_written_at,
        "project_id": m.project_id,
        "replace_from": m.replace_from,
        "items": [
            {k: v for k, v in vars(it).items() if v is not None}
            for it in m.items
        ],
    }


def parse_manifest(raw: Any) -> Manifest:
    f = _Fields("manifest.json")
    d = f.obj(raw, "top level")
    _check_version(f, d, "emsync.manifest")
    gen = f.str_(d, "generation_id", "top level", max_len=64)
    if not gen or not set(gen) <= _ID_CHARS or gen.startswith("."):
        raise f.fail("generation_id", f"must be 1-64 of [A-Za-z0-9_.-], got {gen!r}")
    items = []
    for i, it in enumerate(f.array(d.get("items", []), "items", 256)):
        w = f"items[{i}]"
        it = f.obj(it, w)
        rel = f.str_(it, "file", w)
        try:
            check_relative_path(rel)
        except EmsyncError as exc:
            raise f.fail(f"{w}.file", str(exc)) from None
        items.append(
            ManifestItem(
                instrument=f.str_(it, "instrument", w, max_len=64),
                file=rel,
                track=f.str_(it, "track", w, max_len=256),
                position=f.num(it, "position", w, 0.0, MAX_TIME_S),
                length=f.num(it, "length", w, 0.0, MAX_TIME_S, lo_open=True),
                program=f.int_(it, "program", w, 0, 127, default=None),
                channel=f.int_(it, "channel", w, 0, 15, default=None),
            )
        )
    return Manifest(
        generation_id=gen,
        items=tuple(items),
        replace_from=f.num(d, "replace_from", "top level", 0.0, MAX_TIME_S, default=None),
        written_at=f.str_(d, "written_at", "top level", default="", max_len=64),
        project_written_at=f.str_(d, "project_written_at", "top level", default="", max_len=64),
        project_id=f.str_(d, "project_id", "top level", default="", max_len=64),
    )


def write_manifest(spool: Path, manifest: Manifest) -> Path:
    """Write out/manifest.json after checking every MIDI file it names exists inside the spool.

    Write the MIDI files first (each with `spool_path`), then this: the importer acts on the
    manifest, so it must never name a file that is not complete yet.
    """
    d = _manifest_dict(manifest)
    parse_manifest(json.loads(json.dumps(d)))  # the same checks the reader applies
    for it in manifest.items:
        p = spool_path(spool, it.file)
        if not p.is_file():
            raise EmsyncError(f"manifest names a MIDI file that does not exist: {p}")
    target = spool_path(spool, protocol.MANIFEST_FILE)
    target.parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(target, d)


def load_manifest(spool: Path) -> Manifest:
    return parse_manifest(read_json_file(spool_path(spool, protocol.MANIFEST_FILE), "manifest.json"))


class ProjectStateWatcher:
    """Re-reads project.json when it changes, for a daemon's poll loop.

    `poll()` returns a new `ProjectState` when the file changed and is valid, else None. A bad
    file is logged once (per change) and the last good state stays in `state`; `error` holds the
    last problem (None after a good read).
    """

    def __init__(self, path: Path | str, *, check_media: bool = True):
        self.path = Path(path)
        self.check_media = check_media
        self.state: ProjectState | None = None
        self.error: str | None = None
        self._seen: tuple | None = None

    def poll(self) -> ProjectState | None:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return None
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        if key == self._seen:
            return None
        self._seen = key
        try:
            state = load_project_state(self.path, check_media=self.check_media)
        except EmsyncError as exc:
            self.error = str(exc)
            log.warning("%s (keeping the previous project state)", exc)
            return None
        self.state, self.error = state, None
        return state


def prune_generations(spool: Path, keep: int = 3) -> list[str]:
    """Delete old out/<generation_id>/ folders, keeping the manifest's and the `keep` newest.

    The importer copies MIDI into the project's media folder, so old generations are safe to
    drop. Only folders named like generation ids are touched; a symlink is unlinked, never
    followed. Returns the removed generation ids.
    """
    out = Path(spool) / protocol.OUT_DIR
    current = None
    try:
        current = load_manifest(spool).generation_id
    except EmsyncError:
        pass
    try:
        entries = [e for e in os.scandir(out) if set(e.name) <= _ID_CHARS and not e.name.startswith(".")]
    except FileNotFoundError:
        return []
    dirs = [e for e in entries if e.is_dir(follow_symlinks=False) or e.is_symlink()]
    dirs.sort(key=lambda e: e.stat(follow_symlinks=False).st_mtime_ns, reverse=True)
    removed = []
    for e in dirs[max(keep, 0):]:
        if e.name == current:
            continue
        if e.is_symlink():
            os.unlink(e.path)
        else:
            shutil.rmtree(e.path, ignore_errors=True)
        removed.append(e.name)
    return removed
