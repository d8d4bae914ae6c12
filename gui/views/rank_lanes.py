"""Every rank of a multi-process run: a rank selector and rank × step lanes under the timeline.

Hidden for single-process runs. Each lane is an image, one row per rank, coloured by
how far that rank's loss (or gradient norm) sits from the median rank at each step
(``analysis.rank_data.relative_to_median``): white where the ranks agree, red above,
blue below. The lanes share the timeline's step axis and cursor; the readout gives
every rank's value at the cursor. The selector shows one rank's own file in every view.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from analysis import rank_data as rd
from analysis import views_data as vd
from analysis.trace import Trace
from gui import theme
from gui.state import RunState
from gui.views._common import CURSOR_PEN, LaneView, WorkerLane, clicked_step, colormap, fmt, nonfinite_overlay
from gui.views._lane import AXIS_WIDTH

LANE_HEIGHT = 44


def _load(trace: Trace) -> dict[str, Any]:
    """Per lane: ``(steps, values, missing)`` and a column pyramid of the colour (the relative
    value; the raw value where that is NaN/Inf, so its flags say which), or None."""
    out: dict[str, Any] = {}
    for what in rd.WHAT:
        got = rd.rank_matrix(trace, what)
        if got is None:
            out[what] = None
            continue
        steps, values, missing = got
        rel = rd.relative_to_median(values)
        finite = np.abs(rel[np.isfinite(rel)])
        lim = max(float(np.percentile(finite, 99)) if finite.size else 0.0, 0.02)  # ≥ ±5 %
        ok = np.isfinite(values)  # a value ≤ 0 has no ratio: drawn as agreeing (white), as before
        shown = np.where(ok, np.where(np.isfinite(rel), rel, 0.0), values).T  # (N, R)
        miss = missing.T
        pyr = vd.ColumnPyramid(lambda a, b, v=shown, m=miss: (v[a:b], m[a:b]), len(steps), values.shape[0])
        out[what] = (steps, values, missing, pyr, lim)
    return out


class RankLanes(LaneView, QWidget):
    """Rank selector + ``loss`` and ``grad norm`` rank × step images (visible for ≥ 2 ranks)."""

    rankRequested = Signal(int)

    def __init__(self, state: RunState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._lane = WorkerLane(self)
        self._data: dict[str, Any] | None = None
        self._pyrs: dict[str, tuple[vd.ColumnPyramid, float]] = {}  # lane → (colour pyramid, limit)
        self._shown: dict[str, tuple[int, float, float]] = {}  # lane → (level, first row, end row) drawn
        self._key: tuple | None = None
        self._build_ui()
        state.runsChanged.connect(self._on_runs)
        state.runUpdated.connect(lambda i: self._on_runs() if i == state.current else None)
        state.stepChanged.connect(self._on_step)
        self._on_runs()

    def _build_ui(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 0, 6, 0)
        self.selector = QComboBox(self)
        self.selector.setToolTip("Show this rank's own file in every view")
        self.selector.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.selector.currentIndexChanged.connect(lambda i: self.rankRequested.emit(i) if i >= 0 else None)
        self.readout = QLabel("", self)
        self.readout.setObjectName("muted")
        bar.addWidget(QLabel("Ranks:", self))
        bar.addWidget(self.selector)
        bar.addWidget(self.readout, 1)
        lay.addLayout(bar)
        self.glw = pg.GraphicsLayoutWidget(self)
        self.glw.setBackground(theme.BACKGROUND)
        self.glw.ci.setContentsMargins(2, 0, 8, 2)
        self.glw.ci.layout.setSpacing(0)
        self.plots: dict[str, pg.PlotItem] = {}
        self.images: dict[str, pg.ImageItem] = {}
        self._cursors: list[pg.InfiniteLine] = []
        self._missing: dict[str, pg.ImageItem] = {}
        self._labels: dict[str, pg.TextItem] = {}
        lut = colormap("RdBu").getLookupTable(nPts=256)
        for row, what in enumerate(rd.WHAT):
            plot = self.glw.addPlot(row=row, col=0)
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.getViewBox().invertY(True)
            plot.getAxis("left").setWidth(AXIS_WIDTH)
            plot.getAxis("bottom").setStyle(showValues=False)
            plot.getAxis("bottom").setHeight(2)
            label = pg.TextItem(f"{what} ÷ median rank", color=theme.TEXT_DIM, anchor=(0, 0))
            label.setParentItem(plot.getViewBox())  # pinned to the lane's top-left, not to data
            label.setPos(4, 0)
            label.setZValue(20)
            self._labels[what] = label
            image = pg.ImageItem(axisOrder="row-major")
            image.setLookupTable(lut)
            plot.addItem(image)
            missing = pg.ImageItem(axisOrder="row-major")  # steps a rank did not record or measure
            missing.setZValue(2)
            plot.addItem(missing)
            self._missing[what] = missing
            cursor = pg.InfiniteLine(angle=90, movable=False, pen=CURSOR_PEN)
            plot.addItem(cursor, ignoreBounds=True)
            self.plots[what], self.images[what] = plot, image
            self._cursors.append(cursor)
            plot.getViewBox().sigXRangeChanged.connect(self._update_windows)
            plot.getViewBox().sigResized.connect(lambda *_: self._update_windows(force=True))
        self.glw.setFixedHeight(LANE_HEIGHT * len(rd.WHAT) + 10)
        lay.addWidget(self.glw)
        self.glw.scene().sigMouseClicked.connect(self._on_click)

    # ------------------------------------------------------------------ tests
    def link_x(self, plot: pg.PlotItem | None) -> None:
        """Share the timeline's step axis (its first lane)."""
        for p in self.plots.values():
            p.setXLink(plot)

    # ------------------------------------------------------------------ state → view
    def _on_runs(self) -> None:
        run = self.state.run
        multi = run is not None and run.trace.n_ranks > 1
        self.setVisible(multi)
        if not multi:
            self._lane.cancel()
            self._data, self._key, self._pyrs = None, None, {}
            return
        trace = run.trace
        with QSignalBlocker(self.selector):
            self.selector.clear()
            for r in range(trace.n_ranks):
                self.selector.addItem(f"rank {r} of {trace.n_ranks}", r)
            self.selector.setCurrentIndex(trace.rank_index)
        key = (tuple(trace.paths), trace.n_steps)
        if key == self._key:
            return
        self._key = key
        self._lane.submit(lambda: _load(trace), self._on_loaded)

    def _on_loaded(self, result: Any) -> None:
        if isinstance(result, Exception):
            self.readout.setText(f"cannot read the ranks: {result}")
            return
        self._data = {what: None if got is None else got[:3] for what, got in result.items()}
        self._pyrs = {what: got[3:] for what, got in result.items() if got is not None}
        self._shown = {}
        for what, got in result.items():
            if got is None:
                self.images[what].clear()
                self._missing[what].clear()
                continue
            n_ranks, lim = got[1].shape[0], got[4]
            axis = self.plots[what].getAxis("left")
            axis.setTicks([[(r, f"r{r}") for r in range(n_ranks)], []])
            self.plots[what].setYRange(-0.5, n_ranks - 0.5, padding=0)
            self._labels[what].setText(f"{what} ÷ median rank  (log₁₀, ±{lim:.2g} full colour)")
        self._update_windows(force=True)
        self._on_step(self.state.step)

    def _update_windows(self, *_args: object, force: bool = False) -> None:
        """Each lane from the pyramid level that fits its visible width (a bounded slice per zoom
        frame, never the run's million columns); no-op while the view stays inside what is drawn."""
        for what, (pyr, lim) in self._pyrs.items():
            steps = self._data[what][0]
            vb = self.plots[what].getViewBox()
            (s0, s1), _ = vb.viewRange()
            x0, x1 = vd.steps_to_rows(steps, s0, s1)
            span = max(x1 - x0, 1.0)
            k = pyr.level_for(span, int(vb.width()) or 800)
            f = pyr.cell_rows(k)
            shown = self._shown.get(what)
            if not force and shown is not None and shown[0] == k and shown[1] <= max(x0, 0) \
                    and min(x1, pyr.n_rows) <= shown[2]:
                continue
            c0 = max(int((x0 - span) // f), 0)
            c1 = min(int((x1 + span) // f) + 1, pyr.n_columns(k))
            values, flags = pyr.window(k, c0, c1)
            values, flags = values.T, flags.T  # (R, columns)
            a, b = vd.rows_to_steps(steps, c0 * f - 0.5, min(c1 * f, pyr.n_rows) - 0.5)
            rect = QRectF(a, -0.5, max(b - a, 1e-9), values.shape[0])
            self.images[what].setImage(np.where(np.isfinite(values), values, 0.0), autoLevels=False,
                                       levels=(-lim, lim), rect=rect)
            overlay = nonfinite_overlay(flags, values)
            if overlay is None:
                self._missing[what].clear()
            else:
                self._missing[what].setImage(overlay, rect=rect)
            self._shown[what] = (k, c0 * f, min(c1 * f, pyr.n_rows))

    def _on_step(self, step: int) -> None:
        for cursor in self._cursors:
            cursor.setValue(step)
        if self._data is None:
            return
        parts = []
        for what, got in self._data.items():
            if got is None:
                continue
            steps, values, _missing = got
            i = int(np.searchsorted(steps, step, side="right")) - 1
            if 0 <= i < values.shape[1]:
                parts.append(f"{what}: " + "  ".join(f"r{r} {fmt(float(values[r, i]))}"
                                                      for r in range(values.shape[0])))
        self.readout.setText("   ·   ".join(parts))

    def _on_click(self, ev: Any) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        step = clicked_step(ev.scenePos(), self.plots.values())
        if step is not None:
            self.state.set_step(step)
