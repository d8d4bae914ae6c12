"""Report figures rendered from the plots themselves, at 2× (no widget grabs, no combo boxes).

``render_view(view, path)`` paints the view's plot canvases (its visible pyqtgraph
``GraphicsView``s, or what ``view.figure_widgets()`` names) into one PNG at ``scale``
times their size on screen, so text and lines are drawn at print resolution rather
than a screenshot scaled up. ``view_caption(view)`` is the line the figure needs
(the view's own headline: the layer shown, the outputs readout).
"""

from __future__ import annotations

import re

from PySide6.QtCore import QPoint, QRect, QRectF
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QApplication, QGraphicsView, QWidget

from gui import theme


def figure_widgets(view: QWidget) -> list[QGraphicsView]:
    """The plot canvases of ``view`` that are on screen, top to bottom."""
    named = getattr(view, "figure_widgets", None)
    found = named() if callable(named) else view.findChildren(QGraphicsView)
    shown = [w for w in found if w.isVisible() and w.width() > 10 and w.height() > 10]
    return sorted(shown, key=lambda w: w.mapTo(view, QPoint(0, 0)).y()) if shown else []


def render_view(view: QWidget, path: str, scale: float = 2.0) -> str | None:
    """Paint ``view``'s canvases into ``path`` (PNG) at ``scale``×; None when nothing is on screen."""
    QApplication.processEvents()
    canvases = figure_widgets(view)
    if not canvases:
        return None
    width = max(c.viewport().width() for c in canvases)
    height = sum(c.viewport().height() for c in canvases)
    img = QImage(int(width * scale), int(height * scale), QImage.Format.Format_ARGB32)
    img.setDevicePixelRatio(scale)
    img.fill(QColor(theme.BACKGROUND))
    painter = QPainter(img)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    y = 0
    for c in canvases:
        vp = c.viewport()
        c.render(painter, QRectF(0, y, vp.width(), vp.height()), QRect(0, 0, vp.width(), vp.height()))
        y += vp.height()
    painter.end()
    if not img.save(path, "PNG"):
        raise OSError(f"could not write {path}")
    return path


def view_caption(view: QWidget) -> str:
    """Plain-text headline of a view for the figure caption ("" when it has none)."""
    for attr in ("summary", "title"):
        value = getattr(view, attr, None)
        text = value.text() if hasattr(value, "text") else value
        if isinstance(text, str) and text.strip():
            return re.sub(r"<[^>]+>", " ", text).replace("&nbsp;", " ").strip()
    return ""
