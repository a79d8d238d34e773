"""Spool input hardening through the running daemon (the parsers' own unit tests are in
test_timeline_spool.py): corrupt, half-written, oversized, symlinked or non-regular project.json
and requests are ignored with a log line while the daemon keeps its last good state and keeps
serving; output never lands outside the spool even when out/ or the manifest is a planted symlink."""

from __future__ import annotations

import json
import logging
import os

import pytest

from emsync_bridge.atomic import write_json_atomic
from emsync_bridge.bridge.daemon import Bridge, BridgeConfig
from emsync_bridge.bridge.osc import BridgeClient
from harness.reliability import free_udp_port, manifest_id, wait_for, write_project
from emsync_bridge.timeline import protocol
from emsync_bridge.timeline.spool import load_manifest


@pytest.fixture(scope="module")
def engine():
    from emsync_bridge.runtime import load_engine

    return load_engine()


@pytest.fixture
def daemon(engine, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    write_project(spool, duration=2.0, markers=((1, "", 1.0),))
    cfg = BridgeConfig(osc_port=0, reaper_port=free_udp_port(), spool=spool, analyze_video=False, poll_s=0.05,
                       policy="markers")
    bridge = Bridge(cfg, engine=engine[0], model_files=engine[1])
    bridge.start()
    try:
        assert wait_for(lambda: manifest_id(spool), 120.0), "first manifest"
        yield bridge
    finally:
        bridge.close()




def _answers(bridge) -> bool:
    with BridgeClient(port=bridge.osc.port, timeout=3.0) as c:
        return c.status()["state"] in ("running", "generating")


def _replace(path, make):
    if path.is_symlink() or path.exists():
        path.unlink()
    make(path)


def test_bad_project_json_is_ignored_with_a_log_line_and_the_last_good_state_kept(daemon, tmp_path, caplog):
    spool = daemon.spool
    path = spool / protocol.PROJECT_FILE
    good = path.read_bytes()
    good_state = daemon.project
    outside = tmp_path / "outside.json"
    outside.write_bytes(good)
    deep = b'{"version": 1, "kind": "emsync.project", "written_at": "x", "markers": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    d = json.loads(good)
    cases = {
        "half-written": lambda p: p.write_bytes(good[: len(good) // 2]),
        "empty": lambda p: p.write_bytes(b""),
        "symlink": lambda p: p.symlink_to(outside),
        "fifo": lambda p: os.mkfifo(p),
        "folder": lambda p: p.mkdir(),
        "too large": lambda p: p.write_bytes(b" " * (protocol.MAX_JSON_BYTES + 1)),
        "not UTF-8": lambda p: p.write_bytes(good.replace(b'"sim.rpp"', b'"\xff\xfe"')),
        "NaN": lambda p: p.write_text(json.dumps(d).replace('"cursor": 0.0', '"cursor": NaN')),
        "huge number": lambda p: p.write_text(json.dumps(d).replace('"cursor": 0.0', '"cursor": 1e999')),
        "huge integer": lambda p: p.write_text(json.dumps(d).replace('"cursor": 0.0', '"cursor": ' + "9" * 5000)),
        "deep nesting": lambda p: p.write_bytes(deep),
        "bpm out of range": lambda p: p.write_text(json.dumps(d).replace('"bpm": 120.0', '"bpm": 0')),
        "wrong type": lambda p: p.write_text(json.dumps({**d, "markers": {"a": 1}})),
        "too many markers": lambda p: p.write_text(json.dumps({**d, "markers": [{"index": i, "position": 1.0}
                                                                               for i in range(10_001)]})),
        "video outside the spool that is not a file": lambda p: p.write_text(json.dumps(
            {**d, "video_items": [{"file": "/dev/zero", "position": 0, "length": 1}]})),
    }
    for name, make in cases.items():
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            if name == "folder" or (path.is_dir() and not path.is_symlink()):
                if path.is_dir() and not path.is_symlink():
                    path.rmdir()
            _replace(path, make)
            logged = wait_for(lambda: [r for r in caplog.records if "project.json" in r.getMessage()], 10.0)
        assert logged, f"{name}: no log line"
        msg = logged[0].getMessage()
        assert "\n" not in msg and len(msg) < 1000, f"{name}: {msg[:200]}"
        assert daemon.project is good_state, f"{name}: the last good project state was replaced"
        assert "project.json" in daemon.last_error
        assert _answers(daemon), name
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
    assert outside.read_bytes() == good
    # A good file again is taken.
    _replace(path, lambda p: None)
    write_project(spool, duration=2.0, markers=((1, "", 1.0), (2, "", 1.5)))
    assert wait_for(lambda: daemon.project is not good_state and len(daemon.project.markers) == 2, 10.0)


def test_bad_requests_are_rejected_with_a_log_line_and_a_good_one_still_runs(daemon, tmp_path, caplog):
    spool = daemon.spool
    req = spool / protocol.REQUESTS_DIR
    valid = {"version": 1, "kind": "emsync.request", "type": "regenerate", "id": "r1", "written_at": "x", "time": 1.0}
    outside = tmp_path / "outside-request.json"
    outside.write_text(json.dumps(valid))
    bad = {
        "a-symlink.json": lambda p: p.symlink_to(outside),
        "b-fifo.json": lambda p: os.mkfifo(p),
        "c-folder.json": lambda p: p.mkdir(),
        "d-too-large.json": lambda p: p.write_bytes(b" " * (protocol.MAX_REQUEST_BYTES + 1)),
        "e-half.json": lambda p: p.write_text(json.dumps(valid)[:20]),
        "f-range.json": lambda p: p.write_text(json.dumps({**valid, "time": -5.0})),
        "g-emotion.json": lambda p: p.write_text(json.dumps({**valid, "type": "set_emotion", "valence": 3.0,
                                                              "arousal": 0.0})),
        "h-type.json": lambda p: p.write_text(json.dumps({**valid, "type": "rm -rf /"})),
        "i-mode.json": lambda p: p.write_text(json.dumps({**valid, "type": "set_mode", "mode": "../../x"})),
    }
    first = manifest_id(spool)
    with caplog.at_level(logging.WARNING):
        for name, make in bad.items():
            make(req / name)
        # Still being written (leading dot): left alone.
        (req / ".j-temp.json.tmp").write_text("{")
        assert wait_for(lambda: all(not (req / n).exists() and not (req / n).is_symlink() for n in bad), 10.0)
    rejected = {p.name for p in (req / "rejected").iterdir()}
    assert set(bad) <= rejected
    msgs = [r.getMessage() for r in caplog.records]
    for name in bad:
        assert any(name in m for m in msgs), f"{name}: no log line"
    assert outside.read_text() == json.dumps(valid), "a symlinked request's target is never touched"
    assert (req / ".j-temp.json.tmp").exists()
    assert first == manifest_id(spool), "no bad request did anything"
    assert _answers(daemon)
    write_json_atomic(req / "z-good.json", valid)
    assert wait_for(lambda: (g := manifest_id(spool)) and g != first, 120.0), "the good request regenerated"
    assert load_manifest(spool).replace_from == pytest.approx(1.0)


def test_output_never_escapes_the_spool(daemon, tmp_path):
    spool = daemon.spool
    first = manifest_id(spool)
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "important.json"
    victim.write_text("keep me")
    # 1. out/manifest.json replaced by a symlink to a file outside.
    (spool / "out" / "manifest.json").unlink()
    (spool / "out" / "manifest.json").symlink_to(victim)
    with BridgeClient(port=daemon.osc.port, timeout=3.0) as c:
        c.regenerate()
        assert wait_for(lambda: "symlink" in daemon.last_error, 120.0), daemon.last_error
        assert victim.read_text() == "keep me" and (spool / "out" / "manifest.json").is_symlink()
        (spool / "out" / "manifest.json").unlink()
        # 2. out/ itself replaced by a symlink to a folder outside.
        daemon.last_error = ""
        os.rename(spool / "out", spool / "out.real")
        (spool / "out").symlink_to(outside)
        c.regenerate()
        assert wait_for(lambda: "symlink" in daemon.last_error, 120.0), daemon.last_error
        assert sorted(p.name for p in outside.iterdir()) == ["important.json"], "nothing written outside"
        assert c.status()["state"] in ("running", "generating")
        # Put it back: the next regeneration commits again.
        (spool / "out").unlink()
        os.rename(spool / "out.real", spool / "out")
        c.regenerate()
        assert wait_for(lambda: (g := manifest_id(spool)) and g != first, 120.0)
