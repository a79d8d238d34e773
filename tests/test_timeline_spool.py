"""Spool: resolution, atomic writes, validation of project.json, requests and manifests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from emsync_bridge.atomic import write_json_atomic
from emsync_bridge.errors import EmsyncError
from emsync_bridge.timeline import (
    Manifest,
    ManifestItem,
    ensure_spool,
    load_manifest,
    load_project_state,
    poll_requests,
    resolve_spool_dir,
    spool_path,
    write_manifest,
)
from emsync_bridge.timeline.spool import parse_project_state


def test_resolve_spool_dir():
    assert resolve_spool_dir({"EMSYNC_SPOOL": "/x/y/"}, "linux") == Path("/x/y")
    assert resolve_spool_dir({"HOME": "/home/u"}, "linux") == Path("/home/u/.local/share/emsync-bridge/spool")
    assert resolve_spool_dir({"HOME": "/Users/u"}, "darwin") == Path("/Users/u/Library/Application Support/emsync-bridge/spool")
    with pytest.raises(EmsyncError, match="absolute"):
        resolve_spool_dir({"EMSYNC_SPOOL": "x"}, "linux")


def test_write_json_atomic(tmp_path):
    p = tmp_path / "a.json"
    write_json_atomic(p, {"b": 1, "a": [1.5, None]})
    write_json_atomic(p, {"b": 2})
    assert json.loads(p.read_text()) == {"b": 2}
    with pytest.raises(ValueError):
        write_json_atomic(p, {"x": float("nan")})
    assert json.loads(p.read_text()) == {"b": 2}  # the old file survives a failed write
    assert os.listdir(tmp_path) == ["a.json"]  # no temp files left


def project(tmp_path: Path, **over) -> dict:
    video = tmp_path / "film.mp4"
    video.write_bytes(b"x")
    d = {
        "version": 1, "kind": "emsync.project", "written_at": "2026-11-27T07:00:00Z",
        "video_items": [{"file": str(video), "position": 1.0, "length": 10.0, "take_offset": 2.0, "playrate": 1.5}],
        "markers": [{"index": 2, "name": "joy", "position": 4.0}, {"index": 1, "name": "a", "position": 3.0}],
        "regions": [{"index": 1, "name": "r", "position": 1.0, "end": 2.0}],
        "tempo_map": [{"time": 0, "bpm": 100, "num": 4, "denom": 4, "linear": False}],
        "time_selection": None, "cursor": 0, "target_tracks": [], "frame_rate": 25,
        "project": {"name": "p", "file": "", "id": "abc"}, "actions": {"panic": "_RSabc"},
    }
    d.update(over)
    return d


def write(tmp_path: Path, d) -> Path:
    p = tmp_path / "project.json"
    p.write_text(d if isinstance(d, str) else json.dumps(d))
    return p


def test_load_project_state(tmp_path):
    s = load_project_state(write(tmp_path, project(tmp_path)))
    assert s.video_items[0].playrate == 1.5 and s.video_items[0].video_to_project(5.0) == 3.0
    assert [m.index for m in s.markers] == [1, 2]  # sorted by position
    assert s.tempo_map[0].bpm == 100.0 and s.frame_rate == 25.0 and s.project_id == "abc"
    assert s.actions == {"panic": "_RSabc"} and s.time_selection is None


@pytest.mark.parametrize("text, msg", [
    ("", "is empty"),
    ('{"version": 1, "written_at": "x", "video_items": [{"fi', r"not valid JSON \(half-written or corrupt\)"),
    ("[1, 2", "not valid JSON"),
    ('{"version": 1, "written_at": "x", "cursor": NaN}', "not valid JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
])
def test_corrupt_project_json_is_one_clear_line(tmp_path, text, msg):
    p = tmp_path / "project.json"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(EmsyncError, match=msg) as exc:
        load_project_state(p)
    assert "\n" not in str(exc.value) and str(p) in str(exc.value)


@pytest.mark.parametrize("over, msg", [
    ({"version": 2}, "version 2 is not supported"),
    ({"kind": "other"}, "kind"),
    ({"video_items": {}}, "video_items must be an array"),
    ({"video_items": [{"file": "rel.mp4", "position": 0, "length": 1}]}, r"video_items\[0\].file must be an absolute path"),
    ({"video_items": [{"file": "/no/such/film.mp4", "position": 0, "length": 1}]}, "not an existing regular file"),
    ({"video_items": [{"file": "/", "position": 0, "length": 1}]}, "not an existing regular file"),
    ({"markers": [{"index": 1, "position": "3"}]}, r"markers\[0\].position must be a finite number"),
    ({"markers": [{"index": True, "position": 3}]}, "must be an integer"),
    ({"regions": [{"index": 1, "position": 5, "end": 4}]}, "before its position"),
    ({"tempo_map": [{"time": 0, "bpm": 0}]}, r"bpm must be in \[1.0, 960.0\]"),
    ({"tempo_map": [{"time": 0, "bpm": 120, "denom": 3}]}, "power of two"),
    ({"tempo_map": [{"time": 0, "bpm": 120}, {"time": 0, "bpm": 90}]}, "two points"),
    ({"time_selection": {"start": 5, "end": 5}}, "must be after start"),
    ({"cursor": 1e12}, "cursor must be in"),
    ({"markers": [{"index": 1, "position": 0, "name": "x" * 5000}]}, "too long"),
])
def test_invalid_fields_are_named(tmp_path, over, msg):
    d = project(tmp_path, **over)
    with pytest.raises(EmsyncError, match=msg) as exc:
        load_project_state(write(tmp_path, d))
    assert "\n" not in str(exc.value)


def test_playrate_must_be_positive(tmp_path):
    d = project(tmp_path)
    d["video_items"][0]["playrate"] = 0
    with pytest.raises(EmsyncError, match=r"playrate must be in \(0.0, 100.0\]"):
        parse_project_state(d)


def test_size_limit_and_symlinks(tmp_path):
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (8 * 1024 * 1024 + 1))
    with pytest.raises(EmsyncError, match="too large"):
        load_project_state(big)
    real = write(tmp_path, project(tmp_path))
    link = tmp_path / "link.json"
    link.symlink_to(real)
    with pytest.raises(EmsyncError, match="regular file"):
        load_project_state(link)
    with pytest.raises(EmsyncError, match="not found"):
        load_project_state(tmp_path / "missing.json")


def test_spool_path_never_escapes(tmp_path):
    spool = ensure_spool(tmp_path / "spool")
    assert spool_path(spool, "out/g1/piano.mid") == spool / "out" / "g1" / "piano.mid"
    for bad in ("../x", "out/../../x", "/etc/passwd", "out\\x", "C:x", "out//x", "./x", ""):
        with pytest.raises(EmsyncError):
            spool_path(spool, bad)
    outside = tmp_path / "outside"
    outside.mkdir()
    (spool / "out" / "evil").symlink_to(outside)
    with pytest.raises(EmsyncError, match="symlink"):
        spool_path(spool, "out/evil/piano.mid")
    (spool / "out" / "file.mid").symlink_to(outside / "f")
    with pytest.raises(EmsyncError, match="symlink"):
        spool_path(spool, "out/file.mid")


def test_ensure_spool_refuses_symlinked_subfolder(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (spool / "out").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(EmsyncError, match="real folder"):
        ensure_spool(spool)


def test_manifest_round_trip(tmp_path):
    spool = ensure_spool(tmp_path / "spool")
    (spool / "out" / "g1").mkdir()
    (spool / "out" / "g1" / "piano.mid").write_bytes(b"MThd")
    m = Manifest("g1", (ManifestItem("piano", "out/g1/piano.mid", "EmSync Piano", 2.0, 30.0, program=0, channel=2),),
                 replace_from=None, project_id="abc")
    write_manifest(spool, m)
    back = load_manifest(spool)
    assert back.items == m.items and back.generation_id == "g1" and back.project_id == "abc"
    raw = json.loads((spool / "out" / "manifest.json").read_text())
    assert raw["version"] == 1 and raw["replace_from"] is None
    with pytest.raises(EmsyncError, match="does not exist"):
        write_manifest(spool, Manifest("g2", (ManifestItem("bass", "out/g2/bass.mid", "EmSync Bass", 0.0, 1.0),)))
    with pytest.raises(EmsyncError, match="generation_id"):
        write_manifest(spool, Manifest("../g", ()))
    with pytest.raises(EmsyncError, match=r"items\[0\].file"):
        write_manifest(spool, Manifest("g3", (ManifestItem("bass", "../bass.mid", "EmSync Bass", 0.0, 1.0),)))


def test_poll_requests(tmp_path):
    spool = ensure_spool(tmp_path / "spool")
    req = spool / "requests"
    write_json_atomic(req / "0002-panic.json", {"version": 1, "kind": "emsync.request", "id": "0002", "type": "panic"})
    write_json_atomic(req / "0001-regenerate.json",
                      {"version": 1, "id": "0001", "type": "regenerate", "time": 12.5, "marker_index": 3})
    (req / "0003-bad.json").write_text('{"version": 1, "id": "0003", "type": "explode"}')
    (req / "0004-half.json").write_text('{"version": 1, "id": "00')
    (req / ".0005-tmp.json.x.tmp").write_text("{")  # still being written: skipped
    got = poll_requests(spool)
    assert [(r.id, r.type, r.time, r.marker_index) for r in got] == [("0001", "regenerate", 12.5, 3), ("0002", "panic", None, None)]
    assert sorted(os.listdir(req)) == [".0005-tmp.json.x.tmp", "rejected"]
    assert sorted(os.listdir(req / "rejected")) == ["0003-bad.json", "0004-half.json"]
    assert poll_requests(spool) == []


def test_project_state_watcher_keeps_last_good_state(tmp_path):
    from emsync_bridge.timeline import ProjectStateWatcher

    path = tmp_path / "project.json"
    w = ProjectStateWatcher(path)
    assert w.poll() is None and w.state is None  # no file yet
    write_json_atomic(path, project(tmp_path))
    first = w.poll()
    assert first is not None and w.poll() is None  # unchanged
    path.write_text('{"version": 1, "video_it')  # half-written (a non-atomic writer)
    assert w.poll() is None and w.state is first and "half-written" in w.error
    write_json_atomic(path, project(tmp_path, cursor=3.0))
    assert w.poll().cursor == 3.0 and w.error is None


def test_prune_generations_keeps_current_and_newest(tmp_path):
    from emsync_bridge.timeline import prune_generations

    spool = ensure_spool(tmp_path / "spool")
    for i, gen in enumerate(["g1", "g2", "g3", "g4"]):
        d = spool / "out" / gen
        d.mkdir()
        (d / "piano.mid").write_bytes(b"MThd")
        os.utime(d, ns=(i * 10**9, i * 10**9))
    write_manifest(spool, Manifest("g1", (ManifestItem("piano", "out/g1/piano.mid", "EmSync Piano", 0.0, 1.0),)))
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("x")
    (spool / "out" / "link").symlink_to(outside)
    os.utime(spool / "out" / "link", ns=(0, 0), follow_symlinks=False)
    removed = prune_generations(spool, keep=2)
    assert sorted(removed) == ["g2", "link"]
    assert sorted(os.listdir(spool / "out")) == ["g1", "g3", "g4", "manifest.json"]
    assert (outside / "keep.txt").exists()  # the link was removed, not followed
