"""Setup wizard: daemon running? REAPER's OSC surface sending to us? which MIDI ports? and, after
asking, the pattern file and scripts copied into REAPER's resource folder.

It listens to the main window's status poller (the same `BridgeClient.status` as everywhere) and
uses the library for the rest: `bridge.sinks.probe_backends` for ports, `ui.reaper_files` for the
copies.
"""

from __future__ import annotations

import sys

from PyQt6.QtCore import QProcess
from PyQt6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWizard,
    QWizardPage,
)

from emsync_bridge.errors import EmsyncError
from emsync_bridge.timeline import protocol
from emsync_bridge.ui import reaper_files
from emsync_bridge.ui.status import describe
from emsync_bridge.ui.worker import Task

OK, WAIT, BAD = "✔", "…", "✘"

REAPER_STEPS = """In REAPER: Options ▸ Preferences ▸ <b>Control/OSC/web</b> ▸ <b>Add</b> ▸ OSC, then<br>
&nbsp;&nbsp;Pattern config: <b>emsync</b> (installed on the last page)<br>
&nbsp;&nbsp;Mode: Configure device IP + local port<br>
&nbsp;&nbsp;Device IP <b>127.0.0.1</b>, device port <b>{daemon_port}</b> (the daemon listens here)<br>
&nbsp;&nbsp;Local listen port <b>{reaper_port}</b> (REAPER listens here for the daemon)<br>
OK, OK — then press play or move the cursor: REAPER sends its first message."""


def _page(title: str, subtitle: str) -> tuple[QWizardPage, QVBoxLayout]:
    page = QWizardPage()
    page.setTitle(title)
    page.setSubTitle(subtitle)
    return page, QVBoxLayout(page)


class SetupWizard(QWizard):
    def __init__(self, parent=None, resource: str | None = None, daemon_port: int = protocol.DAEMON_OSC_PORT):
        super().__init__(parent)
        self.setWindowTitle("EmSync setup")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.resize(720, 480)
        self._tasks: list[Task] = []

        page, lay = _page("1. The bridge daemon", "The panel and REAPER talk to emsync-bridge serve on this machine.")
        self.daemon_label = QLabel(f"{WAIT} checking…")
        self.daemon_label.setWordWrap(True)
        start = QPushButton("Start the daemon here")
        start.setToolTip("runs `python -m emsync_bridge serve` in the background")
        start.clicked.connect(self.start_daemon)
        lay.addWidget(self.daemon_label)
        lay.addWidget(start)
        lay.addStretch(1)
        self.addPage(page)

        page, lay = _page("2. REAPER's OSC surface", "Waiting for REAPER's first OSC message on our port.")
        self.reaper_label = QLabel(f"{WAIT} waiting for the daemon…")
        steps = QLabel(REAPER_STEPS.format(daemon_port=daemon_port, reaper_port=protocol.REAPER_OSC_PORT))
        steps.setWordWrap(True)
        lay.addWidget(steps)
        lay.addWidget(self.reaper_label)
        lay.addStretch(1)
        self.addPage(page)

        page, lay = _page("3. MIDI ports", "Live mode streams notes to the port 'EmSync Out' (commit mode needs none).")
        self.ports = QListWidget()
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.list_ports)
        lay.addWidget(self.ports)
        lay.addWidget(refresh)
        self.addPage(page)

        page, lay = _page("4. Install into REAPER", "Copies the OSC pattern file into OSC/ and the actions into "
                                                    "Scripts/EmSync/ — only after you confirm.")
        row = QHBoxLayout()
        row.addWidget(QLabel("REAPER resource folder"))
        self.resource = QLineEdit(str(resource or reaper_files.reaper_resource_dir()))
        self.resource.editingFinished.connect(self.show_plan)
        row.addWidget(self.resource, 1)
        lay.addLayout(row)
        self.plan_list = QListWidget()
        lay.addWidget(self.plan_list)
        self.install_button = QPushButton("Install…")
        self.install_button.clicked.connect(self.install)
        self.install_label = QLabel("")
        self.install_label.setWordWrap(True)
        lay.addWidget(self.install_button)
        lay.addWidget(self.install_label)
        self.addPage(page)

        self.list_ports()
        self.show_plan()

    # -- daemon and REAPER (fed by the main window's poller)

    def on_status(self, st: dict) -> None:
        d = describe(st)
        self.daemon_label.setText(f"{OK} running: {d['daemon'][2:]}<br>{d['model']}")
        seen = (st.get("osc") or {}).get("reaper_seen_s_ago")
        self.reaper_label.setText(f"{OK} REAPER {d['reaper']}" if seen is not None else f"{WAIT} {d['reaper']}")

    def on_offline(self, why: str) -> None:
        self.daemon_label.setText(f"{BAD} no daemon answers: {why}")
        self.reaper_label.setText(f"{WAIT} waiting for the daemon…")

    def start_daemon(self) -> None:
        ok = QProcess.startDetached(sys.executable, ["-m", "emsync_bridge", "serve"])[0]
        self.daemon_label.setText(f"{WAIT} starting the daemon…" if ok else f"{BAD} could not start {sys.executable}")

    # -- MIDI ports

    def list_ports(self) -> None:
        from emsync_bridge.bridge.sinks import active_backend, probe_backends

        self.ports.clear()
        self.ports.addItem("probing MIDI backends…")

        def show(probed):
            self.ports.clear()
            active = active_backend(probed)
            for b in probed:
                mark = "★ " if active is not None and b.api == active.api else "   "
                if not b.available:
                    self.ports.addItem(f"{mark}{b.label}: unavailable ({b.error})")
                    continue
                self.ports.addItem(f"{mark}{b.label}: outputs {', '.join(b.outputs) or '—'}")
            self.ports.addItem(f"live mode uses: {active.label if active else 'nothing (no working MIDI backend)'}")

        self._run(Task("MIDI probe", lambda _p: probe_backends()), show)

    def _run(self, task: Task, done) -> None:
        self._tasks.append(task)
        task.succeeded.connect(done)
        task.failed.connect(lambda msg: (self.ports.clear(), self.ports.addItem(msg)))
        task.finished.connect(lambda: self._tasks.remove(task) if task in self._tasks else None)
        task.start()

    # -- install

    def show_plan(self) -> None:
        self.plan_list.clear()
        try:
            plan = reaper_files.install_plan(self.resource.text().strip() or None)
        except EmsyncError as exc:
            self.plan_list.addItem(str(exc))
            self.install_button.setEnabled(False)
            return
        self.install_button.setEnabled(True)
        for c in plan:
            self.plan_list.addItem(f"[{c.state}] {c.dst}")

    def install(self) -> None:
        plan = reaper_files.install_plan(self.resource.text().strip() or None)
        todo = [c for c in plan if c.state != "same"]
        if not todo:
            self.install_label.setText(f"{OK} everything is installed already")
            return
        answer = QMessageBox.question(
            self, "Install into REAPER?",
            f"Copy {len(todo)} file(s) into {self.resource.text()}?\n\n" + "\n".join(str(c.dst) for c in todo))
        if answer != QMessageBox.StandardButton.Yes:
            self.install_label.setText("not installed")
            return
        try:
            written = reaper_files.install(todo)
        except EmsyncError as exc:
            self.install_label.setText(f"{BAD} {exc}")
            return
        self.install_label.setText(f"{OK} installed {len(written)} file(s). In REAPER: Actions ▸ Load ReaScript… "
                                   f"for the EmSync actions, and open the OSC surface once to read the pattern file.")
        self.show_plan()

    def done(self, result: int) -> None:
        for t in list(self._tasks):
            t.wait(3000)
        super().done(result)
