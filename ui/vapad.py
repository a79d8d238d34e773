"""A valence/arousal pad: click or drag to pick a point; the six emotion classes are marked where
EMSYNC's table puts them (`video.emotion.va_for_emotion`)."""

from __future__ import annotations

from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QPainter, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from emsync_bridge.video.emotion import EMOTIONS, va_for_emotion
from emsync_bridge.video.report import EMOTION_COLOURS


LABEL_DY = {"fear": 13}  # fear sits next to anger: label it below its dot


class VAPad(QWidget):
    picked = pyqtSignal(float, float)  # valence, arousal, on user input only

    def __init__(self, parent=None):
        super().__init__(parent)
        self.value: tuple[float, float] | None = None
        self.reference: tuple[float, float] | None = None  # the video's own estimate, drawn hollow
        self.setMinimumSize(150, 150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("valence → (unpleasant … pleasant), arousal ↑ (calm … excited); click or drag")

    def sizeHint(self) -> QSize:
        return QSize(180, 170)

    def heightForWidth(self, w: int) -> int:
        return 170

    def set_value(self, va: tuple[float, float] | None, reference: tuple[float, float] | None = None) -> None:
        self.value, self.reference = va, reference
        self.update()

    def _square(self) -> QRectF:
        side = min(self.width(), self.height()) - 16
        return QRectF((self.width() - side) / 2, 8, side, side)

    def _to_px(self, v: float, a: float) -> QPointF:
        r = self._square()
        return QPointF(r.left() + (v + 1) / 2 * r.width(), r.bottom() - (a + 1) / 2 * r.height())

    def _from_px(self, p: QPointF) -> tuple[float, float]:
        r = self._square()
        v = (p.x() - r.left()) / r.width() * 2 - 1
        a = (r.bottom() - p.y()) / r.height() * 2 - 1
        return round(max(-1.0, min(1.0, v)), 3), round(max(-1.0, min(1.0, a)), 3)

    def paintEvent(self, _ev) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = self._square()
        p.fillRect(r, QColor("#fafafa"))
        p.setPen(QPen(QColor("#999999"), 1))
        p.drawRect(r)
        p.setPen(QPen(QColor("#dddddd"), 1, Qt.PenStyle.DashLine))
        p.drawLine(QPointF(r.center().x(), r.top()), QPointF(r.center().x(), r.bottom()))
        p.drawLine(QPointF(r.left(), r.center().y()), QPointF(r.right(), r.center().y()))
        font = p.font()
        font.setPointSizeF(7.5)
        p.setFont(font)
        for e in EMOTIONS:
            pt = self._to_px(*va_for_emotion(e))
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QBrush(QColor(EMOTION_COLOURS[e])))
            p.drawEllipse(pt, 4, 4)
            p.setPen(QColor("#444444"))
            dx = -12 if pt.x() > r.center().x() + r.width() / 4 else 5
            p.drawText(pt + QPointF(dx, LABEL_DY.get(e, -5)), e)
        if self.reference is not None:
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.setPen(QPen(QColor("#555555"), 1.5))
            p.drawEllipse(self._to_px(*self.reference), 6, 6)
        if self.value is not None:
            p.setPen(QPen(QColor("#1d3557"), 2))
            p.setBrush(QBrush(QColor("#457b9d")))
            p.drawEllipse(self._to_px(*self.value), 6, 6)
        p.setPen(QColor("#666666"))
        p.drawText(QRectF(r.left(), r.bottom() - 14, r.width() - 3, 14), Qt.AlignmentFlag.AlignRight, "V →")
        p.drawText(QRectF(r.left() + 3, r.top(), 30, 14), Qt.AlignmentFlag.AlignLeft, "A ↑")
        p.end()

    def mousePressEvent(self, ev) -> None:
        self._pick(ev.position())

    def mouseMoveEvent(self, ev) -> None:
        if ev.buttons() & Qt.MouseButton.LeftButton:
            self._pick(ev.position())

    def _pick(self, pos: QPointF) -> None:
        self.value = self._from_px(pos)
        self.update()
        self.picked.emit(*self.value)
