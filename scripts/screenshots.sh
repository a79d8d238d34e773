#!/usr/bin/env bash
# Regenerates docs/images/panel-*.png: the real control panel in a real X server (Xvfb, Qt's xcb
# platform), captured with ImageMagick `import`, next to a real daemon (`emsync-bridge serve`)
# that a REAPER stand-in (bench.simulator.ReaperSim) feeds transport, tempo and markers.
#
#   scripts/screenshots.sh            # uses/creates the demo in $DEMO_DIR (default /tmp/demo)
#
# Needs xvfb-run and import (scripts/install_system_deps.sh installs both).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
DEMO=${DEMO_DIR:-/tmp/demo}
for tool in xvfb-run import; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/install_system_deps.sh" >&2; exit 1; }
done
if [ ! -f "$DEMO/analysis.json" ] || [ ! -f "$DEMO/demo_video.mp4" ]; then
  "$PY" -m emsync_bridge demo -o "$DEMO" --quiet
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p docs/images
unset QT_QPA_PLATFORM
export EMSYNC_SPOOL="$WORK/spool"   # the daemon's and the panel's spool: never the user's

xvfb-run -a -s "-screen 0 1400x900x24" "$PY" - "$DEMO" docs/images "$WORK" <<'EOF'
import socket, subprocess, sys, time
from pathlib import Path

from PyQt6.QtWidgets import QApplication

from emsync_bridge.bridge.osc import BridgeClient
from emsync_bridge.bench.simulator import ReaperSim, SimMarker
from emsync_bridge.errors import EmsyncError
from emsync_bridge.ui.app import app
from emsync_bridge.ui.window import MainWindow

demo, out, work = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
spool = work / "spool"
spool.mkdir(parents=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settle(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def shot(name, widget=None):
    settle(1.0)
    target = "root" if widget is None else hex(int(widget.winId()))
    path = out / f"panel-{name}.png"
    subprocess.run(["import", "-window", target, "-strip", "-define", "png:compression-level=9", str(path)], check=True)
    print(f"{path}: {path.stat().st_size // 1024} KB")


# REAPER stand-in: the demo film on the timeline at 0 s, two markers (one named with an emotion).
sim = ReaperSim(0, markers=[SimMarker(1, "hit", 10.0), SimMarker(2, "joy", 23.0)])
video = str((demo / "demo_video.mp4").resolve())
sim.write_project(spool, video_items=[{"file": video, "position": 0.0, "length": 32.0, "take_offset": 0.0,
                                       "playrate": 1.0, "track_index": 0, "track_name": "Video", "guid": "{V1}"}])
port = free_port()


def die_with_parent():  # Linux: the daemon gets SIGTERM if this driver dies (no orphan holding the port)
    import ctypes, signal
    ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


daemon = subprocess.Popen([sys.executable, "-m", "emsync_bridge", "serve", "--osc-port", str(port),
                           "--reaper-port", str(sim.port), "--spool", str(spool)], preexec_fn=die_with_parent)
sim.daemon_port = port
try:
    with BridgeClient(port=port) as c:
        for _ in range(120):
            try:
                c.status(timeout=0.5)
                break
            except EmsyncError:
                time.sleep(0.5)
    sim.set_tempo(120.0)
    sim.send_marker_bank()
    sim.play(12.0)

    qapp = app()
    win = MainWindow(daemon_port=port)
    win.show()
    win.load(str(demo / "analysis.json"))
    win.wait_idle(120)
    win.select_scene(1)
    settle(2.0)
    shot("timeline")

    # Steering: scene 1 told to be fearful on the V/A pad, the film a little calmer overall.
    win.select_scene(0)
    win.set_override(0, label="fear")
    win.a_offset.setValue(-20)
    win.select_scene(0)
    shot("steering")

    win.generate()
    win.wait_idle(300)
    win.select_scene(2)
    shot("generated")

    win.open_wizard()
    wiz = win.wizard
    wiz.next()
    settle(1.5)
    shot("wizard", wiz)
    wiz.close()
    win.shutdown()
    win.close()
finally:
    sim.close()
    daemon.terminate()
    daemon.wait(20)
EOF
ls -l docs/images/panel-*.png
