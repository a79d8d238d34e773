"""Round trip: the Lua "Send project" output, read by the daemon's loader, gives the expected Timeline."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from emsync_bridge.timeline import Timeline, load_project_state

sys.path.insert(0, str(Path(__file__).parent))  # the shared stub, whatever pytest's import mode
from test_reaper_stub import sim  # noqa: E402, F401


@pytest.fixture
def timeline(sim):
    sim.run_script("EmSync - Send project.lua")
    state = load_project_state(sim.spool / "project.json")
    assert state.project_file.endswith("film.rpp") and state.time_selection.start == 10.0
    assert [t.instrument for t in state.target_tracks] == ["piano", "bass"]
    assert set(state.actions) >= {"send_project", "import", "regenerate"}
    return Timeline.from_state(state), sim


def test_video_project_mapping(timeline):
    tl, sim = timeline
    film, broll = sim.media["film"], sim.media["broll"]
    a, b = tl.video_items
    assert (a.file, b.file) == (film, broll)
    assert tl.video_to_project(10.0, item=0) == pytest.approx(7.0)  # 2 + (10 - 5) / 1
    assert tl.video_to_project(21.5, item=1) == pytest.approx(50.0)  # 40 + (21.5 - 1.5) / 2
    item, v = tl.project_to_video(50.0)
    assert item.file == broll and v == pytest.approx(21.5)
    item, v = tl.project_to_video(2.0)
    assert item.file == film and v == pytest.approx(5.0)
    assert tl.project_to_video(35.0) is None  # the gap between the items
    assert tl.video_to_project_all(10.0, file=film) == [pytest.approx(7.0)]
    assert tl.video_to_project_all(40.0, file=film) == []  # item A shows film 5..35 s only


def test_beats_follow_the_tempo_ramp_and_meter_change(timeline):
    tl, _ = timeline
    assert tl.project_to_qn(16.0) == pytest.approx(32.0)
    # 120 -> 80 bpm linear in time over 9.6 s: 9.6 * (120 + 80) / 2 / 60 = 16 QN.
    assert tl.project_to_qn(25.6) == pytest.approx(48.0)
    assert tl.project_to_qn(20.0) == pytest.approx(32.0 + (4 * 120 - 0.5 * (40 / 9.6) * 16) / 60)
    assert tl.project_to_qn(28.6) == pytest.approx(52.0)  # 3 s at 80 bpm
    assert tl.project_to_bar_beat(25.6) == (13, pytest.approx(1.0))  # 12 bars of 4/4, then 3/4
    assert tl.project_to_bar_beat(28.6) == (14, pytest.approx(2.0))
    assert tl.video_to_qn(10.0, item=0) == pytest.approx(14.0)  # project 7 s at 120 bpm
    for q in (0.0, 31.9, 40.0, 47.99, 60.0):
        assert tl.project_to_qn(tl.qn_to_project(q)) == pytest.approx(q, abs=1e-9)
    item, v = tl.qn_to_video(14.0)
    assert v == pytest.approx(10.0)


def test_markers_emotions_and_boundaries(timeline):
    tl, sim = timeline
    assert [(m.index, m.position) for m in tl.markers] == [(1, 12.0), (2, 20.0), (5, 45.0)]
    overrides = [(o.time, o.emotion.label, o.source) for o in tl.emotion_overrides()]
    assert overrides == [(20.0, "joy", "marker 2"), (30.0, "sadness", "region 1"), (45.0, "", "marker 5")]
    assert tl.emotion_at(46.0).valence == 0.5 and tl.emotion_at(46.0).arousal == -0.2
    assert tl.emotion_at(10.0) is None
    cuts = [8.0, 12.0, 14.0, 30.0]  # film time; project = video - 3 inside item A
    film = sim.media["film"]
    assert tl.cut_times(cuts, file=film) == [5.0, 9.0, 11.0, 27.0, 32.0, 40.0]  # + the edits at 32, 40
    assert tl.boundaries("cuts", cuts, file=film) == [5.0, 9.0, 27.0, 32.0, 40.0]
    assert tl.boundaries("markers") == [12.0, 20.0, 30.0, 38.0, 45.0, 55.0, 60.0]
    assert tl.boundaries("both", cuts, file=film) == [5.0, 12.0, 20.0, 30.0, 38.0, 45.0, 55.0, 60.0]
    assert tl.boundaries("both", cuts, file=film, start=10.0, end=40.0) == [12.0, 20.0, 30.0, 38.0]
