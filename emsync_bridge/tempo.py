"""A tempo map (REAPER's model of one): seconds <-> quarter notes (QN) <-> bar/beat.

A leaf beside `errors.py`: the music core generates on it, the timeline reads REAPER's into it, and
neither needs the other for that.

REAPER's gradual tempo change ramps the tempo linearly *in time* between two markers (SWS computes
it the same way), so within a ramp QN is quadratic in time and time comes back from a quadratic
formula. A time-signature change starts a new bar at its marker.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Iterable

from emsync_bridge.errors import EmsyncError


@dataclass(frozen=True)
class TempoPoint:
    """A REAPER tempo/time-signature marker.

    `linear`: the tempo ramps linearly *in time* from this point's bpm to the next point's bpm
    (REAPER's "gradual tempo change"); otherwise it holds until the next point.
    """

    time: float
    bpm: float
    num: int = 4
    denom: int = 4
    linear: bool = False


@dataclass(frozen=True)
class _Segment:
    time: float  # start, project seconds
    qn: float  # QN at start
    bpm: float  # tempo at start
    slope: float  # d(bpm)/d(seconds); 0 for constant segments
    num: int
    denom: int

    def qn_at(self, t: float) -> float:
        dt = t - self.time
        return self.qn + dt * (self.bpm + 0.5 * self.slope * dt) / 60.0

    def time_at(self, q: float) -> float:
        dq = q - self.qn
        if self.slope == 0.0:
            return self.time + 60.0 * dq / self.bpm
        # Solve slope/120 dt^2 + bpm/60 dt - dq = 0 in the form that stays accurate as slope -> 0.
        disc = self.bpm * self.bpm + 120.0 * self.slope * dq
        if disc < 0.0:  # beyond where a falling ramp would reach 0 bpm (only outside the segment)
            disc = 0.0
        return self.time + 120.0 * dq / (self.bpm + math.sqrt(disc))

    def bpm_at(self, t: float) -> float:
        return self.bpm + self.slope * (t - self.time)


@dataclass(frozen=True)
class _Meter:
    qn: float  # where this time signature starts (a bar line)
    bar: int  # 0-based bar number of that bar line
    num: int
    denom: int

    @property
    def qn_per_bar(self) -> float:
        return self.num * 4.0 / self.denom


class TempoMap:
    """Seconds <-> QN <-> (bar, beat) for a list of REAPER tempo markers.

    Before the first marker the first marker's tempo and meter hold (REAPER writes a marker at 0
    when the map has any change; "Send project" always does). Bars and beats are 1-based like
    REAPER's ruler; a beat is one time-signature denominator note.
    """

    def __init__(self, points: Iterable[TempoPoint]):
        pts = sorted(points, key=lambda p: p.time)
        if not pts:
            pts = [TempoPoint(0.0, 120.0)]
        for p in pts:
            if not (p.bpm > 0 and math.isfinite(p.bpm) and math.isfinite(p.time)):
                raise EmsyncError(f"tempo point at {p.time} s has a bad tempo {p.bpm}")
        if pts[0].time > 0.0:
            first = pts[0]
            pts.insert(0, TempoPoint(0.0, first.bpm, first.num, first.denom, False))
        self.points: tuple[TempoPoint, ...] = tuple(pts)
        segs: list[_Segment] = []
        qn = 0.0
        for i, p in enumerate(pts):
            nxt = pts[i + 1] if i + 1 < len(pts) else None
            slope = 0.0
            if p.linear and nxt is not None and nxt.time > p.time:
                slope = (nxt.bpm - p.bpm) / (nxt.time - p.time)
            seg = _Segment(p.time, qn, p.bpm, slope, p.num, p.denom)
            segs.append(seg)
            if nxt is not None:
                qn = seg.qn_at(nxt.time)
        self._segs = segs
        self._seg_times = [s.time for s in segs]
        self._seg_qns = [s.qn for s in segs]
        meters: list[_Meter] = [_Meter(0.0, 0, segs[0].num, segs[0].denom)]
        for s in segs[1:]:
            last = meters[-1]
            if (s.num, s.denom) == (last.num, last.denom):
                continue
            # The new meter starts a new bar; a partial bar before it still counts as a bar.
            bars = (s.qn - last.qn) / last.qn_per_bar
            whole = math.floor(bars + 1e-9)
            bar = last.bar + (whole if abs(bars - whole) < 1e-9 else whole + 1)
            meters.append(_Meter(s.qn, bar, s.num, s.denom))
        self._meters = meters
        self._meter_qns = [m.qn for m in meters]

    # -- seconds <-> QN

    def _seg_for_time(self, t: float) -> _Segment:
        i = bisect.bisect_right(self._seg_times, t) - 1
        return self._segs[max(i, 0)]

    def _seg_for_qn(self, q: float) -> _Segment:
        i = bisect.bisect_right(self._seg_qns, q) - 1
        return self._segs[max(i, 0)]

    def time_to_qn(self, t: float) -> float:
        return self._seg_for_time(t).qn_at(t)

    def qn_to_time(self, q: float) -> float:
        return self._seg_for_qn(q).time_at(q)

    def bpm_at(self, t: float) -> float:
        return self._seg_for_time(t).bpm_at(t)

    def time_signature_at(self, t: float) -> tuple[int, int]:
        m = self._meter_for_qn(self.time_to_qn(t))
        return m.num, m.denom

    # -- QN <-> bar/beat

    def _meter_for_qn(self, q: float) -> _Meter:
        i = bisect.bisect_right(self._meter_qns, q + 1e-9) - 1
        return self._meters[max(i, 0)]

    def qn_to_bar_beat(self, q: float) -> tuple[int, float]:
        """(bar, beat), both 1-based; beat is fractional, in denominator notes."""
        m = self._meter_for_qn(q)
        rel = (q - m.qn) / m.qn_per_bar
        whole = math.floor(rel + 1e-9)
        bar_start = m.qn + whole * m.qn_per_bar
        beat = (q - bar_start) * m.denom / 4.0
        return m.bar + whole + 1, max(beat, 0.0) + 1.0

    def bar_beat_to_qn(self, bar: int, beat: float = 1.0) -> float:
        i = bisect.bisect_right([m.bar for m in self._meters], bar - 1) - 1
        m = self._meters[max(i, 0)]
        return m.qn + (bar - 1 - m.bar) * m.qn_per_bar + (beat - 1.0) * 4.0 / m.denom

    def time_to_bar_beat(self, t: float) -> tuple[int, float]:
        return self.qn_to_bar_beat(self.time_to_qn(t))

    def bar_beat_to_time(self, bar: int, beat: float = 1.0) -> float:
        return self.qn_to_time(self.bar_beat_to_qn(bar, beat))

    def with_tempo_at(self, t: float, bpm: float) -> "TempoMap":
        """The map with the tempo at `t` replaced, as a live `/tempo/raw` update implies.

        Without a map from the Lua script this is all the daemon knows; with one it edits the
        segment holding `t` (REAPER's /tempo/raw edits the tempo marker at or before the cursor).
        """
        pts = list(self.points)
        i = max(bisect.bisect_right([p.time for p in pts], t) - 1, 0)
        p = pts[i]
        pts[i] = TempoPoint(p.time, bpm, p.num, p.denom, p.linear)
        return TempoMap(pts)
