"""`emsync-bridge serve` as a real process: answers `/emsync/status` on loopback, and shuts down
cleanly on SIGTERM (status.json says `stopped`, exit code 0). Also the small CLI commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from emsync_bridge.bridge.osc import BridgeClient
from harness.reliability import free_udp_port
from emsync_bridge.errors import EmsyncError
from emsync_bridge.timeline import protocol


@pytest.mark.skipif(sys.platform.startswith("win"), reason="SIGTERM semantics")
def test_serve_answers_status_and_stops_cleanly_on_sigterm(tmp_path):
    spool = tmp_path / "spool"
    port, reaper = free_udp_port(), free_udp_port()
    proc = subprocess.Popen([sys.executable, "-m", "emsync_bridge", "serve", "--osc-port", str(port),
                             "--reaper-port", str(reaper), "--spool", str(spool), "--no-video-analysis"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        status = None
        deadline = time.monotonic() + 120
        with BridgeClient(port=port, timeout=0.5) as client:
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    status = client.status()
                    break
                except EmsyncError:
                    continue
        assert status is not None, f"daemon did not answer: {proc.poll()}"
        assert status["mode"] == "commit" and status["osc"]["port"] == port and status["pid"] == proc.pid
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    final = json.loads((spool / protocol.STATUS_FILE).read_text())
    assert final["state"] == "stopped"


def test_serve_refuses_remote_bind_without_flag(tmp_path):
    from emsync_bridge.cli import main

    rc = main(["serve", "--host", "0.0.0.0", "--osc-port", "0", "--spool", str(tmp_path / "s"), "--no-video-analysis"])
    assert rc == 2


def test_ports_and_doctor_run(capsys, tmp_path):
    from emsync_bridge.cli import main

    assert main(["ports", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert "backends" in data and "active" in data
    rc = main(["doctor", "--osc-port", str(free_udp_port()), "--spool", str(tmp_path / "spool"),
               "--reaper-resource", str(tmp_path / "reaper")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "onnxruntime" in out and "MIDI backend" in out and "OSC port" in out and "spool" in out
    assert "pattern file" in out and "missing" in out
    (tmp_path / "reaper" / "OSC").mkdir(parents=True)
    from emsync_bridge.bridge.doctor import REPO_PATTERN

    (tmp_path / "reaper" / "OSC" / "emsync.ReaperOSC").write_bytes(REPO_PATTERN.read_bytes())
    main(["doctor", "--osc-port", str(free_udp_port()), "--spool", str(tmp_path / "spool"),
          "--reaper-resource", str(tmp_path / "reaper")])
    assert "[ok  ] REAPER pattern file" in capsys.readouterr().out


def test_doctor_says_what_is_known_of_reaper_without_a_daemon(capsys, tmp_path):
    """No daemon: doctor reads the spool (project.json age, the importer's last result) and says so."""
    from emsync_bridge.cli import main

    out_dir = tmp_path / "spool" / "out"
    out_dir.mkdir(parents=True)
    (out_dir / "import.json").write_text(json.dumps({
        "kind": "emsync.import", "state": "failed", "generation_id": "20260101T000000-1-1c",
        "reason": "REAPER could not read the MIDI file x.mid; the earlier items are unchanged", "written_at": "t"}))
    main(["doctor", "--osc-port", str(free_udp_port()), "--spool", str(tmp_path / "spool"),
          "--reaper-resource", str(tmp_path / "reaper")])
    line = next(x for x in capsys.readouterr().out.splitlines() if "] REAPER:" in x)
    assert line.startswith("[warn] REAPER: no daemon running") and "no project.json yet" in line
    assert "last import failed: 20260101T000000-1-1c REAPER could not read the MIDI file x.mid" in line
    os.environ.get("HOME")
