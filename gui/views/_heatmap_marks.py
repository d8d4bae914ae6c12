"""What the heatmap draws over its image without covering data: range brackets, row outlines.

Nothing here is filled: a selected range is an outline with bracket caps, the rows a
finding names are outlined, so the colours of the cells under them stay exactly as
the colour bar says. ``StepViewBox`` makes the wheel zoom steps only (Shift+wheel: rows).
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsRectItem


class StepViewBox(pg.ViewBox):
    """The wheel zooms the step axis only; with Shift (or Alt) held it zooms the rows."""

    def wheelEvent(self, ev, axis=None) -> None:  # noqa: ANN001, N802 - pyqtgraph override
        mods = ev.modifiers()
        rows = bool(mods & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.AltModifier))
        super().wheelEvent(ev, axis=1 if rows else 0)


def cosmetic_pen(color: str | QColor, width: float = 2.0, dash: bool = False) -> QPen:
    pen = QPen(QColor(color))
    pen.setWidthF(width)
    pen.setCosmetic(True)
    if dash:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


class RangeBrackets(QGraphicsPathItem):
    """``[ … ]`` around a step range over every row: two edges and short caps, no fill."""

    CAP = 0.35  # cap length as a fraction of one row (in data units, so it scales with rows)

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(8)
        self.setBrush(Qt.BrushStyle.NoBrush)
        self._range = (0.0, 0.0)

    def getRegion(self) -> tuple[float, float]:  # noqa: N802 - same name as LinearRegionItem's
        return self._range

    def set_range(self, x0: float, x1: float, rows: int, color: str) -> None:
        self._range = (x0, x1)
        top, bottom = -0.5, max(rows, 1) - 0.5
        cap = max((x1 - x0) * 0.04, 0.5)
        path = QPainterPath()
        for edge, sign in ((x0, 1), (x1, -1)):
            path.moveTo(edge + sign * cap, top)
            path.lineTo(edge, top)
            path.lineTo(edge, bottom)
            path.lineTo(edge + sign * cap, bottom)
        self.setPath(path)
        self.setPen(cosmetic_pen(color, 2.0))
        self.show()


class RowOutlines:
    """One unfilled rectangle per run of consecutive display rows, added to ``plot``."""

    def __init__(self, plot: pg.PlotItem, color: str, z: float = 9, dash: bool = True) -> None:
        self.plot, self.color, self.z, self.dash = plot, color, z, dash
        self.items: list[QGraphicsRectItem] = []

    def set(self, groups: list[tuple[int, int]], x0: float, x1: float, color: str | None = None) -> None:
        if color is not None and color != self.color:
            self.color = color
            for item in self.items:
                item.setPen(cosmetic_pen(color, 1.5, self.dash))
        while len(self.items) < len(groups):
            item = QGraphicsRectItem()
            item.setPen(cosmetic_pen(self.color, 1.5, self.dash))
            item.setBrush(Qt.BrushStyle.NoBrush)
            item.setZValue(self.z)
            self.plot.addItem(item, ignoreBounds=True)
            self.items.append(item)
        for item, (a, b) in zip(self.items, groups):
            item.setRect(QRectF(x0, a - 0.5, x1 - x0, b - a + 1))
            item.show()
        for item in self.items[len(groups):]:
            item.hide()

    def shown(self) -> int:
        return sum(1 for item in self.items if item.isVisible())
