"""Bad video matrix end to end (test_video_io.py covers the decoder's own messages): every kind of
bad or odd file gives a one-line CLI error (or analyses fine when it is merely odd: 8K, VFR,
rotated), nothing hangs (FIFO, /dev/zero), and the daemon reports a failed analysis in its status,
keeps serving and still scores the project."""

from __future__ import annotations

import time

import pytest

from emsync_bridge.bridge.daemon import Bridge, BridgeConfig
from emsync_bridge.bridge.osc import BridgeClient
from harness.reliability import (
    VIDEO_EXPECT,
    analyze_bounded,
    free_udp_port,
    manifest_id,
    make_bad_videos,
    wait_for,
    write_project,
)
from emsync_bridge.cli import main
from emsync_bridge.errors import EmsyncError

EXPECT = VIDEO_EXPECT


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    return make_bad_videos(tmp_path_factory.mktemp("badvideo"))


@pytest.mark.parametrize("name", list(EXPECT))
def test_library_one_line_error_or_fine_and_no_hang(videos, name):
    out = analyze_bounded(videos[name])
    assert not out["hung"], f"{name}: analysis hung"
    if EXPECT[name] is None:
        assert "analysis" in out, out.get("error")
        a = out["analysis"]
        assert a.duration > 0
        if name == "eight_k":
            assert (a.width, a.height) == (7680, 4320)
        if name == "rotated":
            assert (a.width, a.height) == (90, 160)
    else:
        e = out.get("error")
        assert isinstance(e, EmsyncError), repr(e)
        assert any(w in str(e) for w in EXPECT[name]) and "\n" not in str(e), str(e)


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
            assert wait_for(lambda: manifest_id(spool), 120.0), "scored without the bad videos"
            assert c.status()["commit"]["generation_id"]
    finally:
        bridge.close()


