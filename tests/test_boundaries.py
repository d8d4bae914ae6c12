"""Who may import what: the layering of style-anchors §9.1, enforced."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
STDLIB = set(sys.stdlib_module_names)


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _files(folder: str) -> list[pathlib.Path]:
    return sorted((ROOT / folder).rglob("*.py"))


FRAMEWORKS = {"lightning.py": {"lightning", "pytorch_lightning"}, "hf.py": {"transformers"}}


def test_recorders_import_only_torch_numpy_h5py():
    """The core recorder; each framework callback module may also import its own framework."""
    allowed = STDLIB | {"torch", "numpy", "h5py", "recorders", "__future__"}
    for path in _files("recorders"):
        extra = _imports(path) - allowed - FRAMEWORKS.get(path.name, set())
        assert not extra, f"{path.relative_to(ROOT)} imports {sorted(extra)}"


def test_only_the_reader_opens_h5py():
    readers = {"analysis/trace.py", "analysis/_store.py", "analysis/synthetic.py"}
    for folder in ("analysis", "gui"):
        for path in _files(folder):
            rel = str(path.relative_to(ROOT))
            if rel not in readers:
                assert "h5py" not in _imports(path), f"{rel} imports h5py: ask analysis.trace"


def test_analysis_and_gui_never_import_torch():
    for folder in ("analysis", "gui"):
        for path in _files(folder):
            assert "torch" not in _imports(path), f"{path.relative_to(ROOT)} imports torch"


def test_headless_import_without_qt():
    """`import recorders, analysis` works where Qt cannot be imported, and pulls in neither Qt nor torch."""
    code = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'pyqtgraph', 'PyQt5', 'PyQt6', 'shiboken6'):
            raise ImportError('Qt blocked: ' + name)
sys.meta_path.insert(0, Block())
import recorders, analysis, analysis.detectors
assert 'torch' not in sys.modules, 'analysis pulled in torch'
from recorders import TraceRecorder  # loads torch lazily
print('ok')
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr
