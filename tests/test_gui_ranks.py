"""The app on a 2-rank run: two files recorded with TraceRecorder (renamed run.rank0/1.h5)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from analysis import rank_data as rd
from analysis.trace import open_trace
from tests._gui_helpers import make_window, shutdown, wait_idle


def _record_two_ranks(folder: str) -> str:
    torch = pytest.importorskip("torch")
    from tests._recorder_helpers import record_full_batch

    for rank, lr in ((0, 0.05), (1, 0.3)):  # rank 1 drifts: its own, larger learning rate
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        loss_fn = torch.nn.CrossEntropyLoss()
        g = torch.Generator().manual_seed(rank)
        x, y = torch.randn(32, 6, generator=g), torch.randint(0, 3, (32,), generator=g)
        path = os.path.join(folder, f"tmp{rank}.h5")
        record_full_batch(path, model, opt, loss_fn, x, y, 25)
        os.rename(path, os.path.join(folder, f"run.rank{rank}.h5"))
    return os.path.join(folder, "run.rank0.h5")


def test_rank_matrix_aligns_every_rank(tmp_path):
    path = _record_two_ranks(str(tmp_path))
    with open_trace(path) as tr:
        assert tr.n_ranks == 2
        steps, loss, missing = rd.rank_matrix(tr, "loss")
        assert not missing.any()
        assert loss.shape == (2, 25) and np.allclose(loss[1], tr.rank(1).loss())
        _, gn, unmeasured = rd.rank_matrix(tr, "grad norm")
        assert np.all(gn[~unmeasured] > 0) and np.isnan(gn[unmeasured]).all()
        rel = rd.relative_to_median(loss)
        assert np.all(np.sign(rel[0][1:]) == -np.sign(rel[1][1:]))  # two ranks: on either side of the median
        assert np.all(np.abs(rel[:, 1:]) > 1e-4)


def test_app_shows_every_rank_and_switches_rank(qtbot, tmp_path):
    path = _record_two_ranks(str(tmp_path))
    win = make_window(qtbot, tmp_path, analyze_fn=None, size=(1600, 1000))  # the real diagnosis
    try:
        win.open_paths([path])
        wait_idle(qtbot, win, timeout=90)
        win.ranks.wait()
        assert win.ranks.isVisible() and win.ranks.selector.count() == 2
        assert win.ranks.images["loss"].image.shape == (2, 25)
        assert win.ranks.images["grad norm"].image.shape == (2, 25)
        win.state.set_step(10)
        assert "r0 " in win.ranks.readout.text() and "r1 " in win.ranks.readout.text()
        win.ranks.selector.setCurrentIndex(1)
        wait_idle(qtbot, win, timeout=90)
        run = win.state.run
        assert run.trace.rank_index == 1 and len(win.state.runs) == 1
        loss = win.timeline.lanes["loss"].series[0].y
        assert np.allclose(loss, run.trace.loss())  # the timeline shows rank 1's own losses
        assert "(rank 1/2)" in win.status_labels["file"].text()
        assert run.report is not None  # the run's diagnosis is kept
        lanes = list(win.timeline.lanes.values())
        lanes[0].plot.setXRange(5, 15, padding=0)
        assert win.ranks.plots["loss"].getViewBox().viewRange()[0] == pytest.approx([5, 15])
    finally:
        shutdown(win)


def test_single_process_run_has_no_rank_lanes(qtbot, tmp_path):
    from tests._gui_helpers import write_trace

    win = make_window(qtbot, tmp_path)
    try:
        win.open_paths([write_trace(str(tmp_path / "one.h5"), n=20)])
        wait_idle(qtbot, win, timeout=90)
        assert not win.ranks.isVisible()
    finally:
        shutdown(win)
