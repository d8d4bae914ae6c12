"""Settle every plot's pending view state before the window repaints: one paint a frame, not two.

pyqtgraph applies a ViewBox's new range (its child transform, its y auto-range) lazily in
``GraphicsView.paintEvent``. Those changes dirty the scene *during* the paint, so every linked
view painted twice per zoom frame. Installed on a top-level window, ``PaintSettler`` runs that
lazy step when the window's repaint is requested, and flushes the scene's queued dirty
regions, so the one repaint that follows already draws the new range.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QCoreApplication, QEvent, QObject
from PySide6.QtWidgets import QWidget


class PaintSettler(QObject):
    """Event filter for a top-level ``window``: settles its visible plots on ``UpdateRequest``."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.window = window
        window.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt's name)
        if obj is self.window and event.type() == QEvent.Type.UpdateRequest:
            settle(self.window)
        return False


def settle(window: QWidget) -> None:
    """Run the lazy pre-paint step of every visible plot in ``window`` and flush its scene's updates."""
    for view in window.findChildren(pg.GraphicsView):
        scene = view.scene()
        if scene is None or not view.isVisible():
            continue
        scene.prepareForPaint()
        QCoreApplication.sendPostedEvents(scene, QEvent.Type.MetaCall)
