"""The control panel's main window: timeline, steering, bridge status, progress.

A thin shell: analysis is `video.analyze_video`, thumbnails `video.decode.grab_frames`, the
emotion curve sent to the model `score.conditioning_for` (shown live as the dashed curve), the
boundaries per policy `score.boundaries_for`, generation `score.score_video`, the daemon
`bridge.BridgeClient`, REAPER's markers `timeline.load_project_state`. All long work runs in a
`worker.Task`; the window only builds options from its widgets and draws results.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from PyQt6.QtCore import QEventLoop, Qt, QTimer, QUrl
from PyQt6.QtGui import QAction, QDesktopServices, QKeySequence
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from emsync_bridge.bridge.osc import BridgeClient
from emsync_bridge.errors import EmsyncError
from emsync_bridge.music import vocab
from emsync_bridge.score import ScoreOptions, boundaries_for, conditioning_for, score_video
from emsync_bridge.timeline import protocol
from emsync_bridge.ui.status import StatusArea, StatusPoller
from emsync_bridge.ui.timeline import TimelineView
from emsync_bridge.ui.vapad import VAPad
from emsync_bridge.ui.worker import Task
from emsync_bridge.video.emotion import EMOTIONS, va_for_emotion

log = logging.getLogger(__name__)

NO_OVERRIDE = "video (no override)"
CUSTOM = "custom V/A (pad)"
N_THUMBS = 16


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return Path(a).name == Path(b).name


class MainWindow(QMainWindow):
    def __init__(self, daemon_host: str = "127.0.0.1", daemon_port: int = protocol.DAEMON_OSC_PORT,
                 poll: bool = True, out_dir: str | None = None):
        super().__init__()
        self.setWindowTitle("EmSync — control panel")
        self.resize(1400, 900)
        self.analysis = None
        self.video: str | None = None
        self.result = None  # the last ScoreResult
        self.overrides: dict[int, tuple[float, float, str]] = {}  # scene -> (V, A, label)
        self.selected: int | None = None
        self.task: Task | None = None
        self._side_tasks: list[Task] = []  # thumbnails: may run beside a generation
        self.project = None  # timeline.Timeline of REAPER's project.json, when there is one
        self._project_sig = None
        self.markers: list[tuple[float, str]] = []  # REAPER markers in video time
        self._own_out = out_dir is None
        self.out_dir = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="emsync-panel-"))
        self.client = BridgeClient(daemon_host, daemon_port)  # fire-and-forget commands; polls use their own
        self.player = None
        self.wizard = None
        self._build()
        self.poller: StatusPoller | None = None
        if poll:
            self.poller = StatusPoller(daemon_host, daemon_port, parent=self)
            self.poller.status.connect(self._on_status)
            self.poller.offline.connect(self.status_area.set_offline)
            self.poller.start()
        self._playhead_timer = QTimer(self)  # REAPER's play position on the timeline, between polls too
        self._playhead_timer.timeout.connect(self._update_playhead)
        self._playhead_timer.start(100)
        self._refresh_buttons()

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        tb = self.toolbar = self.addToolBar("main")
        tb.setMovable(False)

        def action(text, slot, tip, key=None):
            a = QAction(text, self)
            a.setToolTip(tip)
            a.triggered.connect(slot)
            if key:
                a.setShortcut(QKeySequence(key))
            tb.addAction(a)
            return a

        self.act_open = action("Open video…", self.open_video, "open a video file and analyze it", "Ctrl+O")
        self.act_open_json = action("Open analysis…", self.open_analysis, "open an analysis.json")
        tb.addSeparator()
        self.act_generate = action("Generate", self.generate, "score the whole film with these settings", "Ctrl+G")
        self.act_regen = action("Regenerate from scene", self.regenerate_from_scene,
                                "keep the music before the selected scene, generate the rest (and ask the bridge "
                                "too); change the seed for another take", "Ctrl+R")
        self.act_cancel = action("Cancel", self.cancel, "stop the running analysis or generation", "Esc")
        self.act_panic = action("Panic", self.panic, "all notes off now (bridge and REAPER), stop the preview",
                                "Ctrl+.")
        tb.addSeparator()
        self.act_play = action("Play preview", self.play_preview, "play the rendered preview")
        self.act_export = action("Export MIDI…", self.export_midi, "save the generated score.mid")
        tb.addSeparator()
        self.act_setup = action("Setup…", self.open_wizard, "daemon, REAPER OSC surface, MIDI ports, install scripts")

        self.timeline = TimelineView()
        self.timeline.sceneClicked.connect(self.select_scene)
        side = QScrollArea()
        side.setWidgetResizable(True)
        side.setMinimumWidth(360)
        side.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        side.setWidget(self._steering())
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.timeline)
        split.addWidget(side)
        split.setStretchFactor(0, 1)
        split.setSizes([1020, 370])

        self.status_area = StatusArea()
        self.status_area.modeRequested.connect(self.set_mode)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(True)
        self.progress.setFormat("idle")
        self.message = QLabel("Open a video (or an analysis.json) to start.")
        self.message.setObjectName("message")
        cancel = QPushButton("Cancel")
        cancel.clicked.connect(self.cancel)
        self.cancel_button = cancel
        prog_row = QHBoxLayout()
        prog_row.addWidget(self.message, 1)
        prog_row.addWidget(self.progress, 1)
        prog_row.addWidget(cancel)

        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(split, 1)
        lay.addLayout(prog_row)
        lay.addWidget(self.status_area)
        self.setCentralWidget(central)

    def _steering(self) -> QWidget:
        w = QWidget()
        lay = QVBoxLayout(w)
        lay.setContentsMargins(4, 4, 4, 4)

        box = QGroupBox("Selected scene")
        form = QVBoxLayout(box)
        self.scene_label = QLabel("click a scene in the timeline")
        self.scene_label.setWordWrap(True)
        self.override = QComboBox()
        self.override.addItems([NO_OVERRIDE, *EMOTIONS, CUSTOM])
        self.override.setToolTip("replace the video's emotion for this scene")
        self.override.activated.connect(self._override_chosen)
        self.pad = VAPad()
        self.pad.picked.connect(self._pad_picked)
        clear = QPushButton("Clear all overrides")
        clear.clicked.connect(self.clear_overrides)
        form.addWidget(self.scene_label)
        form.addWidget(self.override)
        form.addWidget(self.pad)
        form.addWidget(clear)
        lay.addWidget(box)

        box = QGroupBox("Whole film")
        f = QFormLayout(box)
        self.v_offset = self._offset_slider()
        self.a_offset = self._offset_slider()
        f.addRow("Valence offset", self.v_offset)
        f.addRow("Arousal offset", self.a_offset)
        self.policy = QComboBox()
        self.policy.addItems(["cuts", "markers", "both"])
        self.policy.setToolTip("what long chords aim at: video cuts, REAPER markers, or both")
        self.policy.currentIndexChanged.connect(self._steering_changed)
        f.addRow("Boundaries", self.policy)
        lay.addWidget(box)

        box = QGroupBox("Instruments")
        row = QHBoxLayout(box)
        self.instruments: dict[str, QCheckBox] = {}
        for inst in vocab.INSTRUMENTS:
            cb = QCheckBox(inst)
            cb.setChecked(True)
            cb.toggled.connect(self._refresh_buttons)
            self.instruments[inst] = cb
            row.addWidget(cb)
        lay.addWidget(box)

        box = QGroupBox("Sampling")
        f = QFormLayout(box)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.1, 3.0)
        self.temperature.setSingleStep(0.05)
        self.temperature.setValue(ScoreOptions.temperature)
        self.top_p = QDoubleSpinBox()
        self.top_p.setRange(0.05, 1.0)
        self.top_p.setSingleStep(0.05)
        self.top_p.setValue(ScoreOptions.top_p)
        self.tempo_on = QCheckBox("fix at")  # unchecked: a tempo fitted so the cuts fall on beats
        self.tempo_bpm = QDoubleSpinBox()
        self.tempo_bpm.setRange(20, 400)
        self.tempo_bpm.setValue(120)
        self.tempo_bpm.setSuffix(" BPM")
        trow = QHBoxLayout()
        trow.addWidget(self.tempo_on)
        trow.addWidget(self.tempo_bpm, 1)
        f.addRow("Seed", self.seed)
        f.addRow("Temperature", self.temperature)
        f.addRow("Top-p", self.top_p)
        f.addRow("Tempo", trow)
        self.tempo_fit = QLabel("auto: fitted to the cuts")  # after generation: the tempo and each cut's offset
        self.tempo_fit.setWordWrap(True)
        f.addRow("", self.tempo_fit)
        self.render = QCheckBox("render preview audio (FluidSynth)")
        self.render.setChecked(True)
        f.addRow("", self.render)
        lay.addWidget(box)

        self.send_to_bridge = QCheckBox("Send overrides and regenerate to the bridge")
        self.send_to_bridge.setChecked(True)
        self.send_to_bridge.setToolTip("when a daemon runs: overrides become /emsync/emotion at the scene's project "
                                       "time, Regenerate also asks the daemon (REAPER gets the new music)")
        lay.addWidget(self.send_to_bridge)
        lay.addStretch(1)
        return w

    def _offset_slider(self) -> QSlider:
        s = QSlider(Qt.Orientation.Horizontal)
        s.setRange(-100, 100)
        s.setValue(0)
        s.setTickPosition(QSlider.TickPosition.TicksBelow)
        s.setTickInterval(50)
        s.valueChanged.connect(self._steering_changed)
        return s

    # ------------------------------------------------------------------ options (what generation gets)

    def score_options(self) -> ScoreOptions:
        """The panel's settings as the library's options; `conditioning_for(analysis, this)` is
        exactly what generation receives."""
        bounds = None
        if self.analysis is not None and self.policy.currentText() != "cuts":
            bounds = tuple(boundaries_for(self.analysis, self.policy.currentText(), [t for t, _ in self.markers],
                                          ScoreOptions.min_scene_s))
        return ScoreOptions(
            seed=self.seed.value(),
            instruments=tuple(i for i, cb in self.instruments.items() if cb.isChecked()),
            tempo=self.tempo_bpm.value() if self.tempo_on.isChecked() else "auto",
            render=self.render.isChecked(),
            temperature=round(self.temperature.value(), 3),
            top_p=round(self.top_p.value(), 3),
            scene_overrides={i: (v, a) for i, (v, a, _) in self.overrides.items()},
            valence_offset=self.v_offset.value() / 100,
            arousal_offset=self.a_offset.value() / 100,
            boundaries=bounds,
        )

    def conditioning(self):
        return None if self.analysis is None else conditioning_for(self.analysis, self.score_options())

    def _steering_changed(self, *_):
        if self.analysis is None:
            return
        try:
            self.timeline.set_conditioning(self.conditioning())
        except EmsyncError as exc:
            self.say(str(exc))

    # ------------------------------------------------------------------ loading

    def open_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video", "", "Video (*.mp4 *.mov *.mkv *.avi *.webm);;All (*)")
        if path:
            self.load(path)

    def open_analysis(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open analysis", "", "Analysis JSON (*.json);;All (*)")
        if path:
            self.load(path)

    def load(self, path: str) -> None:
        """A video (analysed in the background) or an analysis.json (shown at once)."""
        p = Path(path)
        if not p.is_file():
            self.error(f"not found: {path}")
            return
        if p.suffix.lower() == ".json":
            from emsync_bridge.video.schema import VideoAnalysis

            try:
                analysis = VideoAnalysis.from_file(p)  # the schema: caps, types, ranges
            except EmsyncError as exc:
                self.error(f"{p.name}: {exc}")
                return
            video = analysis.video if Path(analysis.video).is_file() else None
            if video is None and (p.parent / Path(analysis.video).name).is_file():
                video = str(p.parent / Path(analysis.video).name)  # moved together with its video
            self.set_analysis(analysis, video)
            return

        def work(progress):
            from emsync_bridge.video import analyze_video

            return analyze_video(str(p), ScoreOptions.min_scene_s, progress=lambda d, t: progress("analyze", d, t))

        self.start(Task("analysis", work), lambda a: self.set_analysis(a, str(p)), f"analyzing {p.name}…")

    def set_analysis(self, analysis, video: str | None) -> None:
        self.analysis, self.video = analysis, video
        self.result, self.overrides, self.selected = None, {}, None
        self.timeline.set_analysis(analysis)
        self.timeline.set_markers(self.markers)
        self._steering_changed()
        self.select_scene(0 if analysis.scenes else None)
        name = Path(analysis.video).name
        self.setWindowTitle(f"EmSync — {name}")
        self.say(f"{name}: {analysis.duration:.1f} s, {len(analysis.scenes)} scenes, {len(analysis.cuts)} cuts "
                 f"({len(analysis.boundaries)} boundaries)" + ("" if video else " — video file not found: no thumbnails"))
        self._refresh_buttons()
        self._reload_project(force=True)
        if video:
            self._grab_thumbnails(analysis, video)

    def _grab_thumbnails(self, analysis, video: str) -> None:
        if analysis.thumbnails:
            times = [(i + 0.5) * analysis.duration / N_THUMBS for i in range(N_THUMBS)]
            self.timeline.set_thumbnails([min(analysis.thumbnails, key=lambda th: abs(th[0] - t)) for t in times])
            return

        def work(_progress):
            from emsync_bridge.video.decode import grab_frames

            times = [(i + 0.5) * analysis.duration / N_THUMBS for i in range(N_THUMBS)]
            return grab_frames(video, times, pixels=128 * 72)

        task = Task("thumbnails", work, self)
        self._side_tasks.append(task)
        task.succeeded.connect(lambda th: self.timeline.set_thumbnails(th) if self.analysis is analysis else None)
        task.failed.connect(lambda msg: self.say(f"no thumbnails: {msg}"))
        task.finished.connect(lambda: self._side_tasks.remove(task) if task in self._side_tasks else None)
        task.finished.connect(task.deleteLater)
        task.start()

    # ------------------------------------------------------------------ scenes and overrides

    def select_scene(self, index: int | None) -> None:
        self.selected = index
        self.timeline.select_scene(index)
        if index is None or self.analysis is None:
            self.scene_label.setText("click a scene in the timeline")
            self.pad.set_value(None)
            self._refresh_buttons()
            return
        s = self.analysis.scenes[index]
        ov = self.overrides.get(index)
        text = (f"<b>Scene {index + 1}</b> of {len(self.analysis.scenes)}: {s.start:.1f}–{s.end:.1f} s<br>"
                f"video: <b>{s.dominant}</b> (V {s.valence:+.2f}, A {s.arousal:+.2f}, confidence {s.confidence:.2f})")
        if ov:
            text += f"<br>override: <b>{ov[2] or 'custom'}</b> (V {ov[0]:+.2f}, A {ov[1]:+.2f})"
        self.scene_label.setText(text)
        self.override.setCurrentText(NO_OVERRIDE if ov is None else (ov[2] or CUSTOM))
        self.pad.set_value((ov[0], ov[1]) if ov else None, (s.valence, s.arousal))
        self._refresh_buttons()

    def set_override(self, index: int, label: str | None = None, va: tuple[float, float] | None = None) -> None:
        """Override one scene with an emotion class (`label`) or a V/A point; both None clears it."""
        if self.analysis is None or not 0 <= index < len(self.analysis.scenes):
            return
        if label is None and va is None:
            self.overrides.pop(index, None)
        else:
            v, a = va if va is not None else va_for_emotion(label)
            self.overrides[index] = (round(v, 3), round(a, 3), label or "")
        self._steering_changed()
        self.select_scene(index)
        self._forward_override(index)

    def _override_chosen(self, _i: int) -> None:
        if self.selected is None:
            return
        choice = self.override.currentText()
        if choice == NO_OVERRIDE:
            self.set_override(self.selected)
        elif choice == CUSTOM:
            s = self.analysis.scenes[self.selected]
            self.set_override(self.selected, va=self.pad.value or (s.valence, s.arousal))
        else:
            self.set_override(self.selected, label=choice)

    def _pad_picked(self, v: float, a: float) -> None:
        if self.selected is not None:
            self.set_override(self.selected, va=(v, a))

    def clear_overrides(self) -> None:
        cleared = list(self.overrides)
        self.overrides.clear()
        self._steering_changed()
        self.select_scene(self.selected)
        for i in cleared:
            self._forward_override(i)

    # ------------------------------------------------------------------ the bridge

    def _bridge_on(self) -> bool:
        return self.status_area.online and self.send_to_bridge.isChecked()

    def project_time(self, video_s: float) -> float:
        """Where a video time sits on REAPER's timeline (the project's video item), else the same."""
        if self.project is not None and self.analysis is not None:
            for it in self.project.video_items:
                if _same_file(it.file, self.analysis.video) and it.shows_video_time(video_s):
                    return it.video_to_project(video_s)
        return video_s

    def video_time(self, project_s: float) -> float | None:
        """The video time REAPER shows at a project time (None: another video, or none, is on screen)."""
        if self.project is None or not self.project.video_items:
            return project_s
        hit = self.project.project_to_video(project_s)
        if hit and self.analysis is not None and _same_file(hit[0].file, self.analysis.video):
            return hit[1]
        return None

    def _update_playhead(self) -> None:
        pos = self.status_area.position()
        self.timeline.set_playhead(None if pos is None else self.video_time(pos))

    def _forward_override(self, index: int) -> None:
        if not self._bridge_on():
            return
        s = self.analysis.scenes[index]
        ov = self.overrides.get(index)
        # The daemon has no "forget an emotion" message: clearing sends the video's own estimate.
        v, a = (ov[0], ov[1]) if ov else (s.valence, s.arousal)
        self.client.set_emotion(v, a, self.project_time(s.start))

    def _on_status(self, st: dict) -> None:
        self.status_area.set_status(st)
        self._reload_project(spool=st.get("spool"))
        if self.wizard is not None:
            self.wizard.on_status(st)

    def _reload_project(self, spool: str | None = None, force: bool = False) -> None:
        """REAPER's markers from project.json in the spool, mapped into video time."""
        from emsync_bridge.timeline import Timeline, load_project_state, resolve_spool_dir

        spool = spool or (self.status_area.last or {}).get("spool")  # the running daemon's spool first
        try:
            path = Path(spool or resolve_spool_dir()) / protocol.PROJECT_FILE
            st = path.stat()
        except (EmsyncError, OSError):
            return
        sig = (str(path), st.st_mtime_ns, st.st_size)
        if sig == self._project_sig and not force:
            return
        self._project_sig = sig
        try:
            self.project = Timeline.from_state(load_project_state(path))
        except EmsyncError as exc:
            self.say(str(exc))
            return
        marks = [(m.position, m.name or str(m.index)) for m in self.project.markers]
        marks += [(r.position, r.name or f"region {r.index}") for r in self.project.regions]
        out = [(vt, name) for t, name in marks if (vt := self.video_time(t)) is not None]
        self.markers = out
        if self.analysis is not None:
            self.timeline.set_markers(out)
            self._steering_changed()

    def set_mode(self, mode: str) -> None:
        self.client.set_mode(mode)
        self.say(f"asked the bridge for {mode} mode")

    def panic(self) -> None:
        # Always sent: UDP costs nothing when no daemon listens, and a stuck note is worse.
        self.client.panic()
        if self.player is not None:
            self.player.stop()
        self.say("panic: all notes off sent")

    # ------------------------------------------------------------------ generation

    def generate(self) -> None:
        self._score(None)

    def regenerate_from_scene(self) -> None:
        if self.selected is None or self.result is None:
            return
        start = self.analysis.scenes[self.selected].start
        if self._bridge_on():
            self.client.regenerate(time_s=self.project_time(start))
        self._score(start)

    def _score(self, regenerate_from: float | None) -> None:
        if self.analysis is None:
            return
        try:
            opts = self.score_options()
            from emsync_bridge.score import check_options

            check_options(opts)
        except EmsyncError as exc:
            self.error(str(exc))
            return
        analysis, video, previous = self.analysis, self.video or self.analysis.video, None
        if regenerate_from is not None and self.result is not None:
            previous = self.result.generation

        def work(progress):
            return score_video(video, self.out_dir, opts, progress=progress, analysis=analysis,
                               previous=previous, regenerate_from=regenerate_from)

        what = "generating" if regenerate_from is None else f"regenerating from {regenerate_from:.1f} s"
        self.start(Task("generation", work), self._scored, f"{what}…")

    def _scored(self, result) -> None:
        self.result = result
        self.timeline.set_score(result.score, result.report.get("boundaries", []))
        rep = result.report
        hits = sum(b["chord_onset"] is not None for b in rep["boundaries"])
        if rep.get("tempo"):
            from emsync_bridge.music.tempo_fit import describe
            self.tempo_fit.setText(describe(rep["tempo"]))
        self.say(f"{len(result.score.notes)} notes, {hits}/{len(rep['boundaries'])} boundaries hit · "
                 f"{rep['engine']}/{rep['provider']}, seed {rep['seed']} · {rep['timings'].get('total_s', 0):.1f} s"
                 + ("" if rep.get("trained", True) else " · UNTRAINED model"))
        self._refresh_buttons()

    # ------------------------------------------------------------------ task plumbing

    def start(self, task: Task, on_done, message: str) -> None:
        if self.task is not None:  # one analysis/generation at a time; thumbnails may still be loading
            self.say("busy: cancel the running job first")
            return
        task.setParent(self)
        self.task = task
        task.progressed.connect(self._progressed)
        task.succeeded.connect(on_done)
        task.failed.connect(self.error)
        task.cancelled.connect(lambda: self.say(f"{task.name} cancelled"))
        task.finished.connect(self._task_finished)
        task.finished.connect(task.deleteLater)
        self.progress.setValue(0)
        self.progress.setFormat(f"{task.name}…")
        self.say(message)
        task.start()
        self._refresh_buttons()

    def _progressed(self, stage: str, done: float, total: float) -> None:
        frac = done / total if total > 0 else 0.0
        self.progress.setValue(int(1000 * min(1.0, frac)))
        unit = "step" if stage == "render" else "s"
        self.progress.setFormat(f"{stage}: {done:.1f} / {total:.1f} {unit}")

    def _task_finished(self) -> None:
        self.task = None
        self.progress.setValue(1000 if self.result is not None else 0)
        self.progress.setFormat("idle")
        self._refresh_buttons()

    def busy(self) -> bool:
        """Any background work running (the main job or thumbnails)."""
        return self.task is not None or bool(self._side_tasks)

    def wait_idle(self, timeout_s: float = 120.0) -> bool:
        """Let the event loop run until no job is running (scripts, screenshots, tests)."""
        loop = QEventLoop()
        waited = 0
        while self.busy() and waited < timeout_s * 1000:
            QTimer.singleShot(50, loop.quit)
            loop.exec()
            waited += 50
        return not self.busy()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.say(f"cancelling {self.task.name}…")

    def _refresh_buttons(self) -> None:
        running = self.task is not None
        has = self.analysis is not None
        any_inst = any(cb.isChecked() for cb in self.instruments.values())
        self.act_generate.setEnabled(has and not running and any_inst)
        self.act_regen.setEnabled(has and not running and any_inst and self.result is not None
                                  and self.selected is not None)
        self.act_cancel.setEnabled(running)
        self.cancel_button.setEnabled(running)
        self.act_open.setEnabled(not running)
        self.act_open_json.setEnabled(not running)
        has_out = self.result is not None
        self.act_play.setEnabled(has_out and "preview.wav" in self.result.paths)
        self.act_export.setEnabled(has_out and "score.mid" in self.result.paths)

    # ------------------------------------------------------------------ preview and export

    def play_preview(self) -> None:
        if self.result is None or "preview.wav" not in self.result.paths:
            return
        wav = self.result.paths["preview.wav"]
        try:
            from PyQt6.QtMultimedia import QAudioOutput, QMediaDevices, QMediaPlayer

            if not QMediaDevices.audioOutputs():
                raise RuntimeError("no audio output")
            if self.player is None:
                self.player = QMediaPlayer(self)
                self._audio = QAudioOutput(self)
                self.player.setAudioOutput(self._audio)
            if self.player.playbackState() == QMediaPlayer.PlaybackState.PlayingState:
                self.player.stop()
                self.say("preview stopped")
                return
            self.player.setSource(QUrl.fromLocalFile(str(wav)))
            self.player.play()
            self.say(f"playing {wav.name}")
        except Exception as exc:  # no QtMultimedia backend or no audio device: let the desktop play it
            log.info("QtMultimedia unavailable (%s): opening the file", exc)
            target = self.result.paths.get("preview.mp4", wav)
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(target)))
            self.say(f"opened {target.name} with the desktop's player")

    def export_midi(self) -> None:
        if self.result is None or "score.mid" not in self.result.paths:
            return
        default = str(Path(self.video or "score").with_suffix(".mid").name)
        path, _ = QFileDialog.getSaveFileName(self, "Export MIDI", default, "MIDI (*.mid)")
        if path:
            self.export_to(path)

    def export_to(self, path: str) -> None:
        try:
            shutil.copyfile(self.result.paths["score.mid"], path)
        except OSError as exc:
            self.error(f"cannot write {path}: {exc.strerror or exc}")
            return
        self.say(f"exported {path}")

    # ------------------------------------------------------------------ wizard, messages, close

    def open_wizard(self) -> None:
        from emsync_bridge.ui.wizard import SetupWizard

        if self.wizard is None:
            self.wizard = SetupWizard(self, daemon_port=self.client.target[1])
            if self.poller is not None:
                self.poller.offline.connect(self.wizard.on_offline)
            self.wizard.finished.connect(self._wizard_closed)
        self.wizard.show()
        self.wizard.raise_()

    def _wizard_closed(self, _result) -> None:
        if self.poller is not None:
            self.poller.offline.disconnect(self.wizard.on_offline)
        self.wizard.deleteLater()
        self.wizard = None

    def say(self, text: str) -> None:
        self.message.setText(text)
        log.info("%s", text)

    def error(self, text: str) -> None:
        self.say(f"⚠ {text}")
        if self.isVisible() and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
            QMessageBox.warning(self, "EmSync", text)

    def closeEvent(self, ev) -> None:
        self.shutdown()
        super().closeEvent(ev)

    def shutdown(self) -> None:
        """Stop background work and the poller; remove the session's output folder."""
        for t in [self.task, *self._side_tasks]:
            if t is not None:
                t.cancel()
                t.wait(10000)
        if self.poller is not None:
            self.poller.stop()
            self.poller = None
        if self.player is not None:
            self.player.stop()
        self.client.close()
        if self._own_out:
            shutil.rmtree(self.out_dir, ignore_errors=True)
