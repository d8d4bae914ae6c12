"""The timeline's run comparison: other open runs overlaid (dashed) in every lane, with a legend.

A mixin of ``TimelineView`` (kept apart so each module stays small). Runs are aligned
by global step, or by steps since each run's first row; one cursor drives them all.
"""

from __future__ import annotations

import pyqtgraph as pg

from gui import theme
from gui.series import Series

RUN_COLORS = ("#ff9f5a", "#c792ea", "#90e39a", "#ff6b9a", "#82aaff", "#f2c14e", "#4cc9f0", "#b8e986")


def run_color(k: int) -> str:
    """The colour of the k-th compared run (distinct hues beyond the first eight)."""
    return RUN_COLORS[k] if k < len(RUN_COLORS) else pg.intColor(k, hues=20).name()



class CompareLanes:
    """Compare menu, overlays and legend; relies on the timeline's ``state``, ``lanes``, ``compare``."""

    # ------------------------------------------------------------------ compare
    @property
    def compare_index(self) -> int | None:
        """Index of the first compared run (the one the heatmap shows beside), or None."""
        runs = [i for i, r in enumerate(self.state.runs) if any(r is c for c in self.compared)]
        return runs[0] if runs else None

    def _refresh_compare_box(self) -> None:
        """The Compare menu: one checkable entry per other open run, and the alignment."""
        current = self.state.run
        open_runs = self.state.runs
        self.compared = [c for c in self.compared if c is not current and any(c is r for r in open_runs)]
        menu = self.compare.menu()
        menu.clear()
        for i, run in enumerate(self.state.runs):
            if run is current:
                continue
            act = menu.addAction(run.name or run.trace.path)
            act.setCheckable(True)
            act.setChecked(any(run is c for c in self.compared))
            act.toggled.connect(lambda on, i=i: self._toggle_compared(i, on))
        menu.addSeparator()
        menu.addAction("Compare with every open run", lambda: self.set_compared(range(len(self.state.runs))))
        menu.addAction("Compare off", lambda: self.set_compared([]))
        menu.addSeparator()
        for key, text in (("step", "Align by step"), ("relative", "Align by relative step (from each start)"),
                          ):
            act = menu.addAction(text, lambda k=key: self.set_align(k))
            act.setCheckable(True)
            act.setChecked(self.align == key)
        n = len(self.compared)
        self.compare.setText(f"Compare ({n})" if n else "Compare")
        self.compare.setVisible(len(self.state.runs) > 1)

    def compare_runs(self) -> list[str]:
        """Names of the runs the Compare menu offers."""
        return [r.name for r in self.state.runs if r is not self.state.run]

    def _toggle_compared(self, index: int, on: bool) -> None:
        idx = {i for i, r in enumerate(self.state.runs) if any(r is c for c in self.compared)}
        self.set_compared(sorted(idx | {index} if on else idx - {index}))

    def set_compare(self, index: int | None) -> None:
        """Compare with run ``index`` only (None: off)."""
        self.set_compared([] if index is None else [index])

    def set_compared(self, indices: object) -> None:
        """Overlay these runs' series in every lane, with a legend (the current run is skipped)."""
        runs = self.state.runs
        self.compared = [runs[i] for i in indices if 0 <= i < len(runs) and runs[i] is not self.state.run]
        self._refresh_compare_box()
        self._apply_compare()
        self._on_step(self.state.step)
        self.compareChanged.emit(self.compare_index)

    def set_align(self, align: str) -> None:
        """``"step"`` (global steps) or ``"relative"`` (steps since each run's first row)."""
        self.align = align if align in ("step", "relative") else "step"
        self._refresh_compare_box()
        self._apply_compare()

    def _aligned(self, s: Series, start: float) -> Series:
        if self.align != "relative" or not len(s.x):
            return s
        return Series(s.name, s.x - s.x[0] + int(start), s.y, s.lane, s.measured)

    def _apply_compare(self) -> None:
        rs = self._series
        start = float(rs.series[0].x[0]) if rs is not None and rs.series else 0.0
        per_run = [(k, run, self.lane_series(run)) for k, run in enumerate(self.compared)]
        for name, lane in self.lanes.items():
            lane.set_overlays([(f"{s.name} [{run.name or k + 2}]", run_color(k), self._aligned(s, start))
                               for k, run, grouped in per_run for s in grouped.get(name, [])])
            lane.update_readout(self.state.step)
        first = next(iter(self.lanes.values()), None)
        for lane in self.lanes.values():
            lane.set_legend([])
        self._apply_log(self.log_box.isChecked())  # a compared run may span decades this one does not
        if first is not None and self.compared and self.state.run is not None:
            first.set_legend([(f"{self.state.run.name} (solid)", theme.TEXT, False)]
                             + [(run.name, run_color(k), True) for k, run in enumerate(self.compared)])
