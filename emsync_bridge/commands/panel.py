"""`panel`: the desktop control panel (PyQt6, the `[ui]` extra; imported only when it runs)."""

from __future__ import annotations

from emsync_bridge.commands.registry import command
from emsync_bridge.commands import argtypes
from emsync_bridge.errors import EmsyncError
from emsync_bridge.timeline import protocol


@command("panel", "desktop control panel: see the film's emotions and cuts, steer generation, control the bridge")
def panel(args) -> int:
    try:
        import pyqtgraph  # noqa: F401
        from PyQt6 import QtWidgets  # noqa: F401
    except ImportError as exc:
        raise EmsyncError(f"the panel needs PyQt6 and pyqtgraph ({exc.name} is missing): "
                          f"pip install emsync-bridge[ui]") from None
    import os

    if args.screenshot and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # a screenshot needs no screen
    from emsync_bridge.ui.app import run

    return run(load=args.load, screenshot_path=args.screenshot, daemon_port=args.osc_port)


def _args(p) -> None:
    p.add_argument("--load", metavar="VIDEO|analysis.json", default=None, help="open this video or analysis at start")
    p.add_argument("--screenshot", metavar="PATH", default=None,
                   help="render the window (offscreen works), save a PNG here and exit")
    p.add_argument("--osc-port", type=argtypes.port, default=protocol.DAEMON_OSC_PORT, help="the daemon's OSC port")


panel.add_arguments = _args
