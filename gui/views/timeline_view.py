"""Timeline: linked lanes (loss, grad norm, LR, logged scalars) under an overview strip.

Curves are set only when the run or its rows change; a cursor move touches only the
cursor lines and the readouts (the scrub budget is 16 ms). The overview shows the whole
run with findings (severity-coloured ticks) and NaN/Inf ticks; a click on a tick jumps there.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from analysis.findings import Finding
from gui import theme
from gui.series import RunSeries, Series, SeriesRef, read_series, series_of
from gui.state import RunState
from gui.views._common import clicked_step
from gui.views._lane import AXIS_WIDTH, Lane, nonfinite_runs
from gui.views._overview import Overview
from gui.views._timeline_compare import CompareLanes

LANE_ORDER = ("loss", "grad norm", "learning rate")
MARK_LANES = {"grad_norm": "grad norm", "lr": "learning rate"}  # ``Finding.marks`` lane → lane name
MAX_DEFAULT_SCALAR_LANES = 3


class TimelineView(CompareLanes, QWidget):
    """Stacked lanes sharing one x axis (global step) and one cursor, plus the overview strip."""

    lanesChanged = Signal()
    compareChanged = Signal(object)  # index of the run compared with the current one, or None

    def __init__(self, state: RunState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.lanes: dict[str, Lane] = {}
        self.hidden: set[str] = set()
        self.extra: dict[str, list[SeriesRef]] = {}  # lanes of series picked in the metric tree
        self.compared: list = []  # the other runs overlaid in every lane
        self.align = "step"
        self.follow = True
        self.linked = True  # zoom and pan drive (and follow) ``state.view_range``
        self._applying = False
        self._series: RunSeries | None = None
        self._moving = False
        self._shown: object | None = None
        self._build_ui()
        state.runsChanged.connect(self.rebuild)
        state.runUpdated.connect(self._on_run_updated)
        state.stepChanged.connect(self._on_step)
        state.rangeChanged.connect(self._on_range)
        state.findingChanged.connect(self._on_finding)
        state.viewRangeChanged.connect(self._on_view_range)
        state.annotationsChanged.connect(self._on_annotations)
        self.rebuild()

    # ------------------------------------------------------------------ construction
    def _build_ui(self) -> None:
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 2, 6, 0)
        self.log_box = QCheckBox("Log y  (Y)")
        self.log_box.toggled.connect(self._apply_log)
        self.smooth_box = QCheckBox("Smooth  (E)")
        self.smooth_box.toggled.connect(self._apply_smoothing)
        self.weight = QDoubleSpinBox()
        self.weight.setRange(0.0, 0.999)
        self.weight.setSingleStep(0.05)
        self.weight.setDecimals(3)
        self.weight.setValue(0.6)
        self.weight.setToolTip("EMA weight (debiased, as TensorBoard)")
        self.weight.valueChanged.connect(lambda _v: self._apply_smoothing(self.smooth_box.isChecked()))
        self.compare = QToolButton()
        self.compare.setText("Compare")
        self.compare.setToolTip("Overlay other open runs in every lane (one cursor drives them all)")
        self.compare.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.compare.setMenu(QMenu(self.compare))
        self.lanes_button = QToolButton()
        self.lanes_button.setText("Lanes")
        self.lanes_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.lanes_button.setMenu(QMenu(self.lanes_button))
        self.link_button = QToolButton()
        self.link_button.setCheckable(True)
        self.link_button.setChecked(True)
        self.link_button.setText("linked")
        self.link_button.setToolTip("Step zoom and pan linked with the heatmap and histograms")
        self.link_button.toggled.connect(self.set_linked)
        self.info = QLabel("")
        self.info.setObjectName("muted")
        for w in (self.log_box, self.smooth_box, self.weight, self.compare, self.lanes_button,
                  self.link_button):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            bar.addWidget(w)
        self.log_note = QLabel("")  # says which lanes stay linear when log y is asked for, and why
        self.log_note.setObjectName("muted")
        bar.insertWidget(1, self.log_note)
        bar.addStretch(1)
        bar.addWidget(self.info)
        lay.addLayout(bar)
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground(theme.BACKGROUND)
        self.glw.ci.layout.setSpacing(0)
        self.glw.ci.setContentsMargins(2, 2, 8, 2)
        lay.addWidget(self.glw, 1)
        self.empty = QLabel("<h3>No trace open</h3><p>File › Open (Ctrl+O), drop .h5 files on this window,"
                            "<br>or record the demo runs: <code>python main.py demo</code></p>")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setObjectName("muted")
        lay.addWidget(self.empty, 1)
        self.overview = Overview(self.glw.addPlot(row=0, col=0), self.state)
        self.overview.windowChanged.connect(self._on_brush)
        self.glw.scene().sigMouseClicked.connect(self._on_click)

    # ------------------------------------------------------------------ data
    def _lane_names(self, rs: RunSeries) -> list[str]:
        present = rs.lanes()
        names = [n for n in LANE_ORDER if n in present]
        names += sorted(n for n in present if n not in LANE_ORDER)
        return names + [n for n in self.extra if n not in names]

    def lane_series(self, run: object) -> dict[str, list[Series]]:
        """Lane name → series for ``run``: its own curves plus the series added from the metric tree."""
        grouped = series_of(run).lanes()
        n = run.trace.n_steps
        cache = getattr(run, "extra_series", None)
        if cache is None or cache[0] != n:
            cache = (n, {})
            run.extra_series = cache  # type: ignore[attr-defined]
        for lane, refs in self.extra.items():
            for ref in refs:
                if ref not in cache[1]:
                    try:
                        cache[1][ref] = read_series(run.trace, ref)
                    except (KeyError, ValueError, OSError):  # another run without this series
                        cache[1][ref] = None
                if cache[1][ref] is not None:
                    grouped.setdefault(lane, []).append(cache[1][ref])
        return grouped

    def add_series(self, refs: list[SeriesRef], lane: str | None = None) -> str:
        """Plot recorded series in ``lane`` (a new lane when None or unknown); returns the lane's name."""
        if lane is None:
            lane = refs[0].label if len(refs) == 1 else f"{refs[0].label} + {len(refs) - 1}"
        have = self.extra.setdefault(lane, [])
        have += [r for r in refs if r not in have]
        self.hidden.discard(lane)
        self.rebuild()
        return lane

    def remove_lane(self, lane: str) -> None:
        if self.extra.pop(lane, None) is not None:
            self.rebuild()

    def rebuild(self) -> None:
        """Re-plot every lane for the current run (switched, opened, or reopened while live)."""
        run = self.state.run
        self._replot(keep_zoom=run is not None and run is self._shown and bool(self.lanes))

    def replace_run(self, old: object, new: object) -> None:
        """A live file was reopened as a new Run: it is the same run, so zoom and Follow carry over."""
        if self._shown is old:
            self._shown = new

    def _on_run_updated(self, index: int) -> None:
        if index == self.state.current:
            run = self.state.run
            if (run is self._shown and self._series is not None and self._series.n_rows == run.trace.n_steps
                    and getattr(run, "series", None) is self._series):
                self.overview.set_run(run, self._series)  # a new report, same rows: ticks only
                self._on_range(self.state.step_range)
                return
            self._replot(keep_zoom=True)  # new rows (live)
        elif 0 <= index < len(self.state.runs) and any(self.state.runs[index] is c for c in self.compared):
            self._apply_compare()

    def refresh_events(self) -> None:
        """The run's NaN/Inf events changed (found after the analysis): the overview's ticks only."""
        run = self.state.run
        if run is not None and run is self._shown and self._series is not None:
            self.overview.set_run(run, self._series)

    def _replot(self, keep_zoom: bool) -> None:
        """Set every curve from the run's series; keep the zoom (and follow the end) when asked."""
        before = self._view_state() if keep_zoom else None
        run = self._shown = self.state.run
        self._refresh_compare_box()
        self.glw.setVisible(run is not None)
        self.empty.setVisible(run is None)
        if run is None:
            self._series = None
            self._set_lanes([])
            self.overview.set_run(None, None)
            self.info.setText("")
            return
        rs = self._series = series_of(run)
        names = self._lane_names(rs)
        scalar_lanes = [n for n in names if n not in LANE_ORDER and n not in self.extra]
        if not self.lanes:
            self.hidden = set(scalar_lanes[MAX_DEFAULT_SCALAR_LANES:])
        grouped = self.lane_series(run)
        names = [n for n in names if n in grouped]
        visible = [n for n in names if n not in self.hidden]
        self._set_lanes(visible)
        for name in visible:
            series = grouped[name]
            self.lanes[name].set_series(series, [self._color(s.name, rs) for s in series], self._smoothing())
        self._apply_compare()
        if before is None and _spans_decades(grouped.get("loss", []), 3):
            self.log_box.setChecked(True)  # a blown-up loss is unreadable on a linear axis
        self._apply_log(self.log_box.isChecked())
        self.overview.set_run(run, rs)
        self._rebuild_lane_menu(names)
        first, last = float(rs.series[0].x[0]), float(rs.series[0].x[-1])
        self._restore_view(before, first, last)
        n_bad = sum(len(s.nonfinite()) for s in rs.series)
        self.info.setText(f"{rs.n_rows:,} rows · steps {int(first):,}–{int(last):,}"
                          + (f" · {n_bad:,} non-finite values" if n_bad else ""))
        self._on_range(self.state.step_range)
        self._draw_marks()
        self._on_annotations()
        self._on_step(self.state.step, reveal=before is None)  # new rows never pan away from the end

    @staticmethod
    def _color(name: str, rs: RunSeries) -> str:
        """Stable colours: loss, grad norm, LR fixed; other series in order of appearance."""
        fixed = {"loss": 0, "grad norm": 1, "lr": 2}
        if name in fixed:
            return theme.series_color(fixed[name])
        others = [s.name for s in rs.series if s.name not in fixed]
        if name not in others:  # a series from the metric tree: a colour stable for its name
            return theme.series_color(3 + len(others) + sum(map(ord, name)) % 5)
        return theme.series_color(3 + others.index(name))

    def _view_state(self) -> tuple[float, float, float] | None:
        lanes = list(self.lanes.values())
        if not lanes or self._series is None:
            return None
        (x0, x1), _ = lanes[0].plot.getViewBox().viewRange()
        return x0, x1, float(self._series.series[0].x[-1])

    def _restore_view(self, before: tuple[float, float, float] | None, first: float, last: float) -> None:
        lanes = list(self.lanes.values())
        if not lanes:
            return
        plot = lanes[0].plot
        if before is None:
            plot.setXRange(first, last, padding=0.01)
            return
        x0, x1, old_last = before
        if self.follow and x1 >= old_last - 1 and last > old_last:  # was showing the end: follow it
            plot.setXRange(max(last - (x1 - x0), first), last, padding=0)
        else:
            plot.setXRange(x0, x1, padding=0)

    def _set_lanes(self, names: list[str]) -> None:
        """Create/remove lane plots so that exactly ``names`` exist, in that order."""
        if list(self.lanes) == names:
            return
        for lane in self.lanes.values():
            self.glw.ci.removeItem(lane.plot)
        self.lanes = {}
        first: pg.PlotItem | None = None
        for i, name in enumerate(names):
            plot = self.glw.addPlot(row=i + 1, col=0)
            lane = Lane(plot, name)
            lane.cursor.sigPositionChanged.connect(self._on_cursor_drag)
            plot.setMinimumHeight(60)
            last = i == len(names) - 1
            plot.getAxis("bottom").setStyle(showValues=last)
            plot.getAxis("bottom").setHeight(None if last else 4)
            if first is None:
                first = plot
                plot.getViewBox().sigXRangeChanged.connect(self._on_lanes_xrange)
            else:
                plot.setXLink(first)
            self.lanes[name] = lane
        for i in range(len(names)):
            self.glw.ci.layout.setRowStretchFactor(i + 1, 3 if i == 0 else 2)
        self.glw.ci.layout.setRowStretchFactor(0, 0)
        self.lanesChanged.emit()

    def _rebuild_lane_menu(self, names: list[str]) -> None:
        menu = self.lanes_button.menu()
        menu.clear()
        for name in names:
            act = menu.addAction(name)
            act.setCheckable(True)
            act.setChecked(name not in self.hidden)
            act.toggled.connect(lambda on, n=name: self.show_lane(n, on))

    def show_lane(self, name: str, on: bool = True) -> None:
        (self.hidden.discard if on else self.hidden.add)(name)
        self.rebuild()

    # ------------------------------------------------------------------ display options
    def _smoothing(self) -> float:
        return float(self.weight.value()) if self.smooth_box.isChecked() else 0.0

    def _apply_smoothing(self, _on: bool) -> None:
        for lane in self.lanes.values():
            lane.set_smoothing(self._smoothing())

    def _apply_log(self, on: bool) -> None:
        refused = []
        for name, lane in self.lanes.items():
            lane.set_log(on)
            if lane.log_refused:
                refused.append(f"{name} ({lane.log_refused})")
        self.log_note.setText(f"linear: {', '.join(refused)}" if refused else "")
        self.log_note.setToolTip("Log y applies to lanes whose values are all > 0 and span a decade or more"
                                 if refused else "")

    def toggle_log(self) -> None:
        self.log_box.toggle()

    def toggle_smoothing(self) -> None:
        self.smooth_box.toggle()

    def zoom(self, factor: float) -> None:
        """Zoom the time axis around the cursor (factor < 1 zooms in)."""
        lanes = list(self.lanes.values())
        if lanes:
            (x0, x1), _ = lanes[0].plot.getViewBox().viewRange()
            c = float(self.state.step)
            lanes[0].plot.setXRange(c - (c - x0) * factor, c + (x1 - c) * factor, padding=0)

    def pan(self, fraction: float) -> None:
        lanes = list(self.lanes.values())
        if lanes:
            (x0, x1), _ = lanes[0].plot.getViewBox().viewRange()
            d = (x1 - x0) * fraction
            lanes[0].plot.setXRange(x0 + d, x1 + d, padding=0)

    def fit(self) -> None:
        """Fit the selected finding's range; again (or without one) fits the whole run."""
        lanes = list(self.lanes.values())
        if not lanes or self._series is None:
            return
        (x0, x1), _ = lanes[0].plot.getViewBox().viewRange()
        r = self.state.step_range
        full = (float(self._series.series[0].x[0]), float(self._series.series[0].x[-1]))
        if r is not None:  # a little room around the range, never beyond the run
            pad = max((r[1] - r[0]) * 0.05, 2)
            target = (max(r[0] - pad, full[0] - 0.5), min(r[1] + pad, full[1] + 0.5))
            if abs(x0 - target[0]) > 1 or abs(x1 - target[1]) > 1:
                lanes[0].plot.setXRange(*target, padding=0)
                return
        lanes[0].plot.setXRange(*full, padding=0.01)

    # ------------------------------------------------------------------ state → view
    def _on_step(self, step: int, reveal: bool = True) -> None:
        """Hot path: move the cursor lines and update readouts; no curve is touched."""
        self._moving = True
        try:
            for lane in self.lanes.values():
                lane.cursor.setValue(step)
                lane.update_readout(step)
            self.overview.set_cursor(step)
        finally:
            self._moving = False
        if reveal:
            self._keep_visible(step)

    def _keep_visible(self, step: int) -> None:
        lanes = list(self.lanes.values())
        if not lanes:
            return
        (x0, x1), _ = lanes[0].plot.getViewBox().viewRange()
        if x0 <= step <= x1:
            return
        w = x1 - x0
        lanes[0].plot.setXRange(step - w / 2, step + w / 2, padding=0)

    def _on_range(self, step_range: tuple[int, int] | None) -> None:
        finding = self.state.finding
        color = theme.severity_color(finding.severity) if finding is not None else theme.ACCENT
        for lane in self.lanes.values():
            lane.set_region(step_range, color)
        self.overview.set_region(step_range, color)

    def _on_finding(self, _finding: Finding | None) -> None:
        self._on_range(self.state.step_range)
        self._draw_marks()

    def _on_annotations(self) -> None:
        run = self.state.run
        sc = run.sidecar if run is not None else None
        self.overview.set_bookmarks(sc.bookmarks if sc else [], [n["step"] for n in sc.notes] if sc else [])

    def _draw_marks(self) -> None:
        """The selected finding's ``marks``: hlines on their lanes, event ticks on lanes and overview."""
        finding, rs = self.state.finding, self._series
        marks = (finding.marks if finding is not None else None) or {}
        color = theme.severity_color(finding.severity) if finding is not None else theme.ACCENT
        has = rs is not None and bool(rs.series)
        span = (float(rs.series[0].x[0]), float(rs.series[0].x[-1])) if has else (0.0, 1.0)
        per_lane: dict[str, list[tuple[float, str]]] = {}
        for h in marks.get("hlines", []) or []:
            try:
                y, name = float(h["y"]), str(h.get("lane", "loss"))
            except (KeyError, TypeError, ValueError):
                continue
            series = rs.get(name) if rs is not None else None
            lane = MARK_LANES.get(name, series.lane if series is not None else name)
            per_lane.setdefault(lane, []).append((y, str(h.get("label", ""))))
        events = [int(e) for e in marks.get("events", []) or [] if isinstance(e, (int, float))]
        for name, lane in self.lanes.items():
            lane.set_marks(per_lane.get(name, []), events, color, span)
        onset = marks.get("onset", finding.steps[0] if finding is not None else None)
        self.overview.set_marks(onset if finding is not None else None, events, color)

    # ------------------------------------------------------------------ view → state
    def _on_cursor_drag(self, line: pg.InfiniteLine) -> None:
        if not self._moving:
            self.state.set_step(int(round(line.value())))

    def _on_click(self, ev) -> None:  # noqa: ANN001 - pyqtgraph MouseClickEvent
        if ev.button() != Qt.MouseButton.LeftButton or ev.double():
            return
        pos = ev.scenePos()
        if self.overview.contains(pos):
            self.overview.click(pos)
            return
        step = clicked_step(pos, (lane.plot for lane in self.lanes.values()))
        if step is not None:
            self.state.set_step(step)

    def _on_lanes_xrange(self, _vb: object, rng: tuple[float, float]) -> None:
        self.overview.set_window(rng)
        if self.linked and not self._applying:
            self.state.set_view_range(tuple(rng))

    def _on_view_range(self, rng: tuple[float, float] | None) -> None:
        lanes = list(self.lanes.values())
        if not self.linked or rng is None or not lanes:
            return
        self._applying = True
        try:
            lanes[0].plot.setXRange(rng[0], rng[1], padding=0)
        finally:
            self._applying = False

    def set_linked(self, on: bool) -> None:
        """Link (or unlink) the timeline's zoom and pan to the shared step window."""
        self.linked = bool(on)
        self.link_button.blockSignals(True)
        self.link_button.setChecked(self.linked)
        self.link_button.blockSignals(False)
        self.link_button.setText("linked" if self.linked else "unlinked")
        if self.linked:
            self.state.set_view_range(self.visible_range())

    def _on_brush(self, lo: float, hi: float) -> None:
        lanes = list(self.lanes.values())
        if lanes:
            lanes[0].plot.setXRange(lo, hi, padding=0)

    # ------------------------------------------------------------------ helpers for tests/export
    def visible_range(self) -> tuple[float, float]:
        lanes = list(self.lanes.values())
        return tuple(lanes[0].plot.getViewBox().viewRange()[0]) if lanes else (0.0, 0.0)  # type: ignore


def _spans_decades(series: list[Series], decades: float) -> bool:
    """Whether the finite values are all positive and span more than ``decades`` powers of ten."""
    vals = [s.y[np.isfinite(s.y)] for s in series]
    vals = [v for v in vals if len(v)]
    if not vals or any((v <= 0).any() for v in vals):
        return False
    lo, hi = min(float(v.min()) for v in vals), max(float(v.max()) for v in vals)
    return hi / lo > 10 ** decades


__all__ = ["TimelineView", "AXIS_WIDTH", "nonfinite_runs"]
