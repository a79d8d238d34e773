"""Start the panel: `run(load=..., screenshot=...)` (what `emsync-bridge panel` calls)."""

from __future__ import annotations

import sys
from pathlib import Path

from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication

from emsync_bridge.errors import EmsyncError
from emsync_bridge.timeline import protocol


_APP = None  # keeps the QApplication alive for the whole process (Qt aborts if it is collected)


def app() -> QApplication:
    global _APP
    inst = QApplication.instance()
    if inst is None:
        inst = _APP = QApplication(sys.argv[:1])
        inst.setApplicationName("EmSync panel")
    return inst


def screenshot(window, path: str | Path) -> Path:
    """Render the window into a PNG (works offscreen: Qt paints into an image)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    app().processEvents()
    if not window.grab().save(str(path), "PNG") or path.stat().st_size == 0:
        raise EmsyncError(f"could not write the screenshot {path}")
    return path


def run(load: str | None = None, screenshot_path: str | None = None, daemon_port: int = protocol.DAEMON_OSC_PORT,
        timeout_s: float = 180.0) -> int:
    from emsync_bridge.ui.window import MainWindow

    qapp = app()
    win = MainWindow(daemon_port=daemon_port)
    win.show()
    if load:
        win.load(load)
    if screenshot_path:
        # Wait for the analysis and thumbnails, and one status poll, then paint and leave.
        win.wait_idle(timeout_s)
        QTimer.singleShot(700, qapp.quit)
        qapp.exec()
        try:
            out = screenshot(win, screenshot_path)
        finally:
            win.shutdown()
        print(f"screenshot: {out} ({out.stat().st_size} bytes)")
        return 0
    qapp.exec()
    return 0
