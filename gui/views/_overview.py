"""The overview strip above the timeline lanes: the whole run, always.

A loss sparkline, an event lane (findings as severity-coloured ticks, NaN/Inf ticks
where any recorded value was non-finite) and a brush for the lanes' visible window.
Clicking near a tick jumps to it (a finding tick selects that finding).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, Qt, Signal
from PySide6.QtGui import QColor

from gui import theme
from gui.series import RunSeries
from gui.state import Run, RunState
from gui.views._lane import AXIS_WIDTH, decimate, redecimate

Y_FINDING, Y_NONFINITE, Y_TOP = 1.32, 1.1, 1.45
HIT_PX = 7


def step_runs(all_steps: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group event steps into runs of consecutive logged rows: ``(first_steps, last_steps)``."""
    if not len(events):
        return np.zeros(0), np.zeros(0)
    rows = np.unique(np.searchsorted(all_steps, events))
    rows = rows[rows < len(all_steps)]
    if not len(rows):
        return np.zeros(0), np.zeros(0)
    cut = np.flatnonzero(np.diff(rows) > 1)
    first = rows[np.r_[0, cut + 1]]
    last = rows[np.r_[cut, len(rows) - 1]]
    return all_steps[first].astype(float), all_steps[last].astype(float)


class Overview(QObject):
    """Drives one PlotItem laid out above the lanes; emits ``windowChanged`` when the brush moves."""

    windowChanged = Signal(float, float)

    def __init__(self, plot: pg.PlotItem, state: RunState) -> None:
        super().__init__()
        self.plot = plot
        self.state = state
        self.findings: list = []
        self.events = np.zeros(0)
        self._syncing = False
        plot.setMenuEnabled(False)
        plot.setMouseEnabled(x=False, y=False)
        plot.hideButtons()
        plot.setMaximumHeight(74)
        plot.setMinimumHeight(56)
        plot.setYRange(0, Y_TOP, padding=0)
        left = plot.getAxis("left")
        left.setWidth(AXIS_WIDTH)
        left.setStyle(showValues=False, tickLength=0)
        left.setPen(theme.BORDER)
        left.setLabel("overview", color=theme.TEXT_DIM)
        bottom = plot.getAxis("bottom")
        bottom.setStyle(showValues=False, tickLength=0)
        bottom.setHeight(2)
        bottom.setPen(theme.BORDER)
        vb = plot.getViewBox()
        vb.setBackgroundColor(QColor(theme.PANEL))
        vb.sigResized.connect(redecimate)
        self.spark = pg.PlotDataItem(pen=pg.mkPen(theme.SERIES[0], width=1))
        plot.addItem(self.spark)
        decimate(self.spark)
        self.nan_band = pg.PlotCurveItem(connect="pairs", pen=pg.mkPen(theme.NAN_COLOR, width=5))
        self.nan_marks = pg.ScatterPlotItem(symbol="|", size=12, pen=pg.mkPen(theme.NAN_COLOR, width=2))
        self.ticks = pg.ScatterPlotItem(symbol="|", size=20, pxMode=True)
        for item in (self.nan_band, self.nan_marks, self.ticks):
            item.setZValue(30)
            plot.addItem(item)
        self.brush = pg.LinearRegionItem(movable=True, brush=pg.mkBrush(76, 154, 255, 28),
                                         pen=pg.mkPen(theme.ACCENT, width=1))
        self.brush.setZValue(-10)
        self.brush.sigRegionChanged.connect(self._on_brush)
        plot.addItem(self.brush, ignoreBounds=True)
        self.region = pg.LinearRegionItem(movable=False, pen=pg.mkPen(None))
        self.region.setZValue(-5)
        self.region.hide()
        plot.addItem(self.region, ignoreBounds=True)
        self.onset = pg.InfiniteLine(angle=90, movable=False)
        self.onset.setZValue(35)
        self.onset.hide()
        plot.addItem(self.onset, ignoreBounds=True)
        self.event_ticks = pg.ScatterPlotItem(symbol="t1", size=8, pxMode=True, pen=pg.mkPen(None))
        self.event_ticks.setZValue(31)
        plot.addItem(self.event_ticks)
        self.bookmarks = pg.ScatterPlotItem(symbol="d", size=9, pxMode=True, pen=pg.mkPen(None),
                                            brush=pg.mkBrush(theme.ACCENT))
        self.bookmarks.setZValue(32)
        plot.addItem(self.bookmarks)
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(theme.CURSOR, width=1))
        self.cursor.setZValue(40)
        plot.addItem(self.cursor, ignoreBounds=True)

    # ------------------------------------------------------------------ data
    def set_run(self, run: Run | None, rs: RunSeries | None) -> None:
        if run is None or rs is None or not rs.series:
            for item in (self.spark, self.nan_band, self.nan_marks, self.ticks):
                item.setData([], [])
            self.findings, self.events = [], np.zeros(0)
            return
        loss = rs.series[0]
        x = loss.x.astype(np.float64)
        self.spark.setData(x, _normalise(loss.y), connect="finite")
        lo, hi = float(x[0]), float(x[-1])
        self.plot.setXRange(lo, hi if hi > lo else lo + 1, padding=0.01)
        self.plot.setYRange(0, Y_TOP, padding=0)
        events = [rs.events.get(k, np.zeros(0)) for k in ("nonfinite", "nonfinite_all")]
        self.events = np.unique(np.concatenate(events)) if events else np.zeros(0)
        first, last = step_runs(loss.x, self.events)
        span = last > first
        bx = np.column_stack([first[span], last[span]]).ravel()
        self.nan_band.setData(bx, np.full(len(bx), Y_NONFINITE))
        self.nan_marks.setData(first, np.full(len(first), Y_NONFINITE))
        self.findings = list(run.report.findings) if run.report is not None else []
        fx = [f.steps[0] for f in self.findings]
        brushes = [pg.mkBrush(theme.severity_color(f.severity)) for f in self.findings]
        pens = [pg.mkPen(theme.severity_color(f.severity), width=3) for f in self.findings]
        self.ticks.setData(fx, [Y_FINDING] * len(fx), brush=brushes, pen=pens)

    def set_marks(self, onset: int | None, events: list[int], color: str) -> None:
        """The selected finding's onset (a dashed line across the strip) and its event steps."""
        if onset is None:
            self.onset.hide()
        else:
            p = pg.mkPen(color, width=2)
            p.setStyle(Qt.PenStyle.DashLine)
            self.onset.setPen(p)
            self.onset.setValue(float(onset))
            self.onset.show()
        self.event_ticks.setData(np.asarray(events, np.float64), np.full(len(events), 0.02),
                                 brush=pg.mkBrush(color))

    def set_bookmarks(self, steps: list[int], note_steps: list[int]) -> None:
        """Bookmarks (filled diamonds) and notes (hollow diamonds) from the sidecar."""
        both = [(float(s), True) for s in steps] + [(float(s), False) for s in note_steps]
        brushes = [pg.mkBrush(theme.ACCENT) if b else pg.mkBrush(None) for _, b in both]
        pens = [pg.mkPen(None) if b else pg.mkPen(theme.ACCENT, width=1.5) for _, b in both]
        self.bookmarks.setData([x for x, _ in both], [0.99] * len(both), brush=brushes, pen=pens)

    # ------------------------------------------------------------------ cursor, range, window
    def set_cursor(self, step: int) -> None:
        self.cursor.setValue(step)

    def set_region(self, step_range: tuple[int, int] | None, color: str) -> None:
        if step_range is None:
            self.region.hide()
            return
        c = QColor(color)
        c.setAlpha(45)
        self.region.setBrush(pg.mkBrush(c))
        self.region.setRegion((step_range[0] - 0.5, step_range[1] + 0.5))
        self.region.show()

    def set_window(self, rng: tuple[float, float]) -> None:
        self._syncing = True
        try:
            self.brush.setRegion(rng)
        finally:
            self._syncing = False

    def _on_brush(self) -> None:
        if not self._syncing:
            lo, hi = self.brush.getRegion()
            self.windowChanged.emit(float(lo), float(hi))

    # ------------------------------------------------------------------ clicks
    def contains(self, scene_pos: QPointF) -> bool:
        return self.plot.getViewBox().sceneBoundingRect().contains(scene_pos)

    def click(self, scene_pos: QPointF) -> None:
        """Jump to the tick nearest the click (within a few pixels), else to the clicked step."""
        vb = self.plot.getViewBox()
        x = vb.mapSceneToView(scene_pos).x()
        tol = HIT_PX * abs(vb.viewPixelSize()[0])
        if self.findings:
            d = [abs(f.steps[0] - x) for f in self.findings]
            i = int(np.argmin(d))
            if d[i] <= tol:
                self.state.select_finding(self.findings[i])
                return
        if len(self.events):
            i = int(np.argmin(np.abs(self.events - x)))
            if abs(self.events[i] - x) <= tol:
                self.state.set_step(int(self.events[i]))
                return
        self.state.set_step(int(round(x)))


def _normalise(y: np.ndarray) -> np.ndarray:
    """Scale finite values into [0.05, 0.95] (log10 when positive over > 2 decades); NaN elsewhere."""
    y = np.asarray(y, dtype=np.float64)
    finite = np.isfinite(y)
    out = np.full(len(y), np.nan)
    if not finite.any():
        return out
    v = y[finite]
    if (v > 0).all() and v.max() / v.min() > 100:
        v = np.log10(v)
    lo, hi = float(v.min()), float(v.max())
    out[finite] = 0.05 + 0.9 * ((v - lo) / (hi - lo) if hi > lo else 0.5)
    return out
