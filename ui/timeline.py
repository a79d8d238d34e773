"""The timeline: what the system heard in the picture, and what it played.

Three rows sharing one time axis (video seconds), drawn with pyqtgraph:
- picture: frame thumbnails, and under them the dominant emotion of each scene;
- V / A: the video's valence and arousal per scene, and (dashed) the curve actually sent to the
  model after overrides, offsets and smoothing (`score.conditioning_for`);
- piano roll (after generation): notes coloured by instrument; boundary targets with a ▼ where
  a long chord landed and a ✕ where none did.
Cuts are dashed lines, boundaries solid, REAPER markers orange. Mouse wheel zooms, drag scrolls
(time only); a click selects the scene under the pointer.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor

from emsync_bridge.music import vocab
from emsync_bridge.video.report import AROUSAL_COLOUR, EMOTION_COLOURS, VALENCE_COLOUR

# Same colours as the scoring report (score.save_report), so the panel and report.png agree.
INSTRUMENT_COLOURS = {"bass": "#1f77b4", "drums": "#7f7f7f", "guitar": "#2ca02c", "piano": "#d62728",
                      "strings": "#9467bd"}
MARKER_COLOUR = "#f4a261"
PLAYHEAD_COLOUR = "#e63946"
SELECT_BRUSH = (80, 140, 255, 45)
PICTURE_BAND = (-0.5, -0.05)  # y range of the emotion band under the thumbnails

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)


class TimelineView(pg.GraphicsLayoutWidget):
    sceneClicked = pyqtSignal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setBackground("w")
        self.analysis = None
        self.duration = 1.0
        self.picture = self.addPlot(row=0, col=0)
        self.curves = self.addPlot(row=1, col=0)
        self.roll = self.addPlot(row=2, col=0)
        self.ci.layout.setRowStretchFactor(0, 3)
        self.ci.layout.setRowStretchFactor(1, 3)
        self.ci.layout.setRowStretchFactor(2, 4)
        for p, label in ((self.picture, "picture"), (self.curves, "V / A"), (self.roll, "pitch")):
            p.setMouseEnabled(x=True, y=False)
            p.setMenuEnabled(False)
            p.hideButtons()
            p.setLabel("left", label)
            p.getAxis("left").setWidth(52)
            p.showGrid(x=True, y=False, alpha=0.15)
            if p is not self.picture:
                p.setXLink(self.picture)
        self.picture.getAxis("left").setTicks([[]])
        self.picture.getAxis("bottom").setStyle(showValues=False)
        self.curves.getAxis("bottom").setStyle(showValues=False)
        self.roll.setLabel("bottom", "time (s) — wheel: zoom, drag: scroll, click: select a scene")
        self.picture.setYRange(PICTURE_BAND[0], 1.02, padding=0)
        self.curves.setYRange(-1.05, 1.05, padding=0)
        self.roll.setYRange(vocab.MIN_PITCH, vocab.MAX_PITCH, padding=0)
        self.curves.addLegend(offset=(-4, 2), colCount=4, labelTextSize="8pt", brush=(255, 255, 255, 200))
        self.roll_legend = self.roll.addLegend(offset=(-4, -2), colCount=5, labelTextSize="8pt", brush=(255, 255, 255, 200))
        self._static: list = []  # items redrawn with the analysis
        self._marker_items: list = []
        self._cond_items: list = []
        self._score_items: list = []
        self._thumb_items: list = []
        self._selection: list = []
        self._playhead = []
        for plot in (self.picture, self.curves, self.roll):
            line = pg.InfiniteLine(0.0, pen=pg.mkPen(PLAYHEAD_COLOUR, width=2))
            line.setZValue(40)
            line.hide()
            plot.addItem(line)
            self._playhead.append(line)
        self.scene().sigMouseClicked.connect(self._on_click)

    # -- content

    def clear_all(self) -> None:
        for items in (self._static, self._marker_items, self._cond_items, self._score_items, self._thumb_items,
                      self._selection):
            self._remove(items)
        self.roll_legend.clear()
        self.curves.legend.clear()

    def _remove(self, items: list) -> None:
        for plot, item in items:
            plot.removeItem(item)
        items.clear()

    def _add(self, store: list, plot, item):
        plot.addItem(item)
        store.append((plot, item))
        return item

    def set_analysis(self, analysis) -> None:
        self.clear_all()
        self.analysis = analysis
        self.duration = max(analysis.duration, 1e-3)
        for p in (self.picture, self.curves, self.roll):
            p.setLimits(xMin=0, xMax=self.duration, minXRange=min(1.0, self.duration))
        self.picture.setXRange(0, self.duration, padding=0)
        # Dominant emotion band: one coloured block per scene, labelled.
        y0, y1 = PICTURE_BAND
        for s in analysis.scenes:
            colour = QColor(EMOTION_COLOURS.get(s.dominant, "#999999"))
            rect = pg.QtWidgets.QGraphicsRectItem(QRectF(s.start, y0, s.end - s.start, y1 - y0))
            rect.setBrush(pg.mkBrush(colour))
            rect.setPen(pg.mkPen("w", width=1))
            self._add(self._static, self.picture, rect)
            text = pg.TextItem(s.dominant, color="k", anchor=(0, 0.5))
            text.setPos(s.start, (y0 + y1) / 2)
            self._add(self._static, self.picture, text)
        # The video's own V/A per scene (steps).
        if analysis.scenes:
            xs = [s.start for s in analysis.scenes] + [analysis.scenes[-1].end]
            for key, colour, name in (("valence", VALENCE_COLOUR, "valence (video)"),
                                      ("arousal", AROUSAL_COLOUR, "arousal (video)")):
                ys = [getattr(s, key) for s in analysis.scenes]
                item = pg.PlotDataItem(xs, ys, stepMode="center", pen=pg.mkPen(colour, width=2), name=name)
                self._add(self._static, self.curves, item)
        zero = pg.InfiniteLine(0.0, angle=0, pen=pg.mkPen("#bbbbbb", width=1))
        self._add(self._static, self.curves, zero)
        # Cuts (dashed) and boundaries (solid) through every row.
        for plot in (self.picture, self.curves, self.roll):
            for c in analysis.cuts:
                self._add(self._static, plot, pg.InfiniteLine(c, pen=pg.mkPen("#333333", width=1,
                                                                                style=Qt.PenStyle.DashLine)))
            for b in analysis.boundaries:
                self._add(self._static, plot, pg.InfiniteLine(b, pen=pg.mkPen("#000000", width=1.5)))

    def set_thumbnails(self, thumbs) -> None:
        """`thumbs`: [(time, RGB array)] at evenly spaced times; each fills its share of the row."""
        self._remove(self._thumb_items)
        if not thumbs:
            return
        width = self.duration / len(thumbs)
        for i, (_, rgb) in enumerate(thumbs):
            img = pg.ImageItem(np.ascontiguousarray(rgb[::-1]))  # row 0 at the top of the picture
            img.setRect(QRectF(i * width, 0.0, width, 1.0))
            self._add(self._thumb_items, self.picture, img)

    def set_markers(self, markers) -> None:
        """REAPER markers as [(video time, name)]."""
        self._remove(self._marker_items)
        for t, name in markers:
            for plot in (self.picture, self.curves, self.roll):
                label = {"position": 0.92, "color": "k", "fill": MARKER_COLOUR, "anchors": [(0, 0.5), (0, 0.5)]} if plot is self.picture else None
                line = pg.InfiniteLine(t, pen=pg.mkPen(MARKER_COLOUR, width=2), label=name if label else None,
                                       labelOpts=label)
                line.setZValue(20)  # above the thumbnails
                self._add(self._marker_items, plot, line)

    def set_conditioning(self, cond) -> None:
        """The emotion curve that generation will receive (a `music.generate.Conditioning`)."""
        self._remove(self._cond_items)
        if cond is None or not cond.emotion:
            return
        xs = [seg.start for seg in cond.emotion] + [self.duration]
        for idx, colour, name in ((0, VALENCE_COLOUR, "V sent"), (1, AROUSAL_COLOUR, "A sent")):
            ys = [(seg.valence, seg.arousal)[idx] for seg in cond.emotion]
            ys = [0.0 if y is None else y for y in ys]
            item = pg.PlotDataItem(xs, ys, stepMode="center", name=name,
                                   pen=pg.mkPen(colour, width=2, style=Qt.PenStyle.DashLine))
            self._add(self._cond_items, self.curves, item)

    def set_score(self, score, boundaries) -> None:
        """Notes (a `music.midi.Score`) and the report's boundaries [{target, chord_onset}]."""
        self._remove(self._score_items)
        self.roll_legend.clear()
        if score is None:
            return
        for inst, colour in INSTRUMENT_COLOURS.items():
            notes = [n for n in score.notes if n.instrument == inst]
            if not notes:
                continue
            xs = np.empty(2 * len(notes))
            ys = np.empty(2 * len(notes))
            xs[0::2] = [n.start for n in notes]
            xs[1::2] = [n.end for n in notes]
            ys[0::2] = ys[1::2] = [n.pitch for n in notes]
            item = pg.PlotDataItem(xs, ys, connect="pairs", pen=pg.mkPen(colour, width=2.5),
                                   name=f"{inst} ({len(notes)})")
            self._add(self._score_items, self.roll, item)
        top = vocab.MAX_PITCH - 2
        hits = [b["chord_onset"] for b in boundaries if b.get("chord_onset") is not None]
        missed = [b["target"] for b in boundaries if b.get("chord_onset") is None]
        if hits:
            self._add(self._score_items, self.roll, pg.ScatterPlotItem(
                hits, [top] * len(hits), symbol="t", size=16, brush=pg.mkBrush("#2a9d8f"), pen=pg.mkPen("k"))).setZValue(30)
        if missed:
            self._add(self._score_items, self.roll, pg.ScatterPlotItem(
                missed, [top] * len(missed), symbol="x", size=16, brush=pg.mkBrush("#e63946"), pen=pg.mkPen("k"))).setZValue(30)

    def set_playhead(self, t: float | None) -> None:
        """REAPER's play position (video seconds), or None to hide it."""
        for line in self._playhead:
            if t is None or self.analysis is None or not 0 <= t <= self.duration:
                line.hide()
            else:
                line.setValue(t)
                line.show()

    def shown(self) -> dict[str, int]:
        """What is drawn, counted (tests and scripts check the view against the data)."""
        def count(store, plot, kind, pred=lambda i: True):
            return sum(1 for p, i in store if p is plot and isinstance(i, kind) and pred(i))

        dashed = lambda i: i.pen.style() == Qt.PenStyle.DashLine  # noqa: E731
        return {
            "scenes": count(self._static, self.picture, pg.QtWidgets.QGraphicsRectItem),
            "cuts": count(self._static, self.picture, pg.InfiniteLine, dashed),
            "boundaries": count(self._static, self.picture, pg.InfiniteLine, lambda i: not dashed(i)),
            "markers": count(self._marker_items, self.picture, pg.InfiniteLine),
            "thumbnails": len(self._thumb_items),
            "notes": sum(len(i.xData) // 2 for _, i in self._score_items if isinstance(i, pg.PlotDataItem)),
            "selected": len(self._selection),
        }

    # -- selection

    def scene_index_at(self, t: float) -> int | None:
        if self.analysis is None or not self.analysis.scenes:
            return None
        for i, s in enumerate(self.analysis.scenes):
            if s.start <= t < s.end:
                return i
        return len(self.analysis.scenes) - 1 if t >= self.analysis.scenes[-1].end else 0

    def select_scene(self, index: int | None) -> None:
        self._remove(self._selection)
        if index is None or self.analysis is None or not 0 <= index < len(self.analysis.scenes):
            return
        s = self.analysis.scenes[index]
        for plot in (self.picture, self.curves, self.roll):
            region = pg.LinearRegionItem((s.start, s.end), movable=False, brush=pg.mkBrush(*SELECT_BRUSH),
                                         pen=pg.mkPen((40, 90, 220), width=2))
            region.setZValue(-5)
            self._add(self._selection, plot, region)

    def _on_click(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        pos = ev.scenePos()
        for plot in (self.picture, self.curves, self.roll):
            if plot.vb.sceneBoundingRect().contains(pos):
                i = self.scene_index_at(plot.vb.mapSceneToView(pos).x())
                if i is not None:
                    self.sceneClicked.emit(i)
                return
