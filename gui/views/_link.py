"""Keep a plot's step axis on the shared step window (``RunState.view_range``).

For views whose x axis is the global step (histograms over time…): the plot follows the
window while ``linked``; the user's own mouse zoom or pan on it moves the window for every
linked view. Programmatic ranges (a new layer loaded) go through ``fit`` and yield to the
shared window when there is one.
"""

from __future__ import annotations

import pyqtgraph as pg

from gui.state import RunState


class PlotLink:
    """Links ``plot``'s x range to ``state.view_range``; ``linked = False`` unlinks this plot."""

    def __init__(self, state: RunState, plot: pg.PlotItem) -> None:
        self.state, self.plot = state, plot
        self.linked = True
        self._applying = False
        state.viewRangeChanged.connect(self._on_view_range)
        plot.getViewBox().sigRangeChangedManually.connect(self._on_manual)

    def fit(self, x0: float, x1: float) -> None:
        """Show ``x0..x1`` unless the shared window says otherwise."""
        rng = self.state.view_range if self.linked else None
        self._set(*(rng if rng is not None else (x0, x1)))

    def _set(self, x0: float, x1: float) -> None:
        self._applying = True
        try:
            self.plot.setXRange(x0, x1, padding=0)
        finally:
            self._applying = False

    def _on_view_range(self, rng: tuple[float, float] | None) -> None:
        if self.linked and rng is not None:
            self._set(*rng)

    def _on_manual(self, *_: object) -> None:
        if self.linked and not self._applying:
            (x0, x1), _ = self.plot.getViewBox().viewRange()
            self.state.set_view_range((x0, x1))
