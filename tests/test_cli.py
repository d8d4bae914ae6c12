"""The command (`main.py`, `python -m trainwreck`) as a user runs it: exit codes, output shapes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def test_demo_headless_records_and_diagnoses(tmp_path):
    out = run("demo", "--no-gui", "--quick", "--out", str(tmp_path),
              "--scenarios", "seed003_double_softmax_binary")
    assert out.returncode == 0, out.stderr
    assert "[1/1] recording seed003_double_softmax_binary" in out.stdout
    assert "1. ERROR   double_softmax (cause" in out.stdout
    trace = tmp_path / "seed003_double_softmax_binary.h5"
    report = json.loads(run("analyze", str(trace), "--json").stdout)
    assert report["findings"][0]["code"] == "double_softmax" and report["steps"] > 0


def test_analyze_several_traces_one_bad_exits_2_but_reports_the_good(tmp_path):
    good = os.path.join(ROOT, "tests", "data", "good.h5")
    out = run("analyze", good, str(tmp_path / "nope.h5"), "--json")
    assert out.returncode == 2
    assert [json.loads(line)["steps"] for line in out.stdout.splitlines()] == [12]
    assert out.stderr.strip() == f"trainwreck: {tmp_path / 'nope.h5'}: no such file"


def test_unknown_demo_scenario_is_a_usage_error():
    out = run("demo", "--no-gui", "--scenarios", "no_such_example")
    assert out.returncode == 1 and "unknown scenario" in out.stderr


def test_detectors_lists_every_code_with_its_documentation():
    out = run("detectors")
    assert out.returncode == 0
    assert "double_softmax (cause)" in out.stdout and "Fires when:" in out.stdout


def _module_run(*args: str, cwd: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "trainwreck", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=env)


def test_python_dash_m_works_from_another_folder(tmp_path):
    good = os.path.join(ROOT, "tests", "data", "good.h5")
    out = _module_run("analyze", good, "--json", cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["steps"] == 12


def test_help_texts_cite_nothing_the_user_lacks(tmp_path):
    for args in (["--help"], ["analyze", "--help"], ["demo", "--help"], ["detectors", "--help"]):
        out = _module_run(*args, cwd=str(tmp_path))
        assert out.returncode == 0, (args, out.stderr)
        text = out.stdout + out.stderr
        assert "trainwreck" in text
        for unknown in ("CONTRACT", "§", "main.py", "examples/"):
            assert unknown not in text, (args, unknown)


def test_a_closed_pipe_ends_quietly():
    """`trainwreck analyze x.h5 --json | head -1`: the reader leaves, no traceback."""
    good = os.path.join(ROOT, "tests", "data", "good.h5")
    proc = subprocess.Popen([sys.executable, "main.py", "analyze", *[good] * 400, "--json"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()  # what `head -1` does after its line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0
    assert json.loads(first)["steps"] == 12
    assert err == "", err


def test_without_qt_the_app_and_report_say_what_to_install(tmp_path):
    """A recorder-only install (no PySide6, no pyqtgraph): one line naming the extra, no traceback."""
    good = os.path.join(ROOT, "tests", "data", "good.h5")
    code = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6'):
            raise ImportError('blocked', name=name)
sys.meta_path.insert(0, Block())
from trainwreck.cli import main
sys.exit(main(sys.argv[1:]))
"""
    env = dict(os.environ, PYTHONPATH=ROOT, QT_QPA_PLATFORM="offscreen")
    for args in ([good], ["report", good, "-o", str(tmp_path / "r.html")]):
        out = subprocess.run([sys.executable, "-c", code, *args], cwd=str(tmp_path), capture_output=True,
                             text=True, timeout=120, env=env)
        assert out.returncode in (1, 2), (args, out.stderr)
        assert out.stderr.count("\n") == 1 and "pip install 'trainwreck[app]'" in out.stderr, out.stderr
