"""A view's stand-in while no run is open: one muted line instead of empty axes.

``EmptyGuard(state, view)`` shows ``view`` once a run is open and the line otherwise,
so an error dialog over an empty window has nothing drawn behind it but the hint.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QStackedWidget, QWidget

from gui.state import RunState

HINT = "No trace open"


class EmptyGuard(QStackedWidget):
    """``view`` when ``state`` has a run, a centred hint otherwise."""

    def __init__(self, state: RunState, view: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.view = state, view
        self.hint = QLabel(HINT, self)
        self.hint.setObjectName("muted")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.addWidget(view)
        self.addWidget(self.hint)
        state.runsChanged.connect(self._sync)
        self._sync()

    def _sync(self) -> None:
        self.setCurrentWidget(self.view if self.state.runs else self.hint)
