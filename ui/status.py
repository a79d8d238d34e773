"""Bridge status: polls the daemon with its own control client (`bridge.BridgeClient.status`) from
a background thread, and shows what it says.

The poll blocks up to its timeout when no daemon runs, so it never happens on the UI thread.
Between polls the play position is extrapolated from the last report (position + elapsed x play
rate while playing), so it moves smoothly without flooding the daemon.
"""

from __future__ import annotations

import threading
import time

from PyQt6.QtCore import QThread, QTimer, pyqtSignal
from PyQt6.QtWidgets import QComboBox, QGridLayout, QGroupBox, QLabel

from emsync_bridge.bridge.osc import BridgeClient
from emsync_bridge.errors import EmsyncError
from emsync_bridge.timeline import protocol

POLL_S = 0.5


class StatusPoller(QThread):
    """Asks the daemon for its status every `interval` s; emits `status(dict)` or `offline(str)`."""

    status = pyqtSignal(dict)
    offline = pyqtSignal(str)

    def __init__(self, host: str = "127.0.0.1", port: int = protocol.DAEMON_OSC_PORT, interval: float = POLL_S,
                 parent=None):
        super().__init__(parent)
        self.host, self.port, self.interval = host, port, interval
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()
        self.wait(3000)

    def run(self) -> None:
        client = BridgeClient(self.host, self.port, timeout=min(0.8, self.interval * 1.5))
        try:
            while not self._stop.is_set():
                try:
                    self.status.emit(client.status())
                except EmsyncError as exc:
                    self.offline.emit(str(exc))
                except (OSError, ValueError) as exc:  # a garbled reply: report, keep polling
                    self.offline.emit(f"bad status reply: {exc}")
                self._stop.wait(self.interval)
        finally:
            client.close()


def describe(st: dict) -> dict[str, str]:
    """The status fields as the panel shows them (also used by the setup wizard)."""
    osc = st.get("osc") or {}
    seen = osc.get("reaper_seen_s_ago")
    health = st.get("reaper") or {}
    imp = health.get("last_import")
    tr = st.get("transport") or {}
    live = st.get("live")
    model = st.get("model") or {}
    gen = st.get("generation") or {}
    tempo = tr.get("tempo")
    name = model.get("name") or "?"
    if model.get("trained") is False:
        name += " (untrained)"
    if gen:
        g = "done" if gen.get("complete") else f"at {gen.get('cursor', 0):.1f} s"
        gen_text = f"{gen.get('reason', '')} {g}, {gen.get('tokens', 0)} tokens"
    else:
        gen_text = "none yet"
    return {
        "daemon": f"● {st.get('state', '?')} (pid {st.get('pid', '?')}, OSC {osc.get('host', '?')}:{osc.get('port', '?')})",
        # What the daemon knows of REAPER without asking it anything (emsync_bridge/bridge/health.py).
        "reaper": health.get("summary") or ("no OSC feedback yet" if seen is None else f"OSC feedback {seen:.0f} s ago"),
        "tempo": "—" if tempo is None else f"{tempo:.1f} BPM",
        "midi": (f"{live.get('port')} ({live.get('api') or '?'}), {live.get('sent', 0)} sent" if live
                 else "commit mode: MIDI files via the spool"),
        "model": f"{name} · {model.get('engine') or '?'} / {model.get('provider') or '?'}",
        "generation": gen_text,
        "error": st.get("last_error") or (f"import {imp['state']}: {imp['reason']}" if imp and imp.get("state") != "imported" else ""),
    }


class StatusArea(QGroupBox):
    """The bridge status block with the commit/live switch. `client` sends the mode change."""

    modeRequested = pyqtSignal(str)

    def __init__(self, parent=None):
        super().__init__("Bridge", parent)
        self.last: dict | None = None
        self._received = 0.0
        grid = QGridLayout(self)
        grid.setContentsMargins(8, 4, 8, 4)
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(2)
        self.labels: dict[str, QLabel] = {}
        fields = [("daemon", "Daemon"), ("reaper", "REAPER OSC"), ("position", "Play"), ("tempo", "Tempo"),
                  ("midi", "MIDI out"), ("model", "Model"), ("generation", "Generation"), ("error", "Last error")]
        for i, (key, title) in enumerate(fields):
            row, col = i % 4, (i // 4) * 2
            grid.addWidget(QLabel(f"<b>{title}</b>"), row, col)
            lab = QLabel("—")
            lab.setObjectName(f"status_{key}")
            self.labels[key] = lab
            grid.addWidget(lab, row, col + 1)
        for key in ("reaper", "error"):  # a few clauses long (bridge/health.py summary): wrap, don't widen
            self.labels[key].setWordWrap(True)
        grid.addWidget(QLabel("<b>Mode</b>"), 0, 4)
        self.mode = QComboBox()
        self.mode.addItems(["commit", "live"])
        self.mode.setToolTip("commit: MIDI items in REAPER after each generation; live: notes streamed to a MIDI port")
        self.mode.setEnabled(False)
        self.mode.activated.connect(lambda _i: self.modeRequested.emit(self.mode.currentText()))
        grid.addWidget(self.mode, 0, 5)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        self.set_offline("not polled yet")
        self._tick = QTimer(self)
        self._tick.timeout.connect(self._update_position)
        self._tick.start(100)

    @property
    def online(self) -> bool:
        return self.last is not None

    def set_status(self, st: dict) -> None:
        self.last = st
        self._received = time.monotonic()
        for key, text in describe(st).items():
            self.labels[key].setText(text)
        self.labels["daemon"].setStyleSheet("color: #1b7f3b")
        self.mode.setEnabled(True)
        if not self.mode.view().isVisible():  # don't fight the user while the list is open
            self.mode.setCurrentText(st.get("mode", "commit"))
        self._update_position()

    def set_offline(self, why: str) -> None:
        self.last = None
        self.labels["daemon"].setText("○ not running — start it with `emsync-bridge serve`")
        self.labels["daemon"].setToolTip(why)
        self.labels["daemon"].setStyleSheet("color: #b02a37")
        for key in ("reaper", "position", "tempo", "midi", "model", "generation", "error"):
            self.labels[key].setText("—")
        self.mode.setEnabled(False)

    def position(self) -> float | None:
        if self.last is None:
            return None
        tr = self.last.get("transport") or {}
        pos = float(tr.get("position") or 0.0)
        if tr.get("playing"):
            pos += (time.monotonic() - self._received) * float(tr.get("playrate") or 1.0)
        return pos

    def _update_position(self) -> None:
        if self.last is None:
            return
        playing = (self.last.get("transport") or {}).get("playing")
        self.labels["position"].setText(f"{'▶' if playing else '■'} {self.position():.2f} s")
