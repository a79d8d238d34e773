"""Reliability round two, the daemon (issue 16): symlink loops and files where the spool has
folders never silence it (status answered during the fault and within 1 s after it is removed,
`last_error` cleared on recovery); any thread that raises is logged, counted and restarted by
the one supervisor; a second daemon on the same spool refuses to start; OSC times and emotions
outside the spool's ranges are rejected."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import pytest

from emsync_bridge.bridge import daemon as daemon_mod
from emsync_bridge.bridge.daemon import Bridge, BridgeConfig
from emsync_bridge.bridge.osc import BridgeClient, OscServer, build_message
from harness.reliability import free_udp_port, manifest_id, wait_for, write_project
from emsync_bridge.errors import EmsyncError
from emsync_bridge.timeline import protocol
from emsync_bridge.atomic import write_json_atomic


@pytest.fixture(scope="module")
def engine():
    from emsync_bridge.runtime import load_engine

    return load_engine()


def _bridge(engine, spool, **kw) -> Bridge:
    cfg = BridgeConfig(osc_port=0, reaper_port=free_udp_port(), spool=spool, analyze_video=False, poll_s=0.05,
                       policy="markers", **kw)
    return Bridge(cfg, engine=engine[0], model_files=engine[1])


@pytest.fixture
def daemon(engine, tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    write_project(spool, duration=2.0, markers=((1, "", 1.0),))
    bridge = _bridge(engine, spool).start()
    try:
        assert wait_for(lambda: manifest_id(spool), 120.0), "first manifest"
        yield bridge
    finally:
        bridge.close()


def _status_s(bridge, timeout: float = 1.0) -> float | None:
    """Seconds for a status round trip, or None if there is no answer within `timeout`."""
    t = time.monotonic()
    try:
        with BridgeClient(port=bridge.osc.port, timeout=timeout) as c:
            c.status()
    except EmsyncError:
        return None
    return time.monotonic() - t


def _loop(path):
    """A symlink loop at `path` (the issue's `ln -sf project.json SPOOL/project.json`)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        os.rename(path, path.with_name(path.name + ".away"))
    path.symlink_to(path.name)


def _restore(path):
    path.unlink()
    away = path.with_name(path.name + ".away")
    if away.exists():
        os.rename(away, path)


def _bad_request(spool, name="00000009-regenerate.json"):
    (spool / protocol.REQUESTS_DIR / name).write_text("{ half a request")


SPOOL_FAULTS = {
    "project.json is a symlink loop": (lambda s: _loop(s / protocol.PROJECT_FILE),
                                       lambda s: _restore(s / protocol.PROJECT_FILE)),
    "requests/ is a file": (lambda s: (os.rename(s / "requests", s / "requests.away"),
                                       (s / "requests").write_text("x")),
                            lambda s: ((s / "requests").unlink(), os.rename(s / "requests.away", s / "requests"))),
    "requests/ is a symlink loop": (lambda s: _loop(s / "requests"), lambda s: _restore(s / "requests")),
    "requests/rejected is a file and a bad request arrives": (
        lambda s: (os.rename(s / protocol.REJECTED_DIR, s / "rejected.away"),
                   (s / protocol.REJECTED_DIR).write_text("x"), _bad_request(s)),
        lambda s: _undo_rejected(s)),
}


def _undo_rejected(spool):
    (spool / protocol.REJECTED_DIR).unlink()
    try:
        os.rename(spool / "rejected.away", spool / protocol.REJECTED_DIR)
    except OSError:  # the daemon made a new rejected/ in between (and moved the bad request there)
        import shutil

        shutil.rmtree(spool / "rejected.away")


@pytest.mark.parametrize("fault", list(SPOOL_FAULTS))
def test_spool_faults_never_silence_the_daemon(daemon, fault, caplog):
    spool = daemon.spool
    make, undo = SPOOL_FAULTS[fault]
    with caplog.at_level(logging.WARNING):
        make(spool)
        time.sleep(0.5)  # ten polls with the fault in place
        assert _status_s(daemon) is not None, f"{fault}: no status answer during the fault"
        assert all(t.is_alive() for t in daemon._threads), f"{fault}: a thread died"
        if "bad request" not in fault:
            assert wait_for(lambda: daemon.last_error, 2.0), f"{fault}: last_error does not say"
    lines = [r.getMessage() for r in caplog.records]
    assert lines, f"{fault}: nothing logged"
    assert len(lines) <= 3, f"{fault}: logged on every poll: {lines[:5]}"
    assert all("\n" not in m for m in lines)
    undo(spool)
    t0 = time.monotonic()
    answered = _status_s(daemon)
    assert answered is not None and time.monotonic() - t0 < 1.0, f"{fault}: status not answered within 1 s"
    assert wait_for(lambda: daemon.last_error == "", 1.0), f"{fault}: last_error not cleared: {daemon.last_error}"
    # and it still does its job: a good request regenerates
    first = manifest_id(spool)
    for p in (spool / protocol.REQUESTS_DIR).glob("*.json"):
        p.unlink()  # the bad request that could not be moved
    write_json_atomic(spool / protocol.REQUESTS_DIR / "00000010-regenerate.json",
                      {"version": 1, "kind": "emsync.request", "type": "regenerate", "id": "00000010",
                       "written_at": "2026-12-04T07:00:00Z", "time": 1.0})
    assert wait_for(lambda: manifest_id(spool) not in (None, first), 60.0), f"{fault}: no regeneration after"


def test_a_thread_that_raises_is_logged_counted_restarted_and_recovers(daemon, monkeypatch, caplog):
    """The supervisor, whatever the fault: the control loop's spool poll raises a bug twice."""
    monkeypatch.setattr(daemon_mod, "RECOVERED_S", 0.5)
    real, calls = daemon._poll_spool, {"n": 0}

    def flaky():
        calls["n"] += 1
        if calls["n"] <= 2:
            raise RuntimeError("injected bug")
        real()

    with caplog.at_level(logging.WARNING):
        monkeypatch.setattr(daemon, "_poll_spool", flaky)
        assert wait_for(lambda: daemon.thread_restarts["control"] >= 2, 5.0), "no restart counted"
    assert "control thread failed" in daemon.last_error and "injected bug" in daemon.last_error
    assert any("control thread failed" in r.getMessage() for r in caplog.records)
    assert _status_s(daemon) is not None
    with BridgeClient(port=daemon.osc.port, timeout=2.0) as c:
        assert c.status()["threads"]["restarts"]["control"] == 2
    assert wait_for(lambda: daemon.last_error == "", 3.0), f"not cleared after recovery: {daemon.last_error}"
    assert daemon.thread_restarts["control"] == 2


def test_a_second_daemon_on_the_same_spool_refuses_in_one_line(daemon, tmp_path):
    spool = daemon.spool
    other = _bridge((daemon.engine, daemon.model_files), spool)
    with pytest.raises(EmsyncError, match=f"pid {os.getpid()}.*{spool.name}"):
        other.start()
    other.close()  # a refused daemon leaves the spool's status alone
    assert wait_for(lambda: _status_s(daemon) is not None, 2.0)
    import json
    assert json.loads((spool / protocol.STATUS_FILE).read_text())["pid"] == os.getpid()
    # the same through `serve` in another process: one line, exit 2, before loading any model
    r = subprocess.run([sys.executable, "-m", "emsync_bridge", "serve", "--spool", str(spool), "--osc-port", "0",
                        "--reaper-port", str(free_udp_port())], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "another emsync-bridge daemon" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    # released on close: a new daemon takes the spool
    daemon.close()
    again = _bridge((daemon.engine, daemon.model_files), spool).start()
    again.close()


@pytest.mark.parametrize("address,bad,good", [
    ("/time", [-5.0], [5.0]), ("/time", [1e30], [5.0]), ("/marker/1/time", [1e30], [-2.0]),
    ("/loop/start/time", [-1e30], [3.0]), ("/region/1/length", [-1.0], [1.0]),
    ("/emsync/regenerate/time", [-5.0], [0.0]), ("/emsync/regenerate/time", [1e30], [9.0]),
    ("/emsync/emotion", [1e30, 0.0], [1.0, 0.0]), ("/emsync/emotion", [0.0, -1e30], [0.0, -1.0]),
    ("/emsync/emotion", [0.5, 0.5, 1e30], [0.5, 0.5, 10.0]), ("/emsync/emotion", [0.5, 0.5, -5.0], [0.5, 0.5, 0.0]),
    ("/emsync/emotion/label", ["joy", 1e30], ["joy", 1.0]),
])
def test_osc_times_and_emotions_outside_the_spool_ranges_are_rejected(address, bad, good):
    import socket

    srv = OscServer("127.0.0.1", 0).start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(build_message(address, bad), ("127.0.0.1", srv.port))
            s.sendto(build_message(address, good), ("127.0.0.1", srv.port))  # in range: accepted
        assert wait_for(lambda: srv.counters["received"] >= 2, 5.0)
        assert srv.counters["rejected"] == 1
        ev = srv.events.get(timeout=2.0)
        assert ev.address == address and list(ev.args) == pytest.approx(good) if address != "/emsync/emotion/label" \
            else list(ev.args) == good
        assert srv.events.empty()
    finally:
        srv.close()


def test_hypothesis_osc_arguments_never_break_the_daemon(daemon, caplog):
    """Random well-formed messages to every address the daemon listens on (types and values of
    any kind: NaN, ±inf, 1e30, huge ints, long strings): every one is counted, nothing accepted
    is out of range, no handler raises anything but a one-line refusal, and status still answers."""
    import socket

    pytest.importorskip("hypothesis")
    from hypothesis import HealthCheck, given, settings, strategies as st

    from emsync_bridge.bridge.osc import VALUE_RANGES, in_range

    addresses = sorted(a.replace("@", "1") for a in protocol.REAPER_FEEDBACK_ADDRESSES) + sorted(
        a for a in protocol.EMSYNC_ADDRESSES if a not in ("/emsync/shutdown", "/emsync/mode"))
    value = st.one_of(st.floats(width=32), st.sampled_from([1e30, -1e30, -5.0, 0.0, 1.0, 2**31 - 1]),
                      st.integers(min_value=-2**31, max_value=2**31 - 1),
                      st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40))  # OSC strings end at NUL
    accepted = []
    real_push = daemon.osc._push

    def spy(ev):
        accepted.append(ev)
        real_push(ev)

    daemon.osc._push = spy
    sent = {"n": 0}
    before = daemon.osc.counters["received"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, caplog.at_level(logging.WARNING):
        @settings(max_examples=int(os.environ.get("EMSYNC_HYPOTHESIS_EXAMPLES", "30")) * 5, deadline=None,
                  database=None, suppress_health_check=list(HealthCheck))
        @given(st.sampled_from(addresses), st.lists(value, max_size=4))
        def send(address, args):
            sock.sendto(build_message(address, args), ("127.0.0.1", daemon.osc.port))
            sent["n"] += 1
            sent[address] = sent.get(address, 0) + 1
            if sent["n"] % 50 == 0:
                time.sleep(0.02)  # paced: the point is the values, not a flood

        send()
        assert wait_for(lambda: daemon.osc.counters["received"] - before >= sent["n"], 10.0), "datagrams lost"
        assert _status_s(daemon, 2.0) is not None
    for ev in accepted:
        assert in_range(ev.pattern, ev.args), ev
        assert all(not isinstance(v, float) or v == v for v in ev.args), ev
    assert VALUE_RANGES  # the table the check above uses
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [r.getMessage() for r in errors[:3]]
    if os.environ.get("EMSYNC_HYPOTHESIS_REPORT"):  # for benchmarks/cli_fuzz.py
        import json
        with open(os.environ["EMSYNC_HYPOTHESIS_REPORT"], "a") as fh:
            fh.write(json.dumps({"test": "osc", "examples": sent["n"], "accepted": len(accepted),
                                 "counters": dict(daemon.osc.counters)}) + "\n")
    assert all(t.is_alive() for t in daemon._threads) and daemon.thread_restarts == {}


def test_a_failed_start_frees_the_spool(engine, tmp_path):
    import socket

    spool = tmp_path / "spool"
    spool.mkdir()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        cfg = BridgeConfig(osc_port=busy.getsockname()[1], reaper_port=free_udp_port(), spool=spool,
                           analyze_video=False)
        with pytest.raises(EmsyncError, match="cannot listen"):
            Bridge(cfg, engine=engine[0], model_files=engine[1]).start()
    _bridge(engine, spool).start().close()  # the spool is free again
