"""Layer × step heatmap: one statistic for every layer (rows) at every logged step (columns).

Drawn from a ``ColumnPyramid`` built on a worker: the level matching the visible width
is sliced (with a margin of one window each side) into a float image coloured by a
``ColorBarItem`` with explicit robust levels; NaN/±Inf cells are painted over it in
fixed colours. Panning inside the margin only moves the view.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from analysis import views_data as vd
from analysis.views_data import METRICS, Metric
from gui import theme
from gui.state import RunState
from gui.views._common import (
    CURSOR_PEN,
    SELECT_PEN,
    NameAxis,
    StepAxis,
    WorkerLane,
    colormap,
    fmt,
    nonfinite_legend,
    nonfinite_overlay,
)
from gui.views._heatmap_marks import RangeBrackets, RowOutlines, StepViewBox


class HeatmapView(QWidget):
    """Rows = layers in model order, columns = steps; click a cell to move the cursor there."""

    metricChanged = Signal(str)
    pyramidReady = Signal()
    userLevelsChanged = Signal()

    def __init__(self, state: RunState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.metric_key = "g_norm"
        self.reducer = "maxabs"
        self._lane = WorkerLane(self)
        self._pyramids: dict[tuple[int, str], vd.ColumnPyramid] = {}
        self._pyr: vd.ColumnPyramid | None = None
        self._names: list[str] = []
        self._labels: list[str] = []  # row labels: names, with the module type for activation stats
        self._rows = np.zeros(0, np.int64)  # indices of the displayed rows into ``_names``
        self._shown: tuple[int, float, float] | None = None  # level, first row, end row drawn
        self._user_levels: tuple[float, float] | None = None
        self._keep_levels = False  # a live reopen keeps the locked colour limits
        self.shared_levels: tuple[float, float] | None = None  # limits locked across compared runs
        self.diff_base: Callable[[], object] | None = None  # show B − A against this run (compare)
        self.linked = True  # the step window follows ``state.view_range`` (and drives it)
        self._applying = False  # setting the view from the state: do not echo it back
        self._sort_step: int | None = None  # rows sorted by value at this step, or None
        self._deferred = False  # the pyramid waits for the run's findings (a long run's first read)
        self._build_ui()
        state.runsChanged.connect(self._on_runs)
        state.runUpdated.connect(self._on_run_updated)
        state.stepChanged.connect(self._on_step)
        state.layerChanged.connect(self._on_layer)
        state.rangeChanged.connect(self._on_range)
        state.findingChanged.connect(self._on_finding)
        state.viewRangeChanged.connect(self._on_view_range)
        self._on_runs()

    # ------------------------------------------------------------------ construction
    def _build_ui(self) -> None:
        self.metric_box = QComboBox(self)
        for key, m in METRICS.items():
            self.metric_box.addItem(m.label, key)
        self.metric_box.currentIndexChanged.connect(
            lambda i: self.set_metric(self.metric_box.itemData(i)))
        self.metric_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.metric_box.setMinimumContentsLength(9)  # the dock can shrink; the list shows full names
        self.log_box = QCheckBox("log", self)
        self.log_box.setChecked(METRICS[self.metric_key].log)
        self.log_box.toggled.connect(lambda _: self._load_metric())
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("filter layers: name or module type, substring or regex")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.setMinimumWidth(40)
        self.filter_edit.textChanged.connect(self._apply_filter)
        self.findings_box = QCheckBox("findings", self)
        self.findings_box.setToolTip("Only the rows (layers) that a finding names")
        self.findings_box.toggled.connect(lambda _: self._apply_filter())
        self.sort_box = QCheckBox("sort", self)
        self.sort_box.setToolTip("Rows ordered by the value at the cursor (largest first); "
                                 "toggle again to re-sort at a new cursor")
        self.sort_box.toggled.connect(self._on_sort)
        self.link_button = QToolButton(self)
        self.link_button.setCheckable(True)
        self.link_button.setChecked(True)
        self.link_button.setText("linked")
        self.link_button.setToolTip("Step zoom and pan linked with the timeline and the other views")
        self.link_button.toggled.connect(self.set_linked)
        top = QHBoxLayout()
        top.addWidget(self.metric_box)
        top.addWidget(self.log_box)
        top.addWidget(self.filter_edit, 1)
        for w in (self.findings_box, self.sort_box, self.link_button):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            top.addWidget(w)

        self.glw = pg.GraphicsLayoutWidget(self)
        self._xaxis, self._yaxis = StepAxis("bottom"), NameAxis("left", width=26)
        self.plot = self.glw.addPlot(axisItems={"bottom": self._xaxis, "left": self._yaxis},
                                     viewBox=StepViewBox())
        self.plot.setLabel("bottom", "step")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.vb = self.plot.getViewBox()
        self.vb.invertY(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self._overlay = pg.ImageItem(axisOrder="row-major")
        self._overlay.setZValue(5)
        self.plot.addItem(self.image)
        self.plot.addItem(self._overlay)
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=colormap("viridis"), label="", interactive=True)
        self.bar.setImageItem(self.image, insert_in=self.plot)
        self.bar.sigLevelsChangeFinished.connect(self._on_user_levels)
        self._cursor_line = pg.InfiniteLine(angle=90, movable=False, pen=CURSOR_PEN)
        self._cursor_line.setZValue(10)
        self._region = RangeBrackets()
        self._marked = RowOutlines(self.plot, theme.severity_color("warning"))
        self._outline = QGraphicsRectItem()
        pen = SELECT_PEN
        pen.setCosmetic(True)
        self._outline.setPen(pen)
        self._outline.setZValue(9)
        for item in (self._cursor_line, self._region, self._outline):
            self.plot.addItem(item, ignoreBounds=True)
            item.hide()
        self.vb.sigRangeChanged.connect(lambda *_: self._update_window())
        self.vb.sigXRangeChanged.connect(self._on_own_xrange)
        self.plot.scene().sigMouseMoved.connect(self._on_hover)
        self.plot.scene().sigMouseClicked.connect(self._on_click)

        self.readout = QLabel("no run open", self)
        self.readout.setWordWrap(True)
        self.readout.setFixedHeight(2 * self.readout.fontMetrics().height() + 4)  # hover never relayouts
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(top)
        lay.addWidget(self.glw, 1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.readout, 1)
        bottom.addWidget(nonfinite_legend(self, no_data=True))
        lay.addLayout(bottom)

    # ------------------------------------------------------------------ public
    def set_metric(self, key: str) -> None:
        """Show another statistic (a key of ``METRICS``); resets log scale to its default."""
        if key not in METRICS or key == self.metric_key and self._pyr is not None:
            return
        self.metric_key = key
        with QSignalBlocker(self.metric_box), QSignalBlocker(self.log_box):
            self.metric_box.setCurrentIndex(self.metric_box.findData(key))
            self.log_box.setChecked(METRICS[key].log)
        self._load_metric()

    @property
    def busy(self) -> bool:
        return self._lane.busy

    def wait(self) -> None:
        """Finish background work and deliver its results (tests, benchmarks)."""
        self._lane.wait()

    # ------------------------------------------------------------------ state → view
    def _on_runs(self) -> None:
        alive = {id(run) for run in self.state.runs}  # keep the pyramids of runs still open
        self._pyramids = {k: v for k, v in self._pyramids.items() if k[0] in alive}
        self._load_metric()

    def replace_run(self, old: object, new: object) -> None:
        """A live file was reopened as a new Run: keep its pyramids (extended, not rebuilt)."""
        for key in [k for k in self._pyramids if k[0] == id(old)]:
            pyr = self._pyramids.pop(key)
            if len(key) > 2:  # a difference pyramid: rebuilt against the reopened file
                continue
            m = METRICS[key[1]]
            pyr.rebind(vd.stat_reader(new.trace, m.group, m.stats, m.companion))
            self._pyramids[(id(new), key[1])] = pyr
        self._keep_levels = True

    def _on_run_updated(self, index: int) -> None:
        """New rows (live) or a new report: extend the pyramids; a view showing the end follows it."""
        if index != self.state.current or self.state.run is None:
            return
        if self._deferred and not self.state.run.awaits_findings():
            self._load_metric()
            return
        n = self.state.run.trace.n_steps
        old_n = self._pyr.n_rows if self._pyr is not None else n
        (x0, x1), _ = self.vb.viewRange()
        for (run_id, _), pyr in self._pyramids.items():
            if run_id == id(self.state.run):
                pyr.extend(n)
        self._xaxis.set_steps(self.state.run.trace.steps)
        follow = n > old_n and x1 >= old_n - 1.5
        self._render()
        if self.linked and self.state.view_range is not None:  # the timeline may have moved first
            self._on_view_range(self.state.view_range)
        elif follow:
            width = x1 - x0 if x0 > 0 else n  # the whole run stays the whole run
            self._set_x(max(n - 0.5 - width, -0.5), n - 0.5)

    def _on_user_levels(self, bar: pg.ColorBarItem) -> None:
        """Limits dragged by the user stay locked (live updates, filtering) until the metric changes."""
        self._user_levels = tuple(bar.levels())
        self.state.set_levels(self.metric_key, self._user_levels)  # kept in the sidecar
        self.userLevelsChanged.emit()
        self._update_window(force=True)

    def _load_metric(self) -> None:
        run = self.state.run
        self._lane.cancel()
        if not getattr(self, "_keep_levels", False):
            self._user_levels = None
        self._keep_levels = False
        saved = run.sidecar.levels.get(self.metric_key) if run is not None else None
        if saved is not None and self._user_levels is None:
            self._user_levels = (float(saved[0]), float(saved[1]))
        if run is None:
            self._pyr, self._names, self._labels = None, [], []
            self.image.clear()
            self._overlay.clear()
            self.readout.setText("no run open")
            return
        m = METRICS[self.metric_key]
        trace = run.trace
        base = self.diff_base() if self.diff_base is not None else None
        self.log_box.setEnabled(base is None)
        self._pyr = None  # never draw the new rows' names over the previous metric's pyramid
        self._names = list(trace.param_names if m.group == "params" else trace.module_names)
        types = trace.module_types if m.group == "modules" else []
        self._labels = [f"{n} ({types[i]})" if i < len(types) else n for i, n in enumerate(self._names)]
        key = self._key()
        self.metricChanged.emit(self.metric_key)
        if key in self._pyramids:
            self._set_pyramid(self._pyramids[key])
            return
        self._deferred = run.awaits_findings()
        if self._deferred:  # reading every layer × step of a long run would hold up its analysis
            self.readout.setText(f"{m.label} for {len(self._names)} layers × {trace.n_steps} steps: read "
                                 "once the findings are in…")
            return
        self.readout.setText(f"reading {m.label} for {len(self._names)} layers × {trace.n_steps} steps…")
        n = trace.n_steps
        if base is not None:  # B − A (log10 B/A for norms), aligned by step and layer name
            read = vd.diff_reader(trace, base.trace, m, m.log)
            self._lane.submit(lambda: (key, vd.ColumnPyramid(read, n, len(self._names))), self._on_pyramid)
            return
        self._lane.submit(lambda: (key, vd.pyramid_for(trace, m.group, m.stats, n, m.companion)),
                          self._on_pyramid)

    def _key(self) -> tuple:
        base = self.diff_base() if self.diff_base is not None else None
        return (id(self.state.run), self.metric_key) + (("diff", id(base)) if base is not None else ())

    def shown_metric(self) -> Metric:
        """The statistic as drawn (a difference of it when this view shows B − A)."""
        m = METRICS[self.metric_key]
        if self.diff_base is not None and self.diff_base() is not None:
            return vd.diff_metric(m, m.log)
        return m

    def _log(self) -> bool:
        return self.log_box.isChecked() and self.log_box.isEnabled()

    def _on_pyramid(self, result: object) -> None:
        if isinstance(result, Exception):
            self.readout.setText(f"cannot read {self.shown_metric().label}: {result}")
            return
        key, pyr = result
        if self.state.run is not None and id(self.state.run) == key[0]:
            pyr.extend(self.state.run.trace.n_steps)  # rows a live writer added meanwhile
        self._pyramids[key] = pyr
        if key == self._key():
            self._set_pyramid(pyr)

    def _set_pyramid(self, pyr: vd.ColumnPyramid) -> None:
        self._pyr = pyr
        self._xaxis.set_steps(self.state.run.trace.steps)
        self._apply_filter(refit="xy")
        self.pyramidReady.emit()

    def _apply_filter(self, *_: object, refit: str = "y") -> None:
        """Rows shown: the text filter, then "only rows with findings", then the value sort."""
        text = self.filter_edit.text().strip()
        rows = np.arange(len(self._names), dtype=np.int64)
        if text:
            try:
                rx = re.compile(text, re.IGNORECASE)
            except re.error:
                rx = re.compile(re.escape(text), re.IGNORECASE)
            rows = np.array([i for i, n in enumerate(self._labels) if rx.search(n)], np.int64)
        run = self.state.run
        if self.findings_box.isChecked() and run is not None and self._pyr is not None:
            findings = run.report.findings if run.report is not None else []
            keep = set(vd.finding_rows(run.trace, METRICS[self.metric_key].group, findings))
            rows = np.array([i for i in rows if int(i) in keep], np.int64)
        if self._sort_step is not None and run is not None and self._pyr is not None and len(rows):
            r = run.trace.row_of(self._sort_step)
            values, _ = self._pyr.window(0, r, r + 1)
            rows = vd.order_by_value(rows, values[0])
        self._rows = rows
        self._yaxis.set_names([self._labels[i] for i in self._rows])
        self._render(refit=refit)

    def _on_sort(self, on: bool) -> None:
        self._sort_step = int(self.state.step) if on else None
        self.sort_box.setText(f"sort @ {self._sort_step:,}" if on else "sort")
        self._apply_filter()

    def _levels(self) -> tuple[float, float]:
        m, pyr = self.shown_metric(), self._pyr
        sample = pyr.sample(self._rows) if len(self._rows) else np.zeros(0)
        if m.levels == "unit":
            return 0.0, 1.0
        if m.levels == "count":
            finite = sample[np.isfinite(sample)]
            return 0.0, max(float(finite.max()) if finite.size else 0.0, 1.0)
        if self._log():
            return vd.robust_levels(vd.log10_display(sample))
        return vd.symmetric_levels(sample) if m.levels == "symmetric" else vd.robust_levels(sample)

    def _render(self, refit: str = "") -> None:
        """Redraw from the pyramid; ``refit`` names the axes to reset to the whole run / all rows."""
        if self._pyr is None:
            return
        applying, self._applying = self._applying, True  # limits and refits are not user zooms
        try:
            self._render_now(refit)
        finally:
            self._applying = applying

    def _render_now(self, refit: str) -> None:
        m = self.shown_metric()
        log = self._log()
        self.bar.setColorMap(colormap("RdBu" if m.levels == "symmetric" and not log else "viridis"))
        lo, hi = self._user_levels or self.shared_levels or self._levels()
        self.bar.rounding = max((hi - lo) / 1000, 1e-12)
        self.bar.setLevels((lo, hi))
        self.bar.getAxis("left").setLabel(f"log10({m.label})" if log else m.label)
        n, rows = self._pyr.n_rows, len(self._rows)
        margin = 0.5 * n if self.linked else 0.0  # room for the shared window past either end
        self.vb.setLimits(xMin=-0.5 - margin, xMax=n - 0.5 + margin, yMin=-0.5, yMax=max(rows, 1) - 0.5,
                          minXRange=min(4, n), minYRange=min(2, max(rows, 1)))
        self._shown = None
        if "x" in refit:
            linked = self.linked and self.state.view_range is not None and self.state.run is not None
            if linked:
                self._on_view_range(self.state.view_range)
            else:
                self._set_x(-0.5, n - 0.5)
        if "y" in refit:
            self.vb.setYRange(-0.5, max(rows, 1) - 0.5, padding=0)
        self._update_window(force=True)
        self._on_step(self.state.step, reveal=False)
        self._on_layer(self.state.layer)
        self._on_range(self.state.step_range)
        self._draw_marks()
        self.readout.setText(f"{m.label}: {rows} of {len(self._names)} layers × {n:,} steps"
                             + (" (no layer matches the filter)" if not rows else ""))

    def _update_window(self, force: bool = False) -> None:
        """Draw the pyramid level that fits the visible width; no-op while the view stays inside it."""
        pyr = self._pyr
        if pyr is None:
            return
        (x0, x1), _ = self.vb.viewRange()
        span = max(x1 - x0, 1.0)
        k = pyr.level_for(span, int(self.vb.width()) or 800)
        f = pyr.cell_rows(k)
        if not force and self._shown is not None:
            level, a, b = self._shown
            if level == k and (a <= x0 + 0.5 or a <= 0) and (x1 + 0.5 <= b or b >= pyr.n_rows):
                return
        c0 = max(int((x0 - span) // f), 0)
        c1 = min(int((x1 + span) // f) + 1, pyr.n_columns(k))
        values, flags = pyr.window(k, c0, c1, self.reducer)
        values, flags = values[:, self._rows].T, flags[:, self._rows].T
        rgba = nonfinite_overlay(flags, values)
        if self._log():
            values = vd.log10_display(values)
        lo, hi = self.bar.levels()
        values = np.where(np.isfinite(values), values, np.float32(lo))  # NaN/Inf/no-data cells are overlaid
        rect = QRectF(c0 * f - 0.5, -0.5, (c1 - c0) * f, len(self._rows))
        if values.size:
            self.image.setImage(values, autoLevels=False, levels=(lo, hi), rect=rect)
        else:
            self.image.clear()
        if rgba is None:
            self._overlay.clear()
        else:
            self._overlay.setImage(rgba, autoLevels=False, rect=rect)
        self._shown = (k, c0 * f, c1 * f)

    def _on_step(self, step: int, reveal: bool = True) -> None:
        run = self.state.run
        if run is None or self._pyr is None:
            self._cursor_line.hide()
            return
        row = run.trace.row_of(step)
        self._cursor_line.setPos(row)
        self._cursor_line.show()
        if reveal and not self.linked:  # linked views are kept on the cursor by the shared window
            (x0, x1), _ = self.vb.viewRange()
            if not x0 <= row <= x1:
                w = x1 - x0
                self._set_x(row - w / 2, row + w / 2)

    def _on_layer(self, layer: str) -> None:
        run = self.state.run
        if run is None or self._pyr is None:
            self._outline.hide()
            return
        wanted = set(vd.layer_rows(run.trace, METRICS[self.metric_key].group, layer))
        shown = [pos for pos, i in enumerate(self._rows) if int(i) in wanted]
        self._yaxis.set_names([self._labels[i] for i in self._rows], keep=min(shown) if shown else None)
        if not shown:
            self._outline.hide()
            return
        self._outline.setRect(QRectF(-0.5, min(shown) - 0.5, self._pyr.n_rows, max(shown) - min(shown) + 1))
        self._outline.show()

    def _on_range(self, step_range: tuple[int, int] | None) -> None:
        run = self.state.run
        if run is None or step_range is None or self._pyr is None:
            self._region.hide()
            return
        a, b = run.trace.row_of(step_range[0]), run.trace.row_of(step_range[1])
        finding = self.state.finding
        color = theme.severity_color(finding.severity) if finding is not None else theme.ACCENT
        self._region.set_range(a - 0.5, b + 0.5, len(self._rows), color)

    def _on_finding(self, finding: object) -> None:
        """Show the finding's evidence: its metric (``marks["metric"]``), its rows outlined."""
        marks = getattr(finding, "marks", None) or {}
        metric = marks.get("metric")
        if isinstance(metric, str) and metric in METRICS and metric != self.metric_key:
            self.set_metric(metric)
        elif self.findings_box.isChecked():
            self._apply_filter()
        else:
            self._draw_marks()

    def marked_positions(self) -> list[int]:
        """Display rows outlined for the selected finding (its ``layer`` and ``marks["layers"]``)."""
        run, finding = self.state.run, self.state.finding
        if run is None or finding is None or self._pyr is None:
            return []
        wanted = set(vd.finding_rows(run.trace, METRICS[self.metric_key].group, [finding]))
        return [pos for pos, i in enumerate(self._rows) if int(i) in wanted]

    def _draw_marks(self) -> None:
        if self._pyr is None:
            self._marked.set([], 0, 0)
            return
        finding = self.state.finding
        color = theme.severity_color(finding.severity) if finding is not None else theme.ACCENT
        self._marked.set(vd.row_groups(self.marked_positions()), -0.5, self._pyr.n_rows - 0.5, color)

    # ------------------------------------------------------------------ linked step window
    def set_linked(self, on: bool) -> None:
        """Link (or unlink) this view's step zoom and pan to the shared window."""
        self.linked = bool(on)
        with QSignalBlocker(self.link_button):
            self.link_button.setChecked(self.linked)
        self.link_button.setText("linked" if self.linked else "unlinked")
        self._render()  # limits: linked views may show past the ends, as the timeline does
        if self.linked and self.state.view_range is not None:
            self._on_view_range(self.state.view_range)

    def _set_x(self, x0: float, x1: float) -> None:
        self._applying = True
        try:
            self.vb.setXRange(x0, x1, padding=0)
        finally:
            self._applying = False

    def _on_view_range(self, view_range: tuple[float, float] | None) -> None:
        run = self.state.run
        if not self.linked or view_range is None or run is None or self._pyr is None or not run.trace.n_steps:
            return
        a, b = vd.steps_to_rows(run.trace.steps[: self._pyr.n_rows], *view_range)
        self._set_x(a, b)

    def _on_own_xrange(self, _vb: object, rng: tuple[float, float]) -> None:
        run = self.state.run
        if self._applying or not self.linked or run is None or self._pyr is None:
            return
        self.state.set_view_range(vd.rows_to_steps(run.trace.steps[: self._pyr.n_rows], *rng))

    # ------------------------------------------------------------------ mouse → state
    def _cell_at(self, scene_pos: object) -> tuple[int, int] | None:
        """``(row of the trace, index into names)`` under a scene position, or None."""
        if self._pyr is None or not self.vb.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.vb.mapSceneToView(scene_pos)
        r, y = int(round(p.x())), int(round(p.y()))
        if not (0 <= r < self._pyr.n_rows and 0 <= y < len(self._rows)):
            return None
        return r, int(self._rows[y])

    def _on_hover(self, scene_pos: object) -> None:
        cell = self._cell_at(scene_pos)
        if cell is None:
            return
        r, col = cell
        run = self.state.run
        step = int(run.trace.steps[r])
        value = self._pyr.value_at(r, col)
        text = f"{self._names[col]}  ·  step {step}  ·  {self.shown_metric().label} = {fmt(value)}"
        k = self._shown[0] if self._shown else 0
        f = self._pyr.cell_rows(k)
        if f > 1:
            c = r // f
            v, flags = self._pyr.window(k, c, c + 1, self.reducer)
            a, b = run.trace.steps[c * f], run.trace.steps[min((c + 1) * f, self._pyr.n_rows) - 1]
            cell_v = "NaN" if flags[0, col] & vd.NAN_FLAG else fmt(float(v[0, col]))
            text += f"   (cell = {self.reducer} over steps {a}–{b}: {cell_v})"
        self.readout.setText(text)

    def _on_click(self, ev: object) -> None:
        if ev.button() != Qt.MouseButton.LeftButton:
            return
        cell = self._cell_at(ev.scenePos())
        if cell is None:
            return
        r, col = cell
        self.state.set_layer(self._names[col])
        self.state.set_step(int(self.state.run.trace.steps[r]))


__all__ = ["HeatmapView", "METRICS", "Metric"]
