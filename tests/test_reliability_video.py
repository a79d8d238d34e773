"""Bad video matrix end to end (test_video_io.py covers the decoder's own messages): every kind of
bad or odd file gives a one-line CLI error (or analyses fine when it is merely odd: 8K, VFR,
rotated), nothing hangs (FIFO, /dev/zero), and the daemon reports a failed analysis in its status,
keeps serving and still scores the project."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import pytest

from emsync_bridge.bridge.daemon import Bridge, BridgeConfig
from emsync_bridge.bridge.osc import BridgeClient
from emsync_bridge.bridge.reliability import free_udp_port, wait_for, write_project
from emsync_bridge.cli import main
from emsync_bridge.errors import EmsyncError
from emsync_bridge.timeline.spool import load_manifest
from emsync_bridge.video.analysis import analyze_video

FF = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]

# name -> words of the one-line error, or None: analyses fine
EXPECT = {
    "missing": "no such file",
    "zero_bytes": "empty file",
    "truncated_head": ("corrupt/truncated", "zero duration"),  # index intact, no frame data
    "truncated_tail": "truncated",
    "not_a_video": "not a video",
    "audio_only": "audio-only",
    "one_by_one": "resolution 1x1",
    "zero_frames": "no video stream",
    "one_frame": "zero duration",
    "fifo": "not a regular file",
    "dev_zero": "not a regular file",
    "eight_k": None,
    "vfr": None,
    "rotated": None,
}


def ff(*args):
    subprocess.run([*FF, *map(str, args)], check=True, timeout=120)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("badvideo")
    v = {k: d / f"{k}.mp4" for k in EXPECT}
    ff("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-t", 3, *X264, "-movflags", "+faststart", d / "good.mp4")
    good = (d / "good.mp4").read_bytes()
    v["truncated_tail"].write_bytes(good[: len(good) // 3])
    v["truncated_head"].write_bytes(good[:3000])
    v["zero_bytes"].write_bytes(b"")
    v["not_a_video"].write_text("ceci n'est pas une video\n")
    v["audio_only"] = d / "audio_only.m4a"
    ff("-f", "lavfi", "-i", "sine=frequency=440", "-t", 1, "-c:a", "aac", v["audio_only"])
    v["one_by_one"] = d / "one_by_one.mkv"
    ff("-f", "lavfi", "-i", "color=red:size=16x16:rate=25", "-t", 0.4, "-vf", "scale=1:1", "-c:v", "ffv1", v["one_by_one"])
    ff("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-frames:v", 0, *X264, v["zero_frames"])
    ff("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-frames:v", 1, *X264, v["one_frame"])
    os.mkfifo(v["fifo"])  # a decoder opening this would block forever
    v["dev_zero"].symlink_to("/dev/zero")
    # 8K UHD, three frames: made in a few seconds, decodes with full-size frames.
    ff("-f", "lavfi", "-i", "color=blue:size=7680x4320:rate=25", "-frames:v", 3, *X264, v["eight_k"])
    ff("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=1", "-f", "lavfi", "-i",
       "rgbtestsrc=size=160x90:rate=10:duration=1", "-filter_complex", "[0][1]concat=n=2:v=1:a=0",
       "-fps_mode", "vfr", *X264, v["vfr"])
    ff("-i", v["vfr"], "-c", "copy", "-metadata:s:v:0", "rotate=90", v["rotated"])
    return v


def _analyze_bounded(path, timeout=60.0):
    out = {}

    def run():
        try:
            out["a"] = analyze_video(path, cache=False)
        except Exception as exc:  # noqa: BLE001 - recorded and checked below
            out["e"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"{path.name}: analysis hung for {timeout} s"
    return out


@pytest.mark.parametrize("name", list(EXPECT))
def test_library_one_line_error_or_fine_and_no_hang(videos, name):
    out = _analyze_bounded(videos[name])
    if EXPECT[name] is None:
        assert "a" in out, out.get("e")
        a = out["a"]
        assert a.duration > 0
        if name == "eight_k":
            assert (a.width, a.height) == (7680, 4320)
        if name == "rotated":
            assert (a.width, a.height) == (90, 160)
    else:
        e = out.get("e")
        assert isinstance(e, EmsyncError), repr(e)
        words = EXPECT[name] if isinstance(EXPECT[name], tuple) else (EXPECT[name],)
        assert any(w in str(e) for w in words) and "\n" not in str(e), str(e)


def test_cli_one_line_errors(videos, tmp_path, capsys):
    for name, words in EXPECT.items():
        if words is None:
            continue
        for argv in (["analyze", str(videos[name]), "-q", "--no-cache"],
                     ["score", str(videos[name]), "-o", str(tmp_path / name), "--no-render", "--quiet"]):
            rc = main(argv)
            err = capsys.readouterr().err.strip().splitlines()
            assert rc == 2, (argv, err)
            assert len(err) == 1 and err[0].startswith("error: "), (argv, err)
            assert "Traceback" not in err[0]


@pytest.fixture(scope="module")
def engine():
    from emsync_bridge.runtime import load_engine

    return load_engine()


def test_daemon_reports_failed_analysis_keeps_serving_and_scores(videos, engine, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    files = [n for n in EXPECT if n not in ("missing", "fifo", "dev_zero")]  # project.json refuses those
    items = [{"file": str(videos[n]), "position": 0.0, "length": 2.0, "track_index": i}
             for i, n in enumerate(files)]
    write_project(spool, duration=2.0, video_items=items)
    cfg = BridgeConfig(osc_port=0, reaper_port=free_udp_port(), spool=spool, poll_s=0.05)
    bridge = Bridge(cfg, engine=engine[0], model_files=engine[1])
    bridge.start()
    try:
        with BridgeClient(port=bridge.osc.port, timeout=3.0) as c:
            answered, deadline = 0, time.monotonic() + 120.0
            while len(bridge.analyses) < len(files):  # status answers while videos are analysed
                c.status()
                answered += 1
                assert time.monotonic() < deadline, "analysis did not finish"
                time.sleep(0.05)
            failed = {n for n in files if bridge.analyses[str(videos[n])] is None}
            assert failed == {n for n in files if EXPECT[n] is not None}
            st = c.status()
            assert st["last_error"].startswith("video analysis failed") and "\n" not in st["last_error"]
            assert st["state"] in ("running", "generating")
            assert wait_for(lambda: _manifest(spool), 120.0), "scored without the bad videos"
            assert c.status()["commit"]["generation_id"]
    finally:
        bridge.close()


def _manifest(spool):
    try:
        return load_manifest(spool).generation_id
    except Exception:
        return None
