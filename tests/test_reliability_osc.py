"""OSC fuzz: malformed and hostile datagrams against a real `emsync-bridge serve` subprocess (fast
version: 2 000; `benchmarks/reliability.py` sends 10 000), and one regression test per datagram
that used to stall or hang the OSC thread."""

from __future__ import annotations

import socket
import struct
import time

import pytest

from emsync_bridge.bridge.osc import OscServer, build_message
from harness.reliability import FUZZ_KINDS, run_fuzz, start_daemon, wait_for, write_project

FUZZ_N = 2000


def _future_bundle(seconds_ahead: int) -> bytes:
    m = build_message("/time", [9.0])
    secs = int(time.time()) + 2_208_988_800 + seconds_ahead
    return b"#bundle\0" + struct.pack(">II", secs % (1 << 32), 0) + struct.pack(">i", len(m)) + m


def _nested(levels: int) -> bytes:
    d = build_message("/time", [9.0])
    for _ in range(levels):
        d = b"#bundle\0" + b"\0" * 7 + b"\1" + struct.pack(">i", len(d)) + d
    return d


KILLERS = {
    # python-osc slept in the server thread until the time tag (here: an hour).
    "future time tag": _future_bundle(3600),
    # python-osc's bundle parser never advanced on element size -4: an endless loop.
    "bundle element size -4": b"#bundle\0" + b"\0" * 8 + struct.pack(">i", -4) + build_message("/time", [9.0]),
    "bundle element size 0": b"#bundle\0" + b"\0" * 8 + struct.pack(">i", 0),
    # RecursionError out of the parser.
    "3000 nested bundles": _nested(3000),
    # An incoming wildcard is a regex that backtracks for minutes (not routed at all).
    "wildcard address": build_message("/" + "*" * 40 + "Z"),
    "bad UTF-8 string": b"/marker/1/name\0\0,s\0\0ab\xff\xfe\0\0\0\0",
}


@pytest.mark.parametrize("name", list(KILLERS))
def test_datagram_that_used_to_stall_osc_is_counted_and_the_next_is_handled(name):
    srv = OscServer("127.0.0.1", 0).start()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.sendto(KILLERS[name], ("127.0.0.1", srv.port))
        s.sendto(build_message("/time", [2.0]), ("127.0.0.1", srv.port))
        t0 = time.monotonic()
        got = wait_for(lambda: any(e.args == (2.0,) for e in list(srv.events.queue)), 5.0)
        assert got, f"{name}: the next valid message was not handled"
        assert time.monotonic() - t0 < 2.0
        handled = [e.args for e in list(srv.events.queue)]
        if name == "future time tag":  # handled on arrival, in order, not an hour later
            assert handled == [(9.0,), (2.0,)]
            return
        assert handled == [(2.0,)]
        bad = srv.counters["malformed"] + srv.counters["unknown"] + srv.counters["rejected"]
        assert bad == 1, dict(srv.counters)
    finally:
        s.close()
        srv.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    spool = tmp_path_factory.mktemp("fuzz") / "spool"
    spool.mkdir()
    write_project(spool, duration=3.0)
    d = start_daemon(spool, args=["--no-video-analysis"])
    try:
        d.wait_ready()
        assert wait_for(lambda: (st := d.status(timeout=2.0)) and st["commit"].get("generation_id"), 120.0), \
            d.log_tail()
        yield d
    finally:
        d.stop()


def test_fuzz_daemon_stays_up_answers_counts_and_does_not_grow(daemon):
    r = run_fuzz(daemon, n=FUZZ_N, seed=11, warmup=200, check_every=250)
    assert set(r["by_kind"]) == set(FUZZ_KINDS)
    assert r["alive"] and r["answered_at_end"], daemon.log_tail()
    assert r["status_checks_failed"] == 0 and r["status_checks_ok"] == FUZZ_N // 250
    d = r["counters_delta"]
    assert d["malformed"] > 0 and d["rejected"] > 0 and d["unknown"] > 0, d
    assert r["rejects_counted"] >= 0.5 * FUZZ_N, r
    assert d["queue_full_dropped"] == 0
    assert r["rss_growth_pct"] < 10.0, r
    log = daemon.log_text()
    assert "Traceback" not in log and "OSC handler failed" not in log, log[-3000:]


def test_slow_tempo_from_reaper_does_not_break_every_commit(tmp_path):
    """Found by the 10 000-datagram fuzz: a valid /tempo/raw below ~3.6 BPM (REAPER allows 1)
    made every later commit fail (set_tempo's 24 bits overflowed in mido)."""
    import mido

    from emsync_bridge.bridge.commit import commit
    from emsync_bridge.bridge.events import NoteEvent
    from emsync_bridge.timeline.spool import ensure_spool, load_manifest
    from emsync_bridge.tempo import TempoPoint
    from emsync_bridge.tempo import TempoMap

    spool = ensure_spool(tmp_path / "spool")
    events = [NoteEvent(0.0, True, "piano", 60, 90), NoteEvent(1.0, False, "piano", 60)]
    for bpm in (1.0, 1.5, 3.5):
        m = commit(spool, f"g{int(bpm * 10)}", events, TempoMap([TempoPoint(0.0, bpm)]), 0.0, 4.0, replace_from=None)
        assert load_manifest(spool).generation_id == m.generation_id
        mid = mido.MidiFile(spool / m.items[0].file)
        assert [x.tempo for x in mid.tracks[0] if x.type == "set_tempo"] == [0xFFFFFF]
