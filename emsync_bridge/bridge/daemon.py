"""The bridge daemon: REAPER's OSC + the Lua spool in, a score out (MIDI files or a live port).

Threads, each with one job:
- OSC in (`osc.OscServer`): validate, count, enqueue.
- control loop (`Bridge._control`): applies OSC events and spool requests to the project state,
  follows the transport, plans (boundaries, emotions, tempo), decides what to regenerate,
  answers `/emsync/status`, writes `status.json`.
- generation worker (`Bridge._worker`): runs the model for the newest job, streaming events into
  the `LiveScore`; a newer job cancels the running one at the next token.
- scheduler (`scheduler.Scheduler`, live mode only): sends events at their project times.
- video analysis (`Bridge._analysis`): analyses each video file once, then asks for a re-plan.

The control, worker and analysis threads run under one supervisor (`Bridge._supervise`): an
exception that escapes a thread's loop is logged (with its traceback the first time), counted
(`threads.restarts` in the status), put in `last_error`, and the loop starts again, so a worker
never dies silently. The spool is locked (`spool.lock_spool`): a second daemon on it refuses
to start. `last_error` is cleared once the part that failed works again.

Regeneration: the project state changes (marker added/moved/renamed, emotion set, tempo changed)
→ the new `Plan` is compared with the one the score was made from → the first time they differ
→ regenerate from the last boundary before it, primed with the score's tokens up to there, so
music before that boundary stays exactly as it was. Live mode starts no earlier than `lead_s`
ahead of the play head (what has already played cannot change).
"""

from __future__ import annotations

import bisect
import collections
import functools
import logging
import os
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from emsync_bridge.atomic import write_json_atomic
from emsync_bridge.bridge import commit as commit_mod
from emsync_bridge.bridge.events import TokenStream
from emsync_bridge.bridge.health import ReaperHealth, read_import_result
from emsync_bridge.bridge.latency import Lead, RegenTrace
from emsync_bridge.bridge.osc import OscEvent, OscServer, ReaperOut, is_loopback
from emsync_bridge.bridge.scheduler import LiveScore, PlayClock, Scheduler, raise_thread_priority
from emsync_bridge.errors import EmsyncError
from emsync_bridge.music.generate import Conditioning, EmotionSegment, SamplingConfig, drum_feel, generate
from emsync_bridge.music.tempo_fit import TempoFit, fit_tempo
from emsync_bridge.music.model_config import (DEFAULT_DRUM_FEEL, DEFAULT_TEMPERATURE, DEFAULT_TOP_P,
                                              DEFAULT_VALENCE_GUIDANCE)
from emsync_bridge.music.splice import primer_until, tick_of, trim_primer
from emsync_bridge.music.vocab import TICK_S
from emsync_bridge.timeline import protocol
from emsync_bridge.timeline.spool import (
    ensure_spool,
    load_project_state,
    lock_spool,
    poll_requests,
    resolve_spool_dir,
    utc_now_iso,
)
from emsync_bridge.timeline.state import Marker, ProjectState, Region, TempoPoint
from emsync_bridge.tempo import TempoMap
from emsync_bridge.timeline.timeline import Timeline, parse_emotion

log = logging.getLogger(__name__)

RECOVERED_S = 5.0  # a restarted daemon thread that runs this long without failing clears last_error
DEFAULT_DURATION_S = 60.0  # score length without a video item, time selection or --duration


@dataclass
class BridgeConfig:
    osc_host: str = "127.0.0.1"
    osc_port: int = protocol.DAEMON_OSC_PORT
    reaper_host: str = "127.0.0.1"
    reaper_port: int = protocol.REAPER_OSC_PORT
    allow_remote: bool = False
    allow_from: tuple[str, ...] | None = None  # senders allowed to regenerate/set emotion/shut down (None: any)
    spool: Path | None = None  # None: resolve_spool_dir()
    mode: str = "commit"  # "commit" | "live"
    midi_port: str = protocol.LIVE_PORT_NAME  # see sinks.open_sink
    policy: str = "both"  # boundaries: "cuts" | "markers" | "both"
    min_spacing: float = 4.0
    model: str | None = None
    backend: str = "auto"
    seed: int = 0
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    valence_guidance: float = DEFAULT_VALENCE_GUIDANCE
    mode_from_valence: bool = True  # the valence -> mode key lock (SamplingConfig)
    duration: float | None = None  # score length when there is no video item
    valence: float | None = 0.0  # emotion where neither the video nor the user says
    arousal: float | None = 0.0
    analyze_video: bool = True
    quantize_qn: float | None = None  # commit mode: snap note starts to this grid (QN)
    grid_guard: bool = True  # generate on the project's 16th grid (SamplingConfig.grid_guard)
    drum_feel: float = DEFAULT_DRUM_FEEL  # human drum feel on that grid, 0..1 (SamplingConfig.drum_feel)
    layout: str = "per-instrument"  # or "type1"
    # Live: a splice starts this far ahead of the play head (placed when the job starts). None =
    # adaptive: 1.5 x the p90 of recent jobs' start -> first note, + 10 ms, within [30, 250] ms
    # (latency.Lead).
    lead_s: float | None = None
    max_ahead_s: float = 20.0  # live: generation pauses this far ahead of the play head
    primer_tokens: int = 128  # tokens of context before a regenerated boundary
    # A burst of changes (REAPER sends the whole marker bank on a move) is gathered until no change
    # came for debounce_s, or debounce_max_s after its first: a plan from half a bank would start
    # a job that the rest of the bank supersedes.
    debounce_s: float = 0.004
    debounce_max_s: float = 0.03
    # Live, playing: marker changes within drag_s of the last marker re-plan are a drag (REAPER
    # resends the bank about every 33 ms while a marker moves). The splice is held until the
    # drag ends (no change for drag_s), then made once: each resend used to cut the music.
    drag_s: float = 0.1
    poll_s: float = 0.25  # spool polling
    status_interval_s: float = 1.0
    generate_on_start: bool = True
    realtime: bool = True  # live: real-time scheduling for the MIDI scheduler thread where permitted


@dataclass(frozen=True)
class Plan:
    """What a score is generated against, all in project seconds."""

    origin: float
    end: float
    boundaries: tuple[float, ...]
    emotions: tuple[tuple[float, float | None, float | None], ...]  # (from, valence, arousal)
    markers: tuple[tuple[float, str], ...]
    tempo: tuple[tuple[float, float, int, int, bool], ...]

    @property
    def duration(self) -> float:
        return self.end - self.origin

    @functools.cached_property
    def _emotion_starts(self) -> list[float] | None:
        starts = [e[0] for e in self.emotions]
        return starts if all(a <= b for a, b in zip(starts, starts[1:])) else None

    def emotion_at(self, t: float) -> tuple[float | None, float | None]:
        starts = self._emotion_starts
        if starts is not None and self.emotions:  # O(log n): plans with thousands of markers
            i = bisect.bisect_right(starts, t + 1e-9)
            e = self.emotions[i - 1] if i else self.emotions[0]
            return (e[1], e[2])
        cur = (self.emotions[0][1], self.emotions[0][2]) if self.emotions else (None, None)
        for start, v, a in self.emotions:
            if start <= t + 1e-9:
                cur = (v, a)
        return cur

    @functools.cached_property
    def fitted_tempo(self) -> TempoFit:
        """A tempo fitted to the boundaries (project seconds, bar 1 at 0 s) inside the range the
        plan's mean arousal asks for: what "EmSync: Apply fitted tempo" writes into the project."""
        times = [e[0] for e in self.emotions] + [self.end]
        spans = [(max(b, self.origin), min(times[i + 1], self.end)) for i, b in enumerate(times[:-1])]
        weights = [max(e - s, 0.0) for s, e in spans]
        arousal = [e[2] if e[2] is not None else 0.0 for e in self.emotions]
        mean = sum(a * w for a, w in zip(arousal, weights)) / sum(weights) if sum(weights) > 0 else 0.0
        return fit_tempo(self.boundaries, mean)

    def conditioning(self) -> Conditioning:
        segs = [EmotionSegment(max(0.0, s - self.origin), v, a) for s, v, a in self.emotions] or [EmotionSegment(0.0, None, None)]
        segs[0] = EmotionSegment(0.0, segs[0].valence, segs[0].arousal)
        bounds = [b - self.origin for b in self.boundaries if self.origin < b < self.end]
        # the music keeps to the project's own grid (tempo map, ramps and meter included)
        tempo = TempoMap([TempoPoint(*p) for p in self.tempo]) if self.tempo else None
        return Conditioning(segs, bounds, tempo=tempo, tempo_origin=self.origin)

    def first_difference(self, other: "Plan") -> float | None:
        """The earliest project time where the two plans would make different music."""
        if abs(self.origin - other.origin) > 1e-6:
            return min(self.origin, other.origin)
        cands = []
        if abs(self.end - other.end) > 1e-6:
            cands.append(min(self.end, other.end))
        cands += _sym_diff(self.boundaries, other.boundaries)
        cands += [t for t, _ in set(self.markers) ^ set(other.markers)]
        points = sorted({s for s, _, _ in self.emotions} | {s for s, _, _ in other.emotions})
        for t in points:
            if self.emotion_at(t) != other.emotion_at(t):
                cands.append(t)
                break
        ta, tb = self.tempo, other.tempo
        if ta != tb:
            i = next((k for k in range(min(len(ta), len(tb))) if ta[k] != tb[k]), min(len(ta), len(tb)))
            times = [x[i][0] for x in (ta, tb) if i < len(x)]
            cands.append(min(times) if times else self.origin)
        cands = [max(c, self.origin) for c in cands]
        return min(cands) if cands else None


def _sym_diff(a, b, tol: float = 1e-4) -> list[float]:
    """Values of `a` with nothing in `b` within `tol`, then the same for `b` (sorted + bisect: a
    project at the 10 000-marker limit took 14 s here, blocking the control loop)."""

    def unmatched(xs, ys):
        ys = sorted(ys)
        out = []
        for x in xs:
            i = bisect.bisect_left(ys, x - tol)
            if not (i < len(ys) and ys[i] <= x + tol):
                out.append(x)
        return out

    return unmatched(a, b) + unmatched(b, a)


@dataclass
class Job:
    seq: int
    from_time: float  # project seconds
    plan: Plan
    reason: str
    trigger_wall: float | None = None  # when the OSC message/request that caused it arrived
    submit_wall: float = 0.0
    replan_wall: float | None = None  # when the change was planned (after the debounce)
    head: float | None = None  # live: the play head at submit (project s)


@dataclass
class Slot:
    """One marker/region bank slot as REAPER's OSC feedback reports it."""

    name: str | None = None
    number: str | None = None
    time: float | None = None
    length: float | None = None


@dataclass
class _Live:
    """State REAPER reports over OSC."""

    playing: bool = False
    repeat: bool = False
    tempo: float | None = None
    playrate: float = 1.0
    loop: tuple[float | None, float | None] = (None, None)
    markers: dict[int, Slot] = field(default_factory=dict)
    regions: dict[int, Slot] = field(default_factory=dict)
    last_marker: dict = field(default_factory=dict)
    last_region: dict = field(default_factory=dict)
    last_message_wall: float | None = None


class Bridge:
    """The daemon. `start()`, then `serve_forever()` (or drive it from a test), then `close()`."""

    def __init__(self, config: BridgeConfig | None = None, *, engine=None, model_files=None, sink=None,
                 analyzer: Callable | None = None):
        self.cfg = config or BridgeConfig()
        if self.cfg.mode not in ("commit", "live"):
            raise EmsyncError(f"--mode must be commit or live, got {self.cfg.mode!r}")
        if self.cfg.policy not in ("cuts", "markers", "both"):
            raise EmsyncError(f"boundary policy must be cuts, markers or both, got {self.cfg.policy!r}")
        self.spool = ensure_spool(Path(self.cfg.spool) if self.cfg.spool else resolve_spool_dir())
        self.engine = engine
        self.model_files = model_files
        self.sink = sink
        self.analyzer = analyzer
        self.mode = self.cfg.mode
        self.started_at = utc_now_iso()
        self.osc: OscServer | None = None
        self.reaper: ReaperOut | None = None
        self.clock = PlayClock()
        self.score = LiveScore()
        self.scheduler: Scheduler | None = None
        self.live = _Live()
        self.project: ProjectState | None = None
        self._project_sig = None
        self.tempo_overrides: list[tuple[float, float]] = []  # live /tempo/raw edits since the last project.json
        self.user_emotions: list[tuple[float, float, float, str]] = []  # (time, v, a, label)
        self.analyses: dict[str, object | None] = {}  # video file -> analysis (None: failed)
        self.plan: Plan | None = None  # what the current score was generated against
        self.tokens: list[int] = []  # the current score, generation clock (0 = plan.origin)
        self.generation: dict = {}
        self.last_commit: dict = {}
        self.last_error = ""
        self._error_source = ""  # what set last_error, when it clears itself on recovery ("spool", ...)
        self.thread_restarts: collections.Counter[str] = collections.Counter()
        self._thread_failed_at: dict[str, float] = {}
        self._spool_lock: int | None = None
        self.regen_latencies: list[dict] = []  # live: RegenTrace.as_dict() per regeneration heard
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._dirty: dict[str, float] = {}  # reason -> wall of the first change
        self._last_change = 0.0  # wall of the latest change (see BridgeConfig.debounce_s)
        self._last_marker_plan = float("-inf")  # wall of the last re-plan for a marker change
        self._dragging = False  # a marker drag is held until it ends (BridgeConfig.drag_s)
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._job_seq = 0
        self._last_from = 0.0  # the newest job's start
        self._spliced_seq = 0  # the newest job whose splice is in the score
        self._analysis_q: queue.Queue[str | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._next_poll = 0.0
        self._next_status = 0.0
        self._await_regen: RegenTrace | None = None  # live: the splice whose first note is awaited
        self._job_posted = threading.Event()  # wakes a generation waiting for the play head
        self._uncommitted_from: float | None = None  # commit mode: changed since the last manifest
        self._lead = Lead(self.cfg.lead_s)
        self.trace: list | None = None  # benches: (beat string, OSC arrival, handled) per /beat/str
        self.state = "starting"

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "Bridge":
        self._spool_lock = lock_spool(self.spool)  # first: a second daemon stops here, having done nothing
        try:
            return self._start()
        except BaseException:
            if self._spool_lock is not None:  # a failed start (port in use, no model) frees the spool
                os.close(self._spool_lock)
                self._spool_lock = None
            raise

    def _start(self) -> "Bridge":
        cfg = self.cfg
        if self.engine is None:
            from emsync_bridge.runtime import load_engine

            self.engine, self.model_files = load_engine(cfg.model, backend=cfg.backend, seed=cfg.seed)
            if self.model_files is not None and not getattr(self.model_files, "trained", True):
                log.warning("UNTRAINED MODEL: random weights (the shipped default model is missing)")
        self.osc = OscServer(cfg.osc_host, cfg.osc_port, allow_remote=cfg.allow_remote,
                             allow_from=cfg.allow_from).start()
        stale = commit_mod.remove_stale_temp_files(self.spool)  # a killed daemon's half-written files
        if stale:
            log.info("removed %d temp file(s) left by an interrupted commit: %s", len(stale), ", ".join(stale[:5]))
        self.reaper = ReaperOut(cfg.reaper_host, cfg.reaper_port)
        if self.mode == "live":
            try:
                self._enter_live()
            except BaseException:
                self.close()  # no half-started daemon (the OSC port is released)
                raise
        self._load_project(force=True)
        for name, target in (("control", self._control), ("worker", self._worker), ("analysis", self._analysis)):
            t = threading.Thread(target=self._supervise, args=(name, target), name=f"emsync-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        if self.mode == "live":
            # Live timing suffers first on a busy machine: OSC in, control, generation and the
            # scheduler get a higher priority (best effort, see scheduler.raise_thread_priority).
            for t in self._threads + [self.osc._thread]:
                raise_thread_priority(t.native_id)
        self.reaper.refresh()
        self.state = "running"
        log.info("emsync-bridge %s mode: OSC in %s:%d, REAPER at %s:%d, spool %s", self.mode, self.osc.host,
                 self.osc.port, cfg.reaper_host, cfg.reaper_port, self.spool)
        if cfg.generate_on_start and self.project is not None:
            self._mark("start", time.perf_counter())
        self.write_status()
        return self

    def handle_signals(self) -> None:
        """SIGINT/SIGTERM ask for a clean stop (from the main thread only). Call it before `start()`:
        a signal that lands while the daemon starts (it answers status before `serve_forever`
        runs) then still stops it cleanly instead of killing it mid-way."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: self._stop.set())

    def serve_forever(self, install_signals: bool = True) -> None:
        """Block until SIGINT/SIGTERM or `/emsync/shutdown`, then close."""
        if install_signals:
            self.handle_signals()
        try:
            while not self._stop.wait(0.2):
                pass
        finally:
            self.close()

    def request_stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Stop everything; all notes off; the status file says `stopped`."""
        self._stop.set()
        self._job_seq += 1  # cancels a running generation at its next token
        self._jobs.put(None)
        self._analysis_q.put(None)
        for t in self._threads:
            t.join(timeout=5.0)
        self._threads.clear()
        if self.scheduler is not None:
            self.scheduler.close("shutdown")
        if self.sink is not None:
            try:
                self.sink.close()
            except Exception as exc:
                log.warning("closing the MIDI port: %s", exc)
        if self.osc is not None:
            self.osc.close()
        if self.reaper is not None:
            self.reaper.close()
        self.state = "stopped"
        if self._spool_lock is not None:  # a daemon that never got the spool leaves its status alone
            self.write_status()
            os.close(self._spool_lock)
            self._spool_lock = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ live mode

    def _enter_live(self) -> None:
        # A thread waking for a note waits for the GIL up to the switch interval (5 ms by default)
        # while another thread runs Python code; live mode needs sub-millisecond sends.
        if sys.getswitchinterval() > 0.0005:
            sys.setswitchinterval(0.0005)
        if self.sink is None:
            from emsync_bridge.bridge.sinks import open_sink

            self.sink = open_sink(self.cfg.midi_port)
        if self.scheduler is None:
            self.scheduler = Scheduler(self.sink, self.clock, self.score, realtime=self.cfg.realtime)
            self.scheduler.first_send_hook = self._on_first_send
            self.scheduler.start()
        self.mode = "live"

    def set_mode(self, mode: str) -> None:
        if mode not in ("commit", "live"):
            raise EmsyncError(f"mode must be commit or live, got {mode!r}")
        if mode == self.mode:
            return
        if mode == "live":
            self._enter_live()
        else:
            if self.scheduler is not None:
                self.scheduler.close("mode")
                self.scheduler = None
            self.mode = "commit"
            if self.generation.get("complete") and self.plan is not None:
                self._commit(self.plan, self.plan.origin, None)
        log.info("mode: %s", self.mode)

    def panic(self) -> None:
        if self.scheduler is not None:
            self.scheduler.silence("panic")
        if self.reaper is not None:
            self.reaper.all_notes_off()

    def _on_first_send(self, ev, wall) -> None:
        """Scheduler hook (its thread): a note-on went out; completes the awaited splice's trace."""
        tr = self._await_regen
        if tr is None or tr.first_note is None or ev.time < tr.splice - 1e-9:
            return
        if self._await_regen is tr:  # not a newer splice's, set since
            self._await_regen = None
        tr.sent, tr.note_time, tr.head_at_send = wall, ev.time, self.clock.position(wall)
        if tr.complete:
            self.regen_latencies.append(tr.as_dict())

    # ------------------------------------------------------------------ project state

    def markers(self) -> list[Marker]:
        """project.json's markers overlaid with REAPER's OSC marker bank (see docs/protocol.md)."""
        base = {m.index: m for m in (self.project.markers if self.project else ())}
        return list(_overlay(base, self.live.markers, lambda n, s: Marker(n, s.name or "", s.time)).values())

    def regions(self) -> list[Region]:
        base = {r.index: r for r in (self.project.regions if self.project else ())}
        return list(_overlay(base, self.live.regions,
                             lambda n, s: Region(n, s.name or "", s.time, s.time + max(s.length or 0.0, 0.0))).values())

    def tempo_map(self) -> TempoMap:
        tm = TempoMap(self.project.tempo_map if self.project else [])
        for t, bpm in self.tempo_overrides:
            tm = tm.with_tempo_at(t, bpm)
        return tm

    def timeline(self) -> Timeline:
        items = self.project.video_items if self.project else ()
        return Timeline(items, self.markers(), self.regions(), self.tempo_map())

    def make_plan(self) -> Plan:
        tl = self.timeline()
        cfg = self.cfg
        if tl.video_items:
            origin = min(it.position for it in tl.video_items)
            end = max(it.end for it in tl.video_items)
        elif self.project is not None and self.project.time_selection is not None:
            origin, end = self.project.time_selection.start, self.project.time_selection.end
        else:
            origin = 0.0
            last = max([0.0] + tl.marker_times())
            end = cfg.duration or max(DEFAULT_DURATION_S, last + 8.0)
        cuts, scenes = [], []
        for it in tl.video_items:
            a = self.analyses.get(it.file)
            if a is None:
                continue
            cuts += list(getattr(a, "cuts", []))
            for sc in getattr(a, "scenes", []):
                s0, s1 = it.video_to_project(sc.start), it.video_to_project(sc.end)
                if s1 > it.position and s0 < it.end:  # the scene is on screen in this item
                    scenes.append((max(it.position, s0), sc.valence, sc.arousal))
        bounds = tuple(b for b in tl.boundaries(cfg.policy, cuts, cfg.min_spacing) if origin < b < end)
        overrides = [(o.time, o.emotion.valence, o.emotion.arousal) for o in tl.emotion_overrides()]
        overrides += [(t, v, a) for t, v, a, _ in self.user_emotions]
        overrides.sort(key=lambda o: o[0])
        scenes.sort()

        ov_starts = [o[0] for o in overrides]
        sc_starts = [sc[0] for sc in scenes]

        def emotion_at(t: float):  # the last override (else scene) starting at or before t
            i = bisect.bisect_right(ov_starts, t + 1e-9)
            if i:
                return (overrides[i - 1][1], overrides[i - 1][2])
            i = bisect.bisect_right(sc_starts, t + 1e-9)
            if i:
                return (scenes[i - 1][1], scenes[i - 1][2])
            return (cfg.valence, cfg.arousal)

        points = sorted({origin} | {s for s, _, _ in scenes if origin < s < end} | {s for s, _, _ in overrides if origin < s < end})
        emotions = []
        for t in points:
            e = emotion_at(t)
            if not emotions or (emotions[-1][1], emotions[-1][2]) != e:
                emotions.append((t, e[0], e[1]))
        markers = tuple(sorted((m.position, m.name) for m in tl.markers)) + tuple(
            sorted((r.position, r.name) for r in tl.regions))
        tempo = tuple((p.time, p.bpm, p.num, p.denom, p.linear) for p in tl.tempo.points)
        return Plan(origin, end, bounds, tuple(emotions), markers, tempo)

    def _load_project(self, force: bool = False) -> bool:
        path = self.spool / protocol.PROJECT_FILE
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if isinstance(self._project_sig, tuple) and self._project_sig[:1] == ("unreadable",):
                self._project_sig = None  # the loop is gone: no longer a spool fault
            return False
        except OSError as exc:  # a symlink loop, a path through a file: reported once, retried
            sig = ("unreadable", str(exc))
            if sig != self._project_sig:
                self._project_sig = sig
                self._set_error("spool", f"{protocol.PROJECT_FILE} cannot be read: {exc.strerror or exc}")
                log.warning("%s", self.last_error)
            return False
        sig = (st.st_mtime_ns, st.st_size, st.st_ino)
        if sig == self._project_sig and not force:
            return False
        self._project_sig = sig
        try:
            state = load_project_state(path)
        except EmsyncError as exc:
            self._set_error("project", str(exc))
            log.warning("%s", exc)
            return False
        self._clear_error("project")
        with self._lock:
            self.project = state
            # The snapshot is newer than what OSC told us before it.
            self.live.markers.clear()
            self.live.regions.clear()
            self.tempo_overrides.clear()
        if self.cfg.analyze_video:
            for it in state.video_items:
                if it.file not in self.analyses:
                    self._analysis_q.put(it.file)
        log.info("project.json: %d video items, %d markers, %d regions, %d tempo points", len(state.video_items),
                 len(state.markers), len(state.regions), len(state.tempo_map))
        return True

    def _analysis(self) -> None:
        while not self._stop.is_set():
            file = self._analysis_q.get()
            if file is None:
                return
            if file in self.analyses:
                continue
            try:
                if self.analyzer is not None:
                    a = self.analyzer(file)
                else:
                    from emsync_bridge.video.analysis import analyze_video

                    a = analyze_video(file, min_scene_s=self.cfg.min_spacing)
            except Exception as exc:  # EmsyncError or a decoder failure: generate without the video
                log.warning("video analysis of %s failed: %s", file, exc)
                self.last_error = f"video analysis failed: {exc}"
                a = None
            self.analyses[file] = a
            self._mark("video", time.perf_counter())

    def _supervise(self, name: str, loop: Callable[[], None]) -> None:
        """Run a thread's loop until the daemon stops; if it raises, log, count, carry on."""
        delay, seen = 0.05, set()
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                loop()
                return
            except Exception as exc:
                self.thread_restarts[name] += 1
                self._thread_failed_at[name] = time.monotonic()
                self._set_error(f"thread:{name}", f"{name} thread failed ({type(exc).__name__}: {exc}); restarted")
                key = (type(exc).__name__, str(exc)[:200])
                if key not in seen and len(seen) < 32:
                    seen.add(key)
                    log.exception("the %s thread failed; restarting it", name)
                else:
                    log.warning("the %s thread failed again (%s: %s; %d restarts)", name, type(exc).__name__,
                                exc, self.thread_restarts[name])
            # back off while it keeps failing (at most 0.5 s, so status stays answered within 1 s)
            delay = 0.05 if time.monotonic() - began > 5.0 else min(0.5, delay * 2)
            if self._stop.wait(delay):
                return

    def _set_error(self, source: str, message: str) -> None:
        self.last_error, self._error_source = message, source

    def _recovered_threads(self) -> None:
        """A restarted thread that has not failed again for RECOVERED_S is taken as recovered."""
        name = self._error_source.partition("thread:")[2]
        if name and time.monotonic() - self._thread_failed_at.get(name, 0.0) > RECOVERED_S:
            self._clear_error(self._error_source)

    def _clear_error(self, source: str) -> None:
        """The part that set last_error works again: forget the error (a newer one stays)."""
        if self._error_source == source and self.last_error:
            log.info("recovered: %s", self.last_error)
            self.last_error, self._error_source = "", ""

    def _analysis_pending(self) -> bool:
        if not self.cfg.analyze_video or self.project is None:
            return False
        return any(it.file not in self.analyses for it in self.project.video_items)

    # ------------------------------------------------------------------ control loop

    def _mark(self, reason: str, wall: float) -> None:
        with self._lock:
            self._dirty.setdefault(reason, wall)
            self._last_change = max(self._last_change, wall)

    def _replan_due(self, now: float) -> float | None:
        """Seconds until the gathered changes are planned (<= 0: now); None if there are none."""
        with self._lock:
            if not self._dirty:
                return None
            if self._dragging:
                return self._last_change + self.cfg.drag_s - now
            return min(self._last_change + self.cfg.debounce_s, min(self._dirty.values()) + self.cfg.debounce_max_s) - now

    def _control(self) -> None:
        assert self.osc is not None
        while not self._stop.is_set():
            due = self._replan_due(time.perf_counter())
            try:
                ev = self.osc.events.get(timeout=0.01 if due is None else min(0.01, max(0.0002, due)))
            except queue.Empty:
                ev = None
            n = 0
            while ev is not None:
                self._handle_safely(ev)
                n += 1
                if n >= 2000:
                    break
                try:
                    ev = self.osc.events.get_nowait()
                except queue.Empty:
                    ev = None
            now = time.perf_counter()
            if now >= self._next_poll:
                self._next_poll = now + self.cfg.poll_s
                self._poll_spool()
            due = self._replan_due(now)
            if due is not None and due <= 0:
                self._replan_safely()
            if now >= self._next_status:
                self._recovered_threads()
                self.write_status()

    def _handle_safely(self, ev: OscEvent) -> None:
        try:
            self.handle(ev)
        except EmsyncError as exc:
            self.last_error = str(exc)
            log.warning("%s: %s", ev.address, exc)
        except Exception:
            log.exception("handling %s failed", ev.address)

    def _replan_safely(self) -> None:
        try:
            self.replan()
        except EmsyncError as exc:
            self.last_error = str(exc)
            log.warning("%s", exc)
        except Exception:
            log.exception("re-planning failed")

    def _poll_spool(self) -> None:
        try:
            if self._load_project():
                self._mark("project", time.perf_counter())
            requests = poll_requests(self.spool)
        except (EmsyncError, OSError) as exc:  # the spool itself is broken: say so once, keep polling
            message = str(exc) if isinstance(exc, EmsyncError) else f"spool: {exc.strerror or exc}"
            if message != self.last_error:
                log.warning("%s", message)
            self._set_error("spool", message)
            return
        if not isinstance(self._project_sig, tuple) or self._project_sig[:1] != ("unreadable",):
            self._clear_error("spool")
        for req in requests:
            try:
                self.handle_request(req)
            except EmsyncError as exc:
                self.last_error = str(exc)
                log.warning("request %s: %s", req.id, exc)

    def handle_request(self, req) -> None:
        wall = time.perf_counter()
        if req.type == "regenerate":
            self._load_project()  # the action sends the project first
            t = req.time
            if req.marker_index is not None:
                m = next((m for m in self.markers() if m.index == req.marker_index), None)
                t = m.position if m is not None else t
            self.regenerate(t, "request", wall)
        elif req.type == "panic":
            self.panic()
        elif req.type == "set_emotion":
            self.set_user_emotion(req.time, req.valence, req.arousal, req.label, wall)
        elif req.type == "set_mode":
            self.set_mode(req.mode)

    def handle(self, ev: OscEvent) -> None:
        """Apply one validated OSC message (runs in the control thread)."""
        a, p, lv = ev.args, ev.pattern, self.live
        if not p.startswith("/emsync/"):
            # Presence only: REAPER is silent while stopped (bridge/health.py), so feedback after a
            # silence is no reconnect and asks REAPER for nothing.
            if lv.last_message_wall is None:
                log.info("REAPER feedback from %s:%s", *(ev.sender or ("?", "?")))
            lv.last_message_wall = ev.wall
        if p == "/time":
            self._on_time(a[0], ev.wall)
        elif p == "/play":
            if a[0] >= 0.5:
                self._transport_play(ev.wall)
            elif lv.playing:
                self._transport_stop("stop")
        elif p in ("/stop", "/pause"):
            if a[0] >= 0.5 and lv.playing:
                self._transport_stop(p[1:])
        elif p == "/repeat":
            lv.repeat = a[0] >= 0.5
        elif p == "/tempo/raw":
            self._on_tempo(a[0], ev.wall)
        elif p == "/playrate/raw":
            if a[0] > 0:
                lv.playrate = a[0]
                if self.scheduler is not None:
                    self.scheduler.set_rate(a[0], ev.wall)
                else:
                    self.clock.set_rate(a[0], ev.wall)
        elif p == "/loop/start/time":
            lv.loop = (a[0], lv.loop[1])
        elif p == "/loop/end/time":
            lv.loop = (lv.loop[0], a[0])
        elif p.startswith("/marker/@/") or p.startswith("/region/@/"):
            self._on_bank(p, ev.slot, a[0], ev.wall)
        elif p.startswith("/lastmarker/"):
            lv.last_marker[p.rsplit("/", 1)[-1] if not p.endswith("/str") else "number"] = a[0]
        elif p.startswith("/lastregion/"):
            lv.last_region[p.rsplit("/", 1)[-1] if not p.endswith("/str") else "number"] = a[0]
        elif p == "/beat/str":
            if self.trace is not None:
                self.trace.append((a[0], ev.wall, time.perf_counter()))
        elif p == "/record":
            pass
        else:
            self._handle_emsync(ev)

    def _handle_emsync(self, ev: OscEvent) -> None:
        a, p = ev.args, ev.pattern
        if p == "/emsync/regenerate":
            self.regenerate(None, "osc", ev.wall)
        elif p == "/emsync/regenerate/marker":
            m = next((m for m in self.markers() if m.index == a[0]), None)
            if m is None:
                raise EmsyncError(f"no marker number {a[0]}")
            self.regenerate(m.position, "osc", ev.wall)
        elif p == "/emsync/regenerate/time":
            self.regenerate(a[0], "osc", ev.wall)
        elif p == "/emsync/emotion":
            v, ar = a[0], a[1]
            if not (-1 <= v <= 1 and -1 <= ar <= 1):
                raise EmsyncError(f"valence and arousal must be in [-1, 1], got {v}, {ar}")
            self.set_user_emotion(a[2] if len(a) > 2 else None, v, ar, "", ev.wall)
        elif p == "/emsync/emotion/label":
            e = parse_emotion(a[0])
            if e is None:
                raise EmsyncError(f"not an emotion: {a[0]!r} (joy, sadness, anger, fear, disgust, surprise or v=.. a=..)")
            self.set_user_emotion(a[1] if len(a) > 1 else None, e.valence, e.arousal, e.label, ev.wall)
        elif p == "/emsync/panic":
            self.panic()
        elif p == "/emsync/mode":
            self.set_mode(a[0])
        elif p == "/emsync/project/reload":
            if self._load_project(force=True):
                self._mark("project", ev.wall)
        elif p == "/emsync/status":
            if ev.sender is not None and self.osc is not None:
                import json

                self.osc.send_to(protocol.EMSYNC_STATUS_REPLY, [json.dumps(self.status(brief=True))], ev.sender)
        elif p == "/emsync/shutdown":
            if ev.sender is not None and is_loopback(ev.sender[0]):
                log.info("shutdown requested over OSC")
                self._stop.set()
            else:
                log.warning("ignored /emsync/shutdown from %s (loopback only)", ev.sender)

    # transport

    def _transport_play(self, wall: float) -> None:
        self.live.playing = True
        if self.scheduler is not None:
            self.scheduler.play(None, wall)
        else:
            self.clock.start(None, wall)
        if self.mode == "live" and self.plan is None and not self._dirty:
            self._mark("play", wall)
        self._catch_up(wall)

    def _catch_up(self, wall: float) -> None:
        """Live: the play head is well past what has been generated (play or seek far ahead):
        generate from the play head instead of working through music nobody will hear."""
        if self.mode != "live" or self.plan is None or not self.live.playing or self.generation.get("complete"):
            return
        pos = self.clock.position(wall)
        if pos > self.score.generated_until + 1.0 and pos < self.plan.end:
            log.info("play head at %.2f s, generation at %.2f s: generating from the play head", pos,
                     self.score.generated_until)
            self._submit(self.plan, pos, "catch-up", wall, full=False, catch_up=True)

    def _transport_stop(self, reason: str) -> None:
        self.live.playing = False
        self._await_regen = None  # a change made while stopped is not heard as a splice
        if self.scheduler is not None:
            self.scheduler.stop()
        else:
            self.clock.stop()

    def _on_time(self, pos: float, wall: float) -> None:
        if self.scheduler is None:
            self.clock.report(pos, wall)
            return
        before = self.clock.position(wall)
        lo, hi = self.live.loop
        looped = (self.live.repeat and lo is not None and hi is not None and pos < before
                  and abs(pos - lo) < 0.25 and abs(before - hi) < 0.25)
        if self.scheduler.report(pos, wall, "loop" if looped else "seek"):
            self._catch_up(wall)

    def _on_tempo(self, bpm: float, wall: float) -> None:
        if not 1.0 <= bpm <= 960.0:
            raise EmsyncError(f"tempo {bpm} BPM out of range")
        self.live.tempo = bpm
        pos = self.clock.position(wall)
        if abs(self.tempo_map().bpm_at(pos) - bpm) <= 0.01:
            return  # REAPER reporting the map's own tempo (play passed a tempo marker, or the sync burst)
        self.tempo_overrides.append((pos, bpm))
        if self.scheduler is not None:
            self.scheduler.silence("tempo")
        self._mark("tempo", wall)

    def _on_bank(self, pattern: str, slot: int | None, value, wall: float) -> None:
        if slot is None:
            return
        bank = self.live.markers if pattern.startswith("/marker/") else self.live.regions
        s = bank.setdefault(slot, Slot())
        field_name = {"name": "name", "str": "number", "time": "time", "length": "length"}[pattern.rsplit("/", 1)[-1]]
        if getattr(s, field_name) != value:
            setattr(s, field_name, value)
            self._mark("markers", wall)

    # ------------------------------------------------------------------ planning and regeneration

    def set_user_emotion(self, t: float | None, v: float, a: float, label: str, wall: float) -> None:
        t = self.clock.position() if t is None else t
        self.user_emotions = [u for u in self.user_emotions if abs(u[0] - t) > 1e-6] + [(t, v, a, label)]
        self._mark("emotion", wall)

    def regenerate(self, t: float | None, reason: str, wall: float | None = None) -> None:
        """Regenerate from `t` (None: everything) with the current plan."""
        plan = self.make_plan()
        start = plan.origin if t is None else max(plan.origin, min(t, plan.end))
        self._submit(plan, start, reason, wall, full=t is None, replan_wall=time.perf_counter())

    def replan(self) -> None:
        now = time.perf_counter()
        with self._lock:
            dirty, self._dirty = self._dirty, {}
        if not dirty:
            return
        if self._analysis_pending():
            with self._lock:  # wait for the video: the first score should follow its cuts
                for k, v in dirty.items():
                    self._dirty.setdefault(k, v)
            return
        trigger = min(dirty.values())
        if (not self._dragging and set(dirty) == {"markers"} and self.mode == "live" and self.live.playing
                and trigger - self._last_marker_plan < self.cfg.drag_s):
            with self._lock:  # a drag: hold until it ends (see BridgeConfig.drag_s)
                for k, v in dirty.items():
                    self._dirty.setdefault(k, v)
                self._dragging = True
            return
        self._dragging = False
        if "markers" in dirty:
            self._last_marker_plan = now
        reason = "+".join(sorted(dirty))
        plan = self.make_plan()
        if self.plan is None:
            if self.project is None and "play" not in dirty and "start" not in dirty and self.mode != "live":
                self.plan = None  # nothing to score yet: wait for project.json or a request
                return
            self._submit(plan, plan.origin, reason, trigger, full=True, replan_wall=now)
            return
        changed = self.plan.first_difference(plan)
        if changed is None:
            return
        start = max([plan.origin] + [b for b in plan.boundaries if b < changed - 1e-6])
        log.info("%s changed at %.3f s: regenerating from %.3f s", reason, changed, start)
        self._submit(plan, start, reason, trigger, full=False, replan_wall=now)

    def _submit(self, plan: Plan, start: float, reason: str, trigger: float | None, full: bool,
                catch_up: bool = False, replan_wall: float | None = None) -> None:
        if self.plan is None or abs(plan.origin - self.plan.origin) > 1e-6:
            full = True
        if full:
            start = plan.origin
        elif self._job_seq and self._spliced_seq != self._job_seq and not catch_up:
            # The newest job has not spliced its plan into the score yet (queued, or starting): the
            # score there still follows an older plan, so start no later than that job would.
            start = min(start, self._last_from)
        elif self.generation and not self.generation.get("complete") and not catch_up:
            # The running generation has not reached `start` yet: go on from where it got to.
            start = min(start, self.score.generated_until)
        head = None
        if self.mode == "live" and self.live.playing:
            head = self.clock.position()
            start = max(start, head + self.lead())  # placed again, exactly, when the job starts
            full = full and start <= plan.origin
        if start >= plan.end - TICK_S:
            self.plan = plan
            return
        self._job_seq += 1
        job = Job(self._job_seq, start, plan, reason, trigger, time.perf_counter(), replan_wall, head)
        self._last_from = start
        self.plan = plan
        self._jobs.put(job)
        self._job_posted.set()

    def lead(self) -> float:
        """How far ahead of the play head a live splice starts (see BridgeConfig.lead_s, latency.Lead)."""
        return self._lead()

    def _worker(self) -> None:
        skipped: Job | None = None  # a job superseded before it started
        while not self._stop.is_set():
            job = self._jobs.get()
            if job is None:
                return
            self._job_posted.clear()  # before draining: a job posted after this sets it again
            while True:  # only the newest job runs, covering those it supersedes
                try:
                    nxt = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    return
                job = _supersede(job, nxt)
            if skipped is not None:
                job, skipped = _supersede(skipped, job), None
            if job.seq != self._job_seq:
                skipped = job
                continue
            try:
                self._run_job(job)
            except EmsyncError as exc:
                self.last_error = str(exc)
                self._await_regen = None
                log.warning("generation failed: %s", exc)
            except Exception as exc:
                self.last_error = f"generation failed: {exc}"
                self._await_regen = None
                log.exception("generation failed")
            finally:
                if self.state == "generating" and self._jobs.empty():
                    self.state = "running"

    def _run_job(self, job: Job) -> None:
        plan, cfg = job.plan, self.cfg
        t_start = time.perf_counter()
        head = lead = None
        if job.head is not None and self.mode == "live" and self.live.playing:
            # The splice is placed now, not at submit: time the job waited for the worker must not
            # let the play head pass it (old notes after it would already have been sent).
            head, lead = self.clock.position(t_start), self.lead()
            job = replace(job, from_time=min(max(job.from_time, head + lead), plan.end - TICK_S))
        tick = max(0, tick_of(job.from_time - plan.origin))
        primer_full = primer_until(self.tokens, tick) if tick > 0 else []
        primer, dropped = trim_primer(primer_full, cfg.primer_tokens)
        # The splice sits on the token grid: the new tokens start at this tick, so the old score is
        # replaced from exactly there (from_time itself may lie up to half a tick later).
        replaced = plan.origin + tick * TICK_S if tick > 0 else plan.origin
        self.score.replace_from(replaced)
        self._spliced_seq = job.seq  # the score follows this job's plan from `replaced` on
        # A superseded job still changed the score from its start: the next manifest must cover
        # that too, or REAPER would keep older items there.
        self._uncommitted_from = replaced if self._uncommitted_from is None else min(self._uncommitted_from, replaced)
        trace = None
        if self.scheduler is not None:
            prev = self._await_regen
            if head is None:  # not playing: nothing is heard, nothing to trace
                self._await_regen = None
            elif prev is not None and prev.first_note is not None and prev.note_time < replaced - 1e-9:
                pass  # an earlier splice's first note stays in the score: it answers this change too
            elif job.trigger_wall is not None:
                # A change whose job was superseded before it made a note is answered by this one.
                trigger = job.trigger_wall if prev is None or prev.first_note is not None \
                    else min(prev.trigger, job.trigger_wall)
                trace = RegenTrace(job.reason, trigger, max(trigger, job.replan_wall or job.trigger_wall),
                                   job.submit_wall, head_at_submit=job.head, job_start=t_start,
                                   head_at_start=head, lead=lead, splice=replaced)
                self._await_regen = trace
            self.scheduler.notify()
        # A live splice mid-piece starts with a note, not a rest: the user hears the change at once.
        sampling = SamplingConfig(temperature=cfg.temperature, top_p=cfg.top_p, seed=cfg.seed + job.seq,
                                  valence_guidance=cfg.valence_guidance, mode_from_valence=cfg.mode_from_valence,
                                  attack_at_start=self.mode == "live" and tick > 0, grid_guard=cfg.grid_guard,
                                  drum_feel=cfg.drum_feel)
        conditioning = plan.conditioning()
        start_time = dropped * TICK_S  # the generation clock (0 = plan.origin) where the primer starts
        # Live: notes go out as soon as they are sampled (a same-tick cancellation is withdrawn),
        # so the lead only has to cover the first token, not the first whole tick. The drums get
        # the human feel generate() gives the generation (`Generation.feel`: same arguments), never
        # moved before the splice.
        stream = TokenStream(origin=plan.origin, tick=tick, early=self.mode == "live",
                             feel=drum_feel(conditioning, sampling, start_time))
        new_tokens: list[int] = []
        first_note: list[float] = []  # live: wall when the first regenerated note-on was appended
        gen_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{os.getpid()}-{job.seq}"
        self.generation = {"id": gen_id, "from": replaced, "end": plan.end, "reason": job.reason,
                           "cursor": replaced, "complete": False, "tokens": 0, "started": utc_now_iso()}
        self.state = "generating"
        self.tokens = list(primer_full)

        def on_token(tok: int, cursor: float) -> bool:
            if job.seq != self._job_seq or self._stop.is_set():
                return True
            if trace is not None and trace.first_token is None:
                trace.first_token = time.perf_counter()
            new_tokens.append(tok)
            self.tokens.append(tok)
            evs = stream.feed(tok)
            for gone in stream.take_retracted():
                self.score.retract(gone)
            self.score.append(evs, until=plan.origin + cursor - TICK_S)
            if evs and self.scheduler is not None:
                if head is not None and not first_note and any(e.on for e in evs):
                    first_note.append(time.perf_counter())
                    self._lead.record(first_note[0] - t_start)  # what the lead has to cover
                    if trace is not None:
                        trace.first_note = first_note[0]
                        trace.note_time = min(e.time for e in evs if e.on)
                self.scheduler.notify()
            self.generation["cursor"] = plan.origin + cursor
            self.generation["tokens"] = len(new_tokens)
            if self.mode == "live":  # no further ahead of the play head than needed
                while (plan.origin + cursor > self.clock.position() + cfg.max_ahead_s
                       and job.seq == self._job_seq and not self._stop.is_set()):
                    self._job_posted.wait(0.05)  # a new job wakes it at once
            return False

        gen = generate(self.engine, plan.duration, conditioning, sampling, primer=primer or None,
                       start_time=start_time, on_token=on_token)
        if job.seq != self._job_seq or self._stop.is_set():
            return  # superseded: the newer job replaces the tail
        if trace is not None and trace.first_note is None and self._await_regen is trace:
            self._await_regen = None  # finished without a note (a rest to the end): nothing to hear
        tail = stream.finish(tick_of(plan.duration))
        self.score.append(tail, until=plan.end)
        if self.scheduler is not None:
            self.scheduler.notify()
        self.generation.update(complete=True, wall_s=time.perf_counter() - t_start, truncated=gen.truncated,
                               cursor=plan.end, engine=gen.engine, provider=gen.provider,
                               hits=sum(h.hit_time is not None for h in gen.hits), boundaries=len(gen.hits))
        self.state = "running"
        if self.mode == "commit":
            start = min(self._uncommitted_from, replaced) if self._uncommitted_from is not None else replaced
            self._commit(plan, start, None if start <= plan.origin + 1e-9 else start, gen_id)
        self._next_status = 0.0

    def _commit(self, plan: Plan, start: float, replace_from: float | None, gen_id: str | None = None) -> None:
        gen_id = gen_id or (time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{os.getpid()}-{self._job_seq}c")
        events = list(self.score.events)
        tempo = self.tempo_map()
        if self.cfg.quantize_qn:
            events = commit_mod.quantize_events(events, tempo, self.cfg.quantize_qn)
        m = commit_mod.commit(self.spool, gen_id, events, tempo, start, plan.end, replace_from=replace_from,
                              project_id=self.project.project_id if self.project else "",
                              project_written_at=self.project.written_at if self.project else "",
                              layout=self.cfg.layout)
        self._uncommitted_from = None
        self.last_commit = {"generation_id": m.generation_id, "replace_from": m.replace_from, "files": [i.file for i in m.items],
                            "written_at": m.written_at}
        log.info("committed %s: %d MIDI files from %.3f s", m.generation_id, len(m.items), start)

    # ------------------------------------------------------------------ status

    def status(self, brief: bool = False) -> dict:
        osc = self.osc
        counters = dict(osc.counters) if osc else {}
        sched = self.scheduler
        plan = self.plan
        seen = None if self.live.last_message_wall is None else round(time.perf_counter() - self.live.last_message_wall, 3)
        d = {
            "version": protocol.PROTOCOL_VERSION,
            "kind": "emsync.status",
            "state": self.state,
            "mode": self.mode,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "updated_at": utc_now_iso(),
            "spool": str(self.spool),
            "osc": {"host": osc.host if osc else self.cfg.osc_host, "port": osc.port if osc else self.cfg.osc_port,
                    "received": counters.get("received", 0), "accepted": counters.get("accepted", 0),
                    "rejected": counters.get("rejected", 0), "unknown": counters.get("unknown", 0),
                    "malformed": counters.get("malformed", 0), "denied": counters.get("denied", 0),
                    "queue_full_dropped": osc.dropped_full if osc else 0,
                    "reaper": f"{self.cfg.reaper_host}:{self.cfg.reaper_port}",
                    "reaper_seen_s_ago": seen},
            "reaper": ReaperHealth(seen, self.project.written_at if self.project else None,
                                   read_import_result(self.spool)).as_dict(),
            "transport": {"playing": self.live.playing, "position": round(self.clock.position(), 4),
                          "tempo": self.live.tempo, "playrate": self.live.playrate, "repeat": self.live.repeat,
                          "last_marker": self.live.last_marker, "last_region": self.live.last_region},
            "project": {"loaded": self.project is not None,
                        "written_at": self.project.written_at if self.project else None,
                        "id": self.project.project_id if self.project else None,
                        "video_items": len(self.project.video_items) if self.project else 0,
                        "markers": len(self.markers()), "regions": len(self.regions())},
            "plan": None if plan is None else {"origin": plan.origin, "end": plan.end,
                                               "boundaries": list(plan.boundaries)[:256],
                                               "emotions": [list(e) for e in plan.emotions][:256],
                                               "policy": self.cfg.policy,
                                               "fitted_tempo": plan.fitted_tempo.to_dict()},
            "generation": dict(self.generation),
            "commit": dict(self.last_commit),
            "model": {"name": getattr(self.model_files, "name", None),
                      "trained": getattr(self.model_files, "trained", None),
                      "engine": getattr(self.engine, "name", None), "provider": getattr(self.engine, "provider", None)},
            "live": None if sched is None else {
                "port": getattr(self.sink, "name", None), "api": getattr(self.sink, "api", None),
                "sent": sched.sent, "late_skipped": sched.late_skipped, "sounding": len(sched.sounding),
                "silences": dict(sched.silences), "relocks": self.clock.relocks, "lead_s": round(self.lead(), 4),
                "realtime": sched.realtime_active},
            "last_error": self.last_error,
            "threads": {"restarts": dict(self.thread_restarts)},
        }
        if brief and d["plan"]:
            d["plan"]["boundaries"] = d["plan"]["boundaries"][:64]
            d["plan"]["emotions"] = d["plan"]["emotions"][:64]
        return d

    def write_status(self) -> None:
        self._next_status = time.perf_counter() + self.cfg.status_interval_s
        try:
            write_json_atomic(self.spool / protocol.STATUS_FILE, self.status())
        except (OSError, ValueError) as exc:
            log.warning("cannot write status.json: %s", exc)


def _supersede(old: Job, new: Job) -> Job:
    """`new` replaces `old`, which never started. The plan `old` was made against was never
    generated, but `new`'s start was found by comparing with it: start no later than `old` would
    have, and answer `old`'s trigger too."""
    triggers = [t for t in (old.trigger_wall, new.trigger_wall) if t is not None]
    return replace(new, from_time=max(new.plan.origin, min(old.from_time, new.from_time)),
                   trigger_wall=min(triggers) if triggers else None)


def _overlay(base: dict, slots: dict[int, Slot], make) -> dict:
    """Overlay OSC bank slots (slot -> Slot) on project.json entries (number -> entry).

    A slot whose number is empty means the bank holds fewer entries than that: the bank then lists
    every marker, and it alone is the truth. Otherwise slots replace entries with the same number.
    """
    if not slots:
        return base
    seen = {}
    complete = False
    for slot in sorted(slots):
        s = slots[slot]
        if s.number is not None and s.number.strip() == "":
            complete = True
            continue
        if s.time is None:
            continue
        num_text = (s.number or "").strip()
        n = int(num_text) if num_text.isdigit() else None
        if n is None:
            # No number yet: take the entry at this bank position, if project.json has it.
            ordered = sorted(base.values(), key=lambda m: (m.position, m.index))
            n = ordered[slot - 1].index if slot - 1 < len(ordered) else 100_000 + slot
            if s.name is None and n in base:
                s = replace(s, name=base[n].name)
        if s.name is None and n in base:
            s = replace(s, name=base[n].name)
        seen[n] = make(n, s)
    if complete:
        return seen
    out = dict(base)
    out.update(seen)
    return out
