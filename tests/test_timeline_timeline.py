"""Timeline: video <-> project (offsets, playrate, several items), beats, emotions, boundaries."""

from __future__ import annotations

import random

import pytest

from emsync_bridge.errors import EmsyncError
from emsync_bridge.timeline import EMOTION_VA, Marker, TempoPoint, Timeline, VideoItem, parse_emotion
from emsync_bridge.timeline.state import Region

A = VideoItem("/v/film.mp4", position=10.0, length=20.0, take_offset=3.0, playrate=1.0)
B = VideoItem("/v/film.mp4", position=35.0, length=10.0, take_offset=40.0, playrate=0.5)  # slow motion
C = VideoItem("/v/other.mov", position=50.0, length=8.0, take_offset=-2.0, playrate=2.0)


def test_single_item_offset_and_playrate():
    tl = Timeline([B])
    assert tl.video_to_project(40.0) == 35.0
    assert tl.video_to_project(42.0) == 39.0  # half speed: 2 video s take 4 project s
    item, v = tl.project_to_video(39.0)
    assert item == B and v == 42.0
    assert tl.project_to_video(45.0) is None  # the item's end is exclusive


def test_negative_take_offset():
    tl = Timeline([C])
    assert tl.video_to_project(0.0) == 51.0  # the item starts 2 s before the video does
    assert tl.project_to_video(50.0)[1] == -2.0


def test_several_items_round_trip():
    tl = Timeline([C, A, B])
    assert [it.position for it in tl.video_items] == [10.0, 35.0, 50.0]
    rng = random.Random(3)
    for _ in range(200):
        p = rng.uniform(0.0, 60.0)
        hit = tl.project_to_video(p)
        if hit is None:
            assert not any(it.shows_project_time(p) for it in tl.video_items)
            continue
        item, v = hit
        assert item.video_to_project(v) == pytest.approx(p, abs=1e-9)
        assert p in [pytest.approx(x) for x in tl.video_to_project_all(v, item.file)]


def test_video_time_shown_twice():
    twice = VideoItem("/v/film.mp4", position=40.0, length=5.0, take_offset=3.0)
    tl = Timeline([A, twice])
    assert tl.video_to_project_all(4.0, "/v/film.mp4") == [11.0, 41.0]
    assert tl.video_to_project_all(4.0, "/v/other.mov") == []


def test_no_video_items_means_identity():
    tl = Timeline()
    assert tl.video_to_project(3.0) == 3.0 and tl.project_to_video(3.0) is None
    assert tl.video_to_qn(3.0) == 6.0


def test_beats_through_video_and_tempo():
    tl = Timeline([A], tempo=[TempoPoint(0.0, 120.0), TempoPoint(20.0, 60.0)])
    assert tl.video_to_qn(3.0) == 20.0  # project 10 s
    assert tl.video_to_qn(15.0) == 42.0  # project 22 s: 40 + 2
    assert tl.qn_to_video(42.0)[1] == pytest.approx(15.0)


def test_bad_playrate_rejected():
    with pytest.raises(EmsyncError, match="playrate"):
        Timeline([VideoItem("/v/x.mp4", 0.0, 1.0, playrate=0.0)])


@pytest.mark.parametrize("name, expected", [
    ("joy", EMOTION_VA["joy"]), ("SADNESS", EMOTION_VA["sadness"]), ("emo Anger", EMOTION_VA["anger"]),
    ("Emo: fear", EMOTION_VA["fear"]), ("emotion disgust", EMOTION_VA["disgust"]), ("  surprise ", EMOTION_VA["surprise"]),
    ("v=0.5 a=-0.2", (0.5, -0.2)), ("emo V=-1 A=1", (-1.0, 1.0)), ("a=.3, v=-.7", (-0.7, 0.3)),
])
def test_parse_emotion(name, expected):
    e = parse_emotion(name)
    assert (e.valence, e.arousal) == pytest.approx(expected)


@pytest.mark.parametrize("name", ["verse", "joyful", "v=1.2 a=0", "v=0.5", "emo", "", "v=a a=1", "emojoy"])
def test_not_an_emotion(name):
    assert parse_emotion(name) is None


def test_emotion_overrides_from_markers_and_regions():
    tl = Timeline(markers=[Marker(1, "Scene", 5.0), Marker(2, "joy", 10.0), Marker(3, "v=0.1 a=0.2", 30.0)],
                  regions=[Region(1, "emo fear", 20.0, 25.0)])
    assert [(o.time, o.source) for o in tl.emotion_overrides()] == [(10.0, "marker 2"), (20.0, "region 1"), (30.0, "marker 3")]
    assert tl.emotion_at(9.9) is None and tl.emotion_at(10.0).label == "joy"
    assert tl.emotion_at(26.0).label == "fear"  # holds after the region until the next override
    assert tl.marker_at_or_before(12.0).index == 2 and tl.marker_at_or_before(1.0) is None


def test_boundaries_policies_and_spacing():
    tl = Timeline([A], markers=[Marker(1, "hit", 17.0), Marker(2, "joy", 26.0)])
    cuts = [4.0, 6.0, 9.0, 10.5, 18.0, 40.0]  # video s; project = video + 7 inside A (10..30)
    assert tl.cut_times(cuts) == [11.0, 13.0, 16.0, 17.5, 25.0]  # 40 s video is off screen
    assert tl.boundaries("cuts", cuts) == [11.0, 16.0, 25.0]
    assert tl.boundaries("cuts", cuts, min_spacing=0.0) == [11.0, 13.0, 16.0, 17.5, 25.0]
    assert tl.boundaries("markers", cuts) == [17.0, 26.0]
    assert tl.boundaries("both", cuts) == [11.0, 17.0, 26.0]
    with pytest.raises(EmsyncError, match="policy"):
        tl.boundaries("scenes")


def test_edits_between_items_are_cuts():
    tl = Timeline([A, B])
    assert tl.cut_times() == [30.0, 35.0]  # A's end and B's start; not the film's first/last edge


def test_a_plain_split_is_not_a_cut():
    left = VideoItem("/v/film.mp4", position=10.0, length=5.0, take_offset=3.0)
    right = VideoItem("/v/film.mp4", position=15.0, length=5.0, take_offset=8.0)  # continues the shot
    faster = VideoItem("/v/film.mp4", position=20.0, length=5.0, take_offset=13.0, playrate=2.0)
    assert Timeline([left, right]).cut_times() == []
    assert Timeline([left, right, faster]).cut_times() == [20.0]  # the speed change is visible
