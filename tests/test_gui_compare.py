"""Two runs compared: the second run's heatmap beside the first, one cursor driving both."""

from __future__ import annotations

from _gui_helpers import make_window, shutdown, wait_idle, write_trace


def test_compare_shows_the_other_run_beside_and_follows_one_cursor(qtbot, tmp_path):
    a = write_trace(str(tmp_path / "a.h5"), n=120, seed=0)
    b = write_trace(str(tmp_path / "b.h5"), n=80, every=2, seed=1)  # logged every other step
    w = make_window(qtbot, tmp_path)
    try:
        w.open_paths([a, b])
        wait_idle(qtbot, w, runs=2)
        names = [r.name for r in w.state.runs]  # loaded in parallel: order not fixed
        w.state.set_current(names.index("a"))
        split = w.compare_split
        assert not split.widget(1).isVisibleTo(w)
        w.timeline.set_compare(names.index("b"))
        assert split.widget(1).isVisibleTo(w)
        assert split.mirror.run is w.state.runs[names.index("b")] and split.compare_label.text() == "B: b"
        w.state.set_step(51)
        assert w.state.step == 51 and split.mirror.step == 50  # b's nearest logged step
        w.state.set_layer("fc2.weight")
        assert split.mirror.layer == "fc2.weight"
        split.mirror.set_step(90)  # a click in B's heatmap moves the shared cursor
        assert w.state.step == 90 and split.mirror.step == 90
        w.timeline.set_compare(None)
        assert not split.widget(1).isVisibleTo(w) and split.mirror.run is None
    finally:
        shutdown(w)
