"""TempoMap: seconds <-> QN <-> bar/beat with REAPER's linear-in-time ramps."""

from __future__ import annotations

import random

import pytest

from emsync_bridge.errors import EmsyncError
from emsync_bridge.timeline import TempoMap, TempoPoint


def integrate_qn(points: list[TempoPoint], t: float, steps: int = 2000) -> float:
    """Independent check: integrate bpm/60 numerically (midpoint rule), piece by piece so the
    tempo jumps at markers fall on piece edges."""

    def bpm(x: float) -> float:
        i = max(k for k, p in enumerate(points) if p.time <= x)
        cur, nxt = points[i], points[i + 1] if i + 1 < len(points) else None
        if cur.linear and nxt:
            return cur.bpm + (nxt.bpm - cur.bpm) * (x - cur.time) / (nxt.time - cur.time)
        return cur.bpm

    edges = [p.time for p in points if p.time < t] + [t]
    total = 0.0
    for a, b in zip(edges, edges[1:]):
        h = (b - a) / steps
        total += sum(bpm(a + (k + 0.5) * h) for k in range(steps)) * h / 60.0
    return total


RAMPS = [
    TempoPoint(0.0, 100.0, 4, 4, True),
    TempoPoint(6.0, 160.0, 4, 4, False),
    TempoPoint(10.0, 90.0, 7, 8, True),
    TempoPoint(14.0, 45.0, 7, 8, False),
]


def test_constant_tempo():
    m = TempoMap([TempoPoint(0.0, 120.0)])
    assert m.time_to_qn(1.5) == 3.0 and m.qn_to_time(3.0) == 1.5
    assert m.time_to_bar_beat(2.0) == (2, 1.0) and m.time_to_bar_beat(2.75) == (2, 2.5)
    assert m.time_to_qn(-1.0) == -2.0  # before the project start: extrapolated


def test_empty_map_defaults_to_120_and_later_first_point_extends_back():
    assert TempoMap([]).time_to_qn(1.0) == 2.0
    m = TempoMap([TempoPoint(4.0, 60.0, 3, 4)])
    assert m.time_to_qn(2.0) == 2.0 and m.time_signature_at(0.0) == (3, 4)


def test_step_change():
    m = TempoMap([TempoPoint(0.0, 120.0), TempoPoint(10.0, 60.0)])
    assert m.time_to_qn(10.0) == 20.0 and m.time_to_qn(12.0) == 22.0
    assert m.qn_to_time(21.0) == 11.0 and m.bpm_at(11.0) == 60.0


def test_ramps_match_numeric_integration():
    m = TempoMap(RAMPS)
    for t in (1.0, 3.3, 6.0, 8.5, 10.0, 12.2, 14.0, 17.0):
        assert m.time_to_qn(t) == pytest.approx(integrate_qn(RAMPS, t), abs=1e-6), t
    assert m.bpm_at(3.0) == pytest.approx(130.0) and m.bpm_at(12.0) == pytest.approx(67.5)
    assert m.bpm_at(20.0) == 45.0  # a ramp flag on the last point has nothing to ramp to


def test_ramp_round_trips():
    m = TempoMap(RAMPS)
    rng = random.Random(7)
    for _ in range(300):
        t = rng.uniform(-2.0, 30.0)
        assert m.qn_to_time(m.time_to_qn(t)) == pytest.approx(t, abs=1e-9)
        q = rng.uniform(0.0, 60.0)
        assert m.time_to_qn(m.qn_to_time(q)) == pytest.approx(q, abs=1e-9)


def test_nearly_flat_ramp_is_stable():
    m = TempoMap([TempoPoint(0.0, 120.0, linear=True), TempoPoint(100.0, 120.000001)])
    assert m.qn_to_time(m.time_to_qn(50.0)) == pytest.approx(50.0, abs=1e-9)


def test_bar_beat_across_meter_changes():
    # 4 bars of 4/4 at 120 (8 s), then 6/8 (3 QN per bar) at 90 QN/min.
    m = TempoMap([TempoPoint(0.0, 120.0, 4, 4), TempoPoint(8.0, 90.0, 6, 8)])
    assert m.time_to_bar_beat(8.0) == (5, 1.0)
    assert m.time_to_bar_beat(8.0 + 2.0) == (6, 1.0)  # 3 QN at 90 = 2 s
    assert m.time_to_bar_beat(8.0 + 1.0) == (5, pytest.approx(4.0))  # 1.5 QN = 3 eighths
    assert m.bar_beat_to_time(6, 1.0) == pytest.approx(10.0)
    assert m.bar_beat_to_time(3, 2.0) == pytest.approx(4.5)
    for bar in range(1, 10):
        for beat in (1.0, 2.5):
            q = m.bar_beat_to_qn(bar, beat)
            assert m.qn_to_bar_beat(q) == (bar, pytest.approx(beat))


def test_meter_change_mid_bar_starts_a_new_bar():
    # 4/4 at 60: the 3/4 marker lands 1.5 bars in; REAPER starts a new bar there.
    m = TempoMap([TempoPoint(0.0, 60.0, 4, 4), TempoPoint(6.0, 60.0, 3, 4)])
    assert m.time_to_bar_beat(5.0) == (2, 2.0)
    assert m.time_to_bar_beat(6.0) == (3, 1.0)
    assert m.time_to_bar_beat(9.0) == (4, 1.0)


def test_live_tempo_update():
    m = TempoMap([TempoPoint(0.0, 120.0), TempoPoint(10.0, 60.0)]).with_tempo_at(12.0, 120.0)
    assert m.time_to_qn(12.0) == 24.0
    assert TempoMap([]).with_tempo_at(0.0, 90.0).time_to_qn(2.0) == 3.0


def test_bad_tempo_rejected():
    with pytest.raises(EmsyncError, match="bad tempo"):
        TempoMap([TempoPoint(0.0, 0.0)])
