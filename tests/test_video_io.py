"""Decoding edge cases, bad input, cache and the `analyze` CLI on real (synthetic) files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from emsync_bridge.errors import EmsyncError
from emsync_bridge.video.analysis import analyze_video
from emsync_bridge.video.decode import probe
from emsync_bridge.video.synth import Segment, make_video

FF = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
X264 = ["-c:v", "libx264", "-preset", "ultrafast"]


def ffmpeg(*args):
    subprocess.run([*FF, *map(str, args)], check=True)


def run_cli(*args, cache_home):
    env = dict(os.environ, XDG_CACHE_HOME=str(cache_home))
    return subprocess.run(
        [sys.executable, "-m", "emsync_bridge.cli", *map(str, args)],
        capture_output=True, text=True, env=env, timeout=120,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("io")
    f = {}
    # A clip with one hard cut at 1.0 s and audio.
    f["good"] = make_video(d / "good.mp4", [Segment("testsrc2", 1.0), Segment("smptehdbars", 1.0)],
                           size=(160, 90), fps=25)
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-t", 3, *X264, "-pix_fmt", "yuv420p",
           "-movflags", "+faststart", d / "fs.mp4")
    data = (d / "fs.mp4").read_bytes()
    (d / "truncated_tail.mp4").write_bytes(data[: len(data) // 3])  # index intact, data cut short
    (d / "truncated_head.mp4").write_bytes(f["good"].read_bytes()[:3000])  # no index at all
    (d / "empty.mp4").write_bytes(b"")
    (d / "notes.mp4").write_text("hello, I am not a video\n")
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440", "-t", 1, "-c:a", "aac", d / "audio.m4a")
    ffmpeg("-f", "lavfi", "-i", "color=red:size=8x8:rate=25", "-t", 0.4, *X264, "-pix_fmt", "yuv444p", d / "tiny.mp4")
    ffmpeg("-f", "lavfi", "-i", "color=red:size=8200x16:rate=25", "-t", 0.2, "-c:v", "mjpeg", "-pix_fmt", "yuvj420p",
           d / "huge.avi")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-frames:v", 1, *X264, "-pix_fmt", "yuv420p",
           d / "one_frame.mp4")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90", "-frames:v", 1, d / "still.png")
    for k in ["truncated_tail", "truncated_head", "empty", "notes", "tiny", "one_frame"]:
        f[k] = d / f"{k}.mp4"
    f["audio"], f["huge"], f["still"] = d / "audio.m4a", d / "huge.avi", d / "still.png"
    f["missing"] = d / "missing.mp4"
    f["dir"] = d
    return f


@pytest.mark.parametrize(
    "name, words",
    [
        ("missing", "no such file"),
        ("dir", "not a regular file"),
        ("empty", "empty file"),
        ("notes", "not a video"),
        ("truncated_head", "corrupt/truncated"),
        ("truncated_tail", "truncated"),
        ("audio", "audio-only"),
        ("tiny", "resolution 8x8"),
        ("huge", "resolution 8200x16"),
        ("one_frame", "zero duration"),
        ("still", "still image"),
    ],
)
def test_bad_input_is_one_clear_line(files, name, words):
    with pytest.raises(EmsyncError) as err:
        analyze_video(files[name], cache=False)
    msg = str(err.value)
    assert words in msg and "\n" not in msg


def test_decoding_timeout(files):
    with pytest.raises(EmsyncError, match="timed out"):
        analyze_video(files["good"], cache=False, timeout_s=1e-9)


def test_vfr_rotation_odd_size_no_audio(tmp_path):
    # VFR: 2 s at 25 fps then 2 s at 10 fps, cut at 2.0 s.
    vfr = tmp_path / "vfr.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=2", "-f", "lavfi", "-i",
           "rgbtestsrc=size=160x90:rate=10:duration=2", "-filter_complex", "[0][1]concat=n=2:v=1:a=0",
           "-fps_mode", "vfr", *X264, "-pix_fmt", "yuv420p", vfr)
    a = analyze_video(vfr, cache=False)
    assert a.duration == pytest.approx(4.0, abs=0.15)
    assert len(a.cuts) == 1 and abs(a.cuts[0] - 2.0) <= 0.1, a.cuts
    assert not a.has_audio
    # Rotation metadata: a 160x90 stream displayed as 90x160.
    rot = tmp_path / "rot.mp4"
    ffmpeg("-i", vfr, "-c", "copy", "-metadata:s:v:0", "rotate=90", rot)
    r = analyze_video(rot, cache=False)
    assert (r.width, r.height) == (90, 160)
    assert r.thumbnails[0][1].shape[0] > r.thumbnails[0][1].shape[1]  # frames are upright (portrait)
    assert len(r.cuts) == 1 and abs(r.cuts[0] - 2.0) <= 0.1
    # Odd size, 4:4:4 MJPEG in AVI.
    odd = tmp_path / "odd.avi"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=24", "-t", 1, "-s", "161x91", "-c:v", "mjpeg",
           "-pix_fmt", "yuvj444p", odd)
    o = analyze_video(odd, cache=False)
    assert (o.width, o.height) == (161, 91) and o.duration == pytest.approx(1.0, abs=0.05)
    assert probe(odd).fps == pytest.approx(24)


def test_cache_hit_and_corrupt_entry(files, tmp_path):
    a = analyze_video(files["good"], cache_dir=tmp_path)
    entries = list(tmp_path.glob("*.json"))
    assert len(entries) == 1 and list(tmp_path.glob("*.npz"))
    b = analyze_video(files["good"], cache_dir=tmp_path)
    assert b.to_dict() == a.to_dict() and b.thumbnails
    # Different parameters: a different entry.
    analyze_video(files["good"], min_scene_s=1.0, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 2
    # A corrupt entry is ignored and rewritten.
    entries[0].write_text('{"video": "x", "trunc')
    c = analyze_video(files["good"], cache_dir=tmp_path)
    assert c.to_dict() == a.to_dict()
    assert json.loads(entries[0].read_text())["cuts"] == a.cuts
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temp files


def test_cache_follows_file_content(tmp_path):
    import shutil

    video = tmp_path / "v.mp4"
    make_video(video, [Segment("testsrc2", 1.0), Segment("smptehdbars", 1.0)], size=(160, 90), fps=25, audio=None)
    first = analyze_video(video, cache_dir=tmp_path / "cache")
    other = make_video(tmp_path / "w.mp4", [Segment("smptehdbars", 0.6), Segment("testsrc2", 1.4)],
                       size=(160, 90), fps=25, audio=None)
    shutil.copyfile(other, video)  # same path, new content (and mtime)
    second = analyze_video(video, cache_dir=tmp_path / "cache")
    assert first.cuts == pytest.approx([1.0]) and second.cuts == pytest.approx([0.6])


def test_report_png(files, tmp_path):
    from matplotlib.figure import Figure

    from emsync_bridge.video.report import draw_timeline, save_report_png
    from emsync_bridge.video.schema import VideoAnalysis

    a = analyze_video(files["good"], cache=False)
    out = save_report_png(a, tmp_path / "r.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Reusable in a bigger figure (scoring report adds a piano roll below); works without
    # in-memory thumbnails by grabbing frames from the file.
    b = VideoAnalysis.from_json(a.to_json())
    fig = Figure(figsize=(10, 7))
    gs = fig.add_gridspec(2, 1, height_ratios=[3, 2])
    axes = draw_timeline(b, fig, gs[0])
    roll = fig.add_subplot(gs[1], sharex=axes["curves"])
    assert roll.get_xlim() == pytest.approx((0, a.duration))
    assert axes["thumbs"].images


def test_cli_analyze_writes_json_and_png(files, tmp_path):
    res = run_cli("analyze", files["good"], "--json", tmp_path / "a.json", "--png", tmp_path / "a.png",
                  "--min-scene", "0.5", cache_home=tmp_path)
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.strip().splitlines()) == 1 and "1 cuts, 2 scenes" in res.stdout
    d = json.loads((tmp_path / "a.json").read_text())
    assert d["cuts"] == pytest.approx([1.0], abs=0.04) and d["boundaries"] == d["cuts"]
    assert d["has_audio"] and len(d["scenes"]) == 2
    assert (tmp_path / "a.png").stat().st_size > 10_000
    assert list((tmp_path / "emsync-bridge").rglob("*.json"))  # cached under XDG_CACHE_HOME


@pytest.mark.parametrize("name", ["missing", "notes", "audio"])
def test_cli_bad_input_one_line_nonzero(files, tmp_path, name):
    res = run_cli("analyze", files[name], "-q", cache_home=tmp_path)
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr


def test_analyze_path_does_not_import_torch(files, tmp_path):
    code = (
        "import sys; from emsync_bridge.cli import main; "
        f"rc = main(['analyze', {str(files['good'])!r}, '-q', '--no-cache']); "
        "print('torch' in sys.modules, rc)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, XDG_CACHE_HOME=str(tmp_path)))
    assert res.stdout.strip().splitlines()[-1] == "False 0", res.stdout + res.stderr


def test_bench_analyze_smoke(files):
    from emsync_bridge.bench.analyze import bench_analyze, format_bench

    r = bench_analyze(files["good"])
    assert r["ours_cuts"] == pytest.approx([1.0], abs=0.04)
    assert r["scenedetect_cuts_we_also_find"] == "1/1"
    assert r["ours_cli_x_realtime"] > 0 and r["speedup_cli"] > 0
    assert "real time" in format_bench(r)
