"""Live playback: a clock locked to REAPER's play position and a scheduler that sends each note at
its project time.

REAPER reports `/time` about 30 times a second (reaper-integration.md §1.3, §6), too coarse to
time notes, so `PlayClock` extrapolates between reports with `time.perf_counter()` and nudges its
anchor a fraction of the way toward each report (UDP and REAPER's timer jitter would otherwise
shake every note by milliseconds). A report far from the estimate is a seek or loop wrap: the clock
re-locks at once and the scheduler silences what was sounding.

`Scheduler.pump(wall)` does one step with an explicit wall time, so tests and benches can drive it
synchronously; `Scheduler.start()` runs it in a thread that sleeps until the next event and spins
the last ~1.5 ms (thread wake-ups are late by up to a millisecond or more).
"""

from __future__ import annotations

import bisect
import logging
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from emsync_bridge.bridge.events import NoteEvent, all_notes_off, note_off
from emsync_bridge.music.midi import CHANNELS

log = logging.getLogger(__name__)


class PlayClock:
    """REAPER's play position in project seconds at any `perf_counter()` time."""

    def __init__(self, jump_s: float = 0.12, slew: float = 0.1, slew_behind: float = 0.02):
        self.jump_s = jump_s  # a report this far from the estimate is a seek/loop wrap
        self.slew = slew  # fraction of the error corrected per report ...
        # ... but only this much when the report is behind the estimate: a report that sat in a
        # socket or a queue looks behind, one that is ahead cannot be late (so trust it more).
        self.slew_behind = slew_behind
        self.playing = False
        self.rate = 1.0  # REAPER's play rate
        self.anchor_pos = 0.0
        self.anchor_wall = 0.0
        self._fresh = 0  # reports left to lock hard after play starts
        self.relocks = 0

    def position(self, wall: float | None = None) -> float:
        if not self.playing:
            return self.anchor_pos
        wall = time.perf_counter() if wall is None else wall
        return self.anchor_pos + (wall - self.anchor_wall) * self.rate

    def wall_at(self, pos: float) -> float:
        """When the play head reaches `pos` (assuming no jump)."""
        return self.anchor_wall + (pos - self.anchor_pos) / self.rate

    def start(self, pos: float | None, wall: float) -> None:
        self.anchor_pos = self.anchor_pos if pos is None else pos
        self.anchor_wall = wall
        self.playing = True
        # REAPER's /play arrives before the first /time of the run (see report()).
        self._fresh = 2

    def stop(self, pos: float | None = None) -> None:
        if self.playing:
            self.anchor_pos = self.position()
        if pos is not None:
            self.anchor_pos = pos
        self.playing = False

    def set_rate(self, rate: float, wall: float) -> None:
        self.anchor_pos = self.position(wall)
        self.anchor_wall = wall
        self.rate = rate

    def report(self, pos: float, wall: float) -> bool:
        """Apply a `/time` report received at `wall`; True if it was a jump (seek, loop wrap)."""
        if not self.playing:
            jumped = abs(pos - self.anchor_pos) > 1e-6
            self.anchor_pos = pos
            return jumped
        err = pos - self.position(wall)
        if self._fresh > 0 and 0 < err <= self.jump_s:
            # Just started: a report ahead of the estimate means the start anchor was late; take
            # it whole. One behind it is more likely a report that sat in a queue: slew as usual.
            self._fresh -= 1
            self.anchor_pos, self.anchor_wall = pos, wall
            return False
        if abs(err) > self.jump_s:
            self.anchor_pos, self.anchor_wall = pos, wall
            self.relocks += 1
            return True
        self.anchor_pos = self.position(wall) + (self.slew if err > 0 else self.slew_behind) * err
        self.anchor_wall = wall
        return False


@dataclass(frozen=True, slots=True)
class Cut:
    """In a `LiveScore`: everything sounding stops here (note-offs + all-notes-off) before the
    regenerated material starts. Sorts before note events at the same time."""

    time: float


@dataclass
class LiveScore:
    """The events of the current score in project time, in time order, plus where generation has
    got to. Regeneration replaces the tail from a time on (`replace_from`).

    `times[i]` is when the scheduler takes `events[i]`: its own time, except for an event that
    arrived after the scheduler had passed that time (a drum hit the human feel plays ahead of the
    beat while generation runs late): that one waits right after what was taken, so it goes out
    at once (the scheduler's late rule still applies to its own time)."""

    events: list = field(default_factory=list)  # NoteEvent | Cut
    times: list[float] = field(default_factory=list)
    version: int = 0
    generated_until: float = 0.0
    replaced_at: float = 0.0  # where the last replacement started
    consumed: int = 0  # events before this index were already taken by the scheduler
    lock: threading.RLock = field(default_factory=threading.RLock)

    def append(self, events, until: float | None = None) -> None:
        """Add events, each in its place in time (after those at the same time). `until`: the
        generation has got this far (it may still add drum hits the feel moves before it)."""
        with self.lock:
            for ev in events:
                self._insert(ev)
            if until is not None:
                self.generated_until = max(self.generated_until, until)

    def _insert(self, ev) -> None:
        i = len(self.times)
        if i and self.times[-1] > ev.time:
            i = min(max(bisect.bisect_right(self.times, ev.time), self.consumed), len(self.times))
        self.events.insert(i, ev)
        self.times.insert(i, max(ev.time, self.times[i - 1]) if i else ev.time)

    def retract(self, ev: NoteEvent) -> None:
        """Withdraw a note-on appended moments ago (`TokenStream(early=True)`): removed if the
        scheduler has not taken it yet, else ended at once by a note-off at its own time."""
        with self.lock:
            i = len(self.events) - 1
            while i >= 0 and self.times[i] >= ev.time - 1e-9:
                if self.events[i] is ev:
                    if i >= self.consumed:
                        del self.events[i]
                        del self.times[i]
                        return
                    break
                i -= 1
            self._insert(NoteEvent(ev.time, False, ev.instrument, ev.pitch))

    def replace_from(self, t: float) -> None:
        """Drop everything at or after `t`, close notes still sounding at `t` with a `Cut` there."""
        with self.lock:
            i = bisect.bisect_left(self.times, t - 1e-9)
            del self.events[i:]
            del self.times[i:]
            self.events.append(Cut(t))
            self.times.append(t)
            self.generated_until = t
            self.replaced_at = t
            self.version += 1

    def clear(self, t: float = 0.0) -> None:
        with self.lock:
            self.events.clear()
            self.times.clear()
            self.generated_until = t
            self.replaced_at = float("-inf")
            self.version += 1

    def notes(self) -> list[NoteEvent]:
        with self.lock:
            return [e for e in self.events if isinstance(e, NoteEvent)]


class Scheduler:
    """Sends a `LiveScore`'s events to a `MidiSink` at their project times on a `PlayClock`."""

    def __init__(self, sink, clock: PlayClock, score: LiveScore | None = None, *, late_s: float = 0.08,
                 spin_s: float = 0.0015, realtime: bool = False):
        self.sink = sink
        self.clock = clock
        self.score = score or LiveScore()
        self.late_s = late_s  # a note-on later than this is skipped (generator fell behind)
        self.spin_s = spin_s
        self.realtime = realtime  # ask for real-time scheduling of the thread (see _run)
        self.realtime_active = False
        self.lock = threading.RLock()
        self.wake = threading.Condition(self.lock)
        self.idx = 0
        self._version = self.score.version
        self.sounding: dict[tuple[int, int], float] = {}  # (channel, pitch) -> event time
        self.sent = 0
        self.late_skipped = 0
        self.silences: Counter[str] = Counter()
        self.errors: list[tuple[float, float]] = []  # (intended project time, estimated at send)
        self.record_errors = False
        self._thread: threading.Thread | None = None
        self._running = False
        self.first_send_hook = None  # callable(NoteEvent, wall) for benches

    # -- transport (called by the daemon's control loop)

    def play(self, pos: float | None, wall: float | None = None) -> None:
        with self.lock:
            wall = time.perf_counter() if wall is None else wall
            self.silence("play")
            self.clock.start(pos, wall)
            self._seek_index(self.clock.position(wall))
            self.wake.notify()

    def stop(self, pos: float | None = None) -> None:
        with self.lock:
            self.clock.stop(pos)
            self.silence("stop")
            self.wake.notify()

    def report(self, pos: float, wall: float, reason: str = "seek") -> bool:
        """A `/time` report; on a jump, silence and continue from the new position."""
        with self.lock:
            if not self.clock.report(pos, wall):
                return False
            self.silence(reason)
            self._seek_index(self.clock.position(wall))
            self.wake.notify()
            return True

    def set_rate(self, rate: float, wall: float | None = None) -> None:
        with self.lock:
            self.clock.set_rate(rate, time.perf_counter() if wall is None else wall)
            self.wake.notify()

    def notify(self) -> None:
        """New events were appended or the score was replaced."""
        with self.lock:
            self.wake.notify()

    def silence(self, reason: str) -> None:
        """Note-off for every sounding note, then all-notes-off on every channel we use."""
        with self.lock:
            for ch, pitch in list(self.sounding):
                self._send(note_off(ch, pitch), None)
            self.sounding.clear()
            for ch in sorted(set(CHANNELS.values())):
                self._send(all_notes_off(ch), None)
            self.silences[reason] += 1

    def _seek_index(self, pos: float) -> None:
        with self.score.lock:
            self.idx = bisect.bisect_left(self.score.times, pos - 1e-9)
            self._version = self.score.version
            self.score.consumed = self.idx

    def _send(self, msg, project_time) -> None:
        try:
            self.sink.send(msg, project_time) if _takes_time(self.sink) else self.sink.send(msg)
        except Exception as exc:  # a port that went away must not kill playback bookkeeping
            log.warning("MIDI send failed: %s", exc)

    # -- the step

    def pump(self, wall: float | None = None) -> float | None:
        """Send everything due at `wall`; return the wall time of the next event (None: idle)."""
        with self.lock:
            if not self.clock.playing:
                return None
            wall = time.perf_counter() if wall is None else wall
            pos = self.clock.position(wall)
            score = self.score
            with score.lock:
                if score.version != self._version:
                    # The tail was replaced. Ahead of the play head: events before the replacement
                    # are unchanged and the Cut there will silence; behind it: silence now and go on
                    # from the play head.
                    self._version = score.version
                    done = bisect.bisect_right(score.times, pos + 2e-4)
                    if score.replaced_at <= pos + 2e-4:
                        self.silence("regenerate")
                        self.idx = done
                    else:
                        self.idx = min(self.idx, done, len(score.events))
                events, n = score.events, len(score.events)
                while self.idx < n and score.times[self.idx] <= pos + 2e-4:
                    ev = events[self.idx]
                    self.idx += 1
                    if isinstance(ev, Cut):
                        self.silence("regenerate")
                        continue
                    key = (ev.channel, ev.pitch)
                    if ev.on:
                        if pos - ev.time > self.late_s:
                            self.late_skipped += 1
                            continue
                        if key in self.sounding:
                            self._send(note_off(*key), ev.time)
                        self._send(ev.msg(), ev.time)
                        self.sounding[key] = ev.time
                        if self.first_send_hook is not None:
                            self.first_send_hook(ev, wall)
                    else:
                        if key not in self.sounding:
                            continue
                        del self.sounding[key]
                        self._send(ev.msg(), ev.time)
                    self.sent += 1
                    if self.record_errors:
                        self.errors.append((ev.time, pos))
                score.consumed = self.idx
                nxt = score.times[self.idx] if self.idx < n else None
            return None if nxt is None else self.clock.wall_at(nxt)

    # -- the thread

    def start(self) -> None:
        if self._thread is not None:
            return
        self._running = True
        self._thread = threading.Thread(target=self._run, name="emsync-scheduler", daemon=True)
        self._thread.start()

    def close(self, reason: str = "shutdown") -> None:
        with self.lock:
            self._running = False
            self.wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self.silence(reason)

    def _run(self) -> None:
        # Under CPU pressure a woken thread can wait milliseconds for a core even at nice -10
        # (measured: p99 7 ms at 90 % CPU pressure on 2 cores; SCHED_FIFO: p99 0.02 ms). The
        # thread sleeps between notes and spins at most spin_s before each, so real-time
        # priority costs little CPU. Best effort: needs CAP_SYS_NICE or an rtprio limit.
        if self.realtime:
            self.realtime_active = request_realtime()
        if not self.realtime_active:
            raise_thread_priority()
        while self._running:
            try:
                nxt = self.pump()
            except Exception:  # keep playing whatever happens; the daemon logs and reports it
                log.exception("scheduler step failed")
                nxt = None
            now = time.perf_counter()
            if nxt is None:
                with self.lock:
                    if self._running:
                        self.wake.wait(0.02)
                continue
            delay = nxt - now
            if delay > self.spin_s:
                with self.lock:
                    if self._running:
                        self.wake.wait(min(delay - self.spin_s, 0.05))
                continue
            while time.perf_counter() < nxt:
                time.sleep(0)  # spin, but let other Python threads run


def request_realtime(priority: int = 10) -> bool:
    """SCHED_FIFO for the calling thread (Linux); False where not permitted or not supported."""
    if not hasattr(os, "sched_setscheduler"):
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return True
    except (OSError, AttributeError):
        log.info("real-time scheduling not permitted for the MIDI scheduler (needs CAP_SYS_NICE or an "
                 "rtprio limit); using normal priority")
        return False


def raise_thread_priority(native_id: int | None = None) -> None:
    """Best effort: a higher scheduling priority for a thread of this process (default: the
    calling one). Linux only (per-thread nice -10); needs CAP_SYS_NICE (root, or a raised
    RLIMIT_NICE). On a busy machine a waking thread otherwise waits milliseconds for a CPU.
    Failure changes nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id() if native_id is None else native_id
        if os.getpriority(os.PRIO_PROCESS, tid) > -10:
            os.setpriority(os.PRIO_PROCESS, tid, -10)
    except (OSError, AttributeError):
        log.debug("could not raise a thread's priority (needs CAP_SYS_NICE)")


_TAKES_TIME: dict[type, bool] = {}


def _takes_time(sink) -> bool:
    """Whether `sink.send` accepts the event's project time (recording sinks keep it)."""
    t = type(sink)
    if t not in _TAKES_TIME:
        import inspect

        try:
            _TAKES_TIME[t] = len(inspect.signature(sink.send).parameters) >= 2
        except (TypeError, ValueError):
            _TAKES_TIME[t] = False
    return _TAKES_TIME[t]
