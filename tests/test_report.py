"""The diagnosis report: headless from the command line, figures only of each finding's evidence.

The command-line tests run ``main.py`` in a subprocess with no display at all (DISPLAY,
WAYLAND_DISPLAY and QT_QPA_PLATFORM unset), as on a training node.
"""

from __future__ import annotations

import os
import subprocess
import sys

from analysis.findings import Finding, Report
from tests._gui_helpers import make_window, shutdown, wait_idle, write_trace
from tests.test_gui_evidence_views import _record_double_softmax

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def headless(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["PYTHONPATH"] = ROOT
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


def _png_size(path: str) -> tuple[int, int]:
    with open(path, "rb") as fh:
        head = fh.read(24)
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_report_command_works_without_a_display(tmp_path):
    trace = _record_double_softmax(str(tmp_path / "run.h5"))
    out = headless("report", trace, "-o", str(tmp_path / "out" / "report.html"))
    assert out.returncode == 0, out.stderr
    assert out.stderr.strip() == "" and "wrote" in out.stdout
    page = (tmp_path / "out" / "report.html").read_text()
    assert "double_softmax" in page and page.count("<img") >= 1
    pngs = sorted((tmp_path / "out" / "report_files").iterdir())
    assert pngs and all(p.name.split("-")[0].isdigit() for p in pngs)
    widest = max((_png_size(str(p)) for p in pngs), key=lambda wh: wh[0])
    assert widest[0] >= 1600 and widest[1] >= 400  # the timeline, drawn at 2× its on-screen size
    default = headless("report", trace)  # default: beside the trace
    assert default.returncode == 0, default.stderr
    assert (tmp_path / "run-diagnosis.html").exists()


def test_no_display_says_so_and_points_to_analyze_and_report(tmp_path):
    trace = write_trace(str(tmp_path / "t.h5"), n=20)
    out = headless(trace)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0]
    assert "trainwreck analyze" in lines[0] and "trainwreck report" in lines[0]
    missing = headless("report", str(tmp_path / "nope.h5"))
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"trainwreck: {tmp_path / 'nope.h5'}: no such file"


def _marked(trace) -> Report:
    s = trace.steps
    findings = [
        Finding("double_softmax", "cause", "error", 0.9, [0, int(s[-1])], None, "probabilities fed to CE",
                "outputs sum to 1", "drop the Softmax", marks={"views": ["outputs"]}),
        Finding("lr_too_high", "cause", "warning", 0.6, [int(s[5]), int(s[9])], "fc1", "LR too high",
                "ratio 3e-2", "lower it", marks={"views": ["timeline", "histogram"]}),
    ]
    return Report(trace=trace.path, steps=int(s[-1]) + 1, findings=findings)


def test_report_renders_only_each_findings_views(qtbot, tmp_path):
    from gui import export
    from gui.figures import figure_widgets

    path = write_trace(str(tmp_path / "m.h5"), n=40)
    win = make_window(qtbot, tmp_path, analyze_fn=_marked, size=(1600, 1000))
    try:
        win.open_paths([path])
        wait_idle(qtbot, win)
        out = export.write_report(win, str(tmp_path / "m.md"))
        names = sorted(os.listdir(tmp_path / "m_files"))
        assert names == ["01-double_softmax-outputs.png", "02-lr_too_high-histogram.png",
                         "02-lr_too_high-timeline.png"]
        text = open(out).read()
        assert "![double_softmax — outputs at step 0](m_files/01-double_softmax-outputs.png)" in text
        view = win.views["outputs_view"]
        w, _ = _png_size(str(tmp_path / "m_files" / names[0]))
        assert w == 2 * max(c.viewport().width() for c in figure_widgets(view))  # plots only, 2×
    finally:
        shutdown(win)
